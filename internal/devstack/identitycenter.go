package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/aws/smithy-go"
	"github.com/iamjit/iamjit/internal/awsx"
)

// SSOSessionDuration is the dev permission set's session duration. moto
// 5.2.1 stores a permission set made without one in a form the SDK cannot
// read back, so it is always given.
const SSOSessionDuration = "PT1H"

// IdentityCenter is the dev stack's part of IAM Identity Center, all in the
// home account's instance: a user with the dev email, a group, and a
// permission set the group is assigned in the home account. iamjit grants
// by assigning the permission set to the user (aws_sso_permission_set) or
// adding the user to the group (aws_sso_group); the dev stack does neither.
type IdentityCenter struct {
	InstanceARN      string
	IdentityStoreID  string
	PermissionSetARN string // named like the IAM group, session SSOSessionDuration
	PermissionSet    string // its name
	GroupID          string // display name: the IAM group's name
	GroupName        string
	UserID           string // user name and primary email: Options.User
	// Account is where the group holds the permission set: the home
	// account (IAMJIT_SSO_ASSIGNMENT_ACCOUNTS).
	Account string
}

// permissionSetName is the IAM group's name, cut to the 32 characters a
// permission set name may have.
func permissionSetName(o Options) string {
	if len(o.Group) > 32 {
		return o.Group[:32]
	}
	return o.Group
}

// devPermissionSetPolicy is the dev permission set's inline policy, written
// only while it has none: iamjit may add its own statements later.
var devPermissionSetPolicy = doc(statement{
	Effect:   "Allow",
	Action:   []string{"sts:GetCallerIdentity", "s3:ListAllMyBuckets"},
	Resource: "*",
})

type ssoBuilder struct {
	o     Options
	admin *ssoadmin.Client
	store *identitystore.Client
	ic    IdentityCenter
}

// identityCenter makes (or finds) the Identity Center part of the stack in
// the instance the credentials list. Every write reads first: moto 5.2.1
// keeps a second copy of a permission set, assignment or membership made
// twice.
func (b *builder) identityCenter(ctx context.Context) error {
	home, err := accountOf(b.s.GroupARN)
	if err != nil {
		return err
	}
	s := ssoBuilder{o: b.o, admin: ssoadmin.NewFromConfig(b.cfg), store: identitystore.NewFromConfig(b.cfg),
		ic: IdentityCenter{Account: home, PermissionSet: permissionSetName(b.o), GroupName: b.o.Group}}
	for _, step := range []func(context.Context) error{s.instance, s.permissionSet, s.group, s.user, s.assignment} {
		if err := step(ctx); err != nil {
			return fmt.Errorf("identity center: %w", err)
		}
	}
	b.s.IdentityCenter = s.ic
	return nil
}

// instance is the first instance ListInstances names: moto has no
// CreateInstance and lists one instance per account and region from the
// start; an AWS organization has one.
func (s *ssoBuilder) instance(ctx context.Context) error {
	out, err := s.admin.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	if len(out.Instances) == 0 {
		return errors.New("no Identity Center instance: the emulator lists none")
	}
	s.ic.InstanceARN = aws.ToString(out.Instances[0].InstanceArn)
	s.ic.IdentityStoreID = aws.ToString(out.Instances[0].IdentityStoreId)
	return nil
}

// permissionSet finds the permission set by name, or creates it with a
// session duration, and gives it the dev inline policy while it has none.
func (s *ssoBuilder) permissionSet(ctx context.Context) error {
	name := s.ic.PermissionSet
	p := ssoadmin.NewListPermissionSetsPaginator(s.admin, &ssoadmin.ListPermissionSetsInput{InstanceArn: &s.ic.InstanceARN})
	for p.HasMorePages() && s.ic.PermissionSetARN == "" {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list permission sets: %w", err)
		}
		for _, psARN := range page.PermissionSets {
			d, err := s.admin.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: &s.ic.InstanceARN, PermissionSetArn: aws.String(psARN)})
			var undecodable *smithy.DeserializationError
			if errors.As(err, &undecodable) {
				// Made without a session duration (moto cannot describe it,
				// see SSOSessionDuration): not one this stack made.
				continue
			}
			if err != nil {
				return fmt.Errorf("describe permission set %s: %w", psARN, err)
			}
			if aws.ToString(d.PermissionSet.Name) == name {
				s.ic.PermissionSetARN = psARN
				break
			}
		}
	}
	if s.ic.PermissionSetARN == "" {
		out, err := s.admin.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{
			InstanceArn: &s.ic.InstanceARN, Name: aws.String(name),
			Description:     aws.String("iamjit dev: granted just in time"),
			SessionDuration: aws.String(SSOSessionDuration),
		})
		if err != nil {
			return fmt.Errorf("create permission set %s: %w", name, err)
		}
		s.ic.PermissionSetARN = aws.ToString(out.PermissionSet.PermissionSetArn)
	}
	got, err := s.admin.GetInlinePolicyForPermissionSet(ctx, &ssoadmin.GetInlinePolicyForPermissionSetInput{
		InstanceArn: &s.ic.InstanceARN, PermissionSetArn: &s.ic.PermissionSetARN})
	if err != nil {
		return fmt.Errorf("get inline policy of permission set %s: %w", name, err)
	}
	if strings.TrimSpace(aws.ToString(got.InlinePolicy)) != "" {
		return nil
	}
	inline, _ := json.Marshal(devPermissionSetPolicy)
	if _, err := s.admin.PutInlinePolicyToPermissionSet(ctx, &ssoadmin.PutInlinePolicyToPermissionSetInput{
		InstanceArn: &s.ic.InstanceARN, PermissionSetArn: &s.ic.PermissionSetARN, InlinePolicy: aws.String(string(inline)),
	}); err != nil {
		return fmt.Errorf("put inline policy on permission set %s: %w", name, err)
	}
	return nil
}

// unique is an Identity Store alternate identifier: a unique attribute.
func unique(path, value string) istypes.AlternateIdentifier {
	return &istypes.AlternateIdentifierMemberUniqueAttribute{Value: istypes.UniqueAttribute{
		AttributePath: aws.String(path), AttributeValue: document.NewLazyDocument(value)}}
}

// group finds the group by display name, or creates it.
func (s *ssoBuilder) group(ctx context.Context) error {
	find := func() (string, error) {
		out, err := s.store.GetGroupId(ctx, &identitystore.GetGroupIdInput{
			IdentityStoreId: &s.ic.IdentityStoreID, AlternateIdentifier: unique("displayName", s.ic.GroupName)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.GroupId), nil
	}
	var err error
	var missing *istypes.ResourceNotFoundException
	if s.ic.GroupID, err = find(); err == nil {
		return nil
	} else if !errors.As(err, &missing) {
		return fmt.Errorf("find group %s: %w", s.ic.GroupName, err)
	}
	out, err := s.store.CreateGroup(ctx, &identitystore.CreateGroupInput{
		IdentityStoreId: &s.ic.IdentityStoreID, DisplayName: aws.String(s.ic.GroupName),
		Description: aws.String("iamjit dev: members are granted just in time")})
	var conflict *istypes.ConflictException
	switch {
	case err == nil:
		s.ic.GroupID = aws.ToString(out.GroupId)
		return nil
	case errors.As(err, &conflict): // made meanwhile
		if s.ic.GroupID, err = find(); err == nil {
			return nil
		}
	}
	return fmt.Errorf("create group %s: %w", s.ic.GroupName, err)
}

// user finds the user named by the dev email, or creates it with that
// email as its primary one; a user of that name without the email is an
// error (iamjit finds Identity Center users by email).
func (s *ssoBuilder) user(ctx context.Context) error {
	name := s.o.User
	find := func() (string, error) {
		out, err := s.store.GetUserId(ctx, &identitystore.GetUserIdInput{
			IdentityStoreId: &s.ic.IdentityStoreID, AlternateIdentifier: unique("userName", name)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.UserId), nil
	}
	id, err := find()
	var missing *istypes.ResourceNotFoundException
	switch {
	case err == nil:
		return s.checkEmail(ctx, id)
	case !errors.As(err, &missing):
		return fmt.Errorf("find user %s: %w", name, err)
	}
	given := name
	if i := strings.LastIndex(name, "@"); i > 0 {
		given = name[:i]
	}
	out, err := s.store.CreateUser(ctx, &identitystore.CreateUserInput{
		IdentityStoreId: &s.ic.IdentityStoreID, UserName: aws.String(name), DisplayName: aws.String(name),
		Name:   &istypes.Name{GivenName: aws.String(given), FamilyName: aws.String("Dev")},
		Emails: []istypes.Email{{Value: aws.String(name), Primary: true, Type: aws.String("work")}},
	})
	var conflict *istypes.ConflictException
	switch {
	case err == nil:
		s.ic.UserID = aws.ToString(out.UserId)
		return nil
	case errors.As(err, &conflict): // made meanwhile
		if id, err = find(); err == nil {
			return s.checkEmail(ctx, id)
		}
	}
	return fmt.Errorf("create user %s: %w", name, err)
}

func (s *ssoBuilder) checkEmail(ctx context.Context, id string) error {
	out, err := s.store.DescribeUser(ctx, &identitystore.DescribeUserInput{IdentityStoreId: &s.ic.IdentityStoreID, UserId: &id})
	if err != nil {
		return fmt.Errorf("describe user %s: %w", s.o.User, err)
	}
	for _, e := range out.Emails {
		if strings.EqualFold(aws.ToString(e.Value), s.o.User) {
			s.ic.UserID = id
			return nil
		}
	}
	return fmt.Errorf("user %s (%s) exists without the email %s: iamjit could not find it by email", s.o.User, id, s.o.User)
}

// assignment assigns the permission set to the group in the home account,
// unless it is already: moto 5.2.1 stores a second copy of an assignment
// made twice (and AWS does not), so it is read first.
func (s *ssoBuilder) assignment(ctx context.Context) error {
	p := ssoadmin.NewListAccountAssignmentsPaginator(s.admin, &ssoadmin.ListAccountAssignmentsInput{
		InstanceArn: &s.ic.InstanceARN, AccountId: &s.ic.Account, PermissionSetArn: &s.ic.PermissionSetARN})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list assignments of %s in %s: %w", s.ic.PermissionSetARN, s.ic.Account, err)
		}
		for _, a := range page.AccountAssignments {
			if a.PrincipalType == ssotypes.PrincipalTypeGroup && aws.ToString(a.PrincipalId) == s.ic.GroupID {
				return nil
			}
		}
	}
	out, err := s.admin.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{
		InstanceArn: &s.ic.InstanceARN, PermissionSetArn: &s.ic.PermissionSetARN,
		TargetId: &s.ic.Account, TargetType: ssotypes.TargetTypeAwsAccount,
		PrincipalType: ssotypes.PrincipalTypeGroup, PrincipalId: &s.ic.GroupID,
	})
	if err != nil {
		return fmt.Errorf("assign %s to group %s in %s: %w", s.ic.PermissionSet, s.ic.GroupName, s.ic.Account, err)
	}
	st := out.AccountAssignmentCreationStatus
	// Asynchronous on AWS; moto answers SUCCEEDED at once.
	for wait := 100 * time.Millisecond; st != nil && st.Status == ssotypes.StatusValuesInProgress; wait *= 2 {
		if wait > 5*time.Second {
			return fmt.Errorf("assign %s to group %s: request %s still in progress", s.ic.PermissionSet, s.ic.GroupName, aws.ToString(st.RequestId))
		}
		if err := awsx.Sleep(ctx, wait); err != nil {
			return err
		}
		got, err := s.admin.DescribeAccountAssignmentCreationStatus(ctx, &ssoadmin.DescribeAccountAssignmentCreationStatusInput{
			InstanceArn: &s.ic.InstanceARN, AccountAssignmentCreationRequestId: st.RequestId})
		if err != nil {
			return fmt.Errorf("assign %s to group %s: status: %w", s.ic.PermissionSet, s.ic.GroupName, err)
		}
		st = got.AccountAssignmentCreationStatus
	}
	if st != nil && st.Status == ssotypes.StatusValuesFailed {
		return fmt.Errorf("assign %s to group %s: %s", s.ic.PermissionSet, s.ic.GroupName, aws.ToString(st.FailureReason))
	}
	return nil
}
