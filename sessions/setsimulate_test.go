package sessions_test

import (
	"testing"
	"time"

	"github.com/iamjit/iamjit/sessions"
)

// ssoSession is a request made with a session of the permission set's role
// in account, by the Identity Store user, issued at issued.
func ssoSession(name, user, account string, issued time.Time, action string, policies ...string) simCase {
	return simCase{Name: name, Policies: policies, Action: action, Resource: "arn:aws:s3:::bucket/key",
		Principal: "arn:aws:sts::" + account + ":assumed-role/AWSReservedSSO_ops_0123456789abcdef/" + user,
		Context: map[string]string{"identitystore:userId": user, "aws:PrincipalAccount": account,
			"aws:TokenIssueTime": issued.UTC().Format(time.RFC3339)}}
}

// The inline policy iamjit writes onto a permission set, evaluated by the
// IAM simulator (moto evaluates no policy): the ended user's older session
// in that account is denied, a newer one allowed, another user and another
// account untouched, and the customer's own statement still applies. Then
// the same at the per-account and set-wide fallbacks.
func TestSimulatePermissionSetPolicy(t *testing.T) {
	const perms = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"}]}`
	const theirs = `{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Deny","Action":"s3:PutObject","Resource":"*"}]}`
	ended := time.Date(2026, 3, 1, 12, 0, 0, 300_000_000, time.UTC)
	entries := map[sessions.Entry]time.Time{{User: uid1, Account: acct1}: ended}
	before, after := ended.Add(-5*time.Minute), ended.Add(5*time.Minute)

	for _, mode := range []string{sessions.RevokeUser, sessions.RevokeRole} {
		p, err := sessions.RenderSet(theirs, entries, time.Hour, ended, mode)
		if err != nil {
			t.Fatal(err)
		}
		doc := p.Doc
		got := simulate(t, []simCase{
			ssoSession("user before", uid1, acct1, before, "s3:GetObject", perms, doc),
			ssoSession("user same second", uid1, acct1, ended.Truncate(time.Second), "s3:GetObject", perms, doc),
			ssoSession("user after", uid1, acct1, after, "s3:GetObject", perms, doc),
			ssoSession("other user before", uid2, acct1, before, "s3:GetObject", perms, doc),
			ssoSession("other account before", uid1, acct2, before, "s3:GetObject", perms, doc),
			ssoSession("customer's deny after", uid1, acct1, after, "s3:PutObject", perms, doc),
		})
		want := map[string]string{
			"user before":           "ExplicitlyDenied",
			"user same second":      "ExplicitlyDenied",
			"user after":            "Allowed",
			"other user before":     "Allowed",
			"other account before":  "Allowed",
			"customer's deny after": "ExplicitlyDenied",
		}
		if p.Level == sessions.LevelAccount {
			want["other user before"] = "ExplicitlyDenied" // every session there
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s, level %s: %s: simulator says %s, want %s", mode, p.Level, k, got[k], v)
			}
		}
		t.Logf("level %s (%d chars): %s", p.Level, len(doc), doc)
	}
}
