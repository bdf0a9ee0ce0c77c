package grants_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/iamjit/iamjit/grants"
)

// fakeBackstop records what the service asks of the backstop.
type fakeBackstop struct {
	mu      sync.Mutex
	armed   map[grants.Key]time.Time // latest expiry each membership was armed to
	arms    int
	disarms int
	// beforeDisarm, when set, runs at the start of the next Disarm, once.
	beforeDisarm func()
}

func (b *fakeBackstop) Arm(_ context.Context, k grants.Key, expires time.Time) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.arms++
	if expires.After(b.armed[k]) {
		b.armed[k] = expires
	}
	return "created", nil
}

func (b *fakeBackstop) Ensure(ctx context.Context, k grants.Key, expires time.Time) (string, error) {
	return b.Arm(ctx, k, expires)
}

func (b *fakeBackstop) Disarm(_ context.Context, k grants.Key) error {
	if hook := b.beforeDisarm; hook != nil {
		b.beforeDisarm = nil
		hook()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.disarms++
	delete(b.armed, k)
	return nil
}

func withBackstop(e *env) *fakeBackstop {
	b := &fakeBackstop{armed: map[grants.Key]time.Time{}}
	e.svc.Accounts.Home().Backstop = b
	return b
}

// A grant arms its membership's backstop to its expiry; an overlapping,
// later one moves it; the end of the last deletes it.
func TestBackstopFollowsTheMembership(t *testing.T) {
	e := newEnv(t)
	b := withBackstop(e)
	g1 := e.grantOf(t, escalate("s1", "r1", 30))
	k := g1.Key()
	if got := b.armed[k]; !got.Equal(g1.ExpiresAt) {
		t.Fatalf("armed to %s, want the grant's expiry %s", got, g1.ExpiresAt)
	}
	g2 := e.grantOf(t, escalate("s2", "r2", 50))
	if got := b.armed[k]; !got.Equal(g2.ExpiresAt) {
		t.Fatalf("armed to %s after the overlapping grant, want %s", got, g2.ExpiresAt)
	}
	e.handle(t, deescalate("d1", "r1"))
	if b.disarms != 0 || !b.armed[k].Equal(g2.ExpiresAt) {
		t.Fatalf("the first grant's end touched the backstop: disarms %d, armed %s", b.disarms, b.armed[k])
	}
	e.handle(t, deescalate("d2", "r2"))
	if _, ok := b.armed[k]; ok || b.disarms != 1 {
		t.Fatalf("after the last grant: armed %v, disarms %d; want deleted once", b.armed, b.disarms)
	}
}

// The last grant's end reads the membership empty and deletes its schedule;
// a new grant recorded and armed after that read but before the delete
// loses its schedule to it. The backstop does not re-read the store for
// that: converge's MarkSynced finds the token moved, and its next round
// reads the new grant and arms again. At rest the new grant has its
// schedule and its membership.
func TestBackstopOfAGrantRecordedDuringTheLastEndsDisarm(t *testing.T) {
	e := newEnv(t)
	b := withBackstop(e)
	k := e.grantOf(t, escalate("s1", "r1", 30)).Key()
	var second grants.Grant
	b.beforeDisarm = func() {
		second = e.grantOf(t, escalate("s2", "r2", 50)) // recorded and armed before the delete
	}
	e.handle(t, deescalate("d1", "r1"))
	if second.ID == "" {
		t.Fatal("the disarm never ran: the race was not driven")
	}
	if got := b.armed[k]; !got.Equal(second.ExpiresAt) {
		t.Fatalf("armed %v after the end raced the new grant, want %s (the new grant's expiry)", b.armed, second.ExpiresAt)
	}
	if !e.iam.isMember(alice, readonly) {
		t.Fatal("the new grant's membership was left removed")
	}
	e.checkAtRest(t)
}

// A re-add by a caller that wrote nothing (reconcile) arms the backstop to
// the latest expiry of the grants the membership item holds, from the one
// read converge made of it: the item is not read again for the backstop.
func TestBackstopOfAReaddReadsTheItemOnce(t *testing.T) {
	e := newEnv(t)
	b := withBackstop(e)
	e.handle(t, escalate("s1", "r1", 30))
	g := e.grantOf(t, escalate("s2", "r2", 50))
	k := g.Key()
	if _, err := e.iam.RemoveUser(context.Background(), k.User, k.Group); err != nil { // drift
		t.Fatal(err)
	}
	b.armed = map[grants.Key]time.Time{}
	e.store.mu.Lock()
	e.store.membershipReads = 0
	e.store.mu.Unlock()
	in, _, err := e.svc.Converge(context.Background(), k, "re-added", nil)
	if err != nil || !in {
		t.Fatalf("Converge = %v, %v; want the user back in", in, err)
	}
	if got := b.armed[k]; !got.Equal(g.ExpiresAt) {
		t.Fatalf("armed to %s, want the latest expiry %s", got, g.ExpiresAt)
	}
	e.store.mu.Lock()
	reads := e.store.membershipReads
	e.store.mu.Unlock()
	if reads != 1 {
		t.Fatalf("the membership item was read %d times, want once", reads)
	}
}
