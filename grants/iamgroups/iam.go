// Package iamgroups changes and reads IAM groups and users for grants,
// through the IAM client built on the chained role's credentials.
package iamgroups

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/ttlcache"
)

// API is the part of the IAM client iamjit uses.
type API interface {
	AddUserToGroup(context.Context, *iam.AddUserToGroupInput, ...func(*iam.Options)) (*iam.AddUserToGroupOutput, error)
	RemoveUserFromGroup(context.Context, *iam.RemoveUserFromGroupInput, ...func(*iam.Options)) (*iam.RemoveUserFromGroupOutput, error)
	GetGroup(context.Context, *iam.GetGroupInput, ...func(*iam.Options)) (*iam.GetGroupOutput, error)
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	ListUsers(context.Context, *iam.ListUsersInput, ...func(*iam.Options)) (*iam.ListUsersOutput, error)
	ListUserTags(context.Context, *iam.ListUserTagsInput, ...func(*iam.Options)) (*iam.ListUserTagsOutput, error)
	ListGroups(context.Context, *iam.ListGroupsInput, ...func(*iam.Options)) (*iam.ListGroupsOutput, error)
	ListGroupsForUser(context.Context, *iam.ListGroupsForUserInput, ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error)
	GetAccountAuthorizationDetails(context.Context, *iam.GetAccountAuthorizationDetailsInput, ...func(*iam.Options)) (*iam.GetAccountAuthorizationDetailsOutput, error)
}

// IAM implements grants.GroupMembership, grants.Groups and grants.Directory.
type IAM struct {
	api           API
	groups        *ttlcache.Cache[string, grants.GroupInfo]
	users         *ttlcache.Cache[string, bool] // users seen to exist
	log           *slog.Logger
	deniedDetails sync.Once // user tags are read the slow way: said once
}

// maxCache bounds each cache; past it the cache starts over.
const maxCache = 4096

// New returns an IAM adapter. ttl bounds how long a group's path or a user's
// existence is trusted before IAM is asked again.
func New(api API, ttl time.Duration, now func() time.Time, log *slog.Logger) *IAM {
	return &IAM{api: api, log: log, groups: ttlcache.New[string, grants.GroupInfo](ttl, maxCache, now), users: ttlcache.New[string, bool](ttl, maxCache, now)}
}

// AddUser implements grants.GroupMembership. Adding a member is a no-op in IAM.
func (c *IAM) AddUser(ctx context.Context, user, group string) (string, error) {
	out, err := c.api.AddUserToGroup(ctx, &iam.AddUserToGroupInput{UserName: &user, GroupName: &group})
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		// IAM is eventually consistent: a user or group just created may not
		// be visible yet. Retried; gives up by redrive if it never appears.
		return "", &awsx.Transient{Err: fmt.Errorf("add %s to %s: %w", user, group, err)}
	}
	if err != nil {
		return "", fmt.Errorf("add %s to %s: %w", user, group, err)
	}
	return awsx.RequestID(out.ResultMetadata), nil
}

// RemoveUser implements grants.GroupMembership. Removing a non-member
// answers NoSuchEntity, which is success.
func (c *IAM) RemoveUser(ctx context.Context, user, group string) (string, error) {
	out, err := c.api.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{UserName: &user, GroupName: &group})
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("remove %s from %s: %w", user, group, err)
	}
	return awsx.RequestID(out.ResultMetadata), nil
}

// IsMember implements grants.GroupMembership: the user's groups, read from
// IAM (paginated; a user is in at most 10 groups by default).
func (c *IAM) IsMember(ctx context.Context, user, group string) (bool, error) {
	p := iam.NewListGroupsForUserPaginator(c.api, &iam.ListGroupsForUserInput{UserName: &user})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		var nse *types.NoSuchEntityException
		if errors.As(err, &nse) {
			return false, nil // no such user: in no group
		}
		if err != nil {
			return false, fmt.Errorf("list groups of %s: %w", user, err)
		}
		for _, g := range page.Groups {
			if aws.ToString(g.GroupName) == group {
				return true, nil
			}
		}
	}
	return false, nil
}

// Group implements grants.Groups: IAM's own record of the group's path.
func (c *IAM) Group(ctx context.Context, name string) (grants.GroupInfo, error) {
	if info, ok := c.groups.Get(name); ok {
		return info, nil
	}
	out, err := c.api.GetGroup(ctx, &iam.GetGroupInput{GroupName: &name, MaxItems: aws.Int32(1)})
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return grants.GroupInfo{}, grants.ErrNotFound
	}
	if err != nil {
		return grants.GroupInfo{}, fmt.Errorf("get group %s: %w", name, err)
	}
	info := grants.GroupInfo{Name: aws.ToString(out.Group.GroupName), ARN: aws.ToString(out.Group.Arn), Path: aws.ToString(out.Group.Path)}
	c.groups.Put(name, info)
	return info, nil
}

// UserExists implements grants.Directory.
func (c *IAM) UserExists(ctx context.Context, name string) (bool, error) {
	if _, ok := c.users.Get(name); ok {
		return true, nil
	}
	_, err := c.api.GetUser(ctx, &iam.GetUserInput{UserName: &name})
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get user %s: %w", name, err)
	}
	c.users.Put(name, true)
	return true, nil
}

// UsersWithTag implements grants.Directory; Identity caches the result.
// GetAccountAuthorizationDetails (users only) carries up to 1,000 users with
// their tags a call, where ListUsers, which has no tags, and a ListUserTags
// per user cost one call per user: in a large account, IAM throttling at
// start-up and at every refresh of the index. A role not allowed it (a
// deployment from before iamjit asked for it) is answered through the
// per-user listing, which needs only iam:ListUsers and iam:ListUserTags;
// it is asked again at the next refresh, so granting it takes effect
// without a restart.
func (c *IAM) UsersWithTag(ctx context.Context, key string) (map[string]string, error) {
	out, err := c.tagsFromDetails(ctx, key)
	if !awsx.Denied(err) {
		return out, err
	}
	c.deniedDetails.Do(func() {
		c.log.WarnContext(ctx, "iam:GetAccountAuthorizationDetails is denied: user tags are listed one call per user (grant it to the IAM-modifier role)", "err", err)
	})
	return c.tagsPerUser(ctx, key)
}

// tagsFromDetails reads every user's tag of key, 1,000 users a call.
func (c *IAM) tagsFromDetails(ctx context.Context, key string) (map[string]string, error) {
	out := map[string]string{}
	p := iam.NewGetAccountAuthorizationDetailsPaginator(c.api, &iam.GetAccountAuthorizationDetailsInput{
		Filter: []types.EntityType{types.EntityTypeUser}, MaxItems: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("get account authorization details (users): %w", err)
		}
		for _, u := range page.UserDetailList {
			for _, t := range u.Tags {
				if aws.ToString(t.Key) == key {
					out[aws.ToString(u.UserName)] = aws.ToString(t.Value)
				}
			}
		}
	}
	return out, nil
}

// tagsPerUser reads every user's tag of key, one call per user.
func (c *IAM) tagsPerUser(ctx context.Context, key string) (map[string]string, error) {
	out := map[string]string{}
	p := iam.NewListUsersPaginator(c.api, &iam.ListUsersInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		for _, u := range page.Users {
			tags, err := c.api.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: u.UserName})
			var nse *types.NoSuchEntityException
			if errors.As(err, &nse) {
				continue // deleted while listing
			}
			if err != nil {
				return nil, fmt.Errorf("list tags of %s: %w", aws.ToString(u.UserName), err)
			}
			for _, t := range tags.Tags {
				if aws.ToString(t.Key) == key {
					out[aws.ToString(u.UserName)] = aws.ToString(t.Value)
				}
			}
		}
	}
	return out, nil
}

// Ready makes the cheapest call the modifier role is allowed: one page of
// one group under path (iam:ListGroups). A readiness probe: it proves the
// chain and IAM answer, without naming a group the role may not read.
func (c *IAM) Ready(ctx context.Context, path string) error {
	_, err := c.api.ListGroups(ctx, &iam.ListGroupsInput{PathPrefix: &path, MaxItems: aws.Int32(1)})
	return err
}

// ManagedGroups lists the groups under path with their members (reconcile).
func (c *IAM) ManagedGroups(ctx context.Context, path string) (map[string][]string, error) {
	out := map[string][]string{}
	p := iam.NewListGroupsPaginator(c.api, &iam.ListGroupsInput{PathPrefix: &path})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list groups under %s: %w", path, err)
		}
		for _, g := range page.Groups {
			name := aws.ToString(g.GroupName)
			members := []string{}
			gp := iam.NewGetGroupPaginator(c.api, &iam.GetGroupInput{GroupName: &name})
			for gp.HasMorePages() {
				gpage, err := gp.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("get group %s: %w", name, err)
				}
				for _, u := range gpage.Users {
					members = append(members, aws.ToString(u.UserName))
				}
			}
			out[name] = members
		}
	}
	return out, nil
}
