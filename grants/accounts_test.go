package grants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
)

const (
	home      = "123456789012"
	memberID  = "210987654321"
	memberARN = "arn:aws:iam::" + memberID + ":group/sym/sym-readonly"
	// aliceThere is alice's IAM user in the member account: the same email
	// is another user there, found by its tag.
	aliceThere = "alice-member"
)

// member is a member account beside the env's home one: its own IAM, a
// group with the home group's name, and alice under another user name.
type member struct {
	iam      *fakeIAM
	sessions *fakeSessions
}

func withMember(t *testing.T, e *env) *member {
	t.Helper()
	dir := &fakeDirectory{users: map[string]map[string]string{aliceThere: {"email": aliceMail}}}
	id, err := grants.NewIdentity(dir, []string{"username", "tag:email"}, 5*time.Minute, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	m := &member{iam: newFakeIAM(), sessions: &fakeSessions{}}
	h := e.svc.Accounts.Home()
	h.ID = home
	accts, err := grants.NewAccounts(h, &grants.Account{
		ID: memberID, IAM: m.iam, Identity: id, Sessions: m.sessions,
		Groups: fakeGroups{readonly: {Name: readonly, ARN: memberARN, Path: "/sym/"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Accounts = accts
	return m
}

func inMember(req events.Request) events.Request {
	req.Group = memberARN
	req.TargetID = "target-member"
	return req
}

func TestMemberAccountGrantActsThereOnly(t *testing.T) {
	e := newEnv(t)
	m := withMember(t, e)
	hs := withFakeSessions(e)
	res := one(t, e.handle(t, inMember(escalate("sym-1", "a", 30))))
	if res.DetailType != events.AccessGranted || res.AccountID != memberID || res.IAMUser != aliceThere || res.GroupARN != memberARN {
		t.Fatalf("result %+v: want Access Granted for %s in account %s", res, aliceThere, memberID)
	}
	if !m.iam.isMember(aliceThere, readonly) {
		t.Error("the member account's IAM does not have the user")
	}
	if adds, removes := e.iam.calls(); adds+removes != 0 || e.iam.isMember(alice, readonly) {
		t.Errorf("the home account's IAM was called (%d adds, %d removes)", adds, removes)
	}
	// The same group name in the home account: a second membership.
	homeRes := one(t, e.handle(t, escalate("sym-2", "b", 30)))
	if homeRes.AccountID != home || homeRes.IAMUser != alice || !e.iam.isMember(alice, readonly) {
		t.Fatalf("home grant %+v: want alice in the home group, account %s", homeRes, home)
	}
	// Ending the member grant leaves the home membership, and ends
	// sessions in the member account only.
	out := e.handle(t, inMember(deescalate("sym-3", "a")))
	if r := one(t, out); r.DetailType != events.AccessRevoked || r.AccountID != memberID {
		t.Fatalf("deescalate result %+v", r)
	}
	if m.iam.isMember(aliceThere, readonly) || !e.iam.isMember(alice, readonly) {
		t.Errorf("after the member deescalate: member IAM has user %v (want false), home IAM %v (want true)",
			m.iam.isMember(aliceThere, readonly), e.iam.isMember(alice, readonly))
	}
	if m.sessions.count() != 1 || hs.count() != 0 {
		t.Errorf("sessions ended: member %d, home %d; want 1 and 0", m.sessions.count(), hs.count())
	}
	e.checkAtRest(t) // the home membership is exactly its one grant
}

func TestGroupARNRouting(t *testing.T) {
	e := newEnv(t)
	withMember(t, e)
	cases := []struct {
		name, group string
		code        events.Code
		account     string
	}{
		{"home account ARN", roARN, "", home},
		// A refusal names the group's account once the group named one.
		{"unconfigured account", "arn:aws:iam::999999999999:group/sym/sym-readonly", events.CodeForeignAccount, "999999999999"},
		{"member ARN with another path", "arn:aws:iam::" + memberID + ":group/other/sym-readonly", events.CodeInvalidGroup, memberID},
		{"home group outside the path", "admins", events.CodeGroupNotAllowed, home},
		{"not a group ARN", "arn:aws:iam::" + memberID + ":user/sym-readonly", events.CodeInvalidGroup, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := escalate("sym-r"+c.name, "r"+string(rune('a'+i)), 30)
			req.Group = c.group
			res := one(t, e.handle(t, req))
			if res.Code != c.code || res.AccountID != c.account {
				t.Errorf("result %+v: want code %q, account %q", res, c.code, c.account)
			}
		})
	}
}

func TestAllowListNamesGroupsOrARNs(t *testing.T) {
	e := newEnv(t)
	m := withMember(t, e)
	e.svc.Policy.AllowedGroups = []string{memberARN} // the member's group only
	if r := one(t, e.handle(t, escalate("sym-1", "a", 30))); r.Code != events.CodeGroupNotAllowed {
		t.Errorf("home group with only the member ARN allowed: %+v", r)
	}
	if r := one(t, e.handle(t, inMember(escalate("sym-2", "b", 30)))); r.DetailType != events.AccessGranted || !m.iam.isMember(aliceThere, readonly) {
		t.Errorf("member group named by its ARN in the allow-list: %+v", r)
	}
}

// A member account that hangs delays only its own grants: the sweep ends
// the home account's grant while the member's IAM is stuck.
func TestSweepIsolatesAFailingAccount(t *testing.T) {
	e := newEnv(t)
	m := withMember(t, e)
	e.handle(t, inMember(escalate("sym-1", "a", 10))) // expires first: first in the index
	e.handle(t, escalate("sym-2", "b", 20))
	e.clock.Advance(30 * time.Minute)
	release := make(chan struct{})
	m.iam.setDuring(func(add bool, _, _ string) {
		if !add {
			<-release
		}
	})
	pub := &fakePublisher{}
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.Sweep(context.Background(), pub, 10, time.Minute)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.iam.isMember(alice, readonly) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("the home grant was not ended while the member account hung: one account delays the others")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !m.iam.isMember(aliceThere, readonly) {
		t.Fatal("the member removal finished although its IAM was held")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m.iam.isMember(aliceThere, readonly) {
		t.Error("the member grant was not ended once its IAM answered")
	}
}

// A grant of an account dropped from IAMJIT_ACCOUNTS cannot be ended; the
// error says which account, every time, so the operator sees it.
func TestUnconfiguredAccountIsAnError(t *testing.T) {
	e := newEnv(t)
	withMember(t, e)
	e.handle(t, inMember(escalate("sym-1", "a", 30)))
	only, err := grants.NewAccounts(e.svc.Accounts.Home())
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Accounts = only
	_, err = e.svc.Handle(context.Background(), inMember(deescalate("sym-2", "a")))
	var nc *grants.ErrAccountNotConfigured
	if !errors.As(err, &nc) || nc.Account != memberID {
		t.Fatalf("deescalate in a dropped account: %v, want ErrAccountNotConfigured naming %s", err, memberID)
	}
}

// A deescalate before its escalate names the account of its group ARN in
// its result, configured or not; the escalate that follows is refused.
func TestTombstoneNamesItsAccount(t *testing.T) {
	e := newEnv(t)
	withMember(t, e)
	for _, acct := range []string{memberID, "999999999999"} {
		req := deescalate("sym-d-"+acct, "t-"+acct)
		req.Group = "arn:aws:iam::" + acct + ":group/sym/sym-readonly"
		if r := one(t, e.handle(t, req)); r.DetailType != events.AccessRevoked || r.AccountID != acct {
			t.Errorf("tombstone for a group of %s: %+v", acct, r)
		}
	}
	req := deescalate("sym-d-home", "t-home")
	if r := one(t, e.handle(t, req)); r.AccountID != home {
		t.Errorf("tombstone for a home group: %+v", r)
	}
}

// NewAccounts is where a member repeating the home account or another
// member is refused: the CLI has no check of its own.
func TestNewAccountsRefusesRepeats(t *testing.T) {
	for name, c := range map[string]struct {
		members []*grants.Account
		want    string
	}{
		"the home account":    {[]*grants.Account{{ID: home}}, `IAMJIT_ACCOUNTS: entry "123456789012" is the home account`},
		"a member twice":      {[]*grants.Account{{ID: memberID}, {ID: memberID}}, `IAMJIT_ACCOUNTS: account "210987654321" twice`},
		"a member with no id": {[]*grants.Account{{}}, "IAMJIT_ACCOUNTS: an entry has no account id"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := grants.NewAccounts(&grants.Account{ID: home}, c.members...)
			if err == nil || err.Error() != c.want {
				t.Fatalf("NewAccounts: %v, want %q", err, c.want)
			}
		})
	}
	if _, err := grants.NewAccounts(&grants.Account{ID: home}, &grants.Account{ID: memberID}); err != nil {
		t.Fatalf("a distinct member: %v", err)
	}
}
