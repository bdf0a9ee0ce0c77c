package identitycenter_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/aws/smithy-go"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/identitycenter"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/motoserver"
)

// motoIC is a moto with its default Identity Center instance discovered.
type motoIC struct {
	sso      *ssoadmin.Client
	ids      *identitystore.Client
	c        *identitycenter.Client
	inst     string
	store    string
	newAdapt func() *identitycenter.Client // a fresh adapter: empty caches
	counter  *awsx.Counter                 // the adapters' calls
}

// calls is how many attempts at the Identity Store operation the adapters
// made so far.
func (m *motoIC) calls(op string) int64 { return m.count(op).Calls }

func (m *motoIC) count(op string) awsx.Count { return m.countOf("identitystore", op) }

// ssoCalls is how many attempts at the SSO Admin operation the adapters
// made so far.
func (m *motoIC) ssoCalls(op string) int64 { return m.countOf("SSO Admin", op).Calls }

func (m *motoIC) countOf(service, op string) awsx.Count {
	for _, c := range m.counter.Snapshot() {
		if c.Service == service && c.Operation == op {
			return c
		}
	}
	return awsx.Count{}
}

func startMoto(t *testing.T) *motoIC {
	t.Helper()
	srv := motoserver.Start(t)
	cfg := srv.AWSConfig(t)
	m := &motoIC{sso: ssoadmin.NewFromConfig(cfg), ids: identitystore.NewFromConfig(cfg), counter: awsx.NewCounter()}
	counted := cfg.Copy()
	counted.APIOptions = append(counted.APIOptions, m.counter.Register)
	// moto has no CreateInstance to call: every account and region lists one
	// instance from the start.
	out, err := m.sso.ListInstances(context.Background(), &ssoadmin.ListInstancesInput{})
	if err != nil || len(out.Instances) != 1 {
		t.Fatalf("moto's default instance: %v, %v", out, err)
	}
	m.inst = aws.ToString(out.Instances[0].InstanceArn)
	m.newAdapt = func() *identitycenter.Client {
		c := identitycenter.New(counted, identitycenter.Options{TTL: time.Minute})
		store, err := c.Discover(context.Background(), m.inst)
		if err != nil {
			t.Fatal(err)
		}
		m.store = store
		return c
	}
	m.c = m.newAdapt()
	if m.store != aws.ToString(out.Instances[0].IdentityStoreId) {
		t.Fatalf("Discover found store %s, moto lists %s", m.store, aws.ToString(out.Instances[0].IdentityStoreId))
	}
	return m
}

func (m *motoIC) createUser(t *testing.T, name string, emails ...string) string {
	t.Helper()
	in := &identitystore.CreateUserInput{IdentityStoreId: &m.store, UserName: &name, DisplayName: &name,
		Name: &istypes.Name{GivenName: &name, FamilyName: aws.String("test")}}
	for _, e := range emails {
		in.Emails = append(in.Emails, istypes.Email{Value: aws.String(e), Primary: true})
	}
	out, err := m.ids.CreateUser(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.UserId)
}

func (m *motoIC) copies(t *testing.T, ps, userID string) int {
	t.Helper()
	out, err := m.sso.ListAccountAssignments(context.Background(), &ssoadmin.ListAccountAssignmentsInput{
		InstanceArn: &m.inst, AccountId: aws.String(motoserver.AccountID), PermissionSetArn: &ps})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range out.AccountAssignments {
		if aws.ToString(a.PrincipalId) == userID {
			n++
		}
	}
	return n
}

func (m *motoIC) memberCopies(t *testing.T, groupID string) int {
	t.Helper()
	out, err := m.ids.ListGroupMemberships(context.Background(), &identitystore.ListGroupMembershipsInput{IdentityStoreId: &m.store, GroupId: &groupID})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.GroupMemberships)
}

// awsStoreID is AWS's own pattern for an Identity Store id.
var awsStoreID = regexp.MustCompile(`^d-[0-9a-f]{10}$`)

func TestMotoIdentifiersAndMissingCalls(t *testing.T) {
	m := startMoto(t)
	ctx := context.Background()
	if !identitycenter.IsInstanceARN(m.inst) || !identitycenter.IsIdentityStoreID(m.store) {
		t.Errorf("moto's instance %s or store %s refused by the validators", m.inst, m.store)
	}
	t.Logf("moto instance %s, identity store %s (AWS's d-+10 hex pattern: %v)", m.inst, m.store, awsStoreID.MatchString(m.store))
	// Without a SessionDuration moto stores the number 3600, which the SDK
	// cannot read, in its answer to this call and to DescribePermissionSet.
	_, err := m.sso.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{InstanceArn: &m.inst, Name: aws.String("bare")})
	var undecodable *smithy.DeserializationError
	if !errors.As(err, &undecodable) {
		t.Errorf("CreatePermissionSet without a session duration: %v, want moto's unreadable answer (quirk)", err)
	}
	list, err := m.sso.ListPermissionSets(ctx, &ssoadmin.ListPermissionSetsInput{InstanceArn: &m.inst})
	if err != nil || len(list.PermissionSets) != 1 {
		t.Fatalf("ListPermissionSets = %v, %v", list, err)
	}
	if _, err := m.c.PermissionSet(ctx, list.PermissionSets[0]); err == nil || !strings.Contains(err.Error(), "give it one") {
		t.Errorf("PermissionSet of a set without a session duration: %v, want the hint", err)
	}
	ps, err := m.sso.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{InstanceArn: &m.inst, Name: aws.String("ro"), SessionDuration: aws.String("PT1H")})
	if err != nil {
		t.Fatal(err)
	}
	psARN := aws.ToString(ps.PermissionSet.PermissionSetArn)
	if !strings.HasPrefix(psARN, "arn:aws:sso:::instance/ssoins-") || !identitycenter.IsPermissionSetARN(psARN) {
		t.Errorf("moto's permission set ARN %s: want the instance/ form (quirk), accepted", psARN)
	}
	uid := m.createUser(t, "alice", "alice@example.com")
	g, err := m.ids.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: &m.store, DisplayName: aws.String("admins")})
	if err != nil {
		t.Fatal(err)
	}
	if !identitycenter.IsUserID(uid) || !identitycenter.IsGroupID(aws.ToString(g.GroupId)) {
		t.Errorf("moto's user id %s or group id %s refused", uid, aws.ToString(g.GroupId))
	}
	// The calls moto 5.2.1 lacks answer HTTP 500; the adapter uses none.
	if _, err := m.sso.DescribeInstance(ctx, &ssoadmin.DescribeInstanceInput{InstanceArn: &m.inst}); err == nil {
		t.Error("moto answers DescribeInstance now: the quirk is gone")
	}
	member := &istypes.MemberIdMemberUserId{Value: uid}
	if _, err := m.ids.GetGroupMembershipId(ctx, &identitystore.GetGroupMembershipIdInput{IdentityStoreId: &m.store, GroupId: g.GroupId, MemberId: member}); err == nil {
		t.Error("moto answers GetGroupMembershipId now: the quirk is gone")
	}
	if _, err := m.ids.IsMemberInGroups(ctx, &identitystore.IsMemberInGroupsInput{IdentityStoreId: &m.store, GroupIds: []string{*g.GroupId}, MemberId: member}); err == nil {
		t.Error("moto answers IsMemberInGroups now: the quirk is gone")
	}
}

func TestMotoAssignments(t *testing.T) {
	m := startMoto(t)
	ctx := context.Background()
	ps, err := m.sso.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{InstanceArn: &m.inst, Name: aws.String("admin"), SessionDuration: aws.String("PT2H")})
	if err != nil {
		t.Fatal(err)
	}
	psARN := aws.ToString(ps.PermissionSet.PermissionSetArn)
	alice, bob := m.createUser(t, "alice", "alice@example.com"), m.createUser(t, "bob", "bob@example.com")
	a := identitycenter.Assignment{PermissionSetARN: psARN, AccountID: motoserver.AccountID, UserID: alice}

	t.Run("moto stores copies and answers at once", func(t *testing.T) {
		in := &ssoadmin.CreateAccountAssignmentInput{InstanceArn: &m.inst, PermissionSetArn: &psARN, TargetId: aws.String(motoserver.AccountID),
			TargetType: types.TargetTypeAwsAccount, PrincipalType: types.PrincipalTypeUser, PrincipalId: &bob}
		for range 2 {
			out, err := m.sso.CreateAccountAssignment(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if s := out.AccountAssignmentCreationStatus.Status; s != types.StatusValuesSucceeded {
				t.Errorf("moto answered %s, not SUCCEEDED at once", s)
			}
		}
		if n := m.copies(t, psARN, bob); n != 2 {
			t.Errorf("%d copies after two raw creates, want 2 (quirk)", n)
		}
		// The adapter lists each user once; one Unassign removes both
		// copies, one DeleteAccountAssignment each.
		if users, err := m.c.AssignedUsers(ctx, psARN, motoserver.AccountID); err != nil || !slices.Equal(users, []string{bob}) {
			t.Errorf("AssignedUsers = %v, %v", users, err)
		}
		b := identitycenter.Assignment{PermissionSetARN: psARN, AccountID: motoserver.AccountID, UserID: bob}
		deletes := m.ssoCalls("DeleteAccountAssignment")
		if id, err := m.c.Unassign(ctx, b); err != nil || id == "" {
			t.Fatalf("Unassign over two copies = %q, %v", id, err)
		}
		if n := m.copies(t, psARN, bob); n != 0 {
			t.Errorf("%d copies left after one Unassign", n)
		}
		if d := m.ssoCalls("DeleteAccountAssignment") - deletes; d != 2 {
			t.Errorf("%d deletes for two copies, want 2", d)
		}
		if ok, err := m.c.IsAssigned(ctx, b); err != nil || ok {
			t.Errorf("IsAssigned after one Unassign = %v, %v", ok, err)
		}
		_, err := m.sso.DeleteAccountAssignment(ctx, &ssoadmin.DeleteAccountAssignmentInput{InstanceArn: &m.inst, PermissionSetArn: &psARN,
			TargetId: aws.String(motoserver.AccountID), TargetType: types.TargetTypeAwsAccount, PrincipalType: types.PrincipalTypeUser, PrincipalId: &bob})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("raw delete of nothing: %v, want moto's ResourceNotFoundException", err)
		}
	})
	t.Run("assign reads before it creates", func(t *testing.T) {
		id, err := m.c.Assign(ctx, a)
		if err != nil || id == "" {
			t.Fatalf("Assign = %q, %v; want a request id", id, err)
		}
		if id, err := m.c.Assign(ctx, a); err != nil || id != "" {
			t.Fatalf("second Assign = %q, %v; want nothing changed", id, err)
		}
		if n := m.copies(t, psARN, alice); n != 1 {
			t.Errorf("%d copies after assigning twice, want 1", n)
		}
		if ok, err := m.c.IsAssigned(ctx, a); err != nil || !ok {
			t.Errorf("IsAssigned = %v, %v", ok, err)
		}
		if users, err := m.c.AssignedUsers(ctx, psARN, motoserver.AccountID); err != nil || !slices.Equal(users, []string{alice}) {
			t.Errorf("AssignedUsers = %v, %v", users, err)
		}
	})
	t.Run("the read is the user's side, filtered to the account", func(t *testing.T) {
		// moto 5.2.1 honours the Filter: alice's assignment above is in
		// the home account only.
		const other = "210987654321"
		raw := func(acct string) int {
			out, err := m.sso.ListAccountAssignmentsForPrincipal(ctx, &ssoadmin.ListAccountAssignmentsForPrincipalInput{InstanceArn: &m.inst,
				PrincipalId: &alice, PrincipalType: types.PrincipalTypeUser, Filter: &types.ListAccountAssignmentsFilter{AccountId: aws.String(acct)}})
			if err != nil {
				t.Fatal(err)
			}
			return len(out.AccountAssignments)
		}
		if home, elsewhere := raw(motoserver.AccountID), raw(other); home != 1 || elsewhere != 0 {
			t.Errorf("filtered listings: %d in the home account, %d in %s; want 1, 0", home, elsewhere, other)
		}
		if ok, err := m.c.IsAssigned(ctx, identitycenter.Assignment{PermissionSetARN: psARN, AccountID: other, UserID: alice}); err != nil || ok {
			t.Errorf("IsAssigned in %s = %v, %v; want false", other, ok, err)
		}
		byPS, byUser := m.ssoCalls("ListAccountAssignments"), m.ssoCalls("ListAccountAssignmentsForPrincipal")
		if ok, err := m.c.IsAssigned(ctx, a); err != nil || !ok {
			t.Errorf("IsAssigned = %v, %v", ok, err)
		}
		if m.ssoCalls("ListAccountAssignments") != byPS || m.ssoCalls("ListAccountAssignmentsForPrincipal") != byUser+1 {
			t.Errorf("IsAssigned took %v, want one ListAccountAssignmentsForPrincipal", m.counter.Snapshot())
		}
	})
	t.Run("one unassign removes it", func(t *testing.T) {
		id, err := m.c.Unassign(ctx, a)
		if err != nil || id == "" {
			t.Fatalf("Unassign = %q, %v", id, err)
		}
		if n := m.copies(t, psARN, alice); n != 0 {
			t.Errorf("%d copies after one Unassign", n)
		}
		if id, err := m.c.Unassign(ctx, a); err != nil || id != "" {
			t.Fatalf("second Unassign = %q, %v; want nothing changed", id, err)
		}
		if ok, err := m.c.IsAssigned(ctx, a); err != nil || ok {
			t.Errorf("IsAssigned = %v, %v", ok, err)
		}
	})
	t.Run("inline policy and provisioning", func(t *testing.T) {
		if p, err := m.c.InlinePolicy(ctx, psARN); err != nil || p != "" {
			t.Fatalf("InlinePolicy of a new set = %q, %v", p, err)
		}
		policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z"}}}]}`
		if _, err := m.c.PutInlinePolicy(ctx, psARN, policy); err != nil {
			t.Fatal(err)
		}
		if p, err := m.c.InlinePolicy(ctx, psARN); err != nil || p != policy {
			t.Fatalf("InlinePolicy = %q, %v", p, err)
		}
		if id, err := m.c.Provision(ctx, psARN, motoserver.AccountID); err != nil || id == "" {
			t.Fatalf("Provision = %q, %v", id, err)
		}
		out, err := m.sso.ListAccountsForProvisionedPermissionSet(ctx, &ssoadmin.ListAccountsForProvisionedPermissionSetInput{InstanceArn: &m.inst, PermissionSetArn: &psARN})
		if err != nil || !slices.Equal(out.AccountIds, []string{motoserver.AccountID}) {
			t.Errorf("provisioned to %v, %v", out, err)
		}
	})
	t.Run("permission set", func(t *testing.T) {
		got, err := m.c.PermissionSet(ctx, psARN)
		if err != nil || got != (identitycenter.PermissionSet{ARN: psARN, Name: "admin", SessionDuration: 2 * time.Hour}) {
			t.Fatalf("PermissionSet = %+v, %v", got, err)
		}
		missing := psARN[:len(psARN)-4] + "zzzz"
		_, err = m.c.PermissionSet(ctx, missing)
		var nf *identitycenter.NotFoundError
		if !errors.As(err, &nf) || !errors.Is(err, grants.ErrNotFound) || !strings.Contains(err.Error(), missing) {
			t.Errorf("missing permission set: %v", err)
		}
	})
}

func TestMotoGroups(t *testing.T) {
	m := startMoto(t)
	ctx := context.Background()
	alice := m.createUser(t, "alice", "alice@example.com")
	out, err := m.ids.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: &m.store, DisplayName: aws.String("admins")})
	if err != nil {
		t.Fatal(err)
	}
	gid := aws.ToString(out.GroupId)

	if g, err := m.c.Group(ctx, gid); err != nil || g != (identitycenter.Group{ID: gid, DisplayName: "admins"}) {
		t.Errorf("Group = %+v, %v", g, err)
	}
	if _, err := m.c.Group(ctx, "9a25a0e7-aee5-4448-815f-9834a59bc1dd"); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("missing group: %v", err)
	}
	id, err := m.c.AddToGroup(ctx, gid, alice)
	if err != nil || id == "" {
		t.Fatalf("AddToGroup = %q, %v", id, err)
	}
	if id, err := m.c.AddToGroup(ctx, gid, alice); err != nil || id != "" {
		t.Fatalf("second AddToGroup = %q, %v", id, err)
	}
	if n := m.memberCopies(t, gid); n != 1 {
		t.Errorf("%d memberships after adding twice, want 1", n)
	}
	if ok, err := m.c.InGroup(ctx, gid, alice); err != nil || !ok {
		t.Errorf("InGroup = %v, %v", ok, err)
	}
	if users, err := m.c.GroupMembers(ctx, gid); err != nil || !slices.Equal(users, []string{alice}) {
		t.Errorf("GroupMembers = %v, %v", users, err)
	}
	if id, err := m.c.RemoveFromGroup(ctx, gid, alice); err != nil || id == "" {
		t.Fatalf("RemoveFromGroup = %q, %v", id, err)
	}
	if ok, err := m.c.InGroup(ctx, gid, alice); err != nil || ok {
		t.Errorf("InGroup after removal = %v, %v", ok, err)
	}
	if id, err := m.c.RemoveFromGroup(ctx, gid, alice); err != nil || id != "" {
		t.Fatalf("second RemoveFromGroup = %q, %v", id, err)
	}
	// moto stores a second copy of a membership (quirk); removal ends both.
	for range 2 {
		if _, err := m.ids.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{IdentityStoreId: &m.store, GroupId: &gid,
			MemberId: &istypes.MemberIdMemberUserId{Value: alice}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.memberCopies(t, gid); n != 2 {
		t.Errorf("%d memberships after two raw creates, want 2 (quirk)", n)
	}
	if users, err := m.c.GroupMembers(ctx, gid); err != nil || !slices.Equal(users, []string{alice}) {
		t.Errorf("GroupMembers over copies = %v, %v", users, err)
	}
	if _, err := m.c.RemoveFromGroup(ctx, gid, alice); err != nil {
		t.Fatal(err)
	}
	if n := m.memberCopies(t, gid); n != 0 {
		t.Errorf("%d memberships left", n)
	}
}

func TestMotoUserByEmail(t *testing.T) {
	m := startMoto(t)
	ctx := context.Background()
	alice := m.createUser(t, "alice", "Alice@Example.com")
	var idErr *grants.IdentityError

	if u, err := m.c.UserByEmail(ctx, "Alice@Example.com"); err != nil || u != (identitycenter.User{ID: alice, UserName: "alice"}) {
		t.Fatalf("exact email: %+v, %v", u, err)
	}
	if m.calls("GetUserId") != 1 || m.calls("DescribeUser") != 1 || m.calls("ListUsers") != 0 {
		t.Errorf("exact email took %v, want GetUserId and DescribeUser only", m.counter.Snapshot())
	}
	// moto's GetUserId compares case-sensitively; the scan does not.
	if u, err := m.newAdapt().UserByEmail(ctx, "alice@example.com"); err != nil || u.ID != alice {
		t.Fatalf("other case: %+v, %v", u, err)
	}
	if m.calls("ListUsers") != 1 {
		t.Errorf("other case took %v, want the scan", m.counter.Snapshot())
	}
	m.createUser(t, "nomail") // from here on, moto's GetUserId answers 500 whenever it reaches this user
	getUserID := func(email string) error {
		_, err := m.ids.GetUserId(ctx, &identitystore.GetUserIdInput{IdentityStoreId: &m.store, AlternateIdentifier: &istypes.AlternateIdentifierMemberUniqueAttribute{
			Value: istypes.UniqueAttribute{AttributePath: aws.String("emails.value"), AttributeValue: document.NewLazyDocument(email)}}})
		return err
	}
	var resp *awshttp.ResponseError
	if err := getUserID("nobody@example.com"); !errors.As(err, &resp) || resp.HTTPStatusCode() != 500 {
		t.Errorf("raw GetUserId past an email-less user: %v, want moto's HTTP 500 (quirk)", err)
	}
	c := m.newAdapt()
	failed := m.count("GetUserId").Errors
	if u, err := c.UserByEmail(ctx, "ALICE@example.com"); err != nil || u.ID != alice {
		t.Fatalf("with an email-less user in the store: %+v, %v", u, err)
	}
	if m.count("GetUserId").Errors == failed {
		t.Error("GetUserId did not fail: the lookup did not meet the quirk")
	}
	if _, err := c.UserByEmail(ctx, "nobody@example.com"); !errors.As(err, &idErr) || idErr.Code != "unknown_user" {
		t.Errorf("unknown email: %v", err)
	}
	m.createUser(t, "twin1", "twin@example.com")
	m.createUser(t, "twin2", "Twin@Example.com")
	if _, err := m.newAdapt().UserByEmail(ctx, "twin@example.com"); !errors.As(err, &idErr) || idErr.Code != "ambiguous_user" {
		t.Errorf("two users with one email: %v, want ambiguous_user", err)
	}
}

// GroupAssignments lists a group's permission sets and accounts through
// ListAccountAssignmentsForPrincipal, which moto 5.2.1 answers; copies
// (moto stores a second CreateAccountAssignment) come back once, and
// another principal's assignments never.
func TestMotoGroupAssignments(t *testing.T) {
	m := startMoto(t)
	ctx := context.Background()
	var sets []string
	for _, name := range []string{"ro", "admin"} {
		ps, err := m.sso.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{InstanceArn: &m.inst, Name: aws.String(name), SessionDuration: aws.String("PT1H")})
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, aws.ToString(ps.PermissionSet.PermissionSetArn))
	}
	g, err := m.ids.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: &m.store, DisplayName: aws.String("ops")})
	if err != nil {
		t.Fatal(err)
	}
	gid := aws.ToString(g.GroupId)
	alice := m.createUser(t, "alice", "alice@example.com")
	const other = "210987654321"
	assign := func(ps, acct string, typ types.PrincipalType, id string) {
		if _, err := m.sso.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{InstanceArn: &m.inst, PermissionSetArn: &ps,
			TargetId: &acct, TargetType: types.TargetTypeAwsAccount, PrincipalType: typ, PrincipalId: &id}); err != nil {
			t.Fatal(err)
		}
	}
	assign(sets[0], motoserver.AccountID, types.PrincipalTypeGroup, gid)
	assign(sets[0], motoserver.AccountID, types.PrincipalTypeGroup, gid) // a copy
	assign(sets[0], other, types.PrincipalTypeGroup, gid)
	assign(sets[1], other, types.PrincipalTypeGroup, gid)
	assign(sets[1], motoserver.AccountID, types.PrincipalTypeUser, alice)

	got, err := m.c.GroupAssignments(ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	want := []identitycenter.GroupAssignment{{sets[0], motoserver.AccountID}, {sets[0], other}, {sets[1], other}}
	slices.SortFunc(want, func(a, b identitycenter.GroupAssignment) int {
		return strings.Compare(a.PermissionSetARN+a.AccountID, b.PermissionSetARN+b.AccountID)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("GroupAssignments = %v, want %v", got, want)
	}
	if none, err := m.c.GroupAssignments(ctx, "9a25a0e7-aee5-4448-815f-9834a59bc1dd"); err != nil || len(none) != 0 {
		t.Errorf("unknown group: %v, %v", none, err)
	}

	// DeleteInlinePolicy: the inline policy is gone afterwards.
	if _, err := m.c.PutInlinePolicy(ctx, sets[0], `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}`); err != nil {
		t.Fatal(err)
	}
	if _, err := m.c.DeleteInlinePolicy(ctx, sets[0]); err != nil {
		t.Fatal(err)
	}
	if p, err := m.c.InlinePolicy(ctx, sets[0]); err != nil || p != "" {
		t.Errorf("InlinePolicy after delete = %q, %v", p, err)
	}
}
