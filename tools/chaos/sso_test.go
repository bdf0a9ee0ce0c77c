package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/internal/devstack"
)

// ssoCast sizes the Identity Center part of the run: users (the emails of
// the first home IAM users, so that one person is an IAM user and an
// Identity Store user, and a request's kind alone says which), permission
// sets and Identity Store groups (two shared, one for overlaps, one outside
// the allow-lists with a member from before the run), and the spaces the
// workload plays in: the permission sets assigned in the home and the
// member account, and the groups of the home account's instance.
const (
	ssoUsers       = 6
	ssoMemberUsers = 4 // users the member account's space plays with
)

// ssoTargets is what createSSO made: the allowed targets, for the
// replicas' IAMJIT_SSO_* allow-lists.
type ssoTargets struct {
	instance, store       string
	permissionSets        []string // allowed: shared and overlap
	groups                []string
	assignmentAccounts    []string
	outsidePS, outsideGrp string
}

// env is the replicas' Identity Center configuration.
func (s ssoTargets) env() []string {
	return []string{"IAMJIT_SSO_INSTANCE_ARN=" + s.instance, "IAMJIT_SSO_PERMISSION_SETS=" + strings.Join(s.permissionSets, ","),
		"IAMJIT_SSO_ASSIGNMENT_ACCOUNTS=" + strings.Join(s.assignmentAccounts, ","), "IAMJIT_SSO_GROUPS=" + strings.Join(s.groups, ",")}
}

// createSSO makes the Identity Center cast in the dev stack's instance
// (moto's instance of the home account) and adds its spaces to c; it
// returns the outside targets' members before the run by space.
func (a *awsClients) createSSO(ctx context.Context, c Cast, ic devstack.IdentityCenter) (Cast, ssoTargets, map[string][]string, error) {
	fail := func(format string, args ...any) (Cast, ssoTargets, map[string][]string, error) {
		return c, ssoTargets{}, nil, fmt.Errorf(format, args...)
	}
	a.instance, a.store = ic.InstanceARN, ic.IdentityStoreID
	st := ssoTargets{instance: ic.InstanceARN, store: ic.IdentityStoreID, assignmentAccounts: []string{c.ID, memberAccount}}
	var users []User
	for i, u := range c.Users[:ssoUsers] {
		out, err := a.ids.CreateUser(ctx, &identitystore.CreateUserInput{IdentityStoreId: &st.store,
			UserName: aws.String(fmt.Sprintf("chaos-sso-u%02d", i+1)), DisplayName: aws.String(u.Email),
			Name:   &istypes.Name{GivenName: aws.String(fmt.Sprintf("u%02d", i+1)), FamilyName: aws.String("Chaos")},
			Emails: []istypes.Email{{Value: aws.String(u.Email), Primary: true, Type: aws.String("work")}}})
		if err != nil {
			return fail("create Identity Store user %s: %v", u.Email, err)
		}
		users = append(users, User{Name: aws.ToString(out.UserId), Email: u.Email})
	}
	var errs []error
	ps := func(name string) string {
		// moto 5.2.1 cannot read back a permission set made without a
		// session duration (devstack.SSOSessionDuration).
		out, err := a.admin.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{InstanceArn: &st.instance,
			Name: aws.String(name), SessionDuration: aws.String(devstack.SSOSessionDuration)})
		if err != nil {
			errs = append(errs, fmt.Errorf("create permission set %s: %w", name, err))
			return ""
		}
		return aws.ToString(out.PermissionSet.PermissionSetArn)
	}
	grp := func(name string) string {
		out, err := a.ids.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: &st.store, DisplayName: aws.String(name)})
		if err != nil {
			errs = append(errs, fmt.Errorf("create Identity Store group %s: %w", name, err))
			return ""
		}
		return aws.ToString(out.GroupId)
	}
	ps1, ps2, psov := ps("chaos-ps1"), ps("chaos-ps2"), ps("chaos-psov")
	st.outsidePS = ps("chaos-ps-outside")
	sg1, sg2, sgov := grp("chaos-sg1"), grp("chaos-sg2"), grp("chaos-sgov")
	st.outsideGrp = grp("chaos-sg-outside")
	if err := errors.Join(errs...); err != nil {
		return fail("%v", err)
	}
	st.permissionSets, st.groups = []string{ps1, ps2, psov}, []string{sg1, sg2, sgov}
	// A member from before the run in each outside target of the home
	// account; the member account's outside permission set has none.
	if _, err := a.admin.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{InstanceArn: &st.instance,
		PermissionSetArn: &st.outsidePS, TargetId: aws.String(c.ID), TargetType: ssotypes.TargetTypeAwsAccount,
		PrincipalType: ssotypes.PrincipalTypeUser, PrincipalId: &users[0].Name}); err != nil {
		return fail("assign the outside permission set: %v", err)
	}
	if _, err := a.ids.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{IdentityStoreId: &st.store,
		GroupId: &st.outsideGrp, MemberId: &istypes.MemberIdMemberUserId{Value: users[0].Name}}); err != nil {
		return fail("add to the outside group: %v", err)
	}
	c = c.WithSSO(grants.PermissionSet, c.ID, users, []string{ps1, ps2}, []string{psov}, st.outsidePS).
		WithSSO(grants.PermissionSet, memberAccount, users[:ssoMemberUsers], []string{ps1}, []string{psov}, st.outsidePS).
		WithSSO(grants.SSOGroup, c.ID, users, []string{sg1, sg2}, []string{sgov}, st.outsideGrp)
	a.cast = c
	before := map[string][]string{SpaceID(grants.PermissionSet, c.ID): {users[0].Name}, SpaceID(grants.PermissionSet, memberAccount): {},
		SpaceID(grants.SSOGroup, c.ID): {users[0].Name}}
	return c, st, before, nil
}

// readPlace reads p's members: an IAM group's users, the USER principals
// of a permission set's assignments in the space's account, or an
// Identity Store group's user members; once per copy the emulator holds.
func (a *awsClients) readPlace(ctx context.Context, p Place) ([]string, error) {
	sp, ok := a.cast.Find(p.Account)
	if !ok || !sp.IsSSO() {
		return groupMembers(ctx, a.iamOf(p.Account), p.Group)
	}
	out := []string{}
	if sp.Kind == grants.PermissionSet {
		pg := ssoadmin.NewListAccountAssignmentsPaginator(a.admin, &ssoadmin.ListAccountAssignmentsInput{
			InstanceArn: &a.instance, PermissionSetArn: &p.Group, AccountId: &sp.AWS})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list assignments of %s in %s: %w", p.Group, sp.AWS, err)
			}
			for _, as := range page.AccountAssignments {
				if as.PrincipalType == ssotypes.PrincipalTypeUser {
					out = append(out, aws.ToString(as.PrincipalId))
				}
			}
		}
		return out, nil
	}
	pg := identitystore.NewListGroupMembershipsPaginator(a.ids, &identitystore.ListGroupMembershipsInput{IdentityStoreId: &a.store, GroupId: &p.Group})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list memberships of %s: %w", p.Group, err)
		}
		for _, m := range page.GroupMemberships {
			if id, ok := m.MemberId.(*istypes.MemberIdMemberUserId); ok {
				out = append(out, id.Value)
			}
		}
	}
	return out, nil
}

// ssoService is the service (as the proxy counts it) that changes the
// memberships of an Identity Center space.
func ssoService(k grants.Kind) string {
	if k == grants.SSOGroup {
		return "identitystore"
	}
	return "sso"
}
