package chaos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault kinds the proxy injects into any call.
const (
	FaultThrottle  = "throttle"   // 400 with the service's throttling error
	Fault500       = "http500"    // 500 with the service's internal error
	FaultHoldDrop  = "hold_drop"  // held, then the connection is dropped; never forwarded
	FaultApplyDrop = "apply_drop" // forwarded (the effect happens), then the response is dropped
)

// Fault kinds that real DynamoDB gives a TransactWriteItems and moto never
// does. None is forwarded: the transaction did not happen.
const (
	// TransactionCanceledException, one item TransactionConflict, the
	// others None: another request was writing one of its items.
	FaultTxConflict = "tx_conflict"
	// TransactionCanceledException, one item ThrottlingError.
	FaultTxThrottle = "tx_throttle"
	// ProvisionedThroughputExceededException for the whole call.
	FaultThroughput = "throughput_exceeded"
)

// FaultKinds lists the kinds for any call, in report order.
var FaultKinds = []string{FaultThrottle, Fault500, FaultHoldDrop, FaultApplyDrop}

// TxFaultKinds lists the DynamoDB transaction kinds.
var TxFaultKinds = []string{FaultTxConflict, FaultTxThrottle, FaultThroughput}

// RetryWindow is how soon the same request must come back, on the same
// listener, to count as retried in-process: the SDK retries within about a
// second; a message handed back to SQS returns after its visibility
// timeout, and then as a new request (a new ClientRequestToken).
const RetryWindow = 3 * time.Second

// ProxyOptions shape the faults.
type ProxyOptions struct {
	Rate       float64       // share of eligible requests that fail
	MaxLatency time.Duration // uniform extra latency on every request
	MaxHold    time.Duration // how long a hold_drop holds before dropping
	// Exempt names operations ("sts.AssumeRole") that never fail, so that
	// start-up is not what is being tested.
	Exempt map[string]bool
	Kinds  []string // kinds to draw from; default FaultKinds
	// TxRate is the share of TransactWriteItems answered with one of
	// TxKinds (default TxFaultKinds), drawn before Rate.
	TxRate  float64
	TxKinds []string
	Seed    uint64
}

// Proxy forwards AWS API calls to target and breaks a share of them. It
// listens on one address per client, so requests and faults are counted per
// replica as well as per kind and operation.
type Proxy struct {
	target *url.URL
	opts   ProxyOptions
	client *http.Client

	mu      sync.Mutex
	rng     *rand.Rand
	faults  map[string]int // kind -> count
	byOp    map[string]int // "service.Op kind" -> count
	timing  map[string]*opTiming
	servers []*http.Server
	perPort []*atomic.Int64
	// Transactions answered with a TxKinds fault, until they come back.
	pending     map[sentKey]pendingFault
	retried     map[string]int // kind -> sent again within RetryWindow
	retriedLate map[string]int // kind -> sent again, but later
	maxDelay    time.Duration  // longest in-process retry seen
	// The account of each access key that an AssumeRole answer through
	// the proxy handed out, and requests and faults by the account of the
	// key that signed them (BaseCredentials for any other key).
	keys         map[string]string
	byAcct       map[string]int64
	faultsByAcct map[string]int
	bySvc        map[string]int64
	faultsBySvc  map[string]int
	cleanBySvc   map[string]int64 // the test's own calls, through the fault-free listener

	requests atomic.Int64
}

// sentKey is one request body on one listener. The SDK sends a retry with
// the same body (the same ClientRequestToken); anything else differs.
type sentKey struct {
	port int
	sum  [sha256.Size]byte
}

type pendingFault struct {
	kind string
	at   time.Time
}

// NewProxy returns a proxy to target (moto's URL).
func NewProxy(target string, opts ProxyOptions) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("proxy target %q: %w", target, err)
	}
	p := &Proxy{
		target: u, opts: opts,
		// No overall timeout: ReceiveMessage long-polls; the caller's
		// cancellation (a killed replica) ends the forwarded request.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}},
		rng:    rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		faults: map[string]int{}, byOp: map[string]int{}, timing: map[string]*opTiming{},
		pending: map[sentKey]pendingFault{}, retried: map[string]int{}, retriedLate: map[string]int{},
		keys: map[string]string{}, byAcct: map[string]int64{}, faultsByAcct: map[string]int{},
		bySvc: map[string]int64{}, faultsBySvc: map[string]int{}, cleanBySvc: map[string]int64{},
	}
	return p, nil
}

// Listen starts one more listener on a free local port and returns its URL.
func (p *Proxy) Listen() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("proxy listen: %w", err)
	}
	counter := &atomic.Int64{}
	p.mu.Lock()
	port := len(p.perPort)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		counter.Add(1)
		p.serve(w, r, port)
	}), ReadHeaderTimeout: 10 * time.Second}
	p.servers = append(p.servers, srv)
	p.perPort = append(p.perPort, counter)
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// ListenClean starts a listener that never injects faults or latency, for
// the test's own calls.
func (p *Proxy) ListenClean() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("proxy listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, cleanPort)
	}), ReadHeaderTimeout: 10 * time.Second}
	p.mu.Lock()
	p.servers = append(p.servers, srv)
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops every listener.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.servers {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.Shutdown(ctx)
		cancel()
		_ = s.Close()
	}
}

// cleanPort marks the fault-free listener.
const cleanPort = -1

// ProxyStats is what the proxy did.
type ProxyStats struct {
	Requests   int64
	PerPort    []int64
	Faults     map[string]int
	FaultsByOp map[string]int
	// Of the TxKinds faults, by kind: how many transactions the same
	// replica sent again within RetryWindow (in-process retries), and
	// later than that.
	Retried, RetriedLate map[string]int
	MaxRetryDelay        time.Duration
	// Requests and faults by the account of the credentials that signed
	// them: an account id for keys from an AssumeRole answer (a role
	// chain's IAM calls), BaseCredentials for the rest (SQS, DynamoDB,
	// EventBridge and the chains' first hop).
	ByAccount       map[string]int64
	FaultsByAccount map[string]int
	// Requests and faults by the service their signature names (sso for
	// Identity Center's admin API, identitystore, iam, ...).
	ByService       map[string]int64
	FaultsByService map[string]int
	// The test's own calls (the fault-free listener), by service: what the
	// harness costs the emulator beside the replicas.
	CleanByService map[string]int64
}

// BaseCredentials labels requests signed with a key no AssumeRole answer
// through the proxy handed out.
const BaseCredentials = "base"

// TxFaults is the number of TxFaultKinds faults injected.
func (s ProxyStats) TxFaults() int {
	n := 0
	for _, k := range TxFaultKinds {
		n += s.Faults[k]
	}
	return n
}

// Total is the number of faults of every kind.
func (s ProxyStats) Total() int {
	n := 0
	for _, v := range s.Faults {
		n += v
	}
	return n
}

// TopOps renders the n operations that saw the most faults.
func (s ProxyStats) TopOps(n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range s.FaultsByOp {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	var b strings.Builder
	for i, e := range all {
		if i == n {
			break
		}
		fmt.Fprintf(&b, "%s=%d ", e.k, e.v)
	}
	return strings.TrimSpace(b.String())
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := ProxyStats{Requests: p.requests.Load(), Faults: map[string]int{}, FaultsByOp: map[string]int{}}
	for k, v := range p.faults {
		st.Faults[k] = v
	}
	for k, v := range p.byOp {
		st.FaultsByOp[k] = v
	}
	for _, c := range p.perPort {
		st.PerPort = append(st.PerPort, c.Load())
	}
	st.Retried, st.RetriedLate = maps.Clone(p.retried), maps.Clone(p.retriedLate)
	st.ByAccount, st.FaultsByAccount = maps.Clone(p.byAcct), maps.Clone(p.faultsByAcct)
	st.ByService, st.FaultsByService, st.CleanByService = maps.Clone(p.bySvc), maps.Clone(p.faultsBySvc), maps.Clone(p.cleanBySvc)
	st.MaxRetryDelay = p.maxDelay
	return st
}

// fault is what the proxy does to one request.
type fault struct {
	kind      string
	lat, hold time.Duration
	item      int // the cancelled item of a transaction fault
}

const opTransactWrite = "dynamodb.TransactWriteItems"

// decide draws the latency and the fault (kind "" for none) for one
// request signed with access key akid; items is the number of items of a
// transaction.
func (p *Proxy) decide(op, akid string, items int) fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	acct, ok := p.keys[akid]
	if !ok {
		acct = BaseCredentials
	}
	p.byAcct[acct]++
	svc, _, _ := strings.Cut(op, ".")
	p.bySvc[svc]++
	var f fault
	if p.opts.MaxLatency > 0 {
		f.lat = time.Duration(p.rng.Int64N(int64(p.opts.MaxLatency) + 1))
	}
	if p.opts.Exempt[op] {
		return f
	}
	switch {
	case op == opTransactWrite && p.rng.Float64() < p.opts.TxRate:
		kinds := p.opts.TxKinds
		if len(kinds) == 0 {
			kinds = TxFaultKinds
		}
		f.kind = kinds[p.rng.IntN(len(kinds))]
		f.item = p.rng.IntN(max(items, 1))
	case p.rng.Float64() < p.opts.Rate:
		kinds := p.opts.Kinds
		if len(kinds) == 0 {
			kinds = FaultKinds
		}
		f.kind = kinds[p.rng.IntN(len(kinds))]
		if f.kind == FaultHoldDrop && p.opts.MaxHold > 0 {
			f.hold = time.Duration(p.rng.Int64N(int64(p.opts.MaxHold) + 1))
		}
	default:
		return f
	}
	p.faults[f.kind]++
	p.byOp[op+" "+f.kind]++
	p.faultsByAcct[acct]++
	p.faultsBySvc[svc]++
	return f
}

var (
	signedBy       = regexp.MustCompile(`Credential=([^/]+)/`)
	assumedKey     = regexp.MustCompile(`<AccessKeyId>([^<]+)</AccessKeyId>`)
	assumedAccount = regexp.MustCompile(`<Arn>arn:aws:sts::(\d{12}):assumed-role/`)
)

// accessKey is the access key id that signed r ("" when unsigned).
func accessKey(r *http.Request) string {
	if m := signedBy.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return m[1]
	}
	return ""
}

// learnKey reads an AssumeRole answer: the access key it hands out acts in
// the account of the assumed role.
func (p *Proxy) learnKey(body []byte) {
	k, a := assumedKey.FindSubmatch(body), assumedAccount.FindSubmatch(body)
	if k == nil || a == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[string(k[1])] = string(a[1])
}

// sentAgain notes a transaction arriving on port: if the same body was
// answered with a transaction fault there, this is its retry.
func (p *Proxy) sentAgain(k sentKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pf, ok := p.pending[k]
	if !ok {
		return
	}
	delete(p.pending, k)
	d := time.Since(pf.at)
	if d > RetryWindow {
		p.retriedLate[pf.kind]++
		return
	}
	p.retried[pf.kind]++
	p.maxDelay = max(p.maxDelay, d)
}

func (p *Proxy) answered(k sentKey, kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending[k] = pendingFault{kind: kind, at: time.Now()}
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, port int) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	call := identify(r, body)
	chaos := port != cleanPort
	var f fault
	var sent sentKey
	items := 0
	if chaos {
		p.requests.Add(1)
		if call.op() == opTransactWrite {
			sent = sentKey{port: port, sum: sha256.Sum256(body)}
			p.sentAgain(sent)
			items = transactItems(body)
		}
		f = p.decide(call.op(), accessKey(r), items)
	} else {
		p.mu.Lock()
		p.cleanBySvc[call.service]++
		p.mu.Unlock()
	}
	if !sleep(r.Context(), f.lat) {
		return
	}
	switch kind := f.kind; kind {
	case FaultTxConflict, FaultTxThrottle, FaultThroughput:
		p.answered(sent, kind)
		writeTxFault(w, kind, items, f.item)
	case FaultThrottle:
		call.writeError(w, http.StatusBadRequest, "Throttling", "Rate exceeded (injected by the chaos proxy)")
	case Fault500:
		call.writeError(w, http.StatusInternalServerError, "InternalFailure", "internal failure (injected by the chaos proxy)")
	case FaultHoldDrop:
		if sleep(r.Context(), f.hold) {
			dropConn(w)
		}
	case FaultApplyDrop:
		resp, err := p.forward(r, body)
		if err != nil {
			dropConn(w)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		dropConn(w)
	default:
		began := time.Now()
		resp, err := p.forward(r, body)
		if chaos {
			p.observe(call.op(), time.Since(began))
		}
		if err != nil {
			if r.Context().Err() == nil {
				http.Error(w, "chaos proxy: "+err.Error(), http.StatusBadGateway)
			}
			return
		}
		defer resp.Body.Close()
		if call.op() == "sts.AssumeRole" && resp.StatusCode == http.StatusOK {
			// forward read the whole answer; read it again for its key.
			b, _ := io.ReadAll(resp.Body)
			p.learnKey(b)
			resp.Body = io.NopCloser(bytes.NewReader(b))
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}
}

// opTiming is how long moto took for one operation.
type opTiming struct {
	n        int
	sum, max time.Duration
}

func (p *Proxy) observe(op string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.timing[op]
	if t == nil {
		t = &opTiming{}
		p.timing[op] = t
	}
	t.n++
	t.sum += d
	t.max = max(t.max, d)
}

// Timing renders moto's latency per operation, slowest total first.
func (p *Proxy) Timing() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ops := make([]string, 0, len(p.timing))
	for op := range p.timing {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return p.timing[ops[i]].sum > p.timing[ops[j]].sum })
	var b strings.Builder
	for _, op := range ops {
		t := p.timing[op]
		fmt.Fprintf(&b, "%s n=%d mean=%s max=%s; ", op, t.n, (t.sum / time.Duration(t.n)).Round(time.Millisecond), t.max.Round(time.Millisecond))
	}
	return b.String()
}

// forward sends the request to moto and reads the whole answer. moto
// itself (through moto_iamjit.py) runs DynamoDB requests one at a time.
func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, error) {
	u := *p.target
	u.Path = r.URL.Path
	u.RawQuery = r.URL.RawQuery
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			out.Header.Add(k, v)
		}
	}
	out.Host = p.target.Host
	out.ContentLength = int64(len(body))
	resp, err := p.client.Do(out)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// sleep waits d unless the caller goes away first (a killed replica).
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dropConn closes the client's connection without an answer: to the SDK it
// is a connection error, whatever happened upstream.
func dropConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "chaos proxy: dropped", http.StatusBadGateway)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST rather than FIN
	}
	_ = conn.Close()
}

// apiCall is what the proxy knows about one request.
type apiCall struct {
	service string // sqs, dynamodb, events, iam, sts, scheduler, sso, identitystore, …
	action  string
	json    bool // AWS JSON protocol (else the query protocol, XML errors)
	rest    bool // REST-JSON (EventBridge Scheduler): JSON errors named by a header
	version string
}

// restJSON are the services the proxy sees that speak REST-JSON: their
// operation is the method and the path's first segment.
var restJSON = map[string]bool{"scheduler": true}

func (c apiCall) op() string { return c.service + "." + c.action }

var credentialScope = regexp.MustCompile(`Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request`)

func identify(r *http.Request, body []byte) apiCall {
	c := apiCall{service: "unknown", action: "unknown"}
	if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		c.service = m[1]
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		c.json = true
		c.version = "1.0"
		if strings.Contains(r.Header.Get("Content-Type"), "1.1") {
			c.version = "1.1"
		}
		if i := strings.LastIndex(target, "."); i >= 0 {
			c.action = target[i+1:]
		}
		return c
	}
	if restJSON[c.service] {
		c.rest = true
		seg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		c.action = r.Method + "_" + seg
		return c
	}
	if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
		c.action = v.Get("Action")
	}
	return c
}

// writeError answers as the service would. code is the query-protocol code
// ("Throttling", "InternalFailure"); JSON services get their own names.
func (c apiCall) writeError(w http.ResponseWriter, status int, code, msg string) {
	fault := "Sender"
	if status >= 500 {
		fault = "Receiver"
	}
	if c.rest {
		restCode := code
		switch code {
		case "Throttling":
			restCode = "ThrottlingException"
		case "InternalFailure":
			restCode = "InternalServerException"
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", restCode)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":%q}`, msg)
		return
	}
	if c.json {
		jsonCode := code
		if code == "Throttling" {
			jsonCode = "ThrottlingException"
		}
		w.Header().Set("Content-Type", "application/x-amz-json-"+c.version)
		w.Header().Set("X-Amzn-ErrorType", jsonCode)
		if c.service == "sqs" {
			// SQS is query-compatible: this header carries the legacy code.
			w.Header().Set("x-amzn-query-error", jsonCode+";"+fault)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":%q,"message":%q}`, jsonCode, msg)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>chaos-%d</RequestId></ErrorResponse>`,
		fault, code, msg, time.Now().UnixNano())
}

// transactItems is the number of items of a TransactWriteItems body.
func transactItems(body []byte) int {
	var in struct{ TransactItems []json.RawMessage }
	if json.Unmarshal(body, &in) != nil {
		return 1
	}
	return max(len(in.TransactItems), 1)
}

// DynamoDB's wire answers (awsJson1_0, HTTP 400, the type in __type; a
// cancellation's fields are capitalised, other errors carry "message").
const (
	ddbErrorPrefix  = "com.amazonaws.dynamodb.v20120810#"
	conflictMessage = "Transaction is ongoing for the item"
	throttleMessage = "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html."
	pteeMessage     = "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
)

type cancellationReason struct {
	Code    string
	Message string `json:",omitempty"`
}

// writeTxFault answers a TransactWriteItems of n items as DynamoDB does:
// cancelled with item's reason the conflict or throttle, the others None,
// or throttled as a whole.
func writeTxFault(w http.ResponseWriter, kind string, n, item int) {
	var v any
	switch kind {
	case FaultThroughput:
		v = struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}{ddbErrorPrefix + "ProvisionedThroughputExceededException", pteeMessage}
	default:
		reason := cancellationReason{Code: "TransactionConflict", Message: conflictMessage}
		if kind == FaultTxThrottle {
			reason = cancellationReason{Code: "ThrottlingError", Message: throttleMessage}
		}
		reasons := make([]cancellationReason, n)
		codes := make([]string, n)
		for i := range reasons {
			reasons[i] = cancellationReason{Code: "None"}
			if i == item {
				reasons[i] = reason
			}
			codes[i] = reasons[i].Code
		}
		v = struct {
			Type                string `json:"__type"`
			Message             string
			CancellationReasons []cancellationReason
		}{ddbErrorPrefix + "TransactionCanceledException",
			"Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]", reasons}
	}
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "chaos proxy: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("chaos-%d", time.Now().UnixNano()))
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(b)
}
