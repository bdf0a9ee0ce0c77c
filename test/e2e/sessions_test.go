package e2e

// Session revocation through the real binary: `iamjit dev` makes a /jit/
// role the dev group may assume; a deescalate through `iamjit run` puts the
// Deny on it, Access Revoked names it, /metrics counts it, and
// `iamjit reconcile` reports and restores a deleted statement.

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/iamjit/iamjit/internal/testkit"
	"github.com/iamjit/iamjit/sessions"
)

func TestSessionsEndWithTheMembership(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "ss")
	user, group, roleARN := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"], e.Vars["IAMJIT_DEV_ROLE_ARN"]
	if roleARN == "" || e.Vars["IAMJIT_ROLE_PATH"] != "/jit/" || e.Vars["IAMJIT_SESSION_REVOCATION"] != "user" {
		t.Fatalf("iamjit dev exports: role %q, path %q, mode %q", roleARN, e.Vars["IAMJIT_ROLE_PATH"], e.Vars["IAMJIT_SESSION_REVOCATION"])
	}
	roleName := roleARN[strings.LastIndex(roleARN, "/")+1:]
	proc := e.startRun(t)

	r := request{symID: "ss-esc-1", run: "ss-run-1", target: "t-1", user: user, group: group, duration: 600, at: time.Now()}
	e.escalate(t, r)
	revoked := e.deescalate(t, r, "ss-deesc-1")
	got, _ := json.Marshal(revoked.Detail["sessions_revoked"])
	if string(got) != `["`+roleARN+`"]` {
		t.Fatalf("sessions_revoked = %s, want [%s]", got, roleARN)
	}
	at, err := time.Parse(time.RFC3339, revoked.Detail["revoked_at"].(string))
	if err != nil {
		t.Fatal(err)
	}

	policy := func() string {
		out, err := iam.NewFromConfig(e.Cfg).GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{
			RoleName: aws.String(roleName), PolicyName: aws.String(sessions.PolicyName)})
		if err != nil {
			return ""
		}
		doc, _ := url.PathUnescape(aws.ToString(out.PolicyDocument))
		return doc
	}
	doc := policy()
	if !strings.Contains(doc, `"aws:SourceIdentity":"`+user+`"`) || !sessions.Denies(doc, user, at) {
		t.Fatalf("role policy after the deescalate: %q", doc)
	}
	hist := e.grantItem(t, grantID(r))["history"].([]any)
	found := false
	for _, h := range hist {
		m := h.(map[string]any)
		found = found || (m["action"] == "session_revoke" && m["iam_request_id"] != nil && m["iam_request_id"] != "")
	}
	if !found {
		t.Fatalf("grant history has no session_revoke with a request id: %v", hist)
	}
	testkit.Eventually(t, "the revocation counted in /metrics", 10*time.Second, func() bool {
		return scrape(t, proc.Addr)[`iamjit_session_revocations_total{mode="user"}`] == 1
	})

	// Someone deletes the statement: reconcile reports it (exit 3) and
	// --enforce restores it.
	if _, err := iam.NewFromConfig(e.Cfg).DeleteRolePolicy(context.Background(), &iam.DeleteRolePolicyInput{
		RoleName: aws.String(roleName), PolicyName: aws.String(sessions.PolicyName)}); err != nil {
		t.Fatal(err)
	}
	out, code := e.cli(t, "reconcile")
	if code != exitDrift || !strings.Contains(out, "session_revocation_missing") || !strings.Contains(out, roleARN) {
		t.Fatalf("reconcile: exit %d\n%s", code, out)
	}
	if out, code = e.cli(t, "reconcile", "--enforce"); code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("reconcile --enforce: exit %d\n%s", code, out)
	}
	if !sessions.Denies(policy(), user, at) {
		t.Fatalf("statement not restored: %q", policy())
	}
}
