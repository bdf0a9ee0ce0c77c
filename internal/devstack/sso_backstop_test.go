package devstack_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/iamjit/iamjit/grants/identitycenter"
	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
)

// The actions iamjit calls on Identity Center through the modifier role
// (issue 22), written out here rather than taken from the package.
var (
	wantSSO = []string{
		"sso:ListInstances", "sso:DescribePermissionSet", "sso:CreateAccountAssignment", "sso:DeleteAccountAssignment",
		"sso:DescribeAccountAssignmentCreationStatus", "sso:DescribeAccountAssignmentDeletionStatus",
		"sso:ListAccountAssignments", "sso:ListAccountAssignmentsForPrincipal", "sso:GetInlinePolicyForPermissionSet",
		"sso:PutInlinePolicyToPermissionSet", "sso:ProvisionPermissionSet", "sso:DescribePermissionSetProvisioningStatus",
	}
	wantIdentityStore = []string{
		"identitystore:GetUserId", "identitystore:DescribeUser", "identitystore:ListUsers", "identitystore:DescribeGroup",
		"identitystore:CreateGroupMembership", "identitystore:DeleteGroupMembership", "identitystore:ListGroupMemberships",
		"identitystore:ListGroupMembershipsForMember",
	}
)

// allowed is what a policy document allows: action -> resources, with the
// statement's condition when it has one (resource + " if " + condition).
func allowed(t *testing.T, doc map[string]any) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	list := func(v any) []string {
		switch v := v.(type) {
		case string:
			return []string{v}
		case []any:
			var s []string
			for _, x := range v {
				s = append(s, x.(string))
			}
			return s
		}
		return nil
	}
	sts, _ := doc["Statement"].([]any)
	for _, raw := range sts {
		s := raw.(map[string]any)
		if s["Effect"] != "Allow" {
			t.Fatalf("statement %v is not an Allow", s)
		}
		cond := ""
		if c, ok := s["Condition"]; ok {
			cond = " if " + jsonString(t, c)
		}
		for _, a := range list(s["Action"]) {
			for _, r := range list(s["Resource"]) {
				out[a] = append(out[a], r+cond)
			}
		}
	}
	return out
}

// The Identity Center part: a permission set with a session duration (so
// the Go SDK, and iamjit's adapter, can read it), a user with the dev
// email, a group that holds the permission set in the home account, and no
// grant made by the stack itself.
func TestIdentityCenterShape(t *testing.T) {
	ctx := context.Background()
	cfg, st := sharedHome.get(t)
	ic := st.IdentityCenter
	sso, ids := ssoadmin.NewFromConfig(cfg), identitystore.NewFromConfig(cfg)

	inst, err := sso.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
	if err != nil || len(inst.Instances) != 1 {
		t.Fatalf("ListInstances = %v, %v", inst, err)
	}
	if ic.InstanceARN != aws.ToString(inst.Instances[0].InstanceArn) || ic.IdentityStoreID != aws.ToString(inst.Instances[0].IdentityStoreId) {
		t.Errorf("stack instance %s/%s, moto's %s/%s", ic.InstanceARN, ic.IdentityStoreID,
			aws.ToString(inst.Instances[0].InstanceArn), aws.ToString(inst.Instances[0].IdentityStoreId))
	}
	if ic.Account != motoserver.AccountID || !identitycenter.IsInstanceARN(ic.InstanceARN) ||
		!identitycenter.IsPermissionSetARN(ic.PermissionSetARN) || !identitycenter.IsGroupID(ic.GroupID) || !identitycenter.IsUserID(ic.UserID) {
		t.Errorf("identity center = %+v", ic)
	}

	ps, err := sso.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: &ic.InstanceARN, PermissionSetArn: &ic.PermissionSetARN})
	if err != nil {
		t.Fatalf("DescribePermissionSet: %v", err)
	}
	if aws.ToString(ps.PermissionSet.Name) != "iamjit-readonly" || aws.ToString(ps.PermissionSet.SessionDuration) != "PT1H" {
		t.Errorf("permission set %s, session %s", aws.ToString(ps.PermissionSet.Name), aws.ToString(ps.PermissionSet.SessionDuration))
	}
	inline, err := sso.GetInlinePolicyForPermissionSet(ctx, &ssoadmin.GetInlinePolicyForPermissionSetInput{InstanceArn: &ic.InstanceARN, PermissionSetArn: &ic.PermissionSetARN})
	if err != nil || !strings.Contains(aws.ToString(inline.InlinePolicy), "sts:GetCallerIdentity") {
		t.Errorf("inline policy = %v, %v", inline, err)
	}

	u, err := ids.DescribeUser(ctx, &identitystore.DescribeUserInput{IdentityStoreId: &ic.IdentityStoreID, UserId: &ic.UserID})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(u.UserName) != "alice@example.com" || len(u.Emails) != 1 || aws.ToString(u.Emails[0].Value) != "alice@example.com" || !u.Emails[0].Primary {
		t.Errorf("user %s, emails %+v", aws.ToString(u.UserName), u.Emails)
	}
	g, err := ids.DescribeGroup(ctx, &identitystore.DescribeGroupInput{IdentityStoreId: &ic.IdentityStoreID, GroupId: &ic.GroupID})
	if err != nil || aws.ToString(g.DisplayName) != "iamjit-readonly" {
		t.Errorf("group = %v, %v", g, err)
	}

	as, err := sso.ListAccountAssignments(ctx, &ssoadmin.ListAccountAssignmentsInput{InstanceArn: &ic.InstanceARN,
		AccountId: aws.String(motoserver.AccountID), PermissionSetArn: &ic.PermissionSetARN})
	if err != nil {
		t.Fatal(err)
	}
	if len(as.AccountAssignments) != 1 || as.AccountAssignments[0].PrincipalType != ssotypes.PrincipalTypeGroup ||
		aws.ToString(as.AccountAssignments[0].PrincipalId) != ic.GroupID {
		t.Errorf("assignments = %+v, want the group's only", as.AccountAssignments)
	}
	if n := memberships(t, ids, ic); n != 0 {
		t.Errorf("the group has %d members; the stack grants nothing", n)
	}

	// iamjit's own adapter reads it all.
	c := identitycenter.New(cfg, identitycenter.Options{})
	if store, err := c.Discover(ctx, ic.InstanceARN); err != nil || store != ic.IdentityStoreID {
		t.Fatalf("Discover = %s, %v", store, err)
	}
	if d, err := c.PermissionSet(ctx, ic.PermissionSetARN); err != nil || d.SessionDuration != time.Hour {
		t.Errorf("adapter PermissionSet = %+v, %v", d, err)
	}
	if found, err := c.UserByEmail(ctx, "alice@example.com"); err != nil || found.ID != ic.UserID {
		t.Errorf("adapter UserByEmail = %+v, %v", found, err)
	}
	if _, err := c.Group(ctx, ic.GroupID); err != nil {
		t.Errorf("adapter Group: %v", err)
	}
}

func memberships(t *testing.T, ids *identitystore.Client, ic devstack.IdentityCenter) int {
	t.Helper()
	out, err := ids.ListGroupMemberships(context.Background(), &identitystore.ListGroupMembershipsInput{IdentityStoreId: &ic.IdentityStoreID, GroupId: &ic.GroupID})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.GroupMemberships)
}

// The backstop: the schedule group, the DLQ, and the execution role trusted
// by EventBridge Scheduler for this account's schedules of the group only,
// allowed the three deletes and the DLQ; the modifier may manage the
// group's schedules, pass that role to the scheduler, and call Identity
// Center.
func TestBackstopAndModifierPolicies(t *testing.T) {
	ctx := context.Background()
	cfg, st := sharedHome.get(t)
	bs := st.Backstop
	const home = motoserver.AccountID
	if bs.RoleARN != "arn:aws:iam::"+home+":role/sym/iamjit-backstop" || bs.Group != "iamjit" ||
		bs.GroupARN != "arn:aws:scheduler:us-east-1:"+home+":schedule-group/iamjit" ||
		bs.DLQARN != "arn:aws:sqs:us-east-1:"+home+":iamjit-backstop-dlq" || !strings.HasSuffix(bs.DLQURL, "/iamjit-backstop-dlq") {
		t.Errorf("backstop = %+v", bs)
	}
	g, err := scheduler.NewFromConfig(cfg).GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String("iamjit")})
	if err != nil || aws.ToString(g.Arn) != bs.GroupARN || g.State != schedtypes.ScheduleGroupStateActive {
		t.Errorf("GetScheduleGroup = %+v, %v", g, err)
	}
	q, err := sqs.NewFromConfig(cfg).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &bs.DLQURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil || q.Attributes["QueueArn"] != bs.DLQARN || q.Attributes["MessageRetentionPeriod"] != "1209600" {
		t.Errorf("DLQ attributes = %v, %v", q, err)
	}

	ic := iam.NewFromConfig(cfg)
	trust, inline := roleDocs(t, ic, "iamjit-backstop")
	s := firstStatement(t, trust)
	wantCond := `{"ArnLike":{"aws:SourceArn":"arn:aws:scheduler:*:` + home + `:schedule/iamjit/*"},"StringEquals":{"aws:SourceAccount":"` + home + `"}}`
	if p, _ := s["Principal"].(map[string]any); p["Service"] != "scheduler.amazonaws.com" || s["Action"] != "sts:AssumeRole" ||
		jsonString(t, s["Condition"]) != wantCond {
		t.Errorf("backstop trust = %v", s)
	}
	want := map[string][]string{
		"iam:RemoveUserFromGroup":             {"arn:aws:iam::" + home + ":group/sym/*"},
		"sso:DeleteAccountAssignment":         {"*"},
		"identitystore:DeleteGroupMembership": {"*"},
		"sqs:SendMessage":                     {bs.DLQARN},
	}
	if got := allowed(t, inline); !reflect.DeepEqual(got, want) {
		t.Errorf("backstop policy allows %v, want exactly %v", got, want)
	}

	_, mod := roleDocs(t, ic, "iamjit-iam-modifier")
	got := allowed(t, mod)
	for _, a := range append(slices.Clone(wantSSO), wantIdentityStore...) {
		if !slices.Equal(got[a], []string{"*"}) {
			t.Errorf("modifier: %s on %v, want *", a, got[a])
		}
	}
	for a, rs := range map[string][]string{
		"scheduler:*":                {"arn:aws:scheduler:*:*:schedule/iamjit/*"},
		"scheduler:GetScheduleGroup": {"arn:aws:scheduler:*:*:schedule-group/iamjit"},
		"iam:PassRole":               {`arn:aws:iam::*:role/sym/iamjit-backstop if {"StringEquals":{"iam:PassedToService":"scheduler.amazonaws.com"}}`},
		// What it had before stays.
		"iam:AddUserToGroup": {"arn:aws:iam::*:group/sym/*"},
		"iam:PutRolePolicy":  {"arn:aws:iam::*:role/jit/*"},
	} {
		if !reflect.DeepEqual(got[a], rs) {
			t.Errorf("modifier: %s on %v, want %v", a, got[a], rs)
		}
	}
	for _, a := range []string{"sso:CreatePermissionSet", "identitystore:CreateUser", "sso:*", "identitystore:*", "iam:*", "scheduler:CreateScheduleGroup"} {
		if rs, ok := got[a]; ok {
			t.Errorf("modifier may %s on %v", a, rs)
		}
	}
}

// The stack's run twice through `iamjit dev`: the same lines, and one
// permission set, group, user, group assignment and schedule group; no
// membership; and a schedule made in the group between the runs is still
// there (moto replaces a schedule group created again, emptying it).
func TestDevIdentityCenterAndBackstopIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := motoserver.Start(t)
	cfg := srv.AWSConfig(t)
	first, err := runDev(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"IAMJIT_SSO_INSTANCE_ARN", "IAMJIT_SSO_PERMISSION_SETS", "IAMJIT_SSO_ASSIGNMENT_ACCOUNTS", "IAMJIT_SSO_GROUPS",
		"IAMJIT_BACKSTOP_ROLE_ARN", "IAMJIT_BACKSTOP_GROUP", "IAMJIT_BACKSTOP_DLQ_ARN", "IAMJIT_DEV_SSO_USER_ID", "IAMJIT_DEV_SSO_GROUP_ID", "IAMJIT_DEV_SSO_PERMISSION_SET_ARN",
		"IAMJIT_DEV_BACKSTOP_DLQ_URL"}
	vals := evalExports(t, first, names...)
	printed := map[string]string{}
	for i, n := range names {
		printed[n] = vals[i]
	}

	// A backstop schedule, as iamjit would make one, between the runs.
	sc := scheduler.NewFromConfig(cfg)
	if _, err := sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name: aws.String("grant-1"), GroupName: aws.String(printed["IAMJIT_BACKSTOP_GROUP"]),
		ScheduleExpression: aws.String("at(2030-01-01T00:00:00)"), FlexibleTimeWindow: &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		Target: &schedtypes.Target{
			Arn:              aws.String("arn:aws:scheduler:::aws-sdk:iam:removeUserFromGroup"),
			RoleArn:          aws.String(printed["IAMJIT_BACKSTOP_ROLE_ARN"]),
			Input:            aws.String(`{"GroupName":"iamjit-readonly","UserName":"alice@example.com"}`),
			DeadLetterConfig: &schedtypes.DeadLetterConfig{Arn: aws.String(printed["IAMJIT_BACKSTOP_DLQ_ARN"])},
		},
	}); err != nil {
		t.Fatalf("CreateSchedule with the printed settings: %v", err)
	}

	second, err := runDev(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("second run printed other lines:\n%s\nfirst:\n%s", second, first)
	}
	if _, err := sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("grant-1"), GroupName: aws.String("iamjit")}); err != nil {
		t.Errorf("the schedule made before the second run: %v", err)
	}

	st, err := devstack.Create(ctx, cfg, devstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ic := st.IdentityCenter
	for name, want := range map[string]string{
		"IAMJIT_SSO_INSTANCE_ARN": ic.InstanceARN, "IAMJIT_SSO_PERMISSION_SETS": ic.PermissionSetARN,
		"IAMJIT_SSO_ASSIGNMENT_ACCOUNTS": motoserver.AccountID, "IAMJIT_SSO_GROUPS": ic.GroupID,
		"IAMJIT_BACKSTOP_ROLE_ARN": st.Backstop.RoleARN, "IAMJIT_DEV_SSO_USER_ID": ic.UserID, "IAMJIT_DEV_SSO_GROUP_ID": ic.GroupID,
		"IAMJIT_DEV_SSO_PERMISSION_SET_ARN": ic.PermissionSetARN, "IAMJIT_BACKSTOP_GROUP": "iamjit",
		"IAMJIT_DEV_BACKSTOP_DLQ_URL": st.Backstop.DLQURL, "IAMJIT_BACKSTOP_DLQ_ARN": st.Backstop.DLQARN,
	} {
		if printed[name] != want || want == "" {
			t.Errorf("%s = %q, want %q", name, printed[name], want)
		}
	}

	sso, ids := ssoadmin.NewFromConfig(cfg), identitystore.NewFromConfig(cfg)
	sets, err := sso.ListPermissionSets(ctx, &ssoadmin.ListPermissionSetsInput{InstanceArn: &ic.InstanceARN})
	if err != nil || !slices.Equal(sets.PermissionSets, []string{ic.PermissionSetARN}) {
		t.Errorf("permission sets = %v, %v", sets, err)
	}
	groups, err := ids.ListGroups(ctx, &identitystore.ListGroupsInput{IdentityStoreId: &ic.IdentityStoreID})
	if err != nil || len(groups.Groups) != 1 {
		t.Errorf("groups = %+v, %v", groups, err)
	}
	users, err := ids.ListUsers(ctx, &identitystore.ListUsersInput{IdentityStoreId: &ic.IdentityStoreID})
	if err != nil || len(users.Users) != 1 {
		t.Errorf("users = %+v, %v", users, err)
	}
	as, err := sso.ListAccountAssignmentsForPrincipal(ctx, &ssoadmin.ListAccountAssignmentsForPrincipalInput{
		InstanceArn: &ic.InstanceARN, PrincipalId: &ic.GroupID, PrincipalType: ssotypes.PrincipalTypeGroup})
	if err != nil || len(as.AccountAssignments) != 1 {
		t.Errorf("the group's assignments = %+v, %v", as, err)
	}
	mine, err := sso.ListAccountAssignmentsForPrincipal(ctx, &ssoadmin.ListAccountAssignmentsForPrincipalInput{
		InstanceArn: &ic.InstanceARN, PrincipalId: &ic.UserID, PrincipalType: ssotypes.PrincipalTypeUser})
	if err != nil || len(mine.AccountAssignments) != 0 {
		t.Errorf("the user's assignments = %+v, %v", mine, err)
	}
	if n := memberships(t, ids, ic); n != 0 {
		t.Errorf("%d memberships, want none", n)
	}
	sgs, err := sc.ListScheduleGroups(ctx, &scheduler.ListScheduleGroupsInput{NamePrefix: aws.String("iamjit")})
	if err != nil || len(sgs.ScheduleGroups) != 1 {
		t.Errorf("schedule groups = %+v, %v", sgs, err)
	}
	// The user found by email is the one user: no duplicate to be ambiguous.
	byEmail, err := ids.GetUserId(ctx, &identitystore.GetUserIdInput{IdentityStoreId: &ic.IdentityStoreID,
		AlternateIdentifier: &istypes.AlternateIdentifierMemberUniqueAttribute{Value: istypes.UniqueAttribute{
			AttributePath: aws.String("emails.value"), AttributeValue: document.NewLazyDocument("alice@example.com")}}})
	if err != nil || aws.ToString(byEmail.UserId) != ic.UserID {
		t.Errorf("GetUserId(email) = %v, %v", byEmail, err)
	}
}

// A user of the dev name made by hand without the email is refused: iamjit
// could never find it by email.
func TestIdentityCenterUserWithoutTheEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := motoserver.Start(t)
	cfg := srv.AWSConfig(t)
	inst, err := ssoadmin.NewFromConfig(cfg).ListInstances(ctx, &ssoadmin.ListInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := identitystore.NewFromConfig(cfg).CreateUser(ctx, &identitystore.CreateUserInput{
		IdentityStoreId: inst.Instances[0].IdentityStoreId, UserName: aws.String("bob@example.com"), DisplayName: aws.String("bob"),
		Name:   &istypes.Name{GivenName: aws.String("bob"), FamilyName: aws.String("x")},
		Emails: []istypes.Email{{Value: aws.String("robert@example.com"), Primary: true}},
	}); err != nil {
		t.Fatal(err)
	}
	_, err = devstack.Create(ctx, cfg, devstack.Options{User: "bob@example.com"})
	if err == nil || !strings.Contains(err.Error(), "exists without the email bob@example.com") {
		t.Fatalf("Create = %v, want the user refused", err)
	}
}

// Each member account gets its own backstop: role trusted for that
// account's schedules, schedule group and DLQ there; the entry's
// backstop_role_arn names it.
func TestMemberBackstops(t *testing.T) {
	ctx := context.Background()
	cfg, st := sharedMembers.get(t) // member1 is Members[0]
	m := st.Members[0]
	if m.AccountID != member1 {
		t.Fatalf("members = %+v, want %s first", st.Members, member1)
	}
	if m.Backstop.RoleARN != "arn:aws:iam::"+member1+":role/sym/iamjit-backstop" ||
		m.Backstop.GroupARN != "arn:aws:scheduler:us-east-1:"+member1+":schedule-group/iamjit" ||
		m.Backstop.DLQARN != "arn:aws:sqs:us-east-1:"+member1+":iamjit-backstop-dlq" {
		t.Errorf("member backstop = %+v", m.Backstop)
	}
	if !strings.Contains(st.AccountsJSON(), `"backstop_role_arn":"`+m.Backstop.RoleARN+`"`) {
		t.Errorf("IAMJIT_ACCOUNTS = %s", st.AccountsJSON())
	}
	mc := devstack.AccountConfig(cfg, member1)
	if _, err := scheduler.NewFromConfig(mc).GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String("iamjit")}); err != nil {
		t.Errorf("member schedule group: %v", err)
	}
	trust, inline := roleDocs(t, iam.NewFromConfig(mc), "iamjit-backstop")
	cond := jsonString(t, firstStatement(t, trust)["Condition"])
	if !strings.Contains(cond, `"aws:SourceAccount":"`+member1+`"`) || !strings.Contains(cond, ":"+member1+":schedule/iamjit/*") {
		t.Errorf("member backstop trust condition = %s", cond)
	}
	if got := allowed(t, inline); !slices.Equal(got["sqs:SendMessage"], []string{m.Backstop.DLQARN}) ||
		!slices.Equal(got["iam:RemoveUserFromGroup"], []string{"arn:aws:iam::" + member1 + ":group/sym/*"}) {
		t.Errorf("member backstop policy = %v", got)
	}
	// Identity Center stays in the home account: the member's own instance
	// (moto lists one in every account) holds nothing of the stack's.
	sso := ssoadmin.NewFromConfig(mc)
	inst, err := sso.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
	if err != nil || len(inst.Instances) != 1 || aws.ToString(inst.Instances[0].InstanceArn) == st.IdentityCenter.InstanceARN {
		t.Fatalf("member instances = %+v, %v", inst, err)
	}
	sets, err := sso.ListPermissionSets(ctx, &ssoadmin.ListPermissionSetsInput{InstanceArn: inst.Instances[0].InstanceArn})
	if err != nil || len(sets.PermissionSets) != 0 {
		t.Errorf("member permission sets = %v, %v", sets, err)
	}
}

// jsonString is v as compact JSON, object keys sorted.
func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
