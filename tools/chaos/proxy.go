package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
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

// Fault kinds the proxy injects.
const (
	FaultThrottle  = "throttle"   // 400 with the service's throttling error
	Fault500       = "http500"    // 500 with the service's internal error
	FaultHoldDrop  = "hold_drop"  // held, then the connection is dropped; never forwarded
	FaultApplyDrop = "apply_drop" // forwarded (the effect happens), then the response is dropped
)

// FaultKinds lists every kind, in report order.
var FaultKinds = []string{FaultThrottle, Fault500, FaultHoldDrop, FaultApplyDrop}

// ProxyOptions shape the faults.
type ProxyOptions struct {
	Rate       float64       // share of eligible requests that fail
	MaxLatency time.Duration // uniform extra latency on every request
	MaxHold    time.Duration // how long a hold_drop holds before dropping
	// Exempt names operations ("sts.AssumeRole") that never fail, so that
	// start-up is not what is being tested.
	Exempt map[string]bool
	Kinds  []string // kinds to draw from; default FaultKinds
	Seed   uint64
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

	requests atomic.Int64
	// ddb serialises DynamoDB calls. moto (5.x) runs TransactWriteItems
	// without a lock and, when one fails a condition, restores a copy of the
	// whole table taken when it started: every write that other requests
	// made meanwhile is lost, and readers may see writes that are then
	// undone. Real DynamoDB does neither, so the proxy keeps moto from
	// seeing two DynamoDB calls at once.
	ddb sync.Mutex
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
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		counter.Add(1)
		p.serve(w, r, true)
	}), ReadHeaderTimeout: 10 * time.Second}
	p.mu.Lock()
	p.servers = append(p.servers, srv)
	p.perPort = append(p.perPort, counter)
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// ListenClean starts a listener that never injects faults or latency but
// shares the DynamoDB serialisation: the test's own reads go through it.
func (p *Proxy) ListenClean() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("proxy listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, false)
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

// ProxyStats is what the proxy did.
type ProxyStats struct {
	Requests   int64
	PerPort    []int64
	Faults     map[string]int
	FaultsByOp map[string]int
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
	return st
}

// decide draws the latency and the fault (or "") for one request.
func (p *Proxy) decide(op string) (time.Duration, string, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lat, hold time.Duration
	if p.opts.MaxLatency > 0 {
		lat = time.Duration(p.rng.Int64N(int64(p.opts.MaxLatency) + 1))
	}
	if p.opts.Exempt[op] || p.rng.Float64() >= p.opts.Rate {
		return lat, "", 0
	}
	kinds := p.opts.Kinds
	if len(kinds) == 0 {
		kinds = FaultKinds
	}
	kind := kinds[p.rng.IntN(len(kinds))]
	if kind == FaultHoldDrop && p.opts.MaxHold > 0 {
		hold = time.Duration(p.rng.Int64N(int64(p.opts.MaxHold) + 1))
	}
	p.faults[kind]++
	p.byOp[op+" "+kind]++
	return lat, kind, hold
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, chaos bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	call := identify(r, body)
	var lat, hold time.Duration
	kind := ""
	if chaos {
		p.requests.Add(1)
		lat, kind, hold = p.decide(call.op())
	}
	if !sleep(r.Context(), lat) {
		return
	}
	switch kind {
	case FaultThrottle:
		call.writeError(w, http.StatusBadRequest, "Throttling", "Rate exceeded (injected by the chaos proxy)")
	case Fault500:
		call.writeError(w, http.StatusInternalServerError, "InternalFailure", "internal failure (injected by the chaos proxy)")
	case FaultHoldDrop:
		if sleep(r.Context(), hold) {
			dropConn(w)
		}
	case FaultApplyDrop:
		resp, err := p.forward(r, call, body)
		if err != nil {
			dropConn(w)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		dropConn(w)
	default:
		began := time.Now()
		resp, err := p.forward(r, call, body)
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

// forward sends the request to moto and reads the whole answer, so that
// the DynamoDB lock covers the call from start to end.
func (p *Proxy) forward(r *http.Request, call apiCall, body []byte) (*http.Response, error) {
	if call.service == "dynamodb" {
		p.ddb.Lock()
		held := time.Now()
		defer func() {
			p.observe("moto-only "+call.op(), time.Since(held))
			p.ddb.Unlock()
		}()
	}
	u := *p.target
	u.Path = r.URL.Path
	u.RawQuery = r.URL.RawQuery
	ctx := r.Context()
	if call.service == "dynamodb" {
		// A caller that dies (SIGKILL) must not release the lock while moto
		// is still running its request: that is the race the lock prevents.
		ctx = context.WithoutCancel(ctx)
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
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
	service string // sqs, dynamodb, events, iam, sts
	action  string
	json    bool // AWS JSON protocol (else the query protocol, XML errors)
	version string
}

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
