package config

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var required = map[string]string{
	"IAMJIT_QUEUE_URL": "http://q", "IAMJIT_TABLE": "t", "IAMJIT_EVENT_BUS": "b",
}

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(required))
	if err != nil {
		t.Fatal(err)
	}
	if c.GroupPath != "/sym/" || c.MaxDuration != 12*time.Hour || c.SweepInterval != 30*time.Second ||
		c.ShutdownTimeout != 25*time.Second || c.Retention != 2160*time.Hour || c.ResultSource != "iamjit" ||
		strings.Join(c.Identity, ",") != "username,tag:email" || strings.Join(c.Sources, ",") != "sym" || c.AcceptBare {
		t.Fatalf("defaults differ from docs/design.md: %+v", c)
	}
}

func TestEnvAndFlags(t *testing.T) {
	m := map[string]string{"IAMJIT_MAX_DURATION": "2h", "IAMJIT_SOURCES": "sym, other ", "IAMJIT_ACCEPT_BARE": "true", "IAMJIT_WORKERS": "4"}
	for k, v := range required {
		m[k] = v
	}
	c, err := Load([]string{"--max-duration", "3h", "--workers", "8"}, env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxDuration != 3*time.Hour || c.Workers != 8 {
		t.Fatalf("flags must win over the environment: %v %d", c.MaxDuration, c.Workers)
	}
	if strings.Join(c.Sources, "|") != "sym|other" || !c.AcceptBare {
		t.Fatalf("lists and booleans: %v %v", c.Sources, c.AcceptBare)
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	bad := map[string]string{
		"IAMJIT_MAX_DURATION": "forever", "IAMJIT_WORKERS": "many", "IAMJIT_ACCEPT_BARE": "maybe",
		"IAMJIT_GROUP_PATH": "sym", "IAMJIT_IDENTITY": "guess", "IAMJIT_LOG_LEVEL": "loud",
		"IAMJIT_CONNECTOR_ROLE_ARN": "not-an-arn", "IAMJIT_SHUTDOWN_TIMEOUT": "-1s",
	}
	_, err := Load(nil, env(bad))
	if err == nil {
		t.Fatal("no error for a bad configuration")
	}
	for _, name := range []string{"IAMJIT_QUEUE_URL", "IAMJIT_TABLE", "IAMJIT_EVENT_BUS", "IAMJIT_MAX_DURATION", "IAMJIT_WORKERS",
		"IAMJIT_ACCEPT_BARE", "IAMJIT_GROUP_PATH", "IAMJIT_IDENTITY", "IAMJIT_LOG_LEVEL", "IAMJIT_CONNECTOR_ROLE_ARN", "IAMJIT_IAM_ROLE_ARN",
		"IAMJIT_EXTERNAL_ID", "IAMJIT_SHUTDOWN_TIMEOUT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s:\n%v", name, err)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("ext-123-secret")
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "external_id", s)
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "cfg", Config{ExternalID: s})
	fmt.Fprintf(&b, "%v %s %+v %#v", s, s, Config{ExternalID: s}, s)
	if strings.Contains(b.String(), "ext-123") {
		t.Fatalf("the secret leaked: %s", b.String())
	}
}

func TestSessionRevocationSettings(t *testing.T) {
	c, err := Load(nil, env(required))
	if err != nil {
		t.Fatal(err)
	}
	if c.RolePath != "/jit/" || c.SessionRevocation != "user" {
		t.Fatalf("defaults: role path %q, revocation %q", c.RolePath, c.SessionRevocation)
	}
	m := map[string]string{"IAMJIT_ROLE_PATH": "/team/", "IAMJIT_SESSION_REVOCATION": "role"}
	for k, v := range required {
		m[k] = v
	}
	c, err = Load([]string{"--session-revocation", "off"}, env(m))
	if err != nil || c.RolePath != "/team/" || c.SessionRevocation != "off" {
		t.Fatalf("env and flag: %+v %v", c, err)
	}
	for _, bad := range []map[string]string{
		{"IAMJIT_ROLE_PATH": "jit"}, {"IAMJIT_ROLE_PATH": "/"}, {"IAMJIT_ROLE_PATH": "/sym/"}, {"IAMJIT_ROLE_PATH": "/sym/jit/"},
		{"IAMJIT_SESSION_REVOCATION": "everyone"},
	} {
		for k, v := range required {
			bad[k] = v
		}
		if _, err := Load(nil, env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		} else {
			for k := range bad {
				if _, isReq := required[k]; !isReq && !strings.Contains(err.Error(), k) {
					t.Errorf("error does not name %s: %v", k, err)
				}
			}
		}
	}
}

// A bad flag prints the usage with each flag's default; the external id's
// default is the variable's value and must never be printed.
func TestUsageNeverPrintsTheExternalID(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	env := map[string]string{"IAMJIT_EXTERNAL_ID": "very-secret-external-id"}
	_, loadErr := Load([]string{"--no-such-flag"}, func(k string) string { return env[k] })
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	if loadErr == nil {
		t.Fatal("a bad flag was accepted")
	}
	if !strings.Contains(string(out), "-external-id") {
		t.Fatalf("the usage was not printed (the check would pass vacuously):\n%s", out)
	}
	if strings.Contains(string(out), "very-secret-external-id") {
		t.Errorf("the usage printed the external id:\n%s", out)
	}
	c, err := Load([]string{"--external-id", "from-flag"}, func(k string) string { return env[k] })
	if err == nil && string(c.ExternalID) != "from-flag" {
		t.Errorf("the flag did not win over the variable: %q", string(c.ExternalID))
	}
}

// Identity Center's settings: AWS's forms and moto's both pass; a malformed
// one, or any of them without the instance, is named.
func TestSSOSettings(t *testing.T) {
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range required {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	good := map[string]string{
		"IAMJIT_SSO_INSTANCE_ARN":        "arn:aws:sso:::instance/ssoins-7223e1a1b2c3d4e5",
		"IAMJIT_SSO_ACCOUNT":             "210987654321",
		"IAMJIT_SSO_REGION":              "eu-west-1",
		"IAMJIT_SSO_PERMISSION_SETS":     "arn:aws:sso:::permissionSet/ssoins-7223e1a1b2c3d4e5/ps-1a2b3c4d5e6f7a8b, arn:aws:sso:::instance/ssoins-7223e1a1b2c3d4e5/ps-0123456789abcdef",
		"IAMJIT_SSO_ASSIGNMENT_ACCOUNTS": "123456789012,210987654321",
		"IAMJIT_SSO_GROUPS":              "9067d4a2-1081-70c5-13d0-6e7a8b9c0d1e",
	}
	c, err := Load(nil, env(with(good)))
	if err != nil {
		t.Fatalf("good settings refused: %v", err)
	}
	if !c.SSO.On() || len(c.SSO.PermissionSets) != 2 || len(c.SSO.AssignmentAccounts) != 2 || c.SSO.Account != "210987654321" {
		t.Errorf("read %+v", c.SSO)
	}
	for _, bad := range []struct{ name, value string }{
		{"IAMJIT_SSO_INSTANCE_ARN", "arn:aws:iam::123456789012:role/x"},
		{"IAMJIT_SSO_ACCOUNT", "1234"},
		{"IAMJIT_SSO_REGION", "mars"},
		{"IAMJIT_SSO_PERMISSION_SETS", "ps-123"},
		{"IAMJIT_SSO_ASSIGNMENT_ACCOUNTS", "12345678901x"},
		{"IAMJIT_SSO_GROUPS", "a group"},
	} {
		m := with(good)
		m[bad.name] = bad.value
		if _, err := Load(nil, env(m)); err == nil || !strings.Contains(err.Error(), bad.name+":") {
			t.Errorf("%s=%q: %v, want an error naming it", bad.name, bad.value, err)
		}
	}
	m := with(good)
	delete(m, "IAMJIT_SSO_INSTANCE_ARN")
	_, err = Load(nil, env(m))
	for _, name := range []string{"IAMJIT_SSO_ACCOUNT", "IAMJIT_SSO_PERMISSION_SETS", "IAMJIT_SSO_GROUPS"} {
		if err == nil || !strings.Contains(err.Error(), name+": set, but IAMJIT_SSO_INSTANCE_ARN is not") {
			t.Errorf("lists without an instance: %v, want %s named", err, name)
		}
	}
	if c, err := Load(nil, env(required)); err != nil || c.SSO.On() {
		t.Errorf("no Identity Center settings: %+v %v, want off", c.SSO, err)
	}
}
