package grants

import (
	"context"
	"fmt"
)

// maxConverge bounds how often one caller chases a membership that others
// keep changing; past it the caller fails and its message is retried.
const maxConverge = 8

// converge makes IAM agree with the membership item k, in k's account.
// With a token, the caller has just written the item and knows that it wants
// the user in the group (want); without one it reads the item first. It
// returns what ending the membership did to the role sessions it enabled.
func (s *Service) converge(ctx context.Context, k Key, token string, want bool, grantID, symID string) (SessionsEnded, error) {
	var ended SessionsEnded
	acct, err := s.account(k.Account)
	if err != nil {
		return ended, err
	}
	user, group := k.User, k.Group
	dirty := false
	for range maxConverge {
		if token == "" {
			m, err := s.Store.Membership(ctx, k)
			if err != nil {
				return ended, fmt.Errorf("read membership %s: %w", k, err)
			}
			token, want, dirty = m.Token, len(m.GrantIDs) > 0, m.Dirty
		}
		action := "iam_remove"
		var reqID string
		var err error
		if want {
			action = "iam_add"
			reqID, err = acct.IAM.AddUser(ctx, user, group)
		} else {
			reqID, err = acct.IAM.RemoveUser(ctx, user, group)
			if err == nil && dirty {
				// A write emptied the set since IAM last agreed: the
				// membership ends now, and so must its role sessions.
				var res SessionsEnded
				res, err = s.endSessions(ctx, acct, k, grantID, symID)
				ended.merge(res)
			}
		}
		if err != nil {
			return ended, fmt.Errorf("converge %s: %w", k, err)
		}
		t := Transition{At: s.Now().UTC(), Action: action, SymEventID: symID, IAMRequestID: reqID}
		ok, err := s.Store.MarkSynced(ctx, k, token, grantID, t)
		if err != nil {
			return ended, fmt.Errorf("mark %s synced: %w", k, err)
		}
		if ok {
			// A membership never written (no token) queued no read-back.
			if !want && token != "" && s.Timers != nil {
				s.Timers.Recheck(k, token)
			}
			return ended, nil
		}
		token = "" // someone wrote after us: read and converge again
	}
	return ended, fmt.Errorf("converge %s: membership changed %d times while converging", k, maxConverge)
}

// recheck reads IAM back after a removal has settled. An AddUserToGroup
// sent by a replica that died before it could converge again can land after
// the last RemoveUserFromGroup; IAM would then keep the user in while the
// store says out, until a reconcile. If the membership is still the one that
// was removed (same token, no grant) and IAM has the user, remove again. It
// reports whether it undid a late add.
func (s *Service) recheck(ctx context.Context, k Key, token string) (bool, error) {
	acct, err := s.account(k.Account)
	if err != nil {
		return false, err
	}
	user, group := k.User, k.Group
	m, err := s.Store.Membership(ctx, k)
	if err != nil {
		return false, fmt.Errorf("read membership %s: %w", k, err)
	}
	undone := false
	if m.Token == token && len(m.GrantIDs) == 0 {
		in, err := acct.IAM.IsMember(ctx, user, group)
		if err != nil {
			return false, fmt.Errorf("read back %s: %w", k, err)
		}
		if in {
			reqID, err := acct.IAM.RemoveUser(ctx, user, group)
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
					"account_id", s.AccountID(k.Account), "iam_user", user, "group", group, "aws_request_id", reqID)
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
