package identitycenter

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/types"

	"github.com/iamjit/iamjit/internal/awsx"
)

// Group is an Identity Store group.
type Group struct {
	ID, DisplayName string
}

// Group describes the group: the start-up check that a configured group id
// exists. No such group is a *NotFoundError.
func (c *Client) Group(ctx context.Context, groupID string) (Group, error) {
	in, err := c.instance()
	if err != nil {
		return Group{}, err
	}
	out, err := c.store.DescribeGroup(ctx, &identitystore.DescribeGroupInput{IdentityStoreId: &in.storeID, GroupId: &groupID})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return Group{}, &NotFoundError{Kind: "group", ID: groupID, Err: err}
	}
	if err != nil {
		return Group{}, fmt.Errorf("describe group %s: %w", groupID, err)
	}
	return Group{ID: aws.ToString(out.GroupId), DisplayName: aws.ToString(out.DisplayName)}, nil
}

// AddToGroup makes the user a member of the group. An existing membership is
// success with "" (read first: moto 5.2.1 would store a second copy, where
// AWS answers ConflictException UNIQUENESS_CONSTRAINT_VIOLATION, which is
// success too). A CONCURRENT_MODIFICATION conflict is retryable.
func (c *Client) AddToGroup(ctx context.Context, groupID, userID string) (string, error) {
	in, err := c.instance()
	if err != nil {
		return "", err
	}
	ids, err := c.memberships(ctx, groupID, userID)
	if err != nil || len(ids) > 0 {
		return "", err
	}
	out, err := c.store.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{
		IdentityStoreId: &in.storeID, GroupId: &groupID, MemberId: &types.MemberIdMemberUserId{Value: userID}})
	var conflict *types.ConflictException
	if errors.As(err, &conflict) {
		if conflict.Reason == types.ConflictExceptionReasonUniquenessConstraintViolation {
			return "", nil // already a member
		}
		return "", &awsx.Transient{Err: fmt.Errorf("add user %s to group %s: %w", userID, groupID, err)}
	}
	if err != nil {
		return "", fmt.Errorf("add user %s to group %s: %w", userID, groupID, err)
	}
	return awsx.RequestID(out.ResultMetadata), nil
}

// RemoveFromGroup ends the user's membership of the group: every copy of it
// (moto 5.2.1 may hold several; AWS one), each deleted by its own membership
// id, so the copies the read found are exactly the deletes made. Not a
// member is success with ""; otherwise the first delete's request id, as
// Unassign. A copy already gone (ResourceNotFoundException) was deleted
// meanwhile.
func (c *Client) RemoveFromGroup(ctx context.Context, groupID, userID string) (string, error) {
	in, err := c.instance()
	if err != nil {
		return "", err
	}
	ids, err := c.memberships(ctx, groupID, userID)
	if err != nil {
		return "", err
	}
	reqID := ""
	for _, id := range ids {
		out, err := c.store.DeleteGroupMembership(ctx, &identitystore.DeleteGroupMembershipInput{IdentityStoreId: &in.storeID, MembershipId: &id})
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			continue // deleted meanwhile
		}
		if err != nil {
			return "", fmt.Errorf("remove user %s from group %s (membership %s): %w", userID, groupID, id, err)
		}
		if reqID == "" {
			reqID = awsx.RequestID(out.ResultMetadata)
		}
	}
	return reqID, nil
}

// InGroup reports whether the user is a member of the group.
func (c *Client) InGroup(ctx context.Context, groupID, userID string) (bool, error) {
	ids, err := c.memberships(ctx, groupID, userID)
	return len(ids) > 0, err
}

// memberships are the ids of the user's memberships of the group, read from
// the user's side (ListGroupMembershipsForMember: a user is in few groups,
// a group may have thousands of members). moto 5.2.1 has neither
// GetGroupMembershipId nor IsMemberInGroups (HTTP 500), the direct calls. An
// unknown user is in no group.
func (c *Client) memberships(ctx context.Context, groupID, userID string) ([]string, error) {
	in, err := c.instance()
	if err != nil {
		return nil, err
	}
	var ids []string
	p := identitystore.NewListGroupMembershipsForMemberPaginator(c.store, &identitystore.ListGroupMembershipsForMemberInput{
		IdentityStoreId: &in.storeID, MemberId: &types.MemberIdMemberUserId{Value: userID}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list groups of user %s: %w", userID, err)
		}
		for _, m := range page.GroupMemberships {
			if aws.ToString(m.GroupId) == groupID {
				ids = append(ids, aws.ToString(m.MembershipId))
			}
		}
	}
	return ids, nil
}

// MembershipID is the id of the user's membership of the group, or
// grants.ErrNotFound: the backstop's removal of it names it.
func (c *Client) MembershipID(ctx context.Context, groupID, userID string) (string, error) {
	ids, err := c.memberships(ctx, groupID, userID)
	if err != nil {
		return "", err
	}
	if len(ids) == 0 {
		return "", &NotFoundError{Kind: "membership of group " + groupID + " for user", ID: userID}
	}
	return ids[0], nil
}

// GroupMembers lists the user ids of the group's members, sorted, each once
// (moto may hold copies); members that are not users are left out.
func (c *Client) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	in, err := c.instance()
	if err != nil {
		return nil, err
	}
	users := []string{}
	p := identitystore.NewListGroupMembershipsPaginator(c.store, &identitystore.ListGroupMembershipsInput{
		IdentityStoreId: &in.storeID, GroupId: &groupID})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list members of group %s: %w", groupID, err)
		}
		for _, m := range page.GroupMemberships {
			if u, ok := m.MemberId.(*types.MemberIdMemberUserId); ok {
				users = append(users, u.Value)
			}
		}
	}
	slices.Sort(users)
	return slices.Compact(users), nil
}
