package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/reconcile"
	"github.com/iamjit/iamjit/sessions"
)

// One iamjit, three accounts: the home one and two member accounts, each
// with a group of the same name and alice under another IAM user name.
// Every request changes IAM in its group's account only.
func TestManyAccounts(t *testing.T) {
	t.Parallel()
	const a, b = "111111111111", "222222222222"
	e := e2eStack(t, "--prefix", "multi", "--member-account", a, "--member-account", b)
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	groupARN := map[string]string{a: e.Vars["IAMJIT_DEV_MEMBER_GROUP_ARN_"+a], b: e.Vars["IAMJIT_DEV_MEMBER_GROUP_ARN_"+b]}
	if e.Vars["IAMJIT_ACCOUNTS"] == "" || groupARN[a] == "" || groupARN[b] == "" {
		t.Fatalf("iamjit dev --member-account did not export IAMJIT_ACCOUNTS and the member group ARNs: %v", e.Vars)
	}
	iamUser := map[string]string{motoserver.AccountID: user, a: devstack.MemberUserName(user, a), b: devstack.MemberUserName(user, b)}
	// members reads each account's group as that account sees it.
	members := func(t *testing.T) map[string][]string {
		t.Helper()
		out := map[string][]string{motoserver.AccountID: e.members(t, group)}
		for _, id := range []string{a, b} {
			g, err := iam.NewFromConfig(devstack.AccountConfig(e.Cfg, id)).GetGroup(context.Background(), &iam.GetGroupInput{GroupName: &group})
			if err != nil {
				t.Fatal(err)
			}
			out[id] = nil
			for _, u := range g.Users {
				out[id] = append(out[id], aws.ToString(u.UserName))
			}
		}
		return out
	}
	// want checks which accounts have alice (under that account's name) in
	// the group, and that nobody else is in any of them.
	want := func(t *testing.T, in ...string) {
		t.Helper()
		got := members(t)
		for acct, users := range got {
			var exp []string
			if slices.Contains(in, acct) {
				exp = []string{iamUser[acct]}
			}
			if !slices.Equal(users, exp) {
				t.Fatalf("account %s: group %s has %v, want %v (all: %v)", acct, group, users, exp, got)
			}
		}
	}
	granted := func(t *testing.T, res map[string]any, acct string) {
		t.Helper()
		if res["account_id"] != acct || res["iam_user"] != iamUser[acct] {
			t.Fatalf("result %v: want account_id %s, iam_user %s", res, acct, iamUser[acct])
		}
	}
	e.startRun(t, "IAMJIT_MAX_DURATION=1h")
	now := time.Now()
	inA := request{symID: "multi-a-1", run: "run-a", target: "t-a", user: user, group: groupARN[a], duration: 600, at: now}
	inHome := request{symID: "multi-home-1", run: "run-home", target: "t-home", user: user, group: group, duration: 600, at: now}

	t.Run("a grant in each account adds the user there and nowhere else", func(t *testing.T) {
		granted(t, e.escalate(t, inA).Detail, a)
		want(t, a)
		granted(t, e.escalate(t, inHome).Detail, motoserver.AccountID)
		want(t, a, motoserver.AccountID) // the same group name: two memberships
	})

	t.Run("expiry ends the grant in its account only", func(t *testing.T) {
		r := request{symID: "multi-b-1", run: "run-b", target: "t-b", user: user, group: groupARN[b], duration: 3, at: time.Now()}
		granted(t, e.escalate(t, r).Detail, b)
		revoked := e.WaitResult(t, "Access Revoked", r.symID)
		if revoked.Detail["reason"] != "expired" || revoked.Detail["account_id"] != b {
			t.Fatalf("revocation %v: want reason expired in account %s", revoked.Detail, b)
		}
		want(t, a, motoserver.AccountID)
	})

	t.Run("deescalate ends the grant in its account only", func(t *testing.T) {
		revoked := e.deescalate(t, inA, "multi-a-1-deesc")
		if revoked.Detail["account_id"] != a {
			t.Fatalf("revocation %v: want account %s", revoked.Detail, a)
		}
		want(t, motoserver.AccountID)
		// The sessions the membership enabled end in its account: account
		// a's /jit/ role, written through a's chain; no role elsewhere.
		roles, _ := revoked.Detail["sessions_revoked"].([]any)
		if len(roles) != 1 || !strings.HasPrefix(roles[0].(string), "arn:aws:iam::"+a+":role/jit/") {
			t.Fatalf("sessions_revoked %v, want account %s's /jit/ role only", revoked.Detail["sessions_revoked"], a)
		}
		role := roles[0].(string)[strings.LastIndex(roles[0].(string), "/")+1:]
		if _, err := iam.NewFromConfig(devstack.AccountConfig(e.Cfg, a)).GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{
			RoleName: &role, PolicyName: aws.String("iamjit-session-revocation")}); err != nil {
			t.Fatalf("account %s's role %s has no revocation policy: %v", a, role, err)
		}
		if _, err := iam.NewFromConfig(e.Cfg).GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{
			RoleName: &role, PolicyName: aws.String("iamjit-session-revocation")}); err == nil {
			t.Fatalf("the home account's role %s got a revocation policy for account %s's membership", role, a)
		}
	})

	t.Run("an ARN of an unconfigured account is foreign_account", func(t *testing.T) {
		r := request{symID: "multi-foreign-1", run: "run-f", target: "t-f", user: user,
			group: "arn:aws:iam::333333333333:group/sym/" + group, duration: 600, at: time.Now()}
		e.putSym(t, symEntry(t, "escalate_iam_group.json", r.apply))
		if res := e.WaitResult(t, "Access Request Rejected", r.symID); res.Detail["code"] != "foreign_account" || res.Detail["account_id"] != "333333333333" {
			t.Fatalf("result %v, want foreign_account naming account 333333333333", res.Detail)
		}
		want(t, motoserver.AccountID)
	})

	t.Run("grants revoke --account acts in that account only", func(t *testing.T) {
		r := request{symID: "multi-a-2", run: "run-a2", target: "t-a2", user: user, group: groupARN[a], duration: 600, at: time.Now()}
		e.escalate(t, r)
		want(t, a, motoserver.AccountID)
		out, code := e.cli(t, "grants", "list", "--active", "--account", a, "--json")
		var listed []map[string]any
		if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil || len(listed) != 1 ||
			listed[0]["id"] != grantID(r) || listed[0]["account_id"] != a {
			t.Fatalf("grants list --account %s: exit %d, %v: %s", a, code, err, out)
		}
		if out, code := e.cli(t, "grants", "revoke", "--account", a, "--yes", "--reason", "account offboarding"); code != 0 ||
			!strings.Contains(out, "revoked 1 of 1") {
			t.Fatalf("grants revoke --account %s: exit %d\n%s", a, code, out)
		}
		want(t, motoserver.AccountID)
	})

	t.Run("reconcile --enforce repairs each account apart", func(t *testing.T) {
		// An intruder in account b's group, and alice taken out of the home
		// group by hand: drift in two accounts.
		bIAM := iam.NewFromConfig(devstack.AccountConfig(e.Cfg, b))
		ctx := context.Background()
		if _, err := bIAM.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("intruder")}); err != nil {
			t.Fatal(err)
		}
		if _, err := bIAM.AddUserToGroup(ctx, &iam.AddUserToGroupInput{UserName: aws.String("intruder"), GroupName: &group}); err != nil {
			t.Fatal(err)
		}
		e.removeFromGroup(t, user, group)
		out, code := e.cli(t, "reconcile", "--enforce", "--json")
		if code != 0 {
			t.Fatalf("reconcile --enforce: exit %d", code)
		}
		rep := reconcileJSON(t, out)
		var got []string
		for _, d := range rep.Differences {
			got = append(got, string(d.Kind)+" "+d.Account+" "+d.IAMUser+" "+d.Action)
		}
		slices.Sort(got)
		exp := []string{
			string(reconcile.MissingMember) + " " + motoserver.AccountID + " " + user + " " + reconcile.ActionReadded,
			string(reconcile.UnexplainedMember) + " " + b + " intruder " + reconcile.ActionRemoved,
		}
		slices.Sort(exp)
		if !slices.Equal(got, exp) {
			t.Fatalf("differences %v, want %v", got, exp)
		}
		want(t, motoserver.AccountID)
	})

	t.Run("a home group's roles in a member account end with its membership", func(t *testing.T) {
		// The home group lets its members assume account b's /jit/ role
		// too, and a role in an account iamjit does not manage.
		ctx := context.Background()
		bIAM := iam.NewFromConfig(devstack.AccountConfig(e.Cfg, b))
		listed, err := bIAM.ListRoles(ctx, &iam.ListRolesInput{PathPrefix: aws.String("/jit/")})
		if err != nil || len(listed.Roles) != 1 {
			t.Fatalf("account %s's /jit/ roles: %v %v", b, listed, err)
		}
		bRole := aws.ToString(listed.Roles[0].Arn)
		unmanaged := "arn:aws:iam::333333333333:role/jit/elsewhere"
		doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{
			map[string]any{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": []string{bRole, unmanaged}}}})
		if _, err := iam.NewFromConfig(e.Cfg).PutGroupPolicy(ctx, &iam.PutGroupPolicyInput{
			GroupName: &group, PolicyName: aws.String("cross-account"), PolicyDocument: aws.String(string(doc))}); err != nil {
			t.Fatal(err)
		}
		revoked := e.deescalate(t, inHome, "multi-home-1-deesc")
		want(t)
		roles, _ := revoked.Detail["sessions_revoked"].([]any)
		if !slices.Contains(roles, any(bRole)) || !slices.ContainsFunc(roles, func(r any) bool {
			return strings.HasPrefix(r.(string), "arn:aws:iam::"+motoserver.AccountID+":role/jit/")
		}) {
			t.Fatalf("sessions_revoked %v, want the home /jit/ role and account %s's %s", roles, b, bRole)
		}
		if skipped, _ := revoked.Detail["sessions_skipped"].([]any); !slices.Contains(skipped, any(unmanaged)) {
			t.Fatalf("sessions_skipped %v, want the unmanaged account's role %s", skipped, unmanaged)
		}
		name := bRole[strings.LastIndex(bRole, "/")+1:]
		out, err := bIAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: &name, PolicyName: aws.String("iamjit-session-revocation")})
		if err != nil {
			t.Fatalf("account %s's role %s has no revocation policy: %v", b, name, err)
		}
		if doc, _ := url.PathUnescape(aws.ToString(out.PolicyDocument)); !sessions.Denies(doc, iamUser[motoserver.AccountID], time.Now().Add(-time.Minute)) {
			t.Fatalf("account %s's role policy does not deny the home user's older sessions: %s", b, doc)
		}
	})
}
