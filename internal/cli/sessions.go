package cli

import (
	"context"
	"time"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/sessions"
)

// sessionsHook adapts sessions.Revoker to the interface grants and
// reconcile declare, so neither imports the other's types.
type sessionsHook struct{ r *sessions.Revoker }

func (h sessionsHook) MembershipEnded(ctx context.Context, user, group string, at time.Time) (grants.SessionsEnded, error) {
	res, err := h.r.MembershipEnded(ctx, user, group, at)
	out := grants.SessionsEnded{Revoked: res.Revoked, Skipped: res.Skipped, NotRevoked: res.NoRoom}
	for _, w := range res.Writes {
		out.Writes = append(out.Writes, grants.RoleWrite{RoleARN: w.RoleARN, Op: w.Op, RequestID: w.RequestID})
	}
	return out, err
}
