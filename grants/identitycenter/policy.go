package identitycenter

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/iamjit/iamjit/internal/awsx"
)

// These serve session revocation: a permission set's inline policy is where
// a deny of sessions issued before a time goes, and it reaches the accounts
// only once the permission set is provisioned to them again.

// InlinePolicy returns the permission set's inline policy document, "" when
// it has none.
func (c *Client) InlinePolicy(ctx context.Context, permissionSetARN string) (string, error) {
	in, err := c.instance()
	if err != nil {
		return "", err
	}
	out, err := c.admin.GetInlinePolicyForPermissionSet(ctx, &ssoadmin.GetInlinePolicyForPermissionSetInput{InstanceArn: &in.arn, PermissionSetArn: &permissionSetARN})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return "", &NotFoundError{Kind: "permission set", ID: permissionSetARN, Err: err}
	}
	if err != nil {
		return "", fmt.Errorf("get the inline policy of %s: %w", permissionSetARN, err)
	}
	return aws.ToString(out.InlinePolicy), nil
}

// PutInlinePolicy replaces the permission set's inline policy and returns
// the call's request id. Accounts see it only after Provision.
func (c *Client) PutInlinePolicy(ctx context.Context, permissionSetARN, policy string) (string, error) {
	in, err := c.instance()
	if err != nil {
		return "", err
	}
	out, err := c.admin.PutInlinePolicyToPermissionSet(ctx, &ssoadmin.PutInlinePolicyToPermissionSetInput{
		InstanceArn: &in.arn, PermissionSetArn: &permissionSetARN, InlinePolicy: &policy})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return "", &NotFoundError{Kind: "permission set", ID: permissionSetARN, Err: err}
	}
	if err != nil {
		return "", fmt.Errorf("put the inline policy of %s: %w", permissionSetARN, err)
	}
	return awsx.RequestID(out.ResultMetadata), nil
}

// Provision pushes the permission set's current policies to the account
// and returns once AWS confirms it, with the call's request id. A
// ConflictException (another provisioning of it still running) is
// retryable. moto 5.2.1 answers SUCCEEDED at once and has no
// DescribePermissionSetProvisioningStatus; a request already done is never
// described, so moto needs none.
func (c *Client) Provision(ctx context.Context, permissionSetARN, accountID string) (string, error) {
	in, err := c.instance()
	if err != nil {
		return "", err
	}
	op := fmt.Sprintf("provision %s to account %s", permissionSetARN, accountID)
	out, err := c.admin.ProvisionPermissionSet(ctx, &ssoadmin.ProvisionPermissionSetInput{
		InstanceArn: &in.arn, PermissionSetArn: &permissionSetARN, TargetId: &accountID, TargetType: types.ProvisionTargetTypeAwsAccount})
	var conflict *types.ConflictException
	if errors.As(err, &conflict) {
		return "", &awsx.Transient{Err: fmt.Errorf("%s: %w", op, err)}
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	reqID := aws.ToString(out.PermissionSetProvisioningStatus.RequestId)
	err = c.await(ctx, op, reqID, provisioningStatus(out.PermissionSetProvisioningStatus), func(ctx context.Context) (status, error) {
		out, err := c.admin.DescribePermissionSetProvisioningStatus(ctx, &ssoadmin.DescribePermissionSetProvisioningStatusInput{
			InstanceArn: &in.arn, ProvisionPermissionSetRequestId: &reqID})
		if err != nil {
			return status{}, err
		}
		return provisioningStatus(out.PermissionSetProvisioningStatus), nil
	})
	if err != nil {
		return "", err
	}
	return requestID(awsx.RequestID(out.ResultMetadata), reqID), nil
}

func provisioningStatus(s *types.PermissionSetProvisioningStatus) status {
	if s == nil {
		return status{}
	}
	return status{value: s.Status, reason: aws.ToString(s.FailureReason)}
}

// DeleteInlinePolicy removes the permission set's inline policy (AWS
// refuses an empty one) and returns the call's request id. Accounts see it
// only after Provision.
func (c *Client) DeleteInlinePolicy(ctx context.Context, permissionSetARN string) (string, error) {
	in, err := c.instance()
	if err != nil {
		return "", err
	}
	out, err := c.admin.DeleteInlinePolicyFromPermissionSet(ctx, &ssoadmin.DeleteInlinePolicyFromPermissionSetInput{
		InstanceArn: &in.arn, PermissionSetArn: &permissionSetARN})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return "", &NotFoundError{Kind: "permission set", ID: permissionSetARN, Err: err}
	}
	if err != nil {
		return "", fmt.Errorf("delete the inline policy of %s: %w", permissionSetARN, err)
	}
	return awsx.RequestID(out.ResultMetadata), nil
}
