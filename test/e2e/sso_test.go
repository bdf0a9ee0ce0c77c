package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/internal/testkit"
)

// ssoSetup is the Identity Center `iamjit dev` made in the emulator (moto's
// instance of the dev account, a user with the dev user's email, a group, a
// permission set), plus a statement of the customer's own in the
// permission set's inline policy.
type ssoSetup struct {
	instance, store, user, group, ps, account string
}

const customerStatement = `{"Version":"2012-10-17","Statement":[{"Sid":"CustomerOwn","Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}`

func (e *e2eEnv) setupSSO(t *testing.T) ssoSetup {
	t.Helper()
	ctx := context.Background()
	s := ssoSetup{instance: e.Vars["IAMJIT_SSO_INSTANCE_ARN"], user: e.Vars["IAMJIT_DEV_SSO_USER_ID"], group: e.Vars["IAMJIT_DEV_SSO_GROUP_ID"],
		ps: e.Vars["IAMJIT_DEV_SSO_PERMISSION_SET_ARN"], account: e.Vars["IAMJIT_SSO_ASSIGNMENT_ACCOUNTS"]}
	if s.instance == "" || s.user == "" || s.group == "" || s.ps == "" || s.account == "" {
		t.Fatalf("iamjit dev did not set up Identity Center: %+v", s)
	}
	admin := ssoadmin.NewFromConfig(e.Cfg)
	inst, err := admin.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
	if err != nil || len(inst.Instances) == 0 {
		t.Fatalf("list instances: %v %+v", err, inst)
	}
	s.store = aws.ToString(inst.Instances[0].IdentityStoreId)
	if _, err := admin.PutInlinePolicyToPermissionSet(ctx, &ssoadmin.PutInlinePolicyToPermissionSetInput{InstanceArn: &s.instance,
		PermissionSetArn: &s.ps, InlinePolicy: aws.String(customerStatement)}); err != nil {
		t.Fatal(err)
	}
	return s
}

// assigned lists the users assigned the permission set in the account.
func (s ssoSetup) assigned(t *testing.T, e *e2eEnv) []string {
	t.Helper()
	out, err := ssoadmin.NewFromConfig(e.Cfg).ListAccountAssignments(context.Background(), &ssoadmin.ListAccountAssignmentsInput{
		InstanceArn: &s.instance, PermissionSetArn: &s.ps, AccountId: &s.account})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range out.AccountAssignments {
		if a.PrincipalType == ssotypes.PrincipalTypeUser {
			ids = append(ids, aws.ToString(a.PrincipalId))
		}
	}
	return ids
}

// inlinePolicy is the permission set's inline policy.
func (s ssoSetup) inlinePolicy(t *testing.T, e *e2eEnv) string {
	t.Helper()
	out, err := ssoadmin.NewFromConfig(e.Cfg).GetInlinePolicyForPermissionSet(context.Background(),
		&ssoadmin.GetInlinePolicyForPermissionSetInput{InstanceArn: &s.instance, PermissionSetArn: &s.ps})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.InlinePolicy)
}

// inGroup lists the members of the Identity Store group.
func (s ssoSetup) inGroup(t *testing.T, e *e2eEnv) []string {
	t.Helper()
	out, err := identitystore.NewFromConfig(e.Cfg).ListGroupMemberships(context.Background(), &identitystore.ListGroupMembershipsInput{
		IdentityStoreId: &s.store, GroupId: &s.group})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range out.GroupMemberships {
		if id, ok := m.MemberId.(*istypes.MemberIdMemberUserId); ok {
			ids = append(ids, id.Value)
		}
	}
	return ids
}

// ssoRequest shapes an Identity Center escalate or deescalate: r's group
// field is unused; settings are the target's.
type ssoRequest struct {
	request
	targetType string
	settings   map[string]any
}

func (r ssoRequest) apply(e map[string]any) {
	r.request.apply(e)
	target := e["fields"].(map[string]any)["target"].(map[string]any)
	target["type"], target["settings"] = r.targetType, r.settings
}

func (e *e2eEnv) ssoEscalate(t *testing.T, r ssoRequest, want string) testkit.Result {
	t.Helper()
	e.putSym(t, symEntry(t, "escalate_iam_group.json", r.apply))
	return e.WaitResult(t, want, r.symID)
}

func (e *e2eEnv) ssoDeescalate(t *testing.T, r ssoRequest, symID string) testkit.Result {
	t.Helper()
	r.symID = symID
	e.putSym(t, symEntry(t, "deescalate_iam_group.json", r.apply))
	return e.WaitResult(t, "Access Revoked", symID)
}

// Identity Center targets end to end through the real binary: both kinds
// granted, overlapping, deescalated, expired and revoked by hand; refusals
// that change nothing; the customer's own inline statement kept.
func TestIdentityCenter(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "sso")
	email := e.Vars["IAMJIT_DEV_USER"]
	s := e.setupSSO(t)
	// The dev account becomes the organisation's management account, and
	// it is an assignment account: iamjit warns at start.
	if _, err := organizations.NewFromConfig(e.Cfg).CreateOrganization(context.Background(),
		&organizations.CreateOrganizationInput{FeatureSet: orgtypes.OrganizationFeatureSetAll}); err != nil {
		t.Fatal(err)
	}
	proc := e.startRun(t)
	testkit.Eventually(t, "the management-account warning", 20*time.Second, func() bool {
		return strings.Contains(proc.Output(), "lists the organisation's management account")
	})
	now := time.Now()
	ps := func(symID, run string, minutes int) ssoRequest {
		return ssoRequest{request: request{symID: symID, run: run, target: "t", user: email, duration: minutes * 60, at: now},
			targetType: "aws_sso_permission_set", settings: map[string]any{"permission_set_arn": s.ps, "account_id": s.account}}
	}
	grp := func(symID, run string, minutes int) ssoRequest {
		return ssoRequest{request: request{symID: symID, run: run, target: "t", user: email, duration: minutes * 60, at: now},
			targetType: "custom", settings: map[string]any{"group_id": s.group}}
	}

	t.Run("a permission set is assigned, kept by an overlapping grant, and removed with the last", func(t *testing.T) {
		a := ps("ps-esc-a", "ps-a", 10)
		res := e.ssoEscalate(t, a, "Access Granted")
		for k, want := range map[string]string{"target_type": "aws_sso_permission_set", "permission_set_arn": s.ps,
			"account_id": s.account, "sso_user_id": s.user} {
			if res.Detail[k] != want {
				t.Errorf("Access Granted %s = %v, want %s", k, res.Detail[k], want)
			}
		}
		if res.Detail["iam_user"] != nil || res.Detail["group"] != nil {
			t.Errorf("Access Granted of a permission set carries IAM fields: %v", res.Detail)
		}
		if got := s.assigned(t, e); !slices.Equal(got, []string{s.user}) {
			t.Fatalf("assignments %v, want exactly %s", got, s.user)
		}
		// Its backstop, in the Identity Center account: deleteAccountAssignment
		// of exactly this assignment.
		k := grants.Key{Kind: grants.PermissionSet, Account: s.account, User: s.user, Group: s.ps}
		sched, ok, err := e.backstopOf(t).Get(context.Background(), k)
		if err != nil || !ok || sched.TargetARN != "arn:aws:scheduler:::aws-sdk:ssoadmin:deleteAccountAssignment" ||
			!strings.Contains(sched.Input, `"PermissionSetArn":"`+s.ps+`"`) || !strings.Contains(sched.Input, `"PrincipalId":"`+s.user+`"`) ||
			!strings.Contains(sched.Input, `"TargetId":"`+s.account+`"`) {
			t.Fatalf("backstop of the assignment: %+v (present %v, %v)", sched, ok, err)
		}
		b := ps("ps-esc-b", "ps-b", 20)
		e.ssoEscalate(t, b, "Access Granted")
		e.ssoDeescalate(t, a, "ps-de-a")
		if got := s.assigned(t, e); !slices.Equal(got, []string{s.user}) {
			t.Fatalf("after the first grant's end: assignments %v, want still %s (one copy)", got, s.user)
		}
		revoked := e.ssoDeescalate(t, b, "ps-de-b")
		if got := s.assigned(t, e); len(got) != 0 {
			t.Fatalf("after the last grant's end: assignments %v, want none", got)
		}
		// The permission set's older sessions of the user in the account end:
		// a Deny beside the customer's own statement, provisioned.
		if got := fmt.Sprint(revoked.Detail["sessions_revoked"]); !strings.Contains(got, s.ps+" in "+s.account) {
			t.Errorf("Access Revoked sessions_revoked = %s, want %s in %s", got, s.ps, s.account)
		}
		policy := s.inlinePolicy(t, e)
		if !strings.Contains(policy, `"CustomerOwn"`) || !strings.Contains(policy, `"IamjitSessionsEnd`) ||
			!strings.Contains(policy, s.user) || !strings.Contains(policy, `"aws:PrincipalAccount"`) {
			t.Errorf("inline policy after the end: %s", policy)
		}
	})

	t.Run("an Identity Store group membership from a custom target expires on time", func(t *testing.T) {
		r := grp("grp-esc", "grp-1", 0)
		r.duration, r.at = 3, time.Now()
		res := e.ssoEscalate(t, r, "Access Granted")
		if res.Detail["target_type"] != "aws_sso_group" || res.Detail["sso_group_id"] != s.group {
			t.Fatalf("Access Granted = %v", res.Detail)
		}
		// The membership may already be gone (3 s): its history shows it
		// was made.
		added := false
		for _, h := range e.grantItem(t, "healthy-health:run:iam:1.0.0:grp-1/t")["history"].([]any) {
			added = added || h.(map[string]any)["action"] == "iam_add"
		}
		if !added {
			t.Fatal("the grant's history has no add")
		}
		revoked := e.WaitResult(t, "Access Revoked", r.symID)
		if revoked.Detail["reason"] != "expired" {
			t.Fatalf("Access Revoked = %v, want reason expired", revoked.Detail)
		}
		if got := s.inGroup(t, e); len(got) != 0 {
			t.Fatalf("group members %v after expiry, want none", got)
		}
	})

	t.Run("grants revoke ends an Identity Center grant", func(t *testing.T) {
		r := ps("ps-esc-rv", "ps-rv", 10)
		e.ssoEscalate(t, r, "Access Granted")
		id := "healthy-health:run:iam:1.0.0:ps-rv/t"
		if out, code := e.cli(t, "grants", "revoke", id, "--reason", "incident 7"); code != 0 || !strings.Contains(out, "Access Revoked") {
			t.Fatalf("grants revoke: exit %d\n%s", code, out)
		}
		if got := s.assigned(t, e); len(got) != 0 {
			t.Fatalf("assignments %v after grants revoke, want none", got)
		}
	})

	t.Run("grants show names the target; grants revoke --user ends both kinds", func(t *testing.T) {
		e.ssoEscalate(t, ps("ps-esc-u", "ps-u", 10), "Access Granted")
		e.ssoEscalate(t, grp("grp-esc-u", "grp-u", 10), "Access Granted")
		out, code := e.cli(t, "grants", "show", "--json", "healthy-health:run:iam:1.0.0:ps-u/t")
		if code != 0 || !strings.Contains(out, `"target_type": "aws_sso_permission_set"`) || !strings.Contains(out, `"permission_set_arn": "`+s.ps+`"`) ||
			!strings.Contains(out, `"sso_user_id": "`+s.user+`"`) {
			t.Fatalf("grants show --json: exit %d\n%s", code, out)
		}
		if out, code := e.cli(t, "grants", "list", "--active", "--user", email); code != 0 || strings.Count(out, "ACTIVE") != 2 {
			t.Fatalf("grants list --active --user: exit %d, want the two grants\n%s", code, out)
		}
		if out, code := e.cli(t, "grants", "revoke", "--user", email, "--reason", "offboarding", "--yes"); code != 0 {
			t.Fatalf("grants revoke --user: exit %d\n%s", code, out)
		}
		if a, g := s.assigned(t, e), s.inGroup(t, e); len(a)+len(g) != 0 {
			t.Fatalf("after grants revoke --user: assignments %v, members %v", a, g)
		}
	})

	t.Run("refusals change nothing", func(t *testing.T) {
		other := ps("ps-no-1", "ps-no-1", 10)
		other.settings = map[string]any{"permission_set_arn": s.ps, "account_id": "999999999999"}
		if r := e.ssoEscalate(t, other, "Access Request Rejected"); r.Detail["code"] != "target_not_allowed" {
			t.Errorf("an account outside the allow-list: %v", r.Detail)
		}
		stranger := grp("grp-no-1", "grp-no-1", 10)
		stranger.user = "nobody@example.com"
		if r := e.ssoEscalate(t, stranger, "Access Request Rejected"); r.Detail["code"] != "unknown_user" {
			t.Errorf("an email with no Identity Store user: %v", r.Detail)
		}
		if a, g := s.assigned(t, e), s.inGroup(t, e); len(a)+len(g) != 0 {
			t.Fatalf("a refusal changed Identity Center: assignments %v, members %v", a, g)
		}
	})

	t.Run("drift: an assignment no grant explains is found, and removed under --enforce", func(t *testing.T) {
		ctx := context.Background()
		admin := ssoadmin.NewFromConfig(e.Cfg)
		if _, err := admin.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{InstanceArn: &s.instance,
			PermissionSetArn: &s.ps, PrincipalId: &s.user, PrincipalType: ssotypes.PrincipalTypeUser,
			TargetId: &s.account, TargetType: ssotypes.TargetTypeAwsAccount}); err != nil {
			t.Fatal(err)
		}
		out, code := e.cli(t, "reconcile", "--json")
		if code != 3 || !strings.Contains(out, `"kind": "unexplained_member"`) || !strings.Contains(out, `"target_type": "aws_sso_permission_set"`) {
			t.Fatalf("reconcile: exit %d, want 3 with the unexplained assignment\n%s", code, out)
		}
		if _, code := e.cli(t, "reconcile", "--enforce"); code != 0 {
			t.Fatalf("reconcile --enforce: exit %d, want 0", code)
		}
		if got := s.assigned(t, e); len(got) != 0 {
			t.Fatalf("assignments %v after reconcile --enforce, want none", got)
		}
	})

	t.Run("the customer's own inline statement is kept", func(t *testing.T) {
		if policy := s.inlinePolicy(t, e); !strings.Contains(policy, `"CustomerOwn"`) {
			t.Fatalf("inline policy lost the customer's statement: %s", policy)
		}
	})
}
