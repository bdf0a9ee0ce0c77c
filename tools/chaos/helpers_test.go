package chaos

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/dynamo"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/metrics"
)

// The plan holds every scenario, its bodies decode to what was planned and
// its ids are unique.
func TestWorkloadPlan(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := NewWorkload(NewCast("t", 12, 4, 2), start, WorkloadOptions{Events: 400, Spread: 30 * time.Second, Seed: 1})
	seen := map[string]int{}
	ids := map[string]bool{}
	for _, e := range w.Events {
		seen[e.Scenario]++
		if ids[e.SymID] {
			t.Fatalf("Sym id %s planned twice", e.SymID)
		}
		ids[e.SymID] = true
		req, err := events.Decode([]byte(e.Body))
		if e.Scenario == ScenPoison {
			var de *events.DecodeError
			if !errors.As(err, &de) || de.SymEventID != "" {
				t.Errorf("poison body decodes as %v, want a DecodeError without a Sym id", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s body does not decode: %v", e.Scenario, err)
		}
		if req.SymEventID != e.SymID || req.Type != e.Type || req.GrantID() != e.GrantID || req.Group != e.Group ||
			req.Requester != e.Email || req.Duration != e.Duration || !req.Timestamp.Equal(e.Timestamp) || req.Source != "sym" {
			t.Errorf("body of %s decodes to %+v", e.SymID, req)
		}
	}
	for _, s := range []string{ScenPlain, ScenHot, ScenReorder, ScenStale, ScenOverlap, ScenUnknown, ScenOutside, ScenNoise, ScenPoison} {
		if seen[s] == 0 {
			t.Errorf("no %s scenario in the plan: %v", s, seen)
		}
	}
	for i, s := range w.Sends {
		if i > 0 && s.At < w.Sends[i-1].At {
			t.Fatalf("sends out of order at %d", i)
		}
	}
	for _, e := range w.Events {
		if e.Scenario == ScenStale && e.Expires().After(w.Start.Add(30*time.Second)) {
			t.Errorf("stale escalate %s expires at %s, after its send", e.SymID, e.Expires())
		}
	}
	pairs := map[string]bool{}
	for _, sc := range w.Scripts {
		for _, e := range sc.Events {
			if !slices.Contains(w.Events, e) || e.Scenario != sc.Scenario {
				t.Errorf("%s script event %s is not a planned %s event", sc.Scenario, e.SymID, sc.Scenario)
			}
		}
		if sc.Scenario == ScenOverlap {
			long, short := sc.Events[0], sc.Events[1]
			if long.Role != "long" || short.Role != "short" || long.Pair != short.GrantID || short.Expires().After(long.Expires()) {
				t.Errorf("overlap script %+v, %+v", long, short)
			}
			if p := long.User + "/" + long.Group; pairs[p] {
				t.Errorf("overlap pair %s used twice", p)
			} else {
				pairs[p] = true
			}
		}
	}
	// 12 users x 2 overlap groups: 24 pairs, each used once.
	if extra := w.AddOverlap(start, 30*time.Second); len(pairs) > 24 || (extra == nil) != (len(pairs) == 24) {
		t.Errorf("%d overlap pairs used, and AddOverlap gives %v", len(pairs), extra)
	}
	small := NewWorkload(NewCast("t", 12, 4, 2), start, WorkloadOptions{Events: 20, Spread: 30 * time.Second, Seed: 1})
	if extra := small.AddOverlap(start.Add(time.Minute), 30*time.Second); extra == nil || extra.At != time.Minute || extra.Scenario != ScenOverlap || extra.Events[0].Duration < 30 || len(extra.Events) != 3 {
		t.Errorf("AddOverlap = %+v, want a deescalated overlap script a minute in", extra)
	}
	tail := w.AddTail(start.Add(time.Minute), 3, 20*time.Second, 2)
	if len(tail) < 4 || tail[0].At < time.Minute {
		t.Errorf("tail = %d sends starting at %s", len(tail), tail[0].At)
	}
}

// The checker finds planted violations of each invariant.
func TestCheckFindsViolations(t *testing.T) {
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	cast := NewCast("t", 2, 1, 1)
	u, grp, ov := cast.Users[0], cast.Groups[0], cast.OverlapGroups[0]
	w := &Workload{Cast: cast, Start: start}
	esc := &Event{SymID: "e1", Type: TypeEsc, Scenario: ScenPlain, GrantID: "r1/t", User: u.Name, Group: grp, Timestamp: start, Duration: 10}
	stale := &Event{SymID: "e2", Type: TypeEsc, Scenario: ScenStale, GrantID: "r2/t", User: u.Name, Group: grp, Timestamp: start, Duration: 1}
	lost := &Event{SymID: "e3", Type: TypeEsc, Scenario: ScenPlain, GrantID: "r3/t", User: u.Name, Group: grp, Timestamp: start, Duration: 10}
	long := &Event{SymID: "e4", Type: TypeEsc, Scenario: ScenOverlap, Role: "long", GrantID: "r4/t", Pair: "r5/t", User: u.Name, Group: ov, Timestamp: start, Duration: 40}
	w.Events = []*Event{esc, stale, lost, long}
	g1 := grants.Grant{ID: "r1/t", State: grants.StateRevoked, SymEventID: "e1", IAMUser: u.Name, Group: grp, RevokedAt: start.Add(10 * time.Second), RevokeReason: "expired",
		History: []grants.Transition{{Action: "escalate"}, {Action: "escalate"}}}
	g2 := grants.Grant{ID: "r2/t", State: grants.StateActive, SymEventID: "e2", IAMUser: u.Name, Group: grp, ExpiresAt: start.Add(time.Second)}
	longG := grants.Grant{ID: "r4/t", State: grants.StateRevoked, SymEventID: "e4", IAMUser: u.Name, Group: ov, GrantedAt: start, ExpiresAt: start.Add(40 * time.Second), RevokedAt: start.Add(41 * time.Second)}
	shortG := grants.Grant{ID: "r5/t", State: grants.StateRevoked, IAMUser: u.Name, Group: ov, GrantedAt: start, RevokedAt: start.Add(5 * time.Second),
		History: []grants.Transition{{Action: "revoke"}, {Action: "iam_add", At: start.Add(6 * time.Second)}}}
	now := time.Now()
	final := Snapshot{T0: now, T1: now, T2: now, IAM: map[string][]string{grp: {u.Name, cast.Users[1].Name}, cast.OutsideGroup: {}},
		After: map[string]grants.Grant{g1.ID: g1, g2.ID: g2, longG.ID: longG, shortG.ID: shortG}}
	granted := events.Result{DetailType: events.AccessGranted, ResultID: "a", SymEventID: "e1", GrantID: "r1/t", IAMUser: u.Name, Group: grp}
	obs := Observed{
		Final: final,
		Results: []events.Result{granted, {DetailType: events.AccessGranted, ResultID: "b", SymEventID: "e1", GrantID: "r1/t", IAMUser: u.Name, Group: grp},
			{DetailType: events.AccessGranted, ResultID: "c", SymEventID: "e2", GrantID: "r2/t", IAMUser: u.Name, Group: grp},
			{DetailType: events.AccessRevoked, ResultID: "d", GrantID: "r1/t", Reason: "deescalated"},
			{DetailType: events.AccessGranted, ResultID: "e", SymEventID: "e4", GrantID: "r4/t", IAMUser: u.Name, Group: ov}},
		DLQ: []DLQMessage{{Body: "{}"}},
		Samples: []Sample{
			{Start: start.Add(7 * time.Second), End: start.Add(7100 * time.Millisecond), Group: ov, Members: map[string]bool{u.Name: true}},
			{Start: start.Add(8 * time.Second), End: start.Add(8100 * time.Millisecond), Group: ov, Members: map[string]bool{}},
		},
		OutsideBefore: []string{cast.Users[1].Name},
	}
	rep := Check(w, obs)
	all := strings.Join(rep.Violations, "\n")
	for _, want := range []string{
		"inv1: at rest " + cast.Users[1].Name + " is in IAM group " + grp + " without an active grant",
		"inv1: at rest grant r2/t",                // ACTIVE past expiry
		"inv2: escalate e3 (plain) has no result", // lost
		"inv2: message  \"{}\" reached the DLQ without iamjit's reason",
		"inv3: Sym event e1|Access Granted has 2 different result_ids",
		"inv3: grant r1/t took effect more than once",
		"inv3: grant r1/t is REVOKED (expired) in DynamoDB but its results say [deescalated]",
		"inv4: stale escalate e2: want Access Request Rejected expired",
		"inv5: " + u.Name + " left " + ov,
		"inv7: group t-outside outside the managed path changed",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("violations lack %q; got:\n%s", want, all)
		}
	}
}

// Each fault reaches the SDK as the error a real service would give, and
// awsx classifies it as retryable by its type or code; apply_drop reaches
// the backend although the caller sees a failure.
func TestProxyFaults(t *testing.T) {
	backend, hits := countingBackend(t)
	cases := []struct {
		kind, sqsCode, iamCode, ddbCode string
		reaches                         bool
	}{
		{FaultThrottle, "ThrottlingException", "Throttling", "ThrottlingException", false},
		{Fault500, "InternalFailure", "InternalFailure", "InternalFailure", false},
		{FaultHoldDrop, "", "", "", false},
		{FaultApplyDrop, "", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			p, cfg := throughProxy(t, backend, ProxyOptions{Rate: 1, Kinds: []string{c.kind}, MaxHold: 10 * time.Millisecond, Seed: 3}, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			before := hits.Load()
			_, sqsErr := sqs.NewFromConfig(cfg).GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("q")})
			_, iamErr := iam.NewFromConfig(cfg).GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("g")})
			_, ddbErr := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("t")})
			for name, e := range map[string]struct {
				err  error
				code string
			}{"sqs": {sqsErr, c.sqsCode}, "iam": {iamErr, c.iamCode}, "dynamodb": {ddbErr, c.ddbCode}} {
				if e.err == nil {
					t.Fatalf("%s: call succeeded through a %s fault", name, c.kind)
				}
				if !awsx.Retryable(e.err) {
					t.Errorf("%s: %s fault is not retryable: %v", name, c.kind, e.err)
				}
				if e.code != "" && awsx.Code(e.err) != e.code {
					t.Errorf("%s: code %q, want %q (%v)", name, awsx.Code(e.err), e.code, e.err)
				}
			}
			if got := hits.Load() - before; (got == 3) != c.reaches || (!c.reaches && got != 0) {
				t.Errorf("backend saw %d calls, want reached=%v", got, c.reaches)
			}
			if st := p.Stats(); st.Faults[c.kind] != 3 {
				t.Errorf("faults counted %v, want 3 %s", st.Faults, c.kind)
			}
		})
	}
}

// The DynamoDB transaction faults reach the SDK as DynamoDB's own errors
// (the cancellation reasons decoded), never reach moto, touch only
// TransactWriteItems, and the proxy tells the SDK's retries of the same
// request from new requests.
func TestProxyTransactionFaults(t *testing.T) {
	backend, hits := countingBackend(t)
	// A new input for every call: the SDK writes the ClientRequestToken it
	// draws into the input.
	three := func() *dynamodb.TransactWriteItemsInput {
		var items []ddbtypes.TransactWriteItem
		for _, pk := range []string{"a", "b", "c"} {
			items = append(items, ddbtypes.TransactWriteItem{Put: &ddbtypes.Put{TableName: aws.String("t"),
				Item: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: pk}}}})
		}
		return &dynamodb.TransactWriteItemsInput{TransactItems: items}
	}
	client := func(t *testing.T, kind string, attempts int, opts ...func(*dynamodb.Options)) (*Proxy, *dynamodb.Client) {
		p, cfg := throughProxy(t, backend, ProxyOptions{TxRate: 1, TxKinds: []string{kind}, Seed: 5}, attempts)
		return p, dynamodb.NewFromConfig(cfg, opts...)
	}
	for kind, reason := range map[string]string{FaultTxConflict: "TransactionConflict", FaultTxThrottle: "ThrottlingError", FaultThroughput: ""} {
		t.Run(kind, func(t *testing.T) {
			p, db := client(t, kind, 1)
			before := hits.Load()
			_, err := db.TransactWriteItems(context.Background(), three())
			if reason == "" {
				var pe *ddbtypes.ProvisionedThroughputExceededException
				if !errors.As(err, &pe) || aws.ToString(pe.Message) == "" {
					t.Fatalf("err = %v, want a ProvisionedThroughputExceededException with its message", err)
				}
			} else {
				var tce *ddbtypes.TransactionCanceledException
				if !errors.As(err, &tce) {
					t.Fatalf("err = %v, want a TransactionCanceledException", err)
				}
				var codes []string
				for _, r := range tce.CancellationReasons {
					codes = append(codes, aws.ToString(r.Code))
				}
				if len(codes) != 3 || slices.Index(codes, reason) < 0 || slices.Index(codes, reason) != slices.IndexFunc(codes, func(c string) bool { return c != "None" }) ||
					strings.Count(strings.Join(codes, ","), "None") != 2 {
					t.Errorf("reasons %v, want one %s and two None", codes, reason)
				}
				if dynamo.TransientCancellation(err) != reason {
					t.Errorf("iamjit classifies it as %q, want %q", dynamo.TransientCancellation(err), reason)
				}
			}
			if n := hits.Load() - before; n != 0 {
				t.Errorf("a %s fault reached the backend %d times", kind, n)
			}
			if _, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("t"),
				Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "a"}}}); err != nil {
				t.Errorf("GetItem met a transaction fault: %v", err)
			}
			if st := p.Stats(); st.Faults[kind] != 1 || st.TxFaults() != 1 || st.Total() != 1 {
				t.Errorf("faults counted %v, want one %s", st.Faults, kind)
			}
		})
	}
	t.Run("retries", func(t *testing.T) {
		p, db := client(t, FaultTxConflict, 0, dynamo.WithRetryer(nil))
		for range 2 {
			if _, err := db.TransactWriteItems(context.Background(), three()); dynamo.TransientCancellation(err) == "" {
				t.Fatalf("err = %v, want the conflict after the last attempt", err)
			}
		}
		st := p.Stats()
		// Every call: RetryMaxAttempts attempts with one body; the second
		// call has a new ClientRequestToken, so it is not a retry.
		want := 2 * dynamo.RetryMaxAttempts
		if st.Faults[FaultTxConflict] != want || st.Retried[FaultTxConflict] != want-2 || st.RetriedLate[FaultTxConflict] != 0 {
			t.Errorf("faults %v, retried %v, late %v; want %d faults and %d retried", st.Faults, st.Retried, st.RetriedLate, want, want-2)
		}
		if st.MaxRetryDelay <= 0 || st.MaxRetryDelay > RetryWindow {
			t.Errorf("longest retry delay %s", st.MaxRetryDelay)
		}
	})
}

// countingBackend stands in for AWS behind a proxy under test: it answers
// every request with an empty JSON object and counts the requests.
func countingBackend(t *testing.T) (string, *atomic.Int64) {
	hits := &atomic.Int64{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(backend.Close)
	return backend.URL, hits
}

// throughProxy starts a proxy with opts in front of backend, closed when
// the test ends, and an SDK config that calls through it with attempts
// attempts per call.
func throughProxy(t *testing.T, backend string, opts ProxyOptions, attempts int) (*Proxy, aws.Config) {
	t.Helper()
	p, err := NewProxy(backend, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	url, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	return p, aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), RetryMaxAttempts: attempts,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
}

// The replicas' retry and stale-add counters are read from what metrics
// really writes.
func TestParseRetries(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry(), awsx.NewCounter())
	if err != nil {
		t.Fatal(err)
	}
	m.TransactionRetried("TransactionConflict")
	m.TransactionRetried("TransactionConflict")
	m.TransactionRetried("ProvisionedThroughputExceededException")
	m.StaleAddsRepaired(3)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	got, err := parseRetries(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["TransactionConflict"] != 2 || got["ProvisionedThroughputExceededException"] != 1 || got[staleAddsKey] != 3 {
		t.Errorf("parsed %v", got)
	}
}

// The revocation check reads iamjit's own documents: per-user statements
// (one name or several) and the role-wide one, and fails on an old cutoff.
func TestRevocationPolicyDenies(t *testing.T) {
	end := time.Date(2026, 12, 1, 10, 0, 0, 500e6, time.UTC)
	doc := `{"Version":"2012-10-17","Statement":[
		{"Sid":"a","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceIdentity":"alice"},"DateLessThan":{"aws:TokenIssueTime":"2026-12-01T10:00:01Z"}}},
		{"Sid":"b","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceIdentity":["bob","carol"]},"DateLessThan":{"aws:TokenIssueTime":"2026-12-01T09:59:00Z"}}}]}`
	p, err := parseRevocationPolicy(url.QueryEscape(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !p.denies("alice", end) || p.denies("bob", end) || p.denies("dave", end) || !p.denies("carol", end.Add(-2*time.Minute)) {
		t.Errorf("per-user: %+v", p)
	}
	p, err = parseRevocationPolicy(`{"Statement":[{"Effect":"Deny","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-01T10:00:01Z"}}}]}`)
	if err != nil || !p.denies("anyone", end) || p.denies("anyone", end.Add(time.Second)) {
		t.Errorf("role-wide: %+v, %v", p, err)
	}
}

// The late-add check fails when nothing was injected, when the read-back
// undid none of them, and when the counter lacks an undo logged before it
// was read or holds more than were logged.
func TestCheckLateAddsFails(t *testing.T) {
	in := []injection{{User: "u1", Group: "g1"}, {User: "u2", Group: "g1"}}
	for _, c := range []struct {
		name       string
		injected   []injection
		undone     []string
		beforeRead int
		metric     int64
		fails      bool
	}{
		{"none injected", nil, nil, 0, 0, true},
		{"read-back undid none", in, []string{"u9#g1"}, 1, 1, true},
		{"metric short", in, []string{"u1#g1", "u9#g1"}, 2, 1, true},
		{"metric invents", in, []string{"u1#g1", "u9#g1"}, 2, 3, true},
		{"ok", in, []string{"u1#g1", "u9#g1"}, 2, 2, false},
		{"ok: killed between the read and an undo", in, []string{"u1#g1", "u9#g1"}, 1, 1, false},
	} {
		r := Report{Figures: map[string]int{}}
		checkLateAdds(&r, c.injected, c.undone, c.beforeRead, c.metric, nil)
		if got := len(r.Violations) > 0; got != c.fails {
			t.Errorf("%s: violations %v", c.name, r.Violations)
		}
	}
}

// undoneInLog counts an undo as before the read only between a start and
// the harness's read marker.
func TestUndoneInLogSplitsAtTheRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replica.log")
	log := `{"chaos":"start","replica":0,"start":1}
{"msg":"late add undone: IAM had the user","iam_user":"a","group":"g"}
{"chaos":"scraped","replica":0}
{"msg":"late add undone: IAM had the user","iam_user":"b","group":"g"}
{"chaos":"start","replica":0,"start":2}
{"msg":"late add undone: IAM had the user","iam_user":"c","group":"g"}
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	undone, before := undoneInLog(path)
	if strings.Join(undone, ",") != "a#g,b#g,c#g" || before != 2 {
		t.Fatalf("undone %v, before the read %d; want a, b, c and 2 (a and c)", undone, before)
	}
}
