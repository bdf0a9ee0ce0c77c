package identitycenter

import (
	"context"
	"fmt"

	"github.com/iamjit/iamjit/grants"
)

// Add implements grants.Members: an assignment of k's permission set in
// k's account, or a membership of k's Identity Store group, for k's user.
func (c *Client) Add(ctx context.Context, k grants.Key) (string, error) {
	switch k.Kind {
	case grants.PermissionSet:
		return c.Assign(ctx, assignment(k))
	case grants.SSOGroup:
		return c.AddToGroup(ctx, k.Group, k.User)
	}
	return "", kindError(k)
}

// Remove implements grants.Members.
func (c *Client) Remove(ctx context.Context, k grants.Key) (string, error) {
	switch k.Kind {
	case grants.PermissionSet:
		return c.Unassign(ctx, assignment(k))
	case grants.SSOGroup:
		return c.RemoveFromGroup(ctx, k.Group, k.User)
	}
	return "", kindError(k)
}

// IsMember implements grants.Members.
func (c *Client) IsMember(ctx context.Context, k grants.Key) (bool, error) {
	switch k.Kind {
	case grants.PermissionSet:
		return c.IsAssigned(ctx, assignment(k))
	case grants.SSOGroup:
		return c.InGroup(ctx, k.Group, k.User)
	}
	return false, kindError(k)
}

// UserID implements grants.SSOUsers.
func (c *Client) UserID(ctx context.Context, email string) (string, error) {
	u, err := c.UserByEmail(ctx, email)
	return u.ID, err
}

// Assigned implements grants.SSOLister: every USER assignment of each
// permission set in each account.
func (c *Client) Assigned(ctx context.Context, permissionSets, accounts []string) ([]grants.Key, error) {
	var out []grants.Key
	for _, ps := range permissionSets {
		for _, acct := range accounts {
			users, err := c.AssignedUsers(ctx, ps, acct)
			if err != nil {
				return nil, err
			}
			for _, u := range users {
				out = append(out, grants.Key{Kind: grants.PermissionSet, Account: acct, User: u, Group: ps})
			}
		}
	}
	return out, nil
}

// GroupMembersOf implements grants.SSOLister for groups: every member of
// each group, as keys of account (the Identity Center account's).
func (c *Client) GroupMembersOf(ctx context.Context, groups []string, account string) ([]grants.Key, error) {
	var out []grants.Key
	for _, g := range groups {
		users, err := c.GroupMembers(ctx, g)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			out = append(out, grants.Key{Kind: grants.SSOGroup, Account: account, User: u, Group: g})
		}
	}
	return out, nil
}

func assignment(k grants.Key) Assignment {
	return Assignment{PermissionSetARN: k.Group, AccountID: k.Account, UserID: k.User}
}

func kindError(k grants.Key) error {
	return fmt.Errorf("identitycenter: %s is not an Identity Center membership", k)
}

var (
	_ grants.Members   = (*Client)(nil)
	_ grants.SSOUsers  = (*Client)(nil)
	_ grants.SSOLister = (*Client)(nil)
)
