package grants

import (
	"context"
	"fmt"
)

// maxConverge bounds how often one caller chases a membership that others
// keep changing; past it the caller fails and its message is retried.
const maxConverge = 8

// converge makes IAM agree with the membership item of (user, group).
// With a token, the caller has just written the item and knows that it wants
// the user in the group (want); without one it reads the item first. It
// returns what ending the membership did to the role sessions it enabled.
func (s *Service) converge(ctx context.Context, user, group, token string, want bool, grantID, symID string) (SessionsEnded, error) {
	var ended SessionsEnded
	dirty := false
	for range maxConverge {
		if token == "" {
			m, err := s.Store.Membership(ctx, user, group)
			if err != nil {
				return ended, fmt.Errorf("read membership %s in %s: %w", user, group, err)
			}
			token, want, dirty = m.Token, len(m.GrantIDs) > 0, m.Dirty
		}
		action := "iam_remove"
		var reqID string
		var err error
		if want {
			action = "iam_add"
			reqID, err = s.IAM.AddUser(ctx, user, group)
		} else {
			reqID, err = s.IAM.RemoveUser(ctx, user, group)
			if err == nil && dirty {
				// A write emptied the set since IAM last agreed: the
				// membership ends now, and so must its role sessions.
				var res SessionsEnded
				res, err = s.endSessions(ctx, user, group, grantID, symID)
				ended.merge(res)
			}
		}
		if err != nil {
			return ended, fmt.Errorf("converge %s in %s: %w", user, group, err)
		}
		t := Transition{At: s.Now().UTC(), Action: action, SymEventID: symID, IAMRequestID: reqID}
		ok, err := s.Store.MarkSynced(ctx, user, group, token, grantID, t)
		if err != nil {
			return ended, fmt.Errorf("mark %s in %s synced: %w", user, group, err)
		}
		if ok {
			return ended, nil
		}
		token = "" // someone wrote after us: read and converge again
	}
	return ended, fmt.Errorf("converge %s in %s: membership changed %d times while converging", user, group, maxConverge)
}
