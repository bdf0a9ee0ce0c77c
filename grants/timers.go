package grants

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Timers ends grants at their expiry, and reads removals back once IAM
// has settled, from timers in this process. The sweep (every
// IAMJIT_SWEEP_INTERVAL) does both as well, but alone it ends a grant up to
// an interval late; a timer fires on time:
//
//   - Expire arms a grant's end at its expires_at; a grant expiring beyond
//     the horizon first gets a wake-up, one horizon before, that arms it.
//     The replica that granted it calls Expire. Every replica whose sweep
//     sees the grant coming (Service.Upcoming) calls Adopt, which arms the
//     same, AdoptDelay later: if the granting replica is gone, an adopter
//     ends the grant; if it is alive, it has ended it and the adopters'
//     conditional revokes are refused without calling IAM. Delayed, they
//     do not race the granting replica's revoke at the same instant (on
//     DynamoDB, transactions on one item at once cancel each other as
//     TransactionConflict; on the emulator they queued in front of it).
//   - Expire also arms the grant's Access Expiring, Warning before its
//     expiry (none for a grant shorter than twice Warning); Adopt arms it
//     AdoptDelay later, and the store lets one replica publish it.
//   - Recheck arms the read-back of a removal settle after it
//     (IAMJIT_READBACK_DELAY; see Service.recheck). A read-back that undid
//     a late add arms the read-back of its own removal.
//
// A timer is armed at most once at a time per grant or removal. Both kinds
// are also in the store's indexes (expiry, read-back queue): if this
// process dies or a timer's work fails, the next sweep of any replica
// finishes it.
type Timers struct {
	svc     *Service
	pub     Publisher
	horizon time.Duration
	settle  time.Duration
	log     *slog.Logger
	// Warning is how long before its expiry a grant's Access Expiring is
	// published (IAMJIT_EXPIRY_WARNING); 0 publishes none.
	Warning time.Duration
	// AdoptDelay is how long after its granting replica's timers an
	// adopter's fire (Adopt).
	AdoptDelay time.Duration

	mu      sync.Mutex
	ctx     context.Context // nil until Start, and again once Start's ctx ends
	pending map[string]*time.Timer
	wg      sync.WaitGroup
}

// NewTimers returns timers for svc that publish through pub. horizon bounds
// how far ahead an expiry is armed (a later one gets a wake-up first);
// settle is how long after a removal IAM is read back.
func NewTimers(svc *Service, pub Publisher, horizon, settle time.Duration, log *slog.Logger) *Timers {
	return &Timers{svc: svc, pub: pub, horizon: horizon, settle: settle, log: log, AdoptDelay: DefaultAdoptDelay, pending: map[string]*time.Timer{}}
}

// DefaultAdoptDelay is Timers.AdoptDelay unless set: the granting replica's
// revocation takes tens of milliseconds, so a second is far behind it, and
// a grant whose replica died ends at most that late.
const DefaultAdoptDelay = time.Second

// Start lets timers be armed until ctx ends; then it stops those that have
// not fired (what they would have done is in the store's indexes for the
// next sweep). wait blocks until then and until the ones firing are done.
func (t *Timers) Start(ctx context.Context) (wait func()) {
	t.mu.Lock()
	t.ctx = ctx
	t.mu.Unlock()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		t.mu.Lock()
		t.ctx = nil
		for key, tm := range t.pending {
			if tm.Stop() {
				t.wg.Done() // its func will never run
			}
			delete(t.pending, key)
		}
		t.mu.Unlock()
		t.wg.Wait()
	}()
	return func() { <-stopped }
}

// Horizon is how far ahead Expire arms timers.
func (t *Timers) Horizon() time.Duration { return t.horizon }

// Expire implements Scheduler: end g at its expiry. A grant that expires
// beyond the horizon gets a wake-up timer instead, one horizon before its
// expiry, which arms the expiry then: the sweep's look-ahead (Upcoming) is
// a page of the next grants due, which many grants expiring close together
// outrun, so the replica that granted g must not leave a longer grant to
// it. A grant whose timer is still pending is not armed again.
func (t *Timers) Expire(g Grant) { t.schedule(g, 0) }

// Adopt arms what Expire does for a grant another replica granted,
// AdoptDelay later: a backup that ends it if that replica is gone.
func (t *Timers) Adopt(g Grant) { t.schedule(g, t.AdoptDelay) }

// schedule arms g's warning and end, each lag after its time.
func (t *Timers) schedule(g Grant, lag time.Duration) {
	t.warn(g, lag)
	d := g.ExpiresAt.Sub(t.svc.Now())
	if d > t.horizon {
		t.arm("wake#"+g.ID, d-t.horizon, func(context.Context) { t.armExpiry(g, g.ExpiresAt.Sub(t.svc.Now())+lag) })
		return
	}
	t.armExpiry(g, d+lag)
}

func (t *Timers) armExpiry(g Grant, d time.Duration) {
	t.arm("expire#"+g.ID, d, func(ctx context.Context) {
		if err := t.svc.expire(ctx, t.pub, g); err != nil && ctx.Err() == nil {
			t.log.WarnContext(ctx, "ending a grant at its expiry failed; the sweep retries", "grant_id", g.ID, "err", err)
		}
	})
}

// warn arms g's Access Expiring, Warning (and lag) before its expiry,
// unless g is shorter than twice Warning or the time has passed.
func (t *Timers) warn(g Grant, lag time.Duration) {
	if t.Warning <= 0 || g.ExpiresAt.Sub(g.GrantedAt) < 2*t.Warning {
		return
	}
	d := g.ExpiresAt.Add(-t.Warning).Sub(t.svc.Now())
	if d < 0 {
		return
	}
	t.arm("warn#"+g.ID, d+lag, func(ctx context.Context) {
		if err := t.svc.warn(ctx, t.pub, g); err != nil && ctx.Err() == nil {
			t.log.WarnContext(ctx, "Access Expiring not published", "grant_id", g.ID, "err", err)
		}
	})
}

// Recheck implements Scheduler: read the removal of membership k back once
// IAM has settled.
func (t *Timers) Recheck(k Key, token string) { t.recheck(k, token, 0) }

// recheck arms read-back number round of one removal: a removal that undid
// a late add is read back in its turn.
func (t *Timers) recheck(k Key, token string, round int) {
	key := "recheck#" + string(k.Kind) + "#" + k.Account + "#" + k.User + "#" + k.Group + "#" + token + "#" + strconv.Itoa(round)
	t.arm(key, t.settle, func(ctx context.Context) {
		undone, err := t.svc.recheck(ctx, k, token)
		if err != nil && ctx.Err() == nil {
			t.log.WarnContext(ctx, "reading a removal back failed; the sweep retries", "membership", k.String(), "err", err)
		}
		if undone {
			t.recheck(k, token, round+1)
		}
	})
}

func (t *Timers) arm(key string, after time.Duration, fire func(context.Context)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil || t.pending[key] != nil {
		return
	}
	ctx := t.ctx
	t.wg.Add(1)
	t.pending[key] = time.AfterFunc(max(after, 0), func() {
		defer t.wg.Done()
		fire(ctx)
		t.mu.Lock()
		delete(t.pending, key)
		t.mu.Unlock()
	})
}

var _ Scheduler = (*Timers)(nil)
