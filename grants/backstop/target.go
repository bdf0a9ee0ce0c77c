package backstop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/iamjit/iamjit/grants"
)

// The universal targets a backstop calls: EventBridge Scheduler makes the
// named API call itself, as the schedule's execution role, with the
// schedule's input as the request (the API's own member names, PascalCase).
const (
	TargetRemoveUserFromGroup     = "arn:aws:scheduler:::aws-sdk:iam:removeUserFromGroup"
	TargetDeleteAccountAssignment = "arn:aws:scheduler:::aws-sdk:ssoadmin:deleteAccountAssignment"
	TargetDeleteGroupMembership   = "arn:aws:scheduler:::aws-sdk:identitystore:deleteGroupMembership"
)

// RemoveUserFromGroupInput is iam:RemoveUserFromGroup's request.
type RemoveUserFromGroupInput struct {
	GroupName string `json:"GroupName"`
	UserName  string `json:"UserName"`
}

// DeleteAccountAssignmentInput is sso-admin:DeleteAccountAssignment's
// request.
type DeleteAccountAssignmentInput struct {
	InstanceArn      string `json:"InstanceArn"`
	PermissionSetArn string `json:"PermissionSetArn"`
	PrincipalId      string `json:"PrincipalId"`
	PrincipalType    string `json:"PrincipalType"`
	TargetId         string `json:"TargetId"`
	TargetType       string `json:"TargetType"`
}

// DeleteGroupMembershipInput is identitystore:DeleteGroupMembership's
// request.
type DeleteGroupMembershipInput struct {
	IdentityStoreId string `json:"IdentityStoreId"`
	MembershipId    string `json:"MembershipId"`
}

// ErrNoMembership is returned by Arm and Move for an Identity Store group
// membership that does not exist (yet): its removal names the membership's
// id, which exists only once the user was added. Arm such a membership
// after adding it. It is grants.ErrNotFound for errors.Is.
var ErrNoMembership = fmt.Errorf("identity store group membership: %w", grants.ErrNotFound)

// removal is the target call that ends k: the universal target's ARN and
// its input.
func (b *Backstop) removal(ctx context.Context, k grants.Key) (string, string, error) {
	if b.opts.Removal != nil {
		return b.opts.Removal(ctx, k)
	}
	var (
		arn string
		in  any
	)
	switch k.Kind {
	case grants.IAMGroup:
		if k.User == "" || k.Group == "" {
			return "", "", fmt.Errorf("backstop for %s: user and group are required", k)
		}
		arn, in = TargetRemoveUserFromGroup, RemoveUserFromGroupInput{GroupName: k.Group, UserName: k.User}
	case grants.PermissionSet:
		if b.opts.InstanceARN == "" {
			return "", "", fmt.Errorf("backstop for %s: no Identity Center instance ARN configured", k)
		}
		if k.User == "" || k.Group == "" || k.Account == "" {
			return "", "", fmt.Errorf("backstop for %s: user, permission set and account are required", k)
		}
		arn, in = TargetDeleteAccountAssignment, DeleteAccountAssignmentInput{
			InstanceArn: b.opts.InstanceARN, PermissionSetArn: k.Group,
			PrincipalId: k.User, PrincipalType: "USER",
			TargetId: k.Account, TargetType: "AWS_ACCOUNT"}
	case grants.SSOGroup:
		if b.opts.IdentityStoreID == "" || b.opts.MembershipID == nil {
			return "", "", fmt.Errorf("backstop for %s: no Identity Store id or membership lookup configured", k)
		}
		id, err := b.opts.MembershipID(ctx, k.Group, k.User)
		if errors.Is(err, grants.ErrNotFound) || (err == nil && id == "") {
			return "", "", fmt.Errorf("backstop for %s: %w", k, ErrNoMembership)
		}
		if err != nil {
			return "", "", fmt.Errorf("backstop for %s: look up the membership id: %w", k, err)
		}
		arn, in = TargetDeleteGroupMembership, DeleteGroupMembershipInput{IdentityStoreId: b.opts.IdentityStoreID, MembershipId: id}
	default:
		return "", "", fmt.Errorf("backstop for %s: unknown kind %q", k, k.Kind)
	}
	js, err := json.Marshal(in)
	if err != nil {
		return "", "", err
	}
	return arn, string(js), nil
}

// sameJSON reports whether a and b are the same JSON value (the service
// may hand back an input reformatted).
func sameJSON(a, b string) bool {
	if a == b {
		return true
	}
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xs, _ := json.Marshal(x) // maps marshal with sorted keys
	ys, _ := json.Marshal(y)
	return string(xs) == string(ys)
}
