package grants_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/internal/testclock"
)

// t0 is when every test's requests were approved.
var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

const (
	alice     = "alice"
	aliceMail = "alice@example.com"
	approver  = "boss@example.com"
	readonly  = "sym-readonly"
	roARN     = "arn:aws:iam::123456789012:group/sym/sym-readonly"
)

type env struct {
	svc   *grants.Service
	store *fakeStore
	iam   *fakeIAM
	clock *testclock.Clock
	dir   *fakeDirectory
}

func newEnv(t testing.TB) *env {
	t.Helper()
	clock := testclock.New(t0.Add(time.Minute))
	dir := &fakeDirectory{users: map[string]map[string]string{
		alice:   {"email": aliceMail},
		"bob1":  {"email": "bob@example.com"},
		"bob2":  {"email": "Bob@Example.com"},
		"carol": {},
	}}
	id, err := grants.NewIdentity(dir, []string{"username", "tag:email"}, 5*time.Minute, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	store := newFakeStore(clock.Now)
	iam := newFakeIAM()
	var n atomic.Int64
	// The home account's id is unknown here, as with no role chain; tests
	// of many accounts name it (withMember).
	accts, err := grants.NewAccounts(&grants.Account{IAM: iam, Identity: id, Groups: fakeGroups{
		readonly:   {Name: readonly, ARN: roARN, Path: "/sym/"},
		"sym-ops":  {Name: "sym-ops", ARN: "arn:aws:iam::123456789012:group/sym/team/sym-ops", Path: "/sym/team/"},
		"admins":   {Name: "admins", ARN: "arn:aws:iam::123456789012:group/admins", Path: "/"},
		"symbolic": {Name: "symbolic", ARN: "arn:aws:iam::123456789012:group/symbolic/symbolic", Path: "/symbolic/"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	svc := &grants.Service{
		Store: store, Accounts: accts, Now: clock.Now,
		Log: slog.New(slog.DiscardHandler),
		Policy: grants.Policy{
			GroupPath: "/sym/", MaxDuration: 12 * time.Hour, DurationUnit: time.Minute,
			Sources: []string{"sym"}, MaxClockSkew: 5 * time.Minute,
		},
		NewToken: func() string { return "tok-" + strconv.FormatInt(n.Add(1), 10) },
	}
	return &env{svc: svc, store: store, iam: iam, clock: clock, dir: dir}
}

// escalate is an approved request for alice in sym-readonly; run names the
// grant (run SRN) and minutes its duration.
func escalate(symID, run string, minutes int64) events.Request {
	return events.Request{
		SymEventID: symID, Source: "sym", Type: events.TypeEscalate, Template: "sym:template:approval:1.0.0",
		RunSRN: "acme:run:aws:1.0.0:" + run, TargetID: "target-1", TargetType: "aws_iam_group",
		Requester: aliceMail, Approver: approver, Actor: approver, Group: readonly, Reason: "ticket 1",
		Duration: minutes, HasDur: true, Timestamp: t0,
	}
}

func deescalate(symID, run string) events.Request {
	r := escalate(symID, run, 0)
	r.Type, r.HasDur, r.Reason = events.TypeDeescalate, false, ""
	return r
}

func (e *env) handle(t testing.TB, req events.Request) grants.Outcome {
	t.Helper()
	out, err := e.svc.Handle(context.Background(), req)
	if err != nil {
		t.Fatalf("Handle(%s %s): %v", req.Type, req.SymEventID, err)
	}
	return out
}

// grantOf handles req and returns the grant its outcome names, as stored.
func (e *env) grantOf(t testing.TB, req events.Request) grants.Grant {
	t.Helper()
	out := e.handle(t, req)
	g, err := e.store.GetGrant(context.Background(), out.GrantID)
	if err != nil {
		t.Fatalf("read the grant of %s: %v", req.SymEventID, err)
	}
	return g
}

func one(t testing.TB, out grants.Outcome) events.Result {
	t.Helper()
	if len(out.Results) != 1 {
		t.Fatalf("outcome %s has %d results, want 1", out.Kind, len(out.Results))
	}
	return out.Results[0]
}

// checkAtRest is invariant 1 for alice in sym-readonly, plus: the store's
// membership set is exactly the active grants and is not left dirty.
func (e *env) checkAtRest(t testing.TB) {
	t.Helper()
	now := e.clock.Now()
	var active []string
	for _, g := range e.store.allGrants() {
		if g.IAMUser == alice && g.Group == readonly && g.State == grants.StateActive && g.ExpiresAt.After(now) {
			active = append(active, g.ID)
		}
	}
	if member := e.iam.isMember(alice, readonly); member != (len(active) > 0) {
		t.Fatalf("IAM member = %v, active unexpired grants = %v", member, active)
	}
	m, _ := e.store.Membership(context.Background(), grants.Key{Account: e.svc.Accounts.Home().ID, User: alice, Group: readonly})
	if len(m.GrantIDs) != len(active) || m.Dirty {
		t.Fatalf("membership %+v, want grants %v and clean", m, active)
	}
}

func TestEscalateGrants(t *testing.T) {
	e := newEnv(t)
	req := escalate("sym-1", "a", 30)
	out := e.handle(t, req)
	if out.Kind != events.OutcomeApplied || out.GrantID != req.GrantID() {
		t.Fatalf("outcome %+v", out)
	}
	res := one(t, out)
	if res.DetailType != events.AccessGranted || res.ResultID != events.ResultID(events.AccessGranted, req.GrantID()) {
		t.Errorf("result %+v: want Access Granted with the grant's result id", res)
	}
	if res.IAMUser != alice || res.Group != readonly || res.GroupARN != roARN || res.Requester != aliceMail ||
		res.Approver != approver || res.SymEventID != "sym-1" || res.RunSRN != req.RunSRN {
		t.Errorf("result fields: %+v", res)
	}
	if res.ExpiresAt == nil || !res.ExpiresAt.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("expires_at = %v, want timestamp + duration %v", res.ExpiresAt, t0.Add(30*time.Minute))
	}
	if !e.iam.isMember(alice, readonly) {
		t.Fatal("alice is not in the group")
	}
	g, err := e.store.GetGrant(context.Background(), req.GrantID())
	if err != nil || g.State != grants.StateActive || !e.store.inDue(g.ID) {
		t.Fatalf("grant %+v (%v): want ACTIVE and in the expiry index", g, err)
	}
	// History joins the IAM call to CloudTrail.
	var iamReq string
	for _, h := range g.History {
		if h.Action == "iam_add" {
			iamReq = h.IAMRequestID
		}
	}
	if iamReq == "" {
		t.Errorf("history %+v has no iam_add with a request id", g.History)
	}
	e.checkAtRest(t)
}

func TestDuplicateEscalate(t *testing.T) {
	e := newEnv(t)
	req := escalate("sym-1", "a", 30)
	first := one(t, e.handle(t, req))
	for range 3 {
		out := e.handle(t, req)
		if out.Kind != events.OutcomeDuplicate || one(t, out).ResultID != first.ResultID {
			t.Fatalf("redelivery: %+v, want duplicate with result id %s", out, first.ResultID)
		}
	}
	if adds, _ := e.iam.calls(); adds > 4 {
		t.Errorf("%d AddUser calls", adds)
	}
	g, _ := e.store.GetGrant(context.Background(), req.GrantID())
	if n := countActions(g, "escalate"); n != 1 {
		t.Errorf("grant activated %d times", n)
	}
	// Sym re-emitting the escalate under a new id is the same grant.
	again := escalate("sym-1b", "a", 30)
	if r := one(t, e.handle(t, again)); r.ResultID != first.ResultID {
		t.Errorf("re-emitted escalate: result id %s, want %s", r.ResultID, first.ResultID)
	}
	e.checkAtRest(t)
}

func countActions(g grants.Grant, action string) int {
	n := 0
	for _, h := range g.History {
		if h.Action == action {
			n++
		}
	}
	return n
}

func TestDeescalateRevokes(t *testing.T) {
	e := newEnv(t)
	e.handle(t, escalate("sym-1", "a", 30))
	out := e.handle(t, deescalate("sym-2", "a"))
	res := one(t, out)
	if out.Kind != events.OutcomeApplied || res.DetailType != events.AccessRevoked || res.Reason != events.RevokedDeescalated ||
		res.ResultID != events.ResultID(events.AccessRevoked, out.GrantID) || res.SymEventID != "sym-2" || res.RevokedAt == nil {
		t.Fatalf("outcome %+v", out)
	}
	if e.iam.isMember(alice, readonly) {
		t.Fatal("still a member after deescalate")
	}
	g, _ := e.store.GetGrant(context.Background(), out.GrantID)
	if g.State != grants.StateRevoked || e.store.inDue(g.ID) {
		t.Errorf("grant %s in due index %v; want REVOKED and out of the index", g.State, e.store.inDue(g.ID))
	}
	if r := one(t, e.handle(t, deescalate("sym-2", "a"))); r.ResultID != res.ResultID {
		t.Errorf("duplicate deescalate: result id %s, want %s", r.ResultID, res.ResultID)
	}
	e.checkAtRest(t)
}

func TestDeescalateBeforeEscalate(t *testing.T) {
	e := newEnv(t)
	out := e.handle(t, deescalate("sym-2", "a"))
	res := one(t, out)
	if out.Kind != events.OutcomeApplied || res.DetailType != events.AccessRevoked || res.Message == "" {
		t.Fatalf("outcome %+v: want a tombstone revocation", out)
	}
	g, err := e.store.GetGrant(context.Background(), out.GrantID)
	if err != nil || !g.Tombstone || g.State != grants.StateRevoked {
		t.Fatalf("grant %+v, %v: want a REVOKED tombstone", g, err)
	}
	late := e.handle(t, escalate("sym-1", "a", 30))
	lr := one(t, late)
	if late.Kind != events.OutcomeRejected || lr.Code != events.CodeAlreadyRevoked {
		t.Fatalf("late escalate: %+v, want rejected already_revoked", late)
	}
	if adds, _ := e.iam.calls(); adds != 0 || e.iam.isMember(alice, readonly) {
		t.Fatalf("IAM touched: %d adds", adds)
	}
	if r := one(t, e.handle(t, escalate("sym-1", "a", 30))); r.ResultID != lr.ResultID {
		t.Errorf("redelivered late escalate: result id %s, want %s", r.ResultID, lr.ResultID)
	}
	e.checkAtRest(t)
}

func TestEscalateAlreadyExpired(t *testing.T) {
	e := newEnv(t)
	e.clock.Advance(time.Hour) // a replay long after approval
	out := e.handle(t, escalate("sym-1", "a", 30))
	if r := one(t, out); out.Kind != events.OutcomeRejected || r.Code != "expired" {
		t.Fatalf("outcome %+v, want rejected expired", out)
	}
	if adds, _ := e.iam.calls(); adds != 0 {
		t.Fatalf("%d AddUser calls for an expired grant", adds)
	}
	e.checkAtRest(t)
}

// step is one delivery or a sweep in TestOverlappingGrantsEveryOrder.
type step int

const (
	escA step = iota
	escB
	deA
	deB
	sweep
	nSteps
)

var stepName = [...]string{"escA", "escB", "deA", "deB", "sweep"}

// TestOverlappingGrantsEveryOrder runs every ordering of two overlapping
// grants' escalates and deescalates, each delivered twice, and an expiry
// sweep (A expires before it, B after), and checks after every step that
// IAM membership equals "an active unexpired grant exists" and that every
// Sym event yields one result id however often it is delivered.
func TestOverlappingGrantsEveryOrder(t *testing.T) {
	counts := [nSteps]int{2, 2, 2, 2, 1}
	var seq []step
	runs := 0
	var rec func()
	rec = func() {
		if len(seq) == 9 {
			runs++
			runOrder(t, seq)
			return
		}
		for s := range nSteps {
			if counts[s] == 0 {
				continue
			}
			counts[s]--
			seq = append(seq, s)
			rec()
			seq = seq[:len(seq)-1]
			counts[s]++
		}
	}
	rec()
	if runs != 22680 { // 9! / 2^4
		t.Fatalf("ran %d orderings, want 22680", runs)
	}
}

func runOrder(t *testing.T, seq []step) {
	e := newEnv(t)
	ctx := context.Background()
	pub := &fakePublisher{}
	resultIDs := map[string]string{} // Sym id -> result id
	names := func() string {
		var b strings.Builder
		for _, s := range seq {
			b.WriteString(stepName[s] + " ")
		}
		return b.String()
	}
	reqs := map[step]events.Request{
		escA: escalate("sym-esc-a", "a", 10), // expires at t0+10m
		escB: escalate("sym-esc-b", "b", 60), // expires at t0+60m
		deA:  deescalate("sym-de-a", "a"),
		deB:  deescalate("sym-de-b", "b"),
	}
	ended := map[string]bool{} // grants whose deescalate was handled
	for i, s := range seq {
		if s == deA || s == deB {
			ended[reqs[s].GrantID()] = true
		}
		if s == sweep {
			e.clock.Advance(20 * time.Minute) // t0+21m: A is due, B is not
			if _, err := e.svc.Sweep(ctx, pub, 10, 0); err != nil {
				t.Fatalf("%s: sweep: %v", names(), err)
			}
		} else {
			req := reqs[s]
			out, err := e.svc.Handle(ctx, req)
			if err != nil {
				t.Fatalf("%s: step %d: %v", names(), i, err)
			}
			if len(out.Results) != 1 {
				t.Fatalf("%s: step %d: %d results", names(), i, len(out.Results))
			}
			id := out.Results[0].ResultID
			if prev, ok := resultIDs[req.SymEventID]; ok && prev != id {
				t.Fatalf("%s: %s gave result id %s, earlier %s", names(), req.SymEventID, id, prev)
			}
			resultIDs[req.SymEventID] = id
		}
		now := e.clock.Now()
		var active []string
		e.store.eachGrant(func(g *grants.Grant) {
			if g.State == grants.StateActive && g.ExpiresAt.After(now) {
				active = append(active, g.ID)
			}
			if g.State == grants.StateActive && ended[g.ID] {
				t.Errorf("%s: grant %s active after its deescalate", names(), g.ID)
			}
			if n := countActions(*g, "escalate"); n > 1 {
				t.Errorf("%s: grant %s activated %d times", names(), g.ID, n)
			}
		})
		if t.Failed() {
			t.FailNow()
		}
		if member := e.iam.isMember(alice, readonly); member != (len(active) > 0) {
			t.Fatalf("%s: after step %d IAM member = %v, active grants %v", names(), i, member, active)
		}
	}
	for _, r := range pub.published {
		if r.DetailType != events.AccessRevoked || r.Reason != events.RevokedExpired ||
			r.ResultID != events.ResultID(events.AccessRevoked, reqs[escA].GrantID()) {
			t.Fatalf("%s: sweep published %+v; only A expires", names(), r)
		}
	}
	e.checkAtRest(t)
}

// A replica that writes the membership while this one is in its IAM call
// moves the token: this one must read again and make IAM follow the newer
// write.
func TestConvergeRetriesWhenTokenMoved(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := escalate("sym-1", "a", 30)
	var once atomic.Bool
	e.iam.setDuring(func(add bool, user, group string) {
		if !add || !once.CompareAndSwap(false, true) {
			return
		}
		// Another replica revokes A by hand and dies before its IAM call.
		g, err := e.store.GetGrant(ctx, req.GrantID())
		if err != nil {
			t.Error(err)
			return
		}
		g.State, g.RevokedAt, g.RevokeReason = grants.StateRevoked, e.clock.Now(), events.RevokedManual
		if err := e.store.Revoke(ctx, g, nil, "other-replica", false); err != nil {
			t.Error(err)
		}
	})
	e.handle(t, req)
	adds, removes := e.iam.calls()
	if adds != 1 || removes != 1 {
		t.Fatalf("adds %d removes %d: want the add followed by the remove the newer write asks for", adds, removes)
	}
	if e.iam.isMember(alice, readonly) {
		t.Fatal("IAM kept a member whose only grant was revoked meanwhile")
	}
	e.checkAtRest(t)
}

// A membership that keeps changing makes the caller give up with an error
// (its message is retried); the redelivery converges.
func TestConvergeGivesUpThenRedeliveryConverges(t *testing.T) {
	e := newEnv(t)
	req := escalate("sym-1", "a", 30)
	e.iam.setDuring(func(bool, string, string) {
		e.store.mu.Lock()
		e.store.members[grants.Key{User: alice, Group: readonly}].token += "'"
		e.store.mu.Unlock()
	})
	if _, err := e.svc.Handle(context.Background(), req); err == nil {
		t.Fatal("Handle succeeded although the membership never settled")
	}
	e.iam.setDuring(nil)
	out := e.handle(t, req)
	if out.Kind != events.OutcomeDuplicate || one(t, out).ResultID != events.ResultID(events.AccessGranted, req.GrantID()) {
		t.Fatalf("redelivery: %+v", out)
	}
	e.checkAtRest(t)
}

func TestFailUndoesEscalateAndReplayReapplies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := escalate("sym-1", "a", 30)
	e.iam.addErr = errIAMDown
	for range 3 { // the consumer's retries
		if _, err := e.svc.Handle(ctx, req); !errors.Is(err, errIAMDown) {
			t.Fatalf("Handle with IAM down: %v", err)
		}
	}
	out, err := e.svc.Fail(ctx, req, "iam_unavailable", "gave up")
	if err != nil {
		t.Fatal(err)
	}
	if r := one(t, out); r.DetailType != events.AccessFailed || r.Code != "iam_unavailable" || r.ResultID != events.ResultID(events.AccessFailed, "sym-1") {
		t.Fatalf("fail result %+v", r)
	}
	g, _ := e.store.GetGrant(ctx, req.GrantID())
	if g.State != grants.StateFailed || e.store.inDue(g.ID) {
		t.Fatalf("grant %s (due %v): want FAILED out of the index", g.State, e.store.inDue(g.ID))
	}
	if e.iam.isMember(alice, readonly) {
		t.Fatal("failed grant left a member")
	}
	if _, ok := e.store.event("sym-1"); ok {
		t.Fatal("failed escalate's event still recorded: a replay would be a duplicate")
	}
	e.checkAtRest(t)

	e.iam.addErr = nil // cause fixed; iamjit replay
	out = e.handle(t, req)
	if out.Kind != events.OutcomeApplied || one(t, out).ResultID != events.ResultID(events.AccessGranted, req.GrantID()) {
		t.Fatalf("replay: %+v", out)
	}
	if !e.iam.isMember(alice, readonly) {
		t.Fatal("replay did not grant")
	}
	e.checkAtRest(t)
}

// Fail after a successful escalate (e.g. the result could not be published)
// takes the access back too.
func TestFailAfterSuccessRemovesMembership(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := escalate("sym-1", "a", 30)
	e.handle(t, req)
	if _, err := e.svc.Fail(ctx, req, "publish_failed", "x"); err != nil {
		t.Fatal(err)
	}
	if e.iam.isMember(alice, readonly) {
		t.Fatal("member after Fail")
	}
	// Fail for another event of the same grant changes nothing.
	e.handle(t, req)
	other := req
	other.SymEventID = "sym-other"
	if _, err := e.svc.Fail(ctx, other, "x", "y"); err != nil {
		t.Fatal(err)
	}
	if !e.iam.isMember(alice, readonly) {
		t.Fatal("Fail of an event that did not create the grant revoked it")
	}
	e.checkAtRest(t)
}

func TestSweepRevokesDueGrants(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := escalate("sym-a", "a", 10), escalate("sym-b", "b", 60)
	e.handle(t, a)
	e.handle(t, b)
	pub := &fakePublisher{}

	st, err := e.svc.Sweep(ctx, pub, 10, time.Minute)
	if err != nil || st.Due != 0 || st.Revoked != 0 || len(pub.published) != 0 {
		t.Fatalf("sweep before expiry: %+v %v %v", st, err, pub.published)
	}
	e.clock.Advance(15 * time.Minute) // A (t0+10m) is due, B (t0+60m) not
	st, err = e.svc.Sweep(ctx, pub, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if st.Due != 1 || st.Revoked != 1 || st.Lag != 6*time.Minute {
		t.Errorf("stats %+v: want 1 due, 1 revoked, lag 6m", st)
	}
	if len(pub.published) != 1 {
		t.Fatalf("published %v", pub.published)
	}
	r := pub.published[0]
	if r.DetailType != events.AccessRevoked || r.Reason != events.RevokedExpired || r.GrantID != a.GrantID() ||
		r.ResultID != events.ResultID(events.AccessRevoked, a.GrantID()) {
		t.Errorf("published %+v", r)
	}
	ga, _ := e.store.GetGrant(ctx, a.GrantID())
	gb, _ := e.store.GetGrant(ctx, b.GrantID())
	if ga.State != grants.StateRevoked || ga.RevokeReason != events.RevokedExpired || e.store.inDue(ga.ID) {
		t.Errorf("A: %s %s due=%v", ga.State, ga.RevokeReason, e.store.inDue(ga.ID))
	}
	if gb.State != grants.StateActive || !e.store.inDue(gb.ID) {
		t.Errorf("B was touched: %s due=%v", gb.State, e.store.inDue(gb.ID))
	}
	// B keeps alice in the group.
	if !e.iam.isMember(alice, readonly) {
		t.Fatal("revoking A removed the access B still grants")
	}
	e.checkAtRest(t)

	e.clock.Advance(time.Hour)
	if _, err := e.svc.Sweep(ctx, pub, 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	if e.iam.isMember(alice, readonly) {
		t.Fatal("member after the last grant expired")
	}
	e.checkAtRest(t)
}

// Sweep pages through more due grants than one batch.
func TestSweepPages(t *testing.T) {
	e := newEnv(t)
	for i := range 7 {
		e.handle(t, escalate("sym-"+strconv.Itoa(i), "r"+strconv.Itoa(i), int64(5+i)))
	}
	e.clock.Advance(time.Hour)
	pub := &fakePublisher{}
	st, err := e.svc.Sweep(context.Background(), pub, 3, time.Minute)
	if err != nil || st.Revoked != 7 || len(pub.published) != 7 {
		t.Fatalf("stats %+v err %v published %d: want all 7", st, err, len(pub.published))
	}
	e.checkAtRest(t)
}

func TestSweepPublishFailureIsFinishedByNextSweep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := escalate("sym-a", "a", 10)
	e.handle(t, a)
	e.clock.Advance(15 * time.Minute)
	pub := &fakePublisher{err: errors.New("eventbridge down")}
	if _, err := e.svc.Sweep(ctx, pub, 10, time.Minute); err == nil {
		t.Fatal("sweep hid the publish failure")
	}
	g, _ := e.store.GetGrant(ctx, a.GrantID())
	if g.State != grants.StateRevoked || !e.store.inDue(g.ID) {
		t.Fatalf("after a failed publish: %s due=%v; want REVOKED and still in the index", g.State, e.store.inDue(g.ID))
	}
	if e.iam.isMember(alice, readonly) {
		t.Fatal("revocation did not reach IAM")
	}
	pub.err = nil
	e.clock.Advance(time.Minute)
	st, err := e.svc.Sweep(ctx, pub, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(pub.published) != 1 || pub.published[0].ResultID != events.ResultID(events.AccessRevoked, a.GrantID()) ||
		pub.published[0].Reason != events.RevokedExpired {
		t.Fatalf("second sweep published %+v (stats %+v)", pub.published, st)
	}
	if e.store.inDue(g.ID) {
		t.Fatal("grant still in the expiry index after its revocation was published")
	}
	if _, err := e.svc.Sweep(ctx, pub, 10, time.Minute); err != nil || len(pub.published) != 1 {
		t.Fatalf("third sweep republished: %v %d", err, len(pub.published))
	}
	e.checkAtRest(t)
}

func TestSweepRepairsDirtyMembership(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := escalate("sym-1", "a", 60)
	e.iam.addErr = errIAMDown
	if _, err := e.svc.Handle(ctx, req); err == nil {
		t.Fatal("want the IAM error")
	}
	e.iam.addErr = nil
	if m, _ := e.store.Membership(ctx, grants.Key{User: alice, Group: readonly}); !m.Dirty || e.iam.isMember(alice, readonly) {
		t.Fatalf("setup: membership %+v", m)
	}
	pub := &fakePublisher{}
	// Within the grace period a writer may still be mid-flight: left alone.
	st, err := e.svc.Sweep(ctx, pub, 10, time.Minute)
	if err != nil || st.Repaired != 0 || e.iam.isMember(alice, readonly) {
		t.Fatalf("repaired inside the grace period: %+v %v", st, err)
	}
	e.clock.Advance(2 * time.Minute)
	st, err = e.svc.Sweep(ctx, pub, 10, time.Minute)
	if err != nil || st.Repaired != 1 {
		t.Fatalf("stats %+v err %v: want 1 repaired", st, err)
	}
	if !e.iam.isMember(alice, readonly) {
		t.Fatal("repair did not add the member the active grant asks for")
	}
	e.checkAtRest(t)
}

func TestSweepIndexError(t *testing.T) {
	e := newEnv(t)
	e.store.failDue = errors.New("throttled")
	if _, err := e.svc.Sweep(context.Background(), &fakePublisher{}, 10, 0); err == nil {
		t.Fatal("sweep hid an index error")
	}
}

func TestRejections(t *testing.T) {
	cases := []struct {
		name     string
		code     events.Code
		recorded bool // a rejection under the Sym id, returned again on redelivery
		edit     func(r *events.Request, e *env)
	}{
		{"zero duration", events.CodeInvalidDuration, true, func(r *events.Request, _ *env) { r.Duration = 0 }},
		{"negative duration", events.CodeInvalidDuration, true, func(r *events.Request, _ *env) { r.Duration = -5 }},
		{"fractional duration", events.CodeInvalidDuration, true, func(r *events.Request, _ *env) {
			r.Duration, r.DurErr = 0, "fields.duration is not an integer"
		}},
		{"no duration", events.CodeInvalidDuration, true, func(r *events.Request, _ *env) { r.Duration, r.HasDur = 0, false }},
		{"duration too long", events.CodeDurationTooLong, true, func(r *events.Request, _ *env) { r.Duration = 12*60 + 1 }},
		{"lambda target", events.CodeUnsupportedTarget, true, func(r *events.Request, _ *env) { r.TargetType = "aws_lambda_function" }},
		{"custom template", events.CodeUnsupportedTemplate, true, func(r *events.Request, _ *env) { r.Template = "sym:template:custom:1.0.0" }},
		{"bad group name", events.CodeInvalidGroup, true, func(r *events.Request, _ *env) { r.Group = "sym readonly!" }},
		{"empty group", events.CodeInvalidGroup, true, func(r *events.Request, _ *env) { r.Group = "" }},
		{"non-group ARN", events.CodeInvalidGroup, true, func(r *events.Request, _ *env) { r.Group = "arn:aws:iam::123456789012:role/sym/x" }},
		{"wildcard ARN", events.CodeInvalidGroup, true, func(r *events.Request, _ *env) { r.Group = "arn:aws:iam::123456789012:group/sym/*" }},
		{"unknown group", events.CodeUnknownGroup, true, func(r *events.Request, _ *env) { r.Group = "nope" }},
		{"group outside path", events.CodeGroupNotAllowed, true, func(r *events.Request, _ *env) { r.Group = "admins" }},
		{"path prefix without slash", events.CodeGroupNotAllowed, true, func(r *events.Request, _ *env) { r.Group = "symbolic" }},
		{"ARN of another account", events.CodeForeignAccount, true, func(r *events.Request, _ *env) {
			r.Group = "arn:aws:iam::999999999999:group/sym/sym-readonly"
		}},
		{"unknown user", events.CodeUnknownUser, true, func(r *events.Request, _ *env) { r.Requester = "mallory@example.com" }},
		{"not an email", events.CodeUnknownUser, true, func(r *events.Request, _ *env) { r.Requester = "alice" }},
		{"ambiguous user", events.CodeAmbiguousUser, true, func(r *events.Request, _ *env) { r.Requester = "bob@example.com" }},
		{"self approval", events.CodeSelfApproval, true, func(r *events.Request, _ *env) { r.Approver = strings.ToUpper(aliceMail) }},
		{"future timestamp", events.CodeFutureTimestamp, true, func(r *events.Request, e *env) { r.Timestamp = e.clock.Now().Add(time.Hour) }},
		{"source not allowed", events.CodeSourceNotAllowed, false, func(r *events.Request, _ *env) { r.Source = "evil" }},
		{"bare", events.CodeBareNotAccepted, false, func(r *events.Request, _ *env) { r.Source, r.Bare = "", true }},
		{"bare deescalate", events.CodeBareNotAccepted, false, func(r *events.Request, _ *env) {
			r.Source, r.Bare, r.Type = "", true, events.TypeDeescalate
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			req := escalate("sym-1", "a", 30)
			tc.edit(&req, e)
			out := e.handle(t, req)
			r := one(t, out)
			if out.Kind != events.OutcomeRejected || r.DetailType != events.AccessRejected || r.Code != tc.code {
				t.Fatalf("outcome %s %+v, want rejected %s", out.Kind, r, tc.code)
			}
			if r.ResultID != events.ResultID(events.AccessRejected, "sym-1") || r.Message == "" {
				t.Errorf("result id %s message %q", r.ResultID, r.Message)
			}
			if adds, removes := e.iam.calls(); adds+removes != 0 {
				t.Fatalf("IAM changed: %d adds %d removes", adds, removes)
			}
			if gs := e.store.allGrants(); len(gs) != 0 {
				t.Fatalf("rejection wrote grants %+v", gs)
			}
			if _, ok := e.store.event("sym-1"); ok != tc.recorded {
				t.Fatalf("event recorded = %v, want %v", ok, tc.recorded)
			}
			if tc.recorded {
				if again := one(t, e.handle(t, req)); again.ResultID != r.ResultID || again.Code != tc.code {
					t.Errorf("redelivery: %+v", again)
				}
			}
			e.checkAtRest(t)
		})
	}
}

// A group given by the ARN of this account, under the allowed path, works.
func TestEscalateGroupARN(t *testing.T) {
	e := newEnv(t)
	req := escalate("sym-1", "a", 30)
	req.Group = roARN
	r := one(t, e.handle(t, req))
	if r.DetailType != events.AccessGranted || r.Group != readonly || !e.iam.isMember(alice, readonly) {
		t.Fatalf("result %+v", r)
	}
}

// Steps other than escalate and deescalate change nothing.
func TestOtherStepsIgnored(t *testing.T) {
	e := newEnv(t)
	for _, typ := range []string{"prompt", "request", "approve", "deny", "ignore", ""} {
		req := escalate("sym-"+typ, "a", 30)
		req.Type = typ
		if out := e.handle(t, req); out.Kind != events.OutcomeIgnored || len(out.Results) != 0 {
			t.Errorf("%q: %+v", typ, out)
		}
	}
	if adds, _ := e.iam.calls(); adds != 0 || len(e.store.allGrants()) != 0 {
		t.Fatal("an ignored step changed something")
	}
}

func TestMalformedIsRecorded(t *testing.T) {
	e := newEnv(t)
	req := events.Request{SymEventID: "sym-bad", Source: "sym"}
	out, err := e.svc.Malformed(context.Background(), req, &events.DecodeError{Code: "invalid_entry", Msg: "bad", SymEventID: "sym-bad"})
	if err != nil || out.Kind != events.OutcomeRejected || one(t, out).Code != events.CodeMalformed {
		t.Fatalf("%+v %v", out, err)
	}
	if _, ok := e.store.event("sym-bad"); !ok {
		t.Fatal("malformed body with a Sym id was not recorded")
	}
}

func TestManualRevoke(t *testing.T) {
	e := newEnv(t)
	req := escalate("sym-1", "a", 30)
	e.handle(t, req)
	out, err := e.svc.Revoke(context.Background(), req.GrantID(), events.RevokedManual)
	if err != nil || one(t, out).Reason != events.RevokedManual || e.iam.isMember(alice, readonly) {
		t.Fatalf("%+v %v", out, err)
	}
	out, err = e.svc.Revoke(context.Background(), req.GrantID(), events.RevokedManual)
	if err != nil || out.Kind != events.OutcomeDuplicate {
		t.Fatalf("second revoke: %+v %v", out, err)
	}
	e.checkAtRest(t)
}

// A reason typed into a Slack form may span lines; only other control
// characters are refused.
func TestReasonMayHaveLineBreaks(t *testing.T) {
	e := newEnv(t)
	req := escalate("e-reason", "run-reason", 30)
	req.Reason = "incident 42\r\n\tneeds read access"
	if got := one(t, e.handle(t, req)); got.DetailType != events.AccessGranted {
		t.Fatalf("multi-line reason: %s %s %s", got.DetailType, got.Code, got.Message)
	}
	bad := escalate("e-reason-bell", "run-reason-bell", 30)
	bad.Reason = "ding\a"
	if got := one(t, e.handle(t, bad)); got.Code != events.CodeInvalidRequest {
		t.Fatalf("reason with BEL: got %s %q, want invalid_request", got.DetailType, got.Code)
	}
	if e.iam.isMember(alice, readonly) != true {
		t.Fatal("the valid request did not grant")
	}
}
