package cli

import (
	"context"
	"time"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/sessions"
)

// SessionsHook adapts sessions.Revoker to the interface grants and
// reconcile declare, so neither imports the other's types. Exported for
// sessions' moto test, which wires the service as run does.
type SessionsHook struct{ Revoker *sessions.Revoker }

func (h SessionsHook) MembershipEnded(ctx context.Context, k grants.Key, at time.Time) (grants.SessionsEnded, error) {
	res, err := h.Revoker.MembershipEnded(ctx, k.User, k.Group, at)
	out := grants.SessionsEnded{Revoked: res.Revoked, Skipped: res.Skipped, NotRevoked: res.NoRoom}
	for _, w := range res.Writes {
		out.Writes = append(out.Writes, grants.RoleWrite{RoleARN: w.RoleARN, Op: w.Op, RequestID: w.RequestID})
	}
	return out, err
}
