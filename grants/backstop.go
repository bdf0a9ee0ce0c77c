package grants

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Backstop keeps, for every membership, one schedule that AWS runs to end
// it by itself after its latest expiry plus a grace, so that access ends
// even when no iamjit process is left to end it (grants/backstop). It never
// moves a schedule earlier than the latest expiry of the membership's
// active grants.
type Backstop interface {
	// Arm makes k's schedule fire no earlier than expires plus the grace,
	// creating or moving it (never earlier); it says what it did. It tries
	// a create first: a new membership's schedule costs one call.
	Arm(ctx context.Context, k Key, expires time.Time) (string, error)
	// Ensure is Arm reading first: for a schedule that most likely exists.
	Ensure(ctx context.Context, k Key, expires time.Time) (string, error)
	// Disarm deletes k's schedule at the end of its last grant; none is
	// success.
	Disarm(ctx context.Context, k Key) error
}

// Ops OnBackstop hears besides what Arm says: a deleted schedule, and one
// Arm found right.
const (
	BackstopDisarmed = "deleted"
	BackstopKept     = "kept"
)

// arm keeps k's backstop at least at expires (zero: the latest expiry of
// k's active grants). A failure does not fail the request: access stays as
// granted, iamjit's own expiry still ends it, the failure is counted and
// logged, and the sweep's backstop check arms it again (CheckBackstops).
func (s *Service) arm(ctx context.Context, acct *Account, k Key, expires time.Time, held []string) {
	if acct.Backstop == nil {
		return
	}
	op, err := s.armBackstop(ctx, acct, k, expires, held)
	s.observeBackstop(ctx, k, op, err)
}

// armBackstop arms k's backstop to expires, else to the latest expiry of
// the grants converge read the item holding (held), else of those the
// store holds now: the item is not read twice.
func (s *Service) armBackstop(ctx context.Context, acct *Account, k Key, expires time.Time, held []string) (string, error) {
	if expires.IsZero() {
		var active bool
		var err error
		if held != nil {
			expires, active, err = s.latestOf(ctx, k, held)
		} else {
			expires, active, err = s.LatestExpiry(ctx, k)
		}
		if err != nil || !active {
			return "", err
		}
	}
	return acct.Backstop.Arm(ctx, k, expires)
}

// disarm deletes k's backstop after its removal; a failure is counted and
// logged (the schedule, if it fires, removes a user who is not there, and a
// later grant of k moves it).
func (s *Service) disarm(ctx context.Context, acct *Account, k Key) {
	if acct.Backstop == nil {
		return
	}
	s.observeBackstop(ctx, k, BackstopDisarmed, acct.Backstop.Disarm(ctx, k))
}

func (s *Service) observeBackstop(ctx context.Context, k Key, op string, err error) {
	if s.OnBackstop != nil {
		s.OnBackstop(op, err)
	}
	if err != nil {
		s.Log.WarnContext(ctx, "expiry backstop not written; iamjit's own expiry still ends the membership", "membership", k.String(), "op", op, "err", err)
	}
}

// LatestExpiry is the latest expiry of membership k's active grants, as the
// store holds them now; active is false when it has none.
func (s *Service) LatestExpiry(ctx context.Context, k Key) (time.Time, bool, error) {
	m, err := s.Store.Membership(ctx, k)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read membership %s: %w", k, err)
	}
	return s.latestOf(ctx, k, m.GrantIDs)
}

// latestOf is the latest expiry of the active grants among ids, k's.
func (s *Service) latestOf(ctx context.Context, k Key, ids []string) (time.Time, bool, error) {
	var latest time.Time
	for _, id := range ids {
		g, err := s.Store.GetGrant(ctx, id)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("read grant %s of %s: %w", id, k, err)
		}
		if g.State == StateActive && g.ExpiresAt.After(latest) {
			latest = g.ExpiresAt
		}
	}
	return latest, !latest.IsZero(), nil
}

// CheckBackstops makes sure every membership that active explains has its
// backstop, at least at its latest expiry: a write that failed, or one a
// replica killed between the store and the schedule never made, is made
// now. It returns how many memberships were unguarded (their schedule had
// to be created or moved); expired grants are the sweeper's.
func (s *Service) CheckBackstops(ctx context.Context, active []Grant) (int, error) {
	now := s.Now()
	latest := map[Key]time.Time{}
	for _, g := range active {
		if g.State == StateActive && g.ExpiresAt.After(now) && g.ExpiresAt.After(latest[g.Key()]) {
			latest[g.Key()] = g.ExpiresAt
		}
	}
	unguarded := 0
	var errs []error
	for k, expires := range latest {
		acct, err := s.Accounts.Of(k)
		if err != nil || acct.Backstop == nil {
			continue
		}
		op, err := acct.Backstop.Ensure(ctx, k, expires)
		s.observeBackstop(ctx, k, op, err)
		switch {
		case err != nil:
			unguarded++
			errs = append(errs, err)
		case op != BackstopKept:
			unguarded++
		}
	}
	return unguarded, errors.Join(errs...)
}
