package grants_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
)

// waitFor polls cond for up to five seconds: timers fire on the real clock.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Three replicas arm a timer for the same grant at its expiry: the grant
// ends at the timer, not at a sweep, and IAM is called once, by whichever
// wins the store's conditional revoke.
func TestTimersEndAGrantOnceAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	out := e.handle(t, escalate("s1", "r1", 30))
	g, err := e.store.GetGrant(context.Background(), out.GrantID)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(g.ExpiresAt.Sub(e.clock.Now()) - 20*time.Millisecond)
	pub := &fakePublisher{}
	ctx, cancel := context.WithCancel(context.Background())
	var waits []func()
	for range 3 {
		replica := *e.svc
		timers := grants.NewTimers(&replica, pub, time.Hour, time.Hour, slog.New(slog.DiscardHandler))
		replica.Timers = timers
		waits = append(waits, timers.Start(ctx))
		timers.Expire(g)
	}
	waitFor(t, "the grant to end at its timer", func() bool {
		got, _ := e.store.GetGrant(context.Background(), g.ID)
		return got.State == grants.StateRevoked && !e.iam.isMember(alice, readonly)
	})
	cancel()
	for _, w := range waits {
		w()
	}
	if e.iam.removes != 1 {
		t.Errorf("RemoveUserFromGroup called %d times by 3 replicas, want 1", e.iam.removes)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.published) != 1 || pub.published[0].DetailType != events.AccessRevoked || pub.published[0].Reason != events.RevokedExpired {
		t.Fatalf("published %+v, want one Access Revoked (expired)", pub.published)
	}
	if got, _ := e.store.GetGrant(context.Background(), g.ID); e.store.due[got.ID] {
		t.Error("the grant is still in the expiry index after its revocation was published")
	}
}

// The replica that granted a grant ends it at its expiry; the replicas that
// adopted it from their look-ahead fire AdoptDelay later, so they do not
// race its revoke: when it has ended, theirs have not been tried.
func TestAdoptersDoNotRaceTheGrantingReplica(t *testing.T) {
	e := newEnv(t)
	out := e.handle(t, escalate("s1", "r1", 30))
	g, _ := e.store.GetGrant(context.Background(), out.GrantID)
	e.clock.Advance(g.ExpiresAt.Sub(e.clock.Now()) - 20*time.Millisecond)
	pub := &fakePublisher{}
	ctx, cancel := context.WithCancel(context.Background())
	var waits []func()
	for i := range 3 {
		replica := *e.svc
		timers := grants.NewTimers(&replica, pub, time.Hour, time.Hour, slog.New(slog.DiscardHandler))
		timers.AdoptDelay = time.Hour
		replica.Timers = timers
		waits = append(waits, timers.Start(ctx))
		if i == 0 {
			timers.Expire(g) // the granting replica
		} else {
			timers.Adopt(g)
		}
	}
	waitFor(t, "the granting replica to end the grant", func() bool {
		got, _ := e.store.GetGrant(context.Background(), g.ID)
		return got.State == grants.StateRevoked
	})
	cancel()
	for _, w := range waits {
		w()
	}
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	if e.store.revokes != 1 || e.iam.removes != 1 {
		t.Fatalf("%d revokes tried and %d removals by 3 replicas, want 1 and 1: the adopters raced the granting replica", e.store.revokes, e.iam.removes)
	}
}

// A grant whose replica died is ended by a replica that adopted it, once.
func TestAnAdopterEndsTheGrantOfAReplicaThatDied(t *testing.T) {
	e := newEnv(t)
	out := e.handle(t, escalate("s1", "r1", 30))
	g, _ := e.store.GetGrant(context.Background(), out.GrantID)
	e.clock.Advance(g.ExpiresAt.Sub(e.clock.Now()) - 20*time.Millisecond)
	pub := &fakePublisher{}
	ctx, cancel := context.WithCancel(context.Background())
	var waits []func()
	for range 2 {
		replica := *e.svc
		timers := grants.NewTimers(&replica, pub, time.Hour, time.Hour, slog.New(slog.DiscardHandler))
		timers.AdoptDelay = 50 * time.Millisecond
		replica.Timers = timers
		waits = append(waits, timers.Start(ctx))
		timers.Adopt(g)
	}
	waitFor(t, "an adopter to end the grant", func() bool {
		got, _ := e.store.GetGrant(context.Background(), g.ID)
		return got.State == grants.StateRevoked && !e.iam.isMember(alice, readonly)
	})
	cancel()
	for _, w := range waits {
		w()
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if e.iam.removes != 1 || len(pub.published) != 1 || pub.published[0].Reason != events.RevokedExpired {
		t.Fatalf("%d removals, published %+v; want one removal and one Access Revoked (expired)", e.iam.removes, pub.published)
	}
}

// A grant beyond the horizon gets only a wake-up timer (Upcoming leaves it
// out too); stopping
// the timers stops what has not fired.
func TestTimersArmOnlyWithinTheHorizonAndStop(t *testing.T) {
	e := newEnv(t)
	out := e.handle(t, escalate("s1", "r1", 60))
	g, _ := e.store.GetGrant(context.Background(), out.GrantID)
	ctx, cancel := context.WithCancel(context.Background())
	timers := grants.NewTimers(e.svc, &fakePublisher{}, time.Minute, time.Hour, slog.New(slog.DiscardHandler))
	wait := timers.Start(ctx)
	timers.Expire(g) // an hour away: a wake-up at 59 minutes, no expiry
	up, err := e.svc.Upcoming(context.Background(), time.Minute, 10)
	if err != nil || len(up) != 0 {
		t.Fatalf("Upcoming(1m) = %v, %v; want nothing", up, err)
	}
	if up, _ := e.svc.Upcoming(context.Background(), 2*time.Hour, 10); len(up) != 1 || up[0].ID != g.ID {
		t.Fatalf("Upcoming(2h) = %v, want the grant", up)
	}
	cancel()
	wait()
	if got, _ := e.store.GetGrant(context.Background(), g.ID); got.State != grants.StateActive {
		t.Fatalf("grant %s after stop, want still ACTIVE", got.State)
	}
}

// A late AddUserToGroup that lands after the last removal is undone by the
// sweep's read-back and counted; a membership a newer grant explains is
// left alone.
func TestSweepReadBackUndoesALateAdd(t *testing.T) {
	e := newEnv(t)
	e.handle(t, escalate("s1", "r1", 30))
	e.handle(t, deescalate("s2", "r1"))
	if e.iam.isMember(alice, readonly) {
		t.Fatal("deescalate left alice in")
	}
	lateAdd(e.iam, alice, readonly)
	st, err := e.svc.Sweep(context.Background(), &fakePublisher{}, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if st.StaleAdds != 1 || e.iam.isMember(alice, readonly) {
		t.Fatalf("sweep undid %d late adds, alice in: %v; want 1 and out", st.StaleAdds, e.iam.isMember(alice, readonly))
	}
	lateAdd(e.iam, alice, readonly) // a second one: the undoing removal is read back too
	if st, _ := e.svc.Sweep(context.Background(), &fakePublisher{}, 100, time.Minute); st.StaleAdds != 1 || e.iam.isMember(alice, readonly) {
		t.Fatalf("the next sweep undid %d late adds, want the second one", st.StaleAdds)
	}
	if st, _ := e.svc.Sweep(context.Background(), &fakePublisher{}, 100, time.Minute); st.StaleAdds != 0 {
		t.Fatalf("a second sweep undid %d more; the read-back should be done", st.StaleAdds)
	}

	// A new grant after the removal: the read-back it superseded does not
	// remove the user the grant let in.
	e.handle(t, deescalate("s3", "r1"))
	e.handle(t, escalate("s4", "r2", 30))
	st, err = e.svc.Sweep(context.Background(), &fakePublisher{}, 100, time.Minute)
	if err != nil || st.StaleAdds != 0 || !e.iam.isMember(alice, readonly) {
		t.Fatalf("sweep after a new grant: %+v, %v, alice in %v; want her kept", st, err, e.iam.isMember(alice, readonly))
	}
}

// The read-back timer undoes a late add within the settle delay, without
// waiting for a sweep.
func TestTimersReadBackAfterARemoval(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timers := grants.NewTimers(e.svc, &fakePublisher{}, time.Hour, 100*time.Millisecond, slog.New(slog.DiscardHandler))
	undone := make(chan struct{}, 1)
	e.svc.OnStaleAdd = func() { undone <- struct{}{} }
	e.svc.Timers = timers
	wait := timers.Start(ctx)
	defer wait()
	defer cancel()

	e.handle(t, escalate("s1", "r1", 30))
	e.handle(t, deescalate("s2", "r1")) // arms the read-back
	undo := func(which string) {
		t.Helper()
		lateAdd(e.iam, alice, readonly)
		select {
		case <-undone:
		case <-time.After(5 * time.Second):
			t.Fatalf("the %s late add was never undone", which)
		}
		if e.iam.isMember(alice, readonly) {
			t.Fatalf("alice is still in after the %s read-back", which)
		}
	}
	undo("first")
	// The undoing removal is read back too: a second late add goes the
	// same way.
	undo("second")
}

// lateAdd puts the user in the group behind iamjit's back, as an
// AddUserToGroup from a replica that died mid-converge would.
func lateAdd(f *fakeIAM, user, group string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members[iamKey{user, group}] = true
}

// A grant beyond the horizon is still ended on time by the replica that
// armed it: its wake-up timer arms the expiry one horizon before.
func TestTimersWakeUpForAGrantBeyondTheHorizon(t *testing.T) {
	e := newEnv(t)
	out := e.handle(t, escalate("s1", "r1", 30))
	g, _ := e.store.GetGrant(context.Background(), out.GrantID)
	e.clock.Advance(g.ExpiresAt.Sub(e.clock.Now()) - 150*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Horizon 100 ms: the expiry, 150 ms away, is beyond it.
	timers := grants.NewTimers(e.svc, &fakePublisher{}, 100*time.Millisecond, time.Hour, slog.New(slog.DiscardHandler))
	wait := timers.Start(ctx)
	timers.Expire(g)
	if keys := timers.PendingKeys(); !slices.Equal(keys, []string{"wake#" + g.ID}) {
		t.Fatalf("armed %v, want only the wake-up of %s", keys, g.ID)
	}
	// The fake clock stands still: once the wake-up (50 ms) has fired and
	// armed the expiry, move the clock past it.
	waitFor(t, "the wake-up to fire", func() bool {
		return !slices.Contains(timers.PendingKeys(), "wake#"+g.ID)
	})
	e.clock.Advance(time.Second)
	waitFor(t, "the grant to end through its wake-up timer", func() bool {
		got, _ := e.store.GetGrant(context.Background(), g.ID)
		return got.State == grants.StateRevoked && !e.iam.isMember(alice, readonly)
	})
	cancel()
	wait()
}

// Three replicas arm the same grant's Access Expiring: it is published
// once, Warning before the expiry, with the grant's fields and a stable
// result id; none for a grant shorter than twice the warning, and none for
// a grant that ended before its warning was due.
func TestAccessExpiringOnceAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	long := e.handle(t, escalate("s1", "r1", 30))  // 30 minutes: warned
	short := e.handle(t, escalate("s2", "r2", 19)) // 19 minutes < 2 × 10: never warned
	ended := e.handle(t, escalate("s3", "r3", 30)) // deescalated before its warning
	g, _ := e.store.GetGrant(context.Background(), long.GrantID)
	gs, _ := e.store.GetGrant(context.Background(), short.GrantID)
	ge, _ := e.store.GetGrant(context.Background(), ended.GrantID)
	e.handle(t, deescalate("d3", "r3"))
	pub := &fakePublisher{}
	ctx, cancel := context.WithCancel(context.Background())
	var replicas []*grants.Timers
	var waits []func()
	for range 3 {
		replica := *e.svc
		timers := grants.NewTimers(&replica, pub, time.Hour, time.Hour, slog.New(slog.DiscardHandler))
		timers.Warning = 10 * time.Minute
		waits = append(waits, timers.Start(ctx))
		replicas = append(replicas, timers)
	}
	// 20 ms before the short grant's warning would be due, then before the
	// long one's (and the ended grant's: the same expiry).
	for _, x := range []grants.Grant{gs, g} {
		e.clock.Advance(x.ExpiresAt.Add(-10*time.Minute).Sub(e.clock.Now()) - 20*time.Millisecond)
		for _, timers := range replicas {
			timers.Expire(x)
			if x.ID == g.ID {
				timers.Expire(ge) // due with g's, ended before
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	warnings := func() []events.Result {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		var out []events.Result
		for _, r := range pub.published {
			if r.DetailType == events.AccessExpiring {
				out = append(out, r)
			}
		}
		return out
	}
	waitFor(t, "the warning", func() bool { return len(warnings()) > 0 })
	time.Sleep(100 * time.Millisecond) // room for a second, wrong, warning
	cancel()
	for _, w := range waits {
		w()
	}
	got := warnings()
	if len(got) != 1 {
		t.Fatalf("warnings %+v, want exactly one Access Expiring", got)
	}
	w := got[0]
	if w.DetailType != events.AccessExpiring || w.GrantID != g.ID || w.ResultID != events.ResultID(events.AccessExpiring, g.ID) ||
		w.ExpiresAt == nil || !w.ExpiresAt.Equal(g.ExpiresAt) || w.IAMUser != alice {
		t.Errorf("warning %+v, want Access Expiring of %s with its fields", w, g.ID)
	}
}

// A warning timer that fires at or after the grant's expiry (a starved
// process) publishes nothing: the grant is ending, Access Revoked is next.
func TestAccessExpiringNotAfterTheExpiry(t *testing.T) {
	e := newEnv(t)
	res := e.handle(t, escalate("s1", "r1", 30))
	g, _ := e.store.GetGrant(context.Background(), res.GrantID)
	pub := &fakePublisher{}
	ctx, cancel := context.WithCancel(context.Background())
	timers := grants.NewTimers(e.svc, pub, time.Hour, time.Hour, slog.New(slog.DiscardHandler))
	timers.Warning = 10 * time.Minute
	wait := timers.Start(ctx)
	// Armed 20 ms before the warning is due; by the time it fires the
	// clock has passed the expiry.
	e.clock.Advance(g.ExpiresAt.Add(-10*time.Minute).Sub(e.clock.Now()) - 20*time.Millisecond)
	timers.Expire(g)
	e.clock.Advance(10*time.Minute + 20*time.Millisecond) // the expiry itself
	time.Sleep(200 * time.Millisecond)
	cancel()
	wait()
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, r := range pub.published {
		if r.DetailType == events.AccessExpiring {
			t.Fatalf("Access Expiring published after the expiry: %+v", r)
		}
	}
	if e.store.warned[g.ID] {
		t.Fatal("the grant was marked warned")
	}
}
