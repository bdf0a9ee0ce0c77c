package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodAccounts = `{"210987654321": {"connector_role_arn": "arn:aws:iam::210987654321:role/sym/c",
  "external_id": "ext-member-secret", "iam_role_arn": "arn:aws:iam::210987654321:role/sym/m"}}`

func withAccounts(v string) map[string]string {
	m := map[string]string{"IAMJIT_ACCOUNTS": v}
	for k, val := range required {
		m[k] = val
	}
	return m
}

func TestAccountsInlineAndFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	if err := os.WriteFile(path, []byte(goodAccounts), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{goodAccounts, "@" + path} {
		c, err := Load(nil, env(withAccounts(v)))
		if err != nil {
			t.Fatalf("%.20s: %v", v, err)
		}
		ch, ok := c.Accounts["210987654321"]
		if !ok || len(c.Accounts) != 1 || ch.ConnectorRoleARN != "arn:aws:iam::210987654321:role/sym/c" ||
			ch.IAMRoleARN != "arn:aws:iam::210987654321:role/sym/m" || string(ch.ExternalID) != "ext-member-secret" {
			t.Fatalf("%.20s: accounts %+v", v, c.Accounts)
		}
		// The external id never prints, through any verb or logger.
		var b strings.Builder
		slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "accounts", c.Accounts)
		fmt.Fprintf(&b, "%v %+v %#v", c.Accounts, c, c.Accounts)
		if strings.Contains(b.String(), "ext-member") {
			t.Fatalf("an external id leaked: %s", b.String())
		}
	}
}

func TestBadAccountsNameTheEntry(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{"not JSON", `{"210987654321": `, "IAMJIT_ACCOUNTS: not a JSON object"},
		{"not an object", `["210987654321"]`, "IAMJIT_ACCOUNTS: not a JSON object"},
		{"short id", strings.ReplaceAll(goodAccounts, "210987654321", "2109876543"), `entry "2109876543": an account id is 12 digits`},
		{"malformed ARN", strings.Replace(goodAccounts, "arn:aws:iam::210987654321:role/sym/c", "role/sym/c", 1), `entry "210987654321": connector_role_arn "role/sym/c" is not an IAM role ARN`},
		{"other account's role", strings.Replace(goodAccounts, "arn:aws:iam::210987654321:role/sym/m", "arn:aws:iam::111111111111:role/sym/m", 1), `entry "210987654321": iam_role_arn "arn:aws:iam::111111111111:role/sym/m" is a role of account 111111111111`},
		{"no external id", strings.Replace(goodAccounts, `"ext-member-secret"`, `""`, 1), `entry "210987654321": external_id is required`},
		{"unknown key", strings.Replace(goodAccounts, `"external_id"`, `"externalid"`, 1), `entry "210987654321": want`},
		{"malformed backstop role", withBackstop("arn:aws:iam::210987654321:user/backstop"), `entry "210987654321": backstop_role_arn "arn:aws:iam::210987654321:user/backstop" is not an IAM role ARN`},
		{"backstop role not an ARN", withBackstop("iamjit-backstop"), `entry "210987654321": backstop_role_arn "iamjit-backstop" is not an IAM role ARN`},
		{"other account's backstop role", withBackstop("arn:aws:iam::111111111111:role/sym/iamjit-backstop"), `entry "210987654321": backstop_role_arn "arn:aws:iam::111111111111:role/sym/iamjit-backstop" is a role of account 111111111111`},
		{"backstop role not a string", strings.Replace(goodAccounts, `"external_id"`, `"backstop_role_arn": 7, "external_id"`, 1), `entry "210987654321": want`},
		{"missing file", "@/nonexistent/accounts.json", "IAMJIT_ACCOUNTS: read /nonexistent/accounts.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(nil, env(withAccounts(c.value)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "ext-member") {
				t.Fatalf("the error quotes an external id: %v", err)
			}
		})
	}
}

// withBackstop is goodAccounts with backstop_role_arn v in its entry.
func withBackstop(v string) string {
	return strings.Replace(goodAccounts, `"external_id"`, `"backstop_role_arn": "`+v+`", "external_id"`, 1)
}

// backstop_role_arn is optional: absent, it is empty; present, it is a
// role of the entry's account.
func TestAccountsBackstopRole(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"absent", goodAccounts, ""},
		{"empty", withBackstop(""), ""},
		{"a role of the account", withBackstop("arn:aws:iam::210987654321:role/sym/iamjit-backstop"), "arn:aws:iam::210987654321:role/sym/iamjit-backstop"},
		{"a role without a path", withBackstop("arn:aws:iam::210987654321:role/backstop"), "arn:aws:iam::210987654321:role/backstop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(nil, env(withAccounts(tc.value)))
			if err != nil {
				t.Fatal(err)
			}
			ch := c.Accounts["210987654321"]
			if ch.BackstopRoleARN != tc.want || ch.IAMRoleARN != "arn:aws:iam::210987654321:role/sym/m" {
				t.Fatalf("entry = %+v, want backstop role %q", ch, tc.want)
			}
		})
	}
}

func TestHomeAccountIsNotAMember(t *testing.T) {
	m := withAccounts(goodAccounts)
	m["IAMJIT_CONNECTOR_ROLE_ARN"] = "arn:aws:iam::210987654321:role/sym/home-c"
	m["IAMJIT_IAM_ROLE_ARN"] = "arn:aws:iam::210987654321:role/sym/home-m"
	m["IAMJIT_EXTERNAL_ID"] = "x"
	if _, err := Load(nil, env(m)); err == nil || !strings.Contains(err.Error(), `IAMJIT_ACCOUNTS: entry "210987654321" is the home account`) {
		t.Fatalf("error %v", err)
	}
}
