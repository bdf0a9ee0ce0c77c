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
	return ended(res), err
}

// SetsHook adapts sessions.PermissionSets the same way, for the Identity
// Center kinds: an assignment ends its permission set's older sessions in
// its account; a group membership those of every permission set assigned
// to the group, in each of its accounts.
type SetsHook struct{ Sets *sessions.PermissionSets }

func (h SetsHook) MembershipEnded(ctx context.Context, k grants.Key, at time.Time) (grants.SessionsEnded, error) {
	var res sessions.Result
	var err error
	if k.Kind == grants.PermissionSet {
		res, err = h.Sets.AssignmentEnded(ctx, k.User, k.Group, k.Account, at)
	} else {
		res, err = h.Sets.GroupMembershipEnded(ctx, k.User, k.Group, at)
	}
	return ended(res), err
}

// ended is what a revocation did, as results and histories name it.
func ended(res sessions.Result) grants.SessionsEnded {
	out := grants.SessionsEnded{Revoked: res.Revoked, Skipped: res.Skipped, NotRevoked: res.NoRoom}
	for _, w := range res.Writes {
		out.Writes = append(out.Writes, grants.RoleWrite{RoleARN: w.RoleARN, Op: w.Op, RequestID: w.RequestID})
	}
	return out
}
