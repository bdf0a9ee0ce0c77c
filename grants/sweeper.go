package grants

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/iamjit/iamjit/events"
)

// Publisher makes result events durable (events/eventbridge).
type Publisher interface {
	Publish(ctx context.Context, results []events.Result) error
}

// SweepStats says what one sweep did.
type SweepStats struct {
	Due      int // grants read from the expiry index
	Revoked  int
	Repaired int           // dirty memberships converged
	Lag      time.Duration // how overdue the oldest due grant was
	// StaleAdds counts late adds the read-back of removals undid.
	StaleAdds int
}

// Sweep revokes every grant whose expiry has passed and converges
// memberships left dirty by a writer that stopped halfway. It reads only the
// expiry index. A grant stays in the index until its Access Revoked is
// published, so a sweep that dies halfway is finished by the next one.
func (s *Service) Sweep(ctx context.Context, pub Publisher, batch int32, dirtyGrace time.Duration) (SweepStats, error) {
	var st SweepStats
	now := s.Now().UTC()
	var errs []error
	for {
		due, err := s.Store.Due(ctx, now, batch)
		if err != nil {
			return st, fmt.Errorf("read expiry index: %w", err)
		}
		if len(due) > 0 && st.Due == 0 {
			st.Lag = now.Sub(due[0].ExpiresAt)
		}
		st.Due += len(due)
		progressed := 0
		for _, err := range byAccount(due, func(g Grant) string { return g.Account }, func(g Grant) error { return s.expire(ctx, pub, g) }) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			progressed++
			st.Revoked++
		}
		// A page that made no progress would be read again: stop instead.
		if int32(len(due)) < batch || progressed == 0 {
			break
		}
	}
	dirty, err := s.Store.Dirty(ctx, now.Add(-dirtyGrace), batch)
	if err != nil {
		errs = append(errs, fmt.Errorf("read dirty memberships: %w", err))
	}
	for _, err := range byAccount(dirty, func(m Membership) string { return m.Account }, func(m Membership) error {
		_, _, err := s.converge(ctx, m.Key(), change{})
		return err
	}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st.Repaired++
	}
	// The timer of the replica that removed reads a removal back when it is
	// due; the sweep takes only what has waited past the grace (its replica
	// died), as it does with dirty memberships.
	rechecks, err := s.Store.Rechecks(ctx, now.Add(-dirtyGrace), batch)
	if err != nil {
		errs = append(errs, fmt.Errorf("read the read-back queue: %w", err))
	}
	var undone atomic.Int64
	for _, err := range byAccount(rechecks, func(m Membership) string { return m.Account }, func(m Membership) error {
		u, err := s.recheck(ctx, m.Key(), m.Token)
		if u {
			undone.Add(1)
		}
		return err
	}) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	st.StaleAdds = int(undone.Load())
	return st, errors.Join(errs...)
}

// Upcoming lists ACTIVE grants that expire within horizon, for Timers: a
// replica adopts every grant its sweep sees coming (Timers.Adopt), so the
// grant ends even when the replica that granted it is gone.
func (s *Service) Upcoming(ctx context.Context, horizon time.Duration, limit int32) ([]Grant, error) {
	now := s.Now().UTC()
	due, err := s.Store.Due(ctx, now.Add(horizon), limit)
	if err != nil {
		return nil, fmt.Errorf("read expiry index: %w", err)
	}
	out := due[:0]
	for _, g := range due {
		if g.State == StateActive && g.ExpiresAt.After(now) {
			out = append(out, g)
		}
	}
	return out, nil
}

// warn publishes g's Access Expiring once: the store says which caller
// sends it, and none is sent for a grant that has ended, or whose expiry
// has come (a timer that fires late on a starved process: Access Revoked
// is next, a warning would arrive after it or say access ends in the past).
// A process that dies between the two sends none (the grant still ends on
// time).
func (s *Service) warn(ctx context.Context, pub Publisher, g Grant) error {
	now := s.Now().UTC()
	if !now.Before(g.ExpiresAt) {
		return nil
	}
	ok, err := s.Store.MarkWarned(ctx, g.ID, now)
	if err != nil || !ok {
		return err
	}
	res := grantedResult(g)
	res.DetailType, res.ResultID = events.AccessExpiring, events.ResultID(events.AccessExpiring, g.ID)
	res.Message = "access ends at " + g.ExpiresAt.UTC().Format(time.RFC3339)
	if err := pub.Publish(ctx, []events.Result{res}); err != nil {
		return fmt.Errorf("publish Access Expiring of %s: %w", g.ID, err)
	}
	s.Log.InfoContext(ctx, "access expiring", "grant_id", g.ID, "expires_at", g.ExpiresAt)
	return nil
}

func (s *Service) expire(ctx context.Context, pub Publisher, g Grant) error {
	out := Outcome{Results: []events.Result{revokedResult(g)}}
	if g.State == StateActive {
		// The time of the revocation, not of the sweep's start: a long sweep
		// must not backdate the grants it reaches late.
		g.State, g.RevokedAt, g.RevokeReason = StateRevoked, s.Now().UTC(), events.RevokedExpired
		var err error
		out, err = s.revoke(ctx, g, nil, true)
		if errors.Is(err, errRaced) {
			return nil // revoked by someone else meanwhile; the next sweep sees it
		}
		if err != nil {
			return err
		}
	} else if _, _, err := s.converge(ctx, g.Key(), change{}); err != nil {
		return err
	}
	if err := pub.Publish(ctx, out.Results); err != nil {
		return fmt.Errorf("publish revocation of %s: %w", g.ID, err)
	}
	if err := s.Store.Undue(ctx, g.ID); err != nil {
		return fmt.Errorf("take %s off the expiry index: %w", g.ID, err)
	}
	return nil
}
