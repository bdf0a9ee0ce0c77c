package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// proxy sits between a pipeline and moto. It adds a fixed delay to every
// request (a network's latency, the same for the iamjit process, which is a
// separate binary, and for the in-process naive and ideal pipelines) and
// counts requests by service and operation, read from the request itself
// (X-Amz-Target for JSON protocols, Action for query protocols; the service
// from the SigV4 credential scope). It also notes when the first
// ReceiveMessage arrived, which is how start-up is timed.
// It also tells the idle-latency scenario when moto has added a user to a
// group (expectAdd), and notes when moto has removed one (removals, for
// the expiry scenario).
//
// DynamoDB requests are no longer serialised here: moto_iamjit.py runs
// every DynamoDB request under one lock inside moto.
type proxy struct {
	srv   *http.Server
	url   string
	delay atomic.Int64 // nanoseconds

	mu     sync.Mutex
	counts map[opKey]int64
	busy   map[opKey]time.Duration // time moto took to answer, by operation

	firstReceive atomic.Int64 // unix nanos of the first ReceiveMessage, 0 if none yet

	deleted atomic.Int64 // SQS messages deleted (entries of successful delete calls)

	addMu      sync.Mutex
	addWaiters map[string]chan time.Time // "user/group" -> told when moto has added the user

	// removed is when moto first answered a successful RemoveUserFromGroup,
	// by "user/group": the moment the user was out (the expiry scenario).
	removeMu sync.Mutex
	removed  map[string]time.Time

	// trace, when set (-logs), gets one line per request: when it reached
	// the proxy, how long moto took, the operation and moto's status.
	traceMu sync.Mutex
	trace   io.Writer
	// conns counts connections the pipelines opened: a client that keeps
	// too few idle connections for its concurrency opens one per request.
	conns atomic.Int64
}

type opKey struct{ Service, Operation string }

func startProxy(target string) (*proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parse moto url: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the proxy: %w", err)
	}
	p := &proxy{url: "http://" + ln.Addr().String(), counts: map[opKey]int64{}, busy: map[opKey]time.Duration{}, addWaiters: map[string]chan time.Time{}, removed: map[string]time.Time{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{
		Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second,
	}
	// A pipeline stopping mid long-poll cancels its request: not news.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p.srv = &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				p.conns.Add(1)
			}
		}}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *proxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		op := classify(r, body)
		p.mu.Lock()
		p.counts[op]++
		p.mu.Unlock()
		if op.Operation == "ReceiveMessage" {
			p.firstReceive.CompareAndSwap(0, time.Now().UnixNano())
		}
		if d := time.Duration(p.delay.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		took := time.Since(start)
		if sw.code == http.StatusOK {
			switch op.Operation {
			case "DeleteMessage":
				p.deleted.Add(1)
			case "DeleteMessageBatch":
				// Failed entries are rare here and would show as a drain
				// that never completes, not as a wrong count.
				p.deleted.Add(int64(bytes.Count(body, []byte(`"ReceiptHandle"`))))
			case "AddUserToGroup":
				p.added(body, start.Add(took))
			case "RemoveUserFromGroup":
				k, ok := membership(body)
				p.noteRemoved(k, ok, start.Add(took))
			case "DeleteAccountAssignment":
				k, ok := assignment(body)
				p.noteRemoved(k, ok, start.Add(took))
			}
		}
		p.mu.Lock()
		p.busy[op] += took
		p.mu.Unlock()
		p.traceMu.Lock()
		if p.trace != nil {
			fmt.Fprintf(p.trace, "%s\t%d\t%s.%s\t%d\t%s\n", start.UTC().Format(time.RFC3339Nano), took.Microseconds(), op.Service, op.Operation, sw.code, queryNote(op, body))
		}
		p.traceMu.Unlock()
	})
}

// expectAdd returns a channel that receives the moment moto answers a
// successful AddUserToGroup of user to group: the moment the user is in the
// group. Only the next such call is reported.
func (p *proxy) expectAdd(user, group string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	p.addMu.Lock()
	p.addWaiters[user+"/"+group] = ch
	p.addMu.Unlock()
	return ch
}

// added tells whoever expects the AddUserToGroup whose form body is body.
func (p *proxy) added(body []byte, at time.Time) {
	key, ok := membership(body)
	if !ok {
		return
	}
	p.addMu.Lock()
	ch, ok := p.addWaiters[key]
	delete(p.addWaiters, key)
	p.addMu.Unlock()
	if ok {
		ch <- at
	}
}

// membership is "user/group" of an IAM membership call's form body.
func membership(body []byte) (string, bool) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return "", false
	}
	return v.Get("UserName") + "/" + v.Get("GroupName"), true
}

// assignment is "user id/permission set ARN" of a DeleteAccountAssignment
// JSON body.
func assignment(body []byte) (string, bool) {
	var in struct{ PrincipalId, PermissionSetArn string }
	if err := json.Unmarshal(body, &in); err != nil {
		return "", false
	}
	return in.PrincipalId + "/" + in.PermissionSetArn, true
}

// noteRemoved records the first successful removal of a membership key:
// RemoveUserFromGroup's "user/group", DeleteAccountAssignment's "user
// id/permission set ARN".
func (p *proxy) noteRemoved(key string, ok bool, at time.Time) {
	if !ok {
		return
	}
	p.removeMu.Lock()
	if _, ok := p.removed[key]; !ok {
		p.removed[key] = at
	}
	p.removeMu.Unlock()
}

// removals is a copy of the first removal moments by "user/group".
func (p *proxy) removals() map[string]time.Time {
	p.removeMu.Lock()
	defer p.removeMu.Unlock()
	out := make(map[string]time.Time, len(p.removed))
	for k, v := range p.removed {
		out[k] = v
	}
	return out
}

// queryNote says which DynamoDB request a request is for the trace: a
// query's index, partition, limit and select; an item call's kind of item
// (its key up to the first '#') and update expression; "" for any other.
func queryNote(op opKey, body []byte) string {
	var q struct {
		IndexName string
		Limit     int
		Select    string
		Values    map[string]map[string]any `json:"ExpressionAttributeValues"`
		Key       map[string]map[string]any
		Update    string `json:"UpdateExpression"`
	}
	switch op.Operation {
	case "Query", "GetItem", "UpdateItem", "PutItem", "DeleteItem":
	default:
		return ""
	}
	if json.Unmarshal(body, &q) != nil {
		return ""
	}
	if op.Operation != "Query" {
		pk, _ := q.Key["pk"]["S"].(string)
		kind, _, _ := strings.Cut(pk, "#")
		return fmt.Sprintf("item=%s update=%s", kind, q.Update)
	}
	return fmt.Sprintf("index=%s p=%v limit=%d select=%s", q.IndexName, q.Values[":p"]["S"], q.Limit, q.Select)
}

// classify names the AWS operation of a request.
func classify(r *http.Request, body []byte) opKey {
	svc := serviceFromAuth(r.Header.Get("Authorization"))
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return opKey{svc, t[strings.LastIndex(t, ".")+1:]}
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return opKey{svc, a}
	}
	if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
		return opKey{svc, v.Get("Action")}
	}
	if op := schedulerOp(r.Method, r.URL.Path); op != "" {
		return opKey{svc, op}
	}
	return opKey{svc, r.Method + " " + r.URL.Path}
}

// schedulerOp names an EventBridge Scheduler call (REST-JSON: the
// operation is the method and the path's first segment; the rest names the
// schedule or group), "" for any other path.
func schedulerOp(method, path string) string {
	first, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	ops := map[string]map[string]string{
		"schedules": {http.MethodPost: "CreateSchedule", http.MethodPut: "UpdateSchedule", http.MethodGet: "GetSchedule",
			http.MethodDelete: "DeleteSchedule"},
		"schedule-groups": {http.MethodPost: "CreateScheduleGroup", http.MethodGet: "GetScheduleGroup",
			http.MethodDelete: "DeleteScheduleGroup"},
	}[first]
	switch {
	case ops == nil:
		return ""
	case rest == "" && method == http.MethodGet && first == "schedules":
		return "ListSchedules"
	case rest == "" && method == http.MethodGet:
		return "ListScheduleGroups"
	case rest == "":
		return ""
	}
	return ops[method]
}

// sdkService maps SigV4 signing names to the SDK's service ids, so proxy
// counts and SDK-middleware counts read alike.
var sdkService = map[string]string{"sqs": "SQS", "dynamodb": "DynamoDB", "iam": "IAM", "sts": "STS", "events": "EventBridge",
	"sso": "SSO Admin", "identitystore": "identitystore", "scheduler": "Scheduler"}

func serviceFromAuth(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return "unsigned"
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) < 4 {
		return "unknown"
	}
	if s, ok := sdkService[parts[3]]; ok {
		return s
	}
	return parts[3]
}

func (p *proxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

// reset zeroes the counts and the first-receive mark.
func (p *proxy) reset() {
	p.mu.Lock()
	p.counts = map[opKey]int64{}
	p.busy = map[opKey]time.Duration{}
	p.mu.Unlock()
	p.firstReceive.Store(0)
	p.deleted.Store(0)
	p.addMu.Lock()
	clear(p.addWaiters)
	p.addMu.Unlock()
	p.removeMu.Lock()
	clear(p.removed)
	p.removeMu.Unlock()
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (p *proxy) snapshot() map[opKey]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[opKey]int64, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// busyMs is the mean time moto took per request, by "Service.Operation".
func (p *proxy) busyMs() map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]float64{}
	for k, d := range p.busy {
		if n := p.counts[k]; n > 0 {
			out[k.Service+"."+k.Operation] = float64(d.Microseconds()) / 1000 / float64(n)
		}
	}
	return out
}

func (p *proxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}

// calls is a count of AWS calls by "Service.Operation".
type calls map[string]int64

func fromOps(m map[opKey]int64) calls {
	out := calls{}
	for k, v := range m {
		out[k.Service+"."+k.Operation] += v
	}
	return out
}

func (c calls) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// minus is c - before, dropping zeros.
func (c calls) minus(before calls) calls {
	out := calls{}
	for k, v := range c {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func (c calls) keys() []string {
	ks := make([]string, 0, len(c))
	for k := range c {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
