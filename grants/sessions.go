package grants

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Sessions ends the role sessions a membership enabled (package sessions).
// converge calls it after IAM removed the user and before the membership is
// marked synced, so a failure or a crash leaves the membership dirty and the
// call is made again (by a redelivery or the sweeper).
type Sessions interface {
	MembershipEnded(ctx context.Context, k Key, at time.Time) (SessionsEnded, error)
}

// SessionsEnded is what an ended membership did to the roles it enabled.
type SessionsEnded struct {
	Revoked    []string // role ARNs whose sessions issued before the end now fail
	Skipped    []string // roles outside IAMJIT_ROLE_PATH: reported, never touched
	NotRevoked []string // under the path, but nothing could be written (no room)
	Writes     []RoleWrite
}

// RoleWrite is one IAM call on a role, for the grant's history.
type RoleWrite struct {
	RoleARN   string
	Op        string // PutRolePolicy or DeleteRolePolicy
	RequestID string
}

// historyStore is the Store's optional AppendHistory (grants/dynamo has it).
type historyStore interface {
	AppendHistory(ctx context.Context, grantID string, ts ...Transition) error
}

// endSessions runs when converge has just made IAM agree with a set that a
// write emptied: the membership ended now.
// The roles are those of the membership's account, written through its
// chain.
func (s *Service) endSessions(ctx context.Context, acct *Account, k Key, grantID, symID string) (SessionsEnded, error) {
	ends := acct.sessions(k.Kind)
	if ends == nil {
		return SessionsEnded{}, nil
	}
	res, err := ends.MembershipEnded(ctx, k, s.Now().UTC())
	if h, ok := s.Store.(historyStore); ok && grantID != "" && len(res.Writes) > 0 {
		// One write for all of them: a permission set's end is a put and a
		// provisioning, and every write to the table is a call on the
		// expiry's path.
		at, ts := s.Now().UTC(), make([]Transition, len(res.Writes))
		for i, w := range res.Writes {
			ts[i] = Transition{At: at, Action: "session_revoke", SymEventID: symID, IAMRequestID: w.RequestID, Note: w.Op + " " + w.RoleARN}
		}
		if herr := h.AppendHistory(ctx, grantID, ts...); herr != nil {
			s.Log.WarnContext(ctx, "session revocations not noted in the grant's history", "grant_id", grantID, "writes", len(ts), "err", herr)
		}
	}
	if err != nil {
		return SessionsEnded{}, fmt.Errorf("end role sessions of %s: %w", k, err)
	}
	return res, nil
}

// merge adds what r ended to e: converge may end the same membership twice
// when it chases a moving token.
func (e *SessionsEnded) merge(r SessionsEnded) {
	e.Revoked = union(e.Revoked, r.Revoked)
	e.Skipped = union(e.Skipped, r.Skipped)
	e.NotRevoked = union(e.NotRevoked, r.NotRevoked)
}

// union appends what a is missing of b: converge may end the same
// membership twice when it chases a moving token.
func union(a, b []string) []string {
	for _, v := range b {
		if !slices.Contains(a, v) {
			a = append(a, v)
		}
	}
	return a
}
