package grants

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// maxMembershipChanges bounds how often one converge chases a membership
// item that other writers keep changing; past it the caller fails and its
// message (or the sweep) retries. sessions bounds its role items alike, on
// its own: neither domain package imports the other for a constant.
const maxMembershipChanges = 8

// change is what one converge knows and notes.
type change struct {
	// token and want: the item as the caller has just written it; without a
	// token converge reads the item first.
	token string
	want  bool
	// grantID and symID: whose history notes the IAM call ("" none).
	grantID, symID string
	// note, when set, is the history note of an add, and the add is noted in
	// the grant explain picks of those the item holds (Converge).
	note    string
	explain []string
	// expires, when set, is the expiry of the grant just written: the
	// backstop is armed to at least it (else to the store's latest).
	expires time.Time
}

// converge makes IAM agree with the membership item k, in k's account, and
// reports whether the user ended up in the group and what ending the
// membership did to the role sessions it enabled.
//
// A removal ends the membership's role sessions when IAM really had the
// user (a request id, not "not a member") or a write emptied the set since
// IAM last agreed (dirty): either way access that was there ends now.
// It runs before MarkSynced, so a failure leaves the item to be converged
// again.
func (s *Service) converge(ctx context.Context, k Key, c change) (bool, SessionsEnded, error) {
	var ended SessionsEnded
	acct, err := s.Accounts.Of(k)
	if err != nil {
		return false, ended, err
	}
	members := acct.MembersOf(k.Kind)
	token, want, grantID, dirty := c.token, c.want, c.grantID, false
	var held []string // the grants the item held when converge read it
	for range maxMembershipChanges {
		if token == "" {
			m, err := s.Store.Membership(ctx, k)
			if err != nil {
				return false, ended, fmt.Errorf("read membership %s: %w", k, err)
			}
			token, want, dirty, held = m.Token, len(m.GrantIDs) > 0, m.Dirty, m.GrantIDs
			if c.note != "" {
				grantID = ""
				if want {
					grantID = explaining(m.GrantIDs, c.explain)
				}
			}
		}
		t := Transition{Action: "iam_remove", SymEventID: c.symID}
		var err error
		if want {
			t.Action, t.Note = "iam_add", c.note
			if k.Kind != SSOGroup {
				// Before the add: a schedule a killed replica left is moved
				// before the membership it would end exists.
				s.arm(ctx, acct, k, c.expires, held)
			}
			t.IAMRequestID, err = members.Add(ctx, k)
			if err == nil && k.Kind == SSOGroup {
				s.arm(ctx, acct, k, c.expires, held) // its removal names the membership id
			}
		} else {
			t.IAMRequestID, err = members.Remove(ctx, k)
			if err == nil {
				s.disarm(ctx, acct, k)
			}
			if err == nil && (t.IAMRequestID != "" || dirty) {
				var res SessionsEnded
				res, err = s.endSessions(ctx, acct, k, grantID, c.symID)
				ended.merge(res)
			}
		}
		if err != nil {
			return false, ended, fmt.Errorf("converge %s: %w", k, err)
		}
		t.At = s.Now().UTC()
		ok, err := s.Store.MarkSynced(ctx, k, token, grantID, t)
		if err != nil {
			return false, ended, fmt.Errorf("mark %s synced: %w", k, err)
		}
		if ok {
			// A membership never written (no token) queued no read-back.
			if !want && token != "" && s.Timers != nil {
				s.Timers.Recheck(k, token)
			}
			return want, ended, nil
		}
		token = "" // someone wrote after us: read and converge again
	}
	return false, ended, fmt.Errorf("converge %s: membership changed %d times while converging", k, maxMembershipChanges)
}

// Converge makes IAM agree with the membership item k for a caller that did
// not write it (reconcile), through the same protocol as every other writer.
// A re-add is noted, with note, in the history of the first of prefer the
// item still holds, else of the item's least grant id. It reports whether
// the user ended up in the group.
func (s *Service) Converge(ctx context.Context, k Key, note string, prefer []string) (bool, SessionsEnded, error) {
	return s.converge(ctx, k, change{note: note, explain: prefer})
}

// explaining picks the grant whose history records a re-add: the first of
// prefer the item still holds, else the least id the item holds (the
// store's set has no order; the least is the same pick on every replica).
func explaining(stored, prefer []string) string {
	for _, id := range prefer {
		if slices.Contains(stored, id) {
			return id
		}
	}
	return slices.Min(stored)
}

// recheck reads IAM back after a removal has settled. An AddUserToGroup
// sent by a replica that died before it could converge again can land after
// the last RemoveUserFromGroup; IAM would then keep the user in while the
// store says out, until a reconcile. If the membership is still the one that
// was removed (same token, no grant) and IAM has the user, remove again. It
// reports whether it undid a late add.
func (s *Service) recheck(ctx context.Context, k Key, token string) (bool, error) {
	acct, err := s.Accounts.Of(k)
	if err != nil {
		return false, err
	}
	members := acct.MembersOf(k.Kind)
	m, err := s.Store.Membership(ctx, k)
	if err != nil {
		return false, fmt.Errorf("read membership %s: %w", k, err)
	}
	undone := false
	if m.Token == token && len(m.GrantIDs) == 0 {
		in, err := members.IsMember(ctx, k)
		if err != nil {
			return false, fmt.Errorf("read back %s: %w", k, err)
		}
		if in {
			reqID, err := members.Remove(ctx, k)
			if err != nil {
				return false, fmt.Errorf("undo a late add of %s: %w", k, err)
			}
			// No request id: IAM said "not a member" after all (a stale read).
			undone = reqID != ""
			if undone {
				if s.OnStaleAdd != nil {
					s.OnStaleAdd()
				}
				s.Log.WarnContext(ctx, "late add undone: IAM had the user in the group after the last removal",
					"account_id", k.Account, "iam_user", k.User, "group", k.Group, "aws_request_id", reqID)
				// Sessions started through the late add end with it: a new
				// cutoff, as for any ended membership. On an error the
				// read-back stays queued and is tried again.
				if _, err := s.endSessions(ctx, acct, k, "", ""); err != nil {
					return undone, err
				}
				// This removal is read back too: a second late add is
				// undone like the first. Queued again, if nobody wrote since.
				t := Transition{At: s.Now().UTC(), Action: "iam_remove", IAMRequestID: reqID, Note: "late add undone"}
				if _, err := s.Store.MarkSynced(ctx, k, token, "", t); err != nil {
					return undone, fmt.Errorf("queue the read-back of %s again: %w", k, err)
				}
				return undone, nil
			}
		}
	}
	// A newer write (token moved) queues its own read-back; this one is done.
	if err := s.Store.Rechecked(ctx, k, token); err != nil {
		return undone, fmt.Errorf("take %s off the read-back queue: %w", k, err)
	}
	return undone, nil
}
