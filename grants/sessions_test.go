package grants_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/iamjit/iamjit/grants"
)

// fakeSessions records every ended membership.
type fakeSessions struct {
	mu    sync.Mutex
	calls []string // user/group
	at    []time.Time
	err   error
	// inIAM, when set, is asked at each call whether the user is still a
	// member: the hook must run only after the removal.
	inIAM func() bool
	sawIn bool
	// writes, when set, are the calls each end made (else one PutRolePolicy).
	writes []grants.RoleWrite
}

func (f *fakeSessions) MembershipEnded(_ context.Context, k grants.Key, at time.Time) (grants.SessionsEnded, error) {
	user, group := k.User, k.Group
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inIAM != nil && f.inIAM() {
		f.sawIn = true
	}
	f.calls = append(f.calls, user+"/"+group)
	f.at = append(f.at, at)
	if f.err != nil {
		return grants.SessionsEnded{}, f.err
	}
	writes := f.writes
	if writes == nil {
		writes = []grants.RoleWrite{{RoleARN: "arn:aws:iam::123456789012:role/jit/ro", Op: "PutRolePolicy", RequestID: "req-1"}}
	}
	return grants.SessionsEnded{
		Revoked: []string{"arn:aws:iam::123456789012:role/jit/ro"}, Skipped: []string{"arn:aws:iam::123456789012:role/other"},
		Writes: writes,
	}, nil
}

func (f *fakeSessions) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) }

func withFakeSessions(e *env) *fakeSessions {
	f := &fakeSessions{inIAM: func() bool { return e.iam.isMember(alice, readonly) }}
	e.svc.Accounts.Home().Sessions = f
	return f
}

func TestSessionsEndWithTheMembership(t *testing.T) {
	e := newEnv(t)
	f := withFakeSessions(e)
	e.handle(t, escalate("esc-1", "run-1", 30))
	if f.count() != 0 {
		t.Fatal("an escalate ended sessions")
	}
	res := one(t, e.handle(t, deescalate("de-1", "run-1")))
	if f.count() != 1 || f.sawIn {
		t.Fatalf("hook calls = %d, ran while still a member = %v", f.count(), f.sawIn)
	}
	if !f.at[0].Equal(e.clock.Now()) {
		t.Fatalf("revoked at %s, want the removal time %s", f.at[0], e.clock.Now())
	}
	if !slices.Equal(res.SessionsRevoked, []string{"arn:aws:iam::123456789012:role/jit/ro"}) ||
		!slices.Equal(res.SessionsSkipped, []string{"arn:aws:iam::123456789012:role/other"}) {
		t.Fatalf("Access Revoked sessions fields = %v / %v", res.SessionsRevoked, res.SessionsSkipped)
	}
	g, _ := e.store.GetGrant(context.Background(), res.GrantID)
	if !slices.ContainsFunc(g.History, func(h grants.Transition) bool { return h.Action == "session_revoke" && h.IAMRequestID == "req-1" }) {
		t.Fatalf("history lacks the PutRolePolicy request id: %+v", g.History)
	}
	e.checkAtRest(t)

	// A duplicate deescalate ends nothing again: the membership is clean.
	e.handle(t, deescalate("de-1", "run-1"))
	e.handle(t, deescalate("de-1b", "run-1"))
	if f.count() != 1 {
		t.Fatalf("duplicates called the hook: %d calls", f.count())
	}
	// Nor does a deescalate for a grant never seen (a tombstone).
	e.handle(t, deescalate("de-2", "run-never"))
	if f.count() != 1 {
		t.Fatalf("a tombstone called the hook: %d calls", f.count())
	}
}

// An end that made several writes (a permission set's put and
// provisioning, or several roles) notes them all, in order, in one write
// of the grant's history: each write is a call on the expiry's path.
func TestSessionWritesAreNotedInOneWrite(t *testing.T) {
	e := newEnv(t)
	f := withFakeSessions(e)
	ps := "arn:aws:sso:::permissionSet/ssoins-1/ps-1"
	f.writes = []grants.RoleWrite{
		{RoleARN: ps, Op: "PutInlinePolicyToPermissionSet", RequestID: "req-put"},
		{RoleARN: ps, Op: "ProvisionPermissionSet", RequestID: "req-provision"},
	}
	e.handle(t, escalate("esc-1", "run-1", 30))
	before := e.store.appends
	res := one(t, e.handle(t, deescalate("de-1", "run-1")))
	if got := e.store.appends - before; got != 1 {
		t.Fatalf("history appends for two session writes = %d, want 1", got)
	}
	g, _ := e.store.GetGrant(context.Background(), res.GrantID)
	var ids []string
	for _, h := range g.History {
		if h.Action == "session_revoke" {
			ids = append(ids, h.IAMRequestID)
		}
	}
	if !slices.Equal(ids, []string{"req-put", "req-provision"}) {
		t.Fatalf("session_revoke request ids in history = %v, want both writes in order", ids)
	}
}

func TestOverlappingGrantEndsNoSessions(t *testing.T) {
	e := newEnv(t)
	f := withFakeSessions(e)
	e.handle(t, escalate("esc-1", "run-1", 30))
	e.handle(t, escalate("esc-2", "run-2", 60))
	if res := one(t, e.handle(t, deescalate("de-1", "run-1"))); len(res.SessionsRevoked) != 0 || f.count() != 0 {
		t.Fatalf("first of two grants ended sessions: %v, %d calls", res.SessionsRevoked, f.count())
	}
	if res := one(t, e.handle(t, deescalate("de-2", "run-2"))); len(res.SessionsRevoked) != 1 || f.count() != 1 {
		t.Fatalf("last grant: %v, %d calls", res.SessionsRevoked, f.count())
	}
}

// The revocation is durable: if it fails after the removal, the membership
// stays dirty, and the sweeper's repair ends the sessions.
func TestSessionsFailureLeavesMembershipDirty(t *testing.T) {
	e := newEnv(t)
	f := withFakeSessions(e)
	e.handle(t, escalate("esc-1", "run-1", 30))
	f.err = errors.New("iam throttled")
	if _, err := e.svc.Handle(context.Background(), deescalate("de-1", "run-1")); err == nil {
		t.Fatal("deescalate succeeded though its sessions were not revoked")
	}
	if e.iam.isMember(alice, readonly) {
		t.Fatal("still a member")
	}
	if m, _ := e.store.Membership(context.Background(), grants.Key{User: alice, Group: readonly}); !m.Dirty {
		t.Fatal("membership marked synced before its sessions were revoked")
	}
	f.err = nil
	e.clock.Advance(time.Minute)
	st, err := e.svc.Sweep(context.Background(), &fakePublisher{}, 10, 30*time.Second)
	if err != nil || st.Repaired != 1 {
		t.Fatalf("sweep = %+v, %v", st, err)
	}
	if f.count() != 2 {
		t.Fatalf("hook calls = %d, want 2 (the failed one and the repair)", f.count())
	}
	e.checkAtRest(t)
}

func TestExpiryAndManualRevokeEndSessions(t *testing.T) {
	e := newEnv(t)
	f := withFakeSessions(e)
	e.handle(t, escalate("esc-1", "run-1", 5))
	e.clock.Advance(10 * time.Minute)
	pub := &fakePublisher{}
	if _, err := e.svc.Sweep(context.Background(), pub, 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	if f.count() != 1 || len(pub.published) != 1 || len(pub.published[0].SessionsRevoked) != 1 {
		t.Fatalf("expiry: %d calls, published %+v", f.count(), pub.published)
	}
	e.handle(t, escalate("esc-2", "run-2", 60))
	out, err := e.svc.Revoke(context.Background(), "acme:run:aws:1.0.0:run-2/target-1", "manual")
	if err != nil || f.count() != 2 || len(one(t, out).SessionsRevoked) != 1 {
		t.Fatalf("manual revoke: %v, %d calls", err, f.count())
	}
}

// endedAndBack grants alice, ends it (one session revocation), and puts
// her back into the group behind the store's back: a late add, or someone's
// console click.
func endedAndBack(t *testing.T) (*env, *fakeSessions) {
	t.Helper()
	e := newEnv(t)
	f := withFakeSessions(e)
	e.handle(t, escalate("s1", "r1", 30))
	e.handle(t, deescalate("s2", "r1"))
	if f.count() != 1 {
		t.Fatalf("%d session revocations after the deescalate, want 1", f.count())
	}
	lateAdd(e.iam, alice, readonly)
	return e, f
}

// A user back in the group after the membership ended is removed again, and
// the sessions that let them start end too, with a second cutoff after the
// removal: when the read-back undoes a late add, and when a converge of the
// clean membership finds them in (IAM's removal says the user was in).
func TestARemovalOfAUserBackInTheGroupEndsSessions(t *testing.T) {
	for name, remove := range map[string]func(t *testing.T, e *env){
		"the read-back undoes a late add": func(t *testing.T, e *env) {
			st, err := e.svc.Sweep(context.Background(), &fakePublisher{}, 100, time.Minute)
			if err != nil || st.StaleAdds != 1 {
				t.Fatalf("sweep: %+v, %v; want the late add undone", st, err)
			}
		},
		"a redelivered deescalate converges again": func(t *testing.T, e *env) {
			e.handle(t, deescalate("s2", "r1"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			e, f := endedAndBack(t)
			e.clock.Advance(time.Minute)
			remove(t, e)
			if e.iam.isMember(alice, readonly) {
				t.Fatal("alice was left in the group")
			}
			if f.count() != 2 || f.sawIn || !f.at[1].Equal(e.clock.Now()) {
				t.Fatalf("%d session revocations (want 2), one made while the user was still in: %v, at %v (want the second at %v)",
					f.count(), f.sawIn, f.at, e.clock.Now())
			}
		})
	}
}
