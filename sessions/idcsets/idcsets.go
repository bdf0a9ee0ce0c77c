// Package idcsets is sessions.PermissionSetAPI over the Identity Center
// adapter (grants/identitycenter), as sessions/iamroles is sessions.Roles
// over IAM.
package idcsets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/identitycenter"
	"github.com/iamjit/iamjit/sessions"
)

// Sets implements sessions.PermissionSetAPI.
type Sets struct{ C *identitycenter.Client }

var _ sessions.PermissionSetAPI = Sets{}

// gone maps the adapter's not-found to sessions.ErrSetGone.
func gone(err error) error {
	if errors.Is(err, grants.ErrNotFound) {
		return fmt.Errorf("%w: %w", sessions.ErrSetGone, err)
	}
	return err
}

// SessionDuration implements sessions.PermissionSetAPI.
func (s Sets) SessionDuration(ctx context.Context, arn string) (time.Duration, error) {
	ps, err := s.C.PermissionSet(ctx, arn)
	return ps.SessionDuration, gone(err)
}

// InlinePolicy implements sessions.PermissionSetAPI.
func (s Sets) InlinePolicy(ctx context.Context, arn string) (string, error) {
	doc, err := s.C.InlinePolicy(ctx, arn)
	return doc, gone(err)
}

// PutInlinePolicy implements sessions.PermissionSetAPI. Identity Center's
// ServiceQuotaExceededException is no room: retrying cannot help.
func (s Sets) PutInlinePolicy(ctx context.Context, arn, doc string) (string, error) {
	id, err := s.C.PutInlinePolicy(ctx, arn, doc)
	var quota *types.ServiceQuotaExceededException
	if errors.As(err, &quota) {
		return "", fmt.Errorf("%w: %w", sessions.ErrNoRoom, err)
	}
	return id, gone(err)
}

// DeleteInlinePolicy implements sessions.PermissionSetAPI.
func (s Sets) DeleteInlinePolicy(ctx context.Context, arn string) (string, error) {
	id, err := s.C.DeleteInlinePolicy(ctx, arn)
	return id, gone(err)
}

// Provision implements sessions.PermissionSetAPI.
func (s Sets) Provision(ctx context.Context, arn, account string) (string, error) {
	id, err := s.C.Provision(ctx, arn, account)
	return id, gone(err)
}

// GroupAssignments implements sessions.PermissionSetAPI.
func (s Sets) GroupAssignments(ctx context.Context, groupID string) ([]sessions.SetAccount, error) {
	as, err := s.C.GroupAssignments(ctx, groupID)
	if err != nil {
		return nil, err
	}
	out := make([]sessions.SetAccount, 0, len(as))
	for _, a := range as {
		out = append(out, sessions.SetAccount{PermissionSetARN: a.PermissionSetARN, AccountID: a.AccountID})
	}
	return out, nil
}
