package sessions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/testclock"
	"github.com/iamjit/iamjit/sessions"
)

const (
	psA   = "arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7/ps-2f1a9e4c6b8d0a35"
	psB   = "arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7/ps-9c0d1e2f3a4b5c6d"
	acct1 = "111122223333"
	acct2 = "444455556666"
	uid1  = "906782a1b2-0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
	uid2  = "906782a1b2-1c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
	// The customer's own inline policy, with spacing and an & that must
	// survive as they are (but for the spacing between tokens).
	customer = `{"Version": "2012-10-17", "Statement": {"Sid": "Theirs", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "arn:aws:s3:::a&b"}}`
)

type setEnv struct {
	clk   *testclock.Clock
	store *fakeSetStore
	api   *fakeSets
	obs   *fakeObserver
	p     *sessions.PermissionSets
}

func newSetEnv(t *testing.T) *setEnv {
	t.Helper()
	clk := testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	e := &setEnv{clk: clk, store: newFakeSetStore(clk.Now), api: newFakeSets(), obs: &fakeObserver{}}
	e.api.duration[psA], e.api.duration[psB] = time.Hour, 2*time.Hour
	e.api.policies[psA] = customer
	toks := &tokens{}
	e.p = &sessions.PermissionSets{API: e.api, Store: e.store, Mode: sessions.RevokeUser, Now: clk.Now, NewToken: toks.New,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: e.obs, Wait: time.Hour, // sleeps are 1 ms here
		Sleep: func(ctx context.Context, d time.Duration) error { time.Sleep(time.Millisecond); return ctx.Err() }}
	return e
}

// theirs is the customer's statement as the written policy holds it.
func theirs(t *testing.T, doc string) string {
	t.Helper()
	var d struct{ Statement []json.RawMessage }
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("%v: %s", err, doc)
	}
	for _, st := range d.Statement {
		if strings.Contains(string(st), `"Sid":"Theirs"`) {
			return string(st)
		}
	}
	return ""
}

const theirsCompact = `{"Sid":"Theirs","Effect":"Deny","Action":"s3:DeleteBucket","Resource":"arn:aws:s3:::a&b"}`

func TestAssignmentEndedKeepsTheCustomersStatementsAndProvisions(t *testing.T) {
	e := newSetEnv(t)
	ctx := context.Background()
	at := e.clk.Now()
	res, err := e.p.AssignmentEnded(ctx, uid1, psA, acct1, at)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{sessions.SetTarget(psA, acct1)}; !slices.Equal(res.Revoked, want) || len(res.NoRoom)+len(res.Gone) != 0 {
		t.Fatalf("result %+v, want revoked %v", res, want)
	}
	doc := e.api.policy(psA)
	if got := theirs(t, doc); got != theirsCompact {
		t.Fatalf("the customer's statement changed: %s", got)
	}
	if !sessions.DeniesIn(doc, uid1, acct1, at) || sessions.DeniesIn(doc, uid2, acct1, at) || sessions.DeniesIn(doc, uid1, acct2, at) {
		t.Fatalf("policy denies the wrong sessions: %s", doc)
	}
	if !sessions.DeniesIn(e.api.inAccount(psA, acct1), uid1, acct1, at) {
		t.Fatalf("the account was not provisioned with the statement: %v", e.api.provisions)
	}
	ops := []string{}
	for _, w := range res.Writes {
		ops = append(ops, w.Op+" "+w.RoleARN)
	}
	if want := []string{"PutInlinePolicyToPermissionSet " + psA, "ProvisionPermissionSet " + sessions.SetTarget(psA, acct1)}; !slices.Equal(ops, want) {
		t.Fatalf("writes %v, want %v", ops, want)
	}
	st, _ := e.store.GetSet(ctx, psA)
	if st.Dirty || len(st.Pending) != 0 || e.store.owner(psA) != "" {
		t.Fatalf("item after the write: %+v, lease %q", st, e.store.owner(psA))
	}
	if e.obs.revoked[sessions.LevelUser] != 1 {
		t.Fatalf("observer %+v", e.obs)
	}
	t.Logf("written: %s", doc)

	// The same again: nothing new to put, the account provisioned again.
	if res, err := e.p.AssignmentEnded(ctx, uid1, psA, acct1, at); err != nil || len(res.Revoked) != 1 {
		t.Fatalf("again: %+v %v", res, err)
	}
}

func TestPermissionSetStatementsArePrunedAfterTheSessionDuration(t *testing.T) {
	e := newSetEnv(t)
	ctx := context.Background()
	first := e.clk.Now()
	if _, err := e.p.AssignmentEnded(ctx, uid1, psA, acct1, first); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(40 * time.Minute)
	second := e.clk.Now()
	if _, err := e.p.AssignmentEnded(ctx, uid2, psA, acct2, second); err != nil {
		t.Fatal(err)
	}
	// Not due yet: nothing rewritten.
	if n, err := e.p.Repair(ctx, time.Minute, 10, true); err != nil || n != 0 {
		t.Fatalf("repair before any statement expired: %d %v", n, err)
	}
	e.clk.Advance(21 * time.Minute) // first's statement is older than the hour
	if n, err := e.p.Repair(ctx, time.Minute, 10, true); err != nil || n != 1 {
		t.Fatalf("repair: %d %v", n, err)
	}
	doc := e.api.policy(psA)
	if sessions.DeniesIn(doc, uid1, acct1, first) || !sessions.DeniesIn(doc, uid2, acct2, second) || theirs(t, doc) != theirsCompact {
		t.Fatalf("after pruning the first: %s", doc)
	}
	e.clk.Advance(time.Hour)
	if n, err := e.p.Repair(ctx, time.Minute, 10, true); err != nil || n != 1 {
		t.Fatalf("repair: %d %v", n, err)
	}
	if doc := e.api.policy(psA); strings.Contains(doc, sessions.SidPrefix) || theirs(t, doc) != theirsCompact {
		t.Fatalf("after pruning all: %s", doc)
	}
	if items, _ := e.store.AllSets(ctx); len(items) != 0 {
		t.Fatalf("items left: %+v", items)
	}
	// A permission set with no policy of the customer's: deleted, not
	// emptied (AWS refuses an empty inline policy).
	delete(e.api.policies, psB)
	if _, err := e.p.AssignmentEnded(ctx, uid1, psB, acct1, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(3 * time.Hour)
	if _, err := e.p.Repair(ctx, time.Minute, 10, true); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.api.policies[psB]; ok {
		t.Fatalf("psB still has %q", e.api.policy(psB))
	}
}

// A second writer ends another user's assignment in another account while
// the first is between reading the item and its put landing. Were both to
// write, the first's stale put could land between the second's put and the
// second's provisioning (the test forces that order if the second gets
// that far), and the second's account would get a policy without its
// statement. With the lease the second waits; the first's next round takes
// its entry and account. Each account's provisioned policy denies its
// user, and both report revoked.
func TestTwoWritersOnOnePermissionSetLoseNoStatement(t *testing.T) {
	e := newSetEnv(t)
	ctx := context.Background()
	at := e.clk.Now()
	var wg sync.WaitGroup
	var second sessions.Result
	var secondErr error
	w2ready, put1, w2done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var readyOnce, putOnce sync.Once
	ready := func() { readyOnce.Do(func() { close(w2ready) }) }
	e.api.beforePut = func(n int) {
		if n != 1 {
			return
		}
		wg.Go(func() {
			p := *e.p
			sleep := p.Sleep
			p.Sleep = func(ctx context.Context, d time.Duration) error { ready(); return sleep(ctx, d) } // waiting for the lease
			p.API = &hookAPI{fakeSets: e.api, beforeProvision: func() { ready(); <-put1 }}
			second, secondErr = p.AssignmentEnded(ctx, uid2, psA, acct2, at)
			close(w2done)
		})
		<-w2ready // the second waits for the lease, or is about to provision
	}
	// The first provisions once the second is done, or has had time to be:
	// a second that wrote would have cleared the pending accounts by then.
	first := &hookAPI{fakeSets: e.api, afterPut: func() { putOnce.Do(func() { close(put1) }) },
		beforeProvision: func() {
			select {
			case <-w2done:
			case <-time.After(50 * time.Millisecond):
			}
		}}
	p1 := *e.p
	p1.API = first
	res1, err := p1.AssignmentEnded(ctx, uid1, psA, acct1, at)
	wg.Wait()
	if err != nil || secondErr != nil {
		t.Fatal(err, secondErr)
	}
	if !slices.Equal(res1.Revoked, []string{sessions.SetTarget(psA, acct1)}) || !slices.Equal(second.Revoked, []string{sessions.SetTarget(psA, acct2)}) {
		t.Fatalf("first %+v, second %+v", res1, second)
	}
	doc := e.api.policy(psA)
	if !sessions.DeniesIn(doc, uid1, acct1, at) || !sessions.DeniesIn(doc, uid2, acct2, at) {
		t.Fatalf("a statement was lost: %s", doc)
	}
	if !sessions.DeniesIn(e.api.inAccount(psA, acct1), uid1, acct1, at) || !sessions.DeniesIn(e.api.inAccount(psA, acct2), uid2, acct2, at) {
		t.Fatalf("an account got a policy without its statement: %v", e.api.provisioned)
	}
	if st, _ := e.store.GetSet(ctx, psA); st.Dirty || len(st.Pending) != 0 {
		t.Fatalf("item: %+v", st)
	}
}

// hookAPI runs hooks around one writer's calls.
type hookAPI struct {
	*fakeSets
	afterPut, beforeProvision func()
}

func (h *hookAPI) PutInlinePolicy(ctx context.Context, arn, doc string) (string, error) {
	id, err := h.fakeSets.PutInlinePolicy(ctx, arn, doc)
	if h.afterPut != nil {
		h.afterPut()
	}
	return id, err
}

func (h *hookAPI) Provision(ctx context.Context, arn, account string) (string, error) {
	if h.beforeProvision != nil {
		h.beforeProvision()
	}
	return h.fakeSets.Provision(ctx, arn, account)
}

// Many replicas at once, each its own user and account: every account's
// provisioned policy denies its user.
func TestManyWritersOnOnePermissionSet(t *testing.T) {
	e := newSetEnv(t)
	ctx := context.Background()
	at := e.clk.Now()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.p.AssignmentEnded(ctx, fmt.Sprintf("user-%d", i), psA, fmt.Sprintf("%012d", i), at)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		u, a := fmt.Sprintf("user-%d", i), fmt.Sprintf("%012d", i)
		if !sessions.DeniesIn(e.api.policy(psA), u, a, at) || !sessions.DeniesIn(e.api.inAccount(psA, a), u, a, at) {
			t.Fatalf("%s in %s lost: policy %s; account got %s", u, a, e.api.policy(psA), e.api.inAccount(psA, a))
		}
	}
}

func TestNoRoomOnAPermissionSet(t *testing.T) {
	e := newSetEnv(t)
	ctx := context.Background()
	// The customer's policy leaves less room than one statement takes.
	big := `{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::` +
		strings.Repeat("b", sessions.SetInlineLimit-200) + `"}]}`
	e.api.policies[psA] = big
	res, err := e.p.AssignmentEnded(ctx, uid1, psA, acct1, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.NoRoom, []string{sessions.SetTarget(psA, acct1)}) || len(res.Revoked) != 0 {
		t.Fatalf("result %+v", res)
	}
	if e.api.policy(psA) != big || len(e.api.provisions) != 0 || e.obs.failed["no_room"] != 1 {
		t.Fatalf("written or provisioned: %d provisions, observer %+v", len(e.api.provisions), e.obs)
	}
	// Identity Center refusing it for its size is the same outcome.
	e.api.policies[psB] = customer
	e.api.putErr = fmt.Errorf("quota: %w", sessions.ErrNoRoom)
	res, err = e.p.AssignmentEnded(ctx, uid1, psB, acct1, e.clk.Now())
	if err != nil || !slices.Equal(res.NoRoom, []string{sessions.SetTarget(psB, acct1)}) {
		t.Fatalf("refused put: %+v %v", res, err)
	}
}

// Past the per-user statements' room, one statement per account, then one
// for the whole permission set: each denies more, none fewer.
func TestRenderSetFallsBackByLevel(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	entries := map[sessions.Entry]time.Time{}
	for i := range 300 {
		entries[sessions.Entry{User: fmt.Sprintf("906782a1b2-%04d-4a5b-6c7d-8e9f-0a1b2c3d4e5f", i), Account: fmt.Sprintf("%012d", i%3)}] = now.Add(-time.Duration(i) * time.Second)
	}
	p, err := sessions.RenderSet(customer, entries, time.Hour, now, sessions.RevokeUser)
	if err != nil || p.Level != sessions.LevelAccount || p.NoRoom {
		t.Fatalf("300 users in 3 accounts: level %q, no room %v, %v", p.Level, p.NoRoom, err)
	}
	for e, at := range entries {
		if !sessions.DeniesIn(p.Doc, e.User, e.Account, at) {
			t.Fatalf("%v not denied", e)
		}
	}
	if sessions.DeniesIn(p.Doc, "x", "999999999999", now) {
		t.Fatal("the per-account statements deny another account")
	}
	few := map[sessions.Entry]time.Time{{User: uid1, Account: acct1}: now}
	if p, _ := sessions.RenderSet("", few, time.Hour, now, sessions.RevokeRole); p.Level != sessions.LevelAccount {
		t.Fatalf("mode role: level %q", p.Level)
	}
	if p, _ := sessions.RenderSet("", few, time.Hour, now, sessions.RevokeUser); p.Level != sessions.LevelUser || strings.Contains(p.Doc, "Theirs") {
		t.Fatalf("no customer policy: %+v", p)
	}
	if _, err := sessions.RenderSet("{not json", few, time.Hour, now, sessions.RevokeUser); err == nil {
		t.Fatal("a policy that does not parse was overwritten")
	}
}

func TestProvisioningFailureLeavesThePermissionSetDirty(t *testing.T) {
	e := newSetEnv(t)
	ctx := context.Background()
	at := e.clk.Now()
	e.api.provisionErr = errors.New("provision: request 1 failed: boom")
	if _, err := e.p.AssignmentEnded(ctx, uid1, psA, acct1, at); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
	st, _ := e.store.GetSet(ctx, psA)
	if !st.Dirty || !slices.Equal(st.Pending, []string{acct1}) || e.store.owner(psA) != "" {
		t.Fatalf("item after the failure: %+v, lease %q", st, e.store.owner(psA))
	}
	e.api.provisionErr = nil
	e.clk.Advance(2 * time.Minute)
	if n, err := e.p.Repair(ctx, time.Minute, 10, true); err != nil || n != 1 {
		t.Fatalf("repair: %d %v", n, err)
	}
	if !sessions.DeniesIn(e.api.inAccount(psA, acct1), uid1, acct1, at) {
		t.Fatal("the sweeper did not provision the account")
	}
	if st, _ := e.store.GetSet(ctx, psA); st.Dirty || len(st.Pending) != 0 {
		t.Fatalf("item after repair: %+v", st)
	}
}

func TestGroupMembershipEndedCoversEveryPermissionSetAndAccount(t *testing.T) {
	e := newSetEnv(t)
	ctx := context.Background()
	e.api.groups["g"] = []sessions.SetAccount{{psA, acct1}, {psA, acct2}, {psB, acct2}}
	at := e.clk.Now()
	res, err := e.p.GroupMembershipEnded(ctx, uid1, "g", at)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{sessions.SetTarget(psA, acct1), sessions.SetTarget(psA, acct2), sessions.SetTarget(psB, acct2)}
	if !slices.Equal(res.Revoked, want) {
		t.Fatalf("revoked %v, want %v", res.Revoked, want)
	}
	if e.api.puts != 2 || len(e.api.provisions) != 3 {
		t.Fatalf("%d puts and %v provisions, want one put per permission set and one provisioning per account", e.api.puts, e.api.provisions)
	}
	for _, sa := range e.api.groups["g"] {
		if !sessions.DeniesIn(e.api.inAccount(sa.PermissionSetARN, sa.AccountID), uid1, sa.AccountID, at) {
			t.Fatalf("%v not denied", sa)
		}
	}
	if sessions.DeniesIn(e.api.policy(psB), uid1, acct1, at) {
		t.Fatal("psB denies an account the group does not hold it in")
	}
}

func TestPermissionSetModeOffAndGone(t *testing.T) {
	e := newSetEnv(t)
	ctx := context.Background()
	e.p.Mode = sessions.RevokeOff
	e.api.groups["g"] = []sessions.SetAccount{{psA, acct1}}
	if r, err := e.p.AssignmentEnded(ctx, uid1, psA, acct1, e.clk.Now()); err != nil || len(r.Revoked)+len(r.Writes) != 0 {
		t.Fatalf("off: %+v %v", r, err)
	}
	if r, err := e.p.GroupMembershipEnded(ctx, uid1, "g", e.clk.Now()); err != nil || len(r.Revoked)+len(r.Writes) != 0 {
		t.Fatalf("off: %+v %v", r, err)
	}
	if e.store.adds != 0 || e.api.puts != 0 || e.api.policy(psA) != customer {
		t.Fatal("mode off wrote something")
	}
	e.p.Mode = sessions.RevokeUser
	const gone = "arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7/ps-0000000000000000"
	r, err := e.p.AssignmentEnded(ctx, uid1, gone, acct1, e.clk.Now())
	if err != nil || !slices.Equal(r.Gone, []string{sessions.SetTarget(gone, acct1)}) {
		t.Fatalf("gone: %+v %v", r, err)
	}
	if items, _ := e.store.AllSets(ctx); len(items) != 0 {
		t.Fatalf("the gone permission set's item was kept: %+v", items)
	}
}

func TestCheckPermissionSets(t *testing.T) {
	e := newSetEnv(t)
	ctx := context.Background()
	at := e.clk.Now()
	if _, err := e.p.AssignmentEnded(ctx, uid1, psA, acct1, at); err != nil {
		t.Fatal(err)
	}
	if m, err := e.p.Check(ctx, false); err != nil || len(m) != 0 {
		t.Fatalf("check: %+v %v", m, err)
	}
	// The customer puts their own policy back over iamjit's.
	e.api.policies[psA] = customer
	m, err := e.p.Check(ctx, false)
	if err != nil || len(m) != 1 || m[0].RoleARN != psA || m[0].Account != acct1 || m[0].User != uid1 || m[0].Restored {
		t.Fatalf("check: %+v %v", m, err)
	}
	before := len(e.api.provisions)
	m, err = e.p.Check(ctx, true)
	if err != nil || len(m) != 1 || !m[0].Restored {
		t.Fatalf("enforce: %+v %v", m, err)
	}
	if !sessions.DeniesIn(e.api.policy(psA), uid1, acct1, at) || len(e.api.provisions) != before+1 ||
		!sessions.DeniesIn(e.api.inAccount(psA, acct1), uid1, acct1, at) {
		t.Fatalf("enforce did not restore and provision: %s, %v", e.api.policy(psA), e.api.provisions)
	}
	// Past the session duration nothing is missing.
	e.api.policies[psA] = customer
	e.clk.Advance(2 * time.Hour)
	if m, err := e.p.Check(ctx, false); err != nil || len(m) != 0 {
		t.Fatalf("check after expiry: %+v %v", m, err)
	}
}

// A lease another writer holds past Wait: a retryable error, the entry
// kept and the item dirty for the retry or the sweeper.
func TestHeldLeaseIsRetryable(t *testing.T) {
	e := newSetEnv(t)
	ctx := context.Background()
	if err := e.store.AddEntry(ctx, psA, sessions.Entry{User: uid2, Account: acct2}, e.clk.Now(), "other"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.store.Lease(ctx, psA, "stuck", e.clk.Now().Add(10*time.Minute), e.clk.Now()); !ok {
		t.Fatal("lease")
	}
	e.p.Wait = time.Second
	leases := e.store.leases
	_, err := e.p.AssignmentEnded(ctx, uid1, psA, acct1, e.clk.Now())
	if err == nil || !awsx.Retryable(err) || e.api.puts != 0 {
		t.Fatalf("err = %v (retryable %v), %d puts", err, awsx.Retryable(err), e.api.puts)
	}
	// It waited by reading the item: a lease held by another is not asked
	// for again (each ask a refused write).
	if n := e.store.leases - leases; n != 0 {
		t.Fatalf("%d Lease calls while another writer held it, want 0", n)
	}
	if st, _ := e.store.GetSet(ctx, psA); !st.Dirty || len(st.Entries) != 2 {
		t.Fatalf("item: %+v", st)
	}
	// Once it expires, the next writer takes it and writes both.
	e.clk.Advance(11 * time.Minute)
	if n, err := e.p.Repair(ctx, time.Minute, 10, true); err != nil || n != 1 {
		t.Fatalf("repair: %d %v", n, err)
	}
	if !sessions.DeniesIn(e.api.inAccount(psA, acct1), uid1, acct1, e.clk.Now().Add(-11*time.Minute)) {
		t.Fatal("not provisioned after the lease expired")
	}
}
