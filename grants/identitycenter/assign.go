package identitycenter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/iamjit/iamjit/internal/awsx"
)

// Assignment is one permission set assigned to one user in one account.
type Assignment struct {
	PermissionSetARN string
	AccountID        string
	UserID           string // Identity Store user id
}

func (a Assignment) String() string {
	return fmt.Sprintf("user %s in account %s with %s", a.UserID, a.AccountID, a.PermissionSetARN)
}

// Assign assigns the permission set to the user in the account and returns
// once AWS confirms it. It reads first: an existing assignment is success
// with "" (moto 5.2.1 would store a second copy). Otherwise it returns the
// CreateAccountAssignment call's AWS request id (the assignment request id
// when the response carried none). A ConflictException (AWS: another write
// to it has not propagated yet) or a FAILED request is success when a second
// read finds the assignment, as when another replica made it meanwhile;
// otherwise the conflict is retryable and the failure carries AWS's reason.
func (c *Client) Assign(ctx context.Context, a Assignment) (string, error) {
	in, err := c.instance()
	if err != nil {
		return "", err
	}
	if ok, err := c.IsAssigned(ctx, a); err != nil || ok {
		return "", err
	}
	out, err := c.admin.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{
		InstanceArn: &in.arn, PermissionSetArn: &a.PermissionSetARN, TargetId: &a.AccountID, TargetType: types.TargetTypeAwsAccount,
		PrincipalType: types.PrincipalTypeUser, PrincipalId: &a.UserID})
	var conflict *types.ConflictException
	if errors.As(err, &conflict) {
		return "", c.settled(ctx, a, true, &awsx.Transient{Err: fmt.Errorf("assign %s: %w", a, err)})
	}
	if err != nil {
		return "", fmt.Errorf("assign %s: %w", a, err)
	}
	st := out.AccountAssignmentCreationStatus
	reqID := aws.ToString(st.RequestId)
	err = c.await(ctx, "assign "+a.String(), reqID, statusOf(st), func(ctx context.Context) (status, error) {
		out, err := c.admin.DescribeAccountAssignmentCreationStatus(ctx, &ssoadmin.DescribeAccountAssignmentCreationStatusInput{
			InstanceArn: &in.arn, AccountAssignmentCreationRequestId: &reqID})
		if err != nil {
			return status{}, err
		}
		return statusOf(out.AccountAssignmentCreationStatus), nil
	})
	var failed *FailedError
	if errors.As(err, &failed) {
		return "", c.settled(ctx, a, true, err)
	}
	if err != nil {
		return "", err
	}
	return requestID(awsx.RequestID(out.ResultMetadata), reqID), nil
}

// Unassign removes the assignment, every copy of it, and returns once AWS
// confirms each removal. No assignment is success with "" (read first: AWS
// and moto answer a delete of nothing differently, moto with
// ResourceNotFoundException). Otherwise it returns the first
// DeleteAccountAssignment's AWS request id (the deletion request id when the
// response carried none). A conflict, a ResourceNotFoundException or a
// FAILED request is success when a second read no longer finds the
// assignment.
//
// AWS holds at most one copy: one delete. moto 5.2.1 stores a copy per
// CreateAccountAssignment (two replicas that both read "absent" both
// create) and a delete removes one, so Unassign deletes as many times as
// the first read counted copies, and where that was more than one reads
// once more: a copy still there (made meanwhile) is a retryable error. It
// never deletes more than the copies counted.
func (c *Client) Unassign(ctx context.Context, a Assignment) (string, error) {
	in, err := c.instance()
	if err != nil {
		return "", err
	}
	n, err := c.copies(ctx, a)
	if err != nil || n == 0 {
		return "", err
	}
	first := ""
	for i := range n {
		reqID, gone, err := c.unassignOnce(ctx, in, a)
		if err != nil {
			return "", err
		}
		if i == 0 {
			first = reqID
		}
		if gone {
			return first, nil
		}
	}
	if n == 1 {
		return first, nil
	}
	left, err := c.copies(ctx, a)
	if err != nil {
		return "", err
	}
	if left > 0 {
		return "", &awsx.Transient{Err: fmt.Errorf("unassign %s: %d copies left after deleting %d", a, left, n)}
	}
	return first, nil
}

// unassignOnce makes one DeleteAccountAssignment (one copy, in moto) and
// awaits it. gone is true when a failed or refused delete was settled by a
// read that found no copy left: there is nothing more to delete.
func (c *Client) unassignOnce(ctx context.Context, in *instance, a Assignment) (reqID string, gone bool, err error) {
	out, err := c.admin.DeleteAccountAssignment(ctx, &ssoadmin.DeleteAccountAssignmentInput{
		InstanceArn: &in.arn, PermissionSetArn: &a.PermissionSetARN, TargetId: &a.AccountID, TargetType: types.TargetTypeAwsAccount,
		PrincipalType: types.PrincipalTypeUser, PrincipalId: &a.UserID})
	var conflict *types.ConflictException
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &conflict):
		return "", true, c.settled(ctx, a, false, &awsx.Transient{Err: fmt.Errorf("unassign %s: %w", a, err)})
	case errors.As(err, &nf):
		return "", true, c.settled(ctx, a, false, fmt.Errorf("unassign %s: %w", a, err))
	case err != nil:
		return "", false, fmt.Errorf("unassign %s: %w", a, err)
	}
	st := out.AccountAssignmentDeletionStatus
	asyncID := aws.ToString(st.RequestId)
	err = c.await(ctx, "unassign "+a.String(), asyncID, statusOf(st), func(ctx context.Context) (status, error) {
		out, err := c.admin.DescribeAccountAssignmentDeletionStatus(ctx, &ssoadmin.DescribeAccountAssignmentDeletionStatusInput{
			InstanceArn: &in.arn, AccountAssignmentDeletionRequestId: &asyncID})
		if err != nil {
			return status{}, err
		}
		return statusOf(out.AccountAssignmentDeletionStatus), nil
	})
	var failed *FailedError
	if errors.As(err, &failed) {
		return "", true, c.settled(ctx, a, false, err)
	}
	if err != nil {
		return "", false, err
	}
	return requestID(awsx.RequestID(out.ResultMetadata), asyncID), false, nil
}

// settled decides a write that did not go through by reading again: nil
// when the assignment is as wanted after all, else cause. Deciding by the
// state rather than by AWS's failure text keeps "already assigned" and "no
// such assignment" successes without parsing messages.
func (c *Client) settled(ctx context.Context, a Assignment, want bool, cause error) error {
	ok, err := c.IsAssigned(ctx, a)
	if err != nil {
		return errors.Join(cause, err)
	}
	if ok == want {
		return nil
	}
	return cause
}

// IsAssigned reports whether the user holds the permission set in the
// account. It reads the user's side (ListAccountAssignmentsForPrincipal,
// filtered to the account): O(the user's assignments there), not O(the
// permission set's), on every escalate, expiry and read-back.
func (c *Client) IsAssigned(ctx context.Context, a Assignment) (bool, error) {
	n, err := c.copies(ctx, a)
	return n > 0, err
}

// copies counts the user's assignments of the permission set in the
// account: 0 or 1 in AWS, any number in moto 5.2.1. A user AWS does not
// know (ResourceNotFoundException) holds none.
func (c *Client) copies(ctx context.Context, a Assignment) (int, error) {
	n := 0
	err := c.forPrincipal(ctx, types.PrincipalTypeUser, a.UserID, a.AccountID, func(as types.AccountAssignmentForPrincipal) {
		if aws.ToString(as.PermissionSetArn) == a.PermissionSetARN && aws.ToString(as.AccountId) == a.AccountID {
			n++
		}
	})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list assignments of user %s in account %s: %w", a.UserID, a.AccountID, err)
	}
	return n, nil
}

// forPrincipal calls fn with each of the principal's assignments, in
// account when it is not "" (the call's Filter), every page of them;
// entries naming another principal are left out.
func (c *Client) forPrincipal(ctx context.Context, typ types.PrincipalType, id, account string, fn func(types.AccountAssignmentForPrincipal)) error {
	in, err := c.instance()
	if err != nil {
		return err
	}
	input := &ssoadmin.ListAccountAssignmentsForPrincipalInput{InstanceArn: &in.arn, PrincipalId: &id, PrincipalType: typ}
	if account != "" {
		input.Filter = &types.ListAccountAssignmentsFilter{AccountId: &account}
	}
	p := ssoadmin.NewListAccountAssignmentsForPrincipalPaginator(c.admin, input)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, as := range page.AccountAssignments {
			if as.PrincipalType == typ && aws.ToString(as.PrincipalId) == id {
				fn(as)
			}
		}
	}
	return nil
}

// AssignedUsers lists the users (PrincipalType USER; groups are left out)
// assigned the permission set in the account, sorted, each once (moto may
// hold copies): reconcile's whole-set listing, O(the permission set's
// assignments there). One user's assignment is IsAssigned's.
func (c *Client) AssignedUsers(ctx context.Context, permissionSetARN, accountID string) ([]string, error) {
	in, err := c.instance()
	if err != nil {
		return nil, err
	}
	users := []string{}
	p := ssoadmin.NewListAccountAssignmentsPaginator(c.admin, &ssoadmin.ListAccountAssignmentsInput{
		InstanceArn: &in.arn, PermissionSetArn: &permissionSetARN, AccountId: &accountID})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list assignments of %s in account %s: %w", permissionSetARN, accountID, err)
		}
		for _, as := range page.AccountAssignments {
			if as.PrincipalType == types.PrincipalTypeUser {
				users = append(users, aws.ToString(as.PrincipalId))
			}
		}
	}
	slices.Sort(users)
	return slices.Compact(users), nil
}

// requestID prefers the HTTP request id, which joins CloudTrail's record of
// the call, over the asynchronous request's own id.
func requestID(awsID, asyncID string) string {
	if awsID != "" {
		return awsID
	}
	return asyncID
}

// GroupAssignment is one permission set assigned to a group in one account.
type GroupAssignment struct {
	PermissionSetARN string
	AccountID        string
}

// GroupAssignments lists what the group is assigned
// (ListAccountAssignmentsForPrincipal, PrincipalType GROUP), sorted by
// permission set then account, each once (moto may hold copies). A group
// with no assignment, or one AWS does not know, has none.
func (c *Client) GroupAssignments(ctx context.Context, groupID string) ([]GroupAssignment, error) {
	out := []GroupAssignment{}
	err := c.forPrincipal(ctx, types.PrincipalTypeGroup, groupID, "", func(as types.AccountAssignmentForPrincipal) {
		out = append(out, GroupAssignment{PermissionSetARN: aws.ToString(as.PermissionSetArn), AccountID: aws.ToString(as.AccountId)})
	})
	if err != nil {
		return nil, fmt.Errorf("list assignments of group %s: %w", groupID, err)
	}
	slices.SortFunc(out, func(a, b GroupAssignment) int {
		return cmp.Or(cmp.Compare(a.PermissionSetARN, b.PermissionSetARN), cmp.Compare(a.AccountID, b.AccountID))
	})
	return slices.Compact(out), nil
}
