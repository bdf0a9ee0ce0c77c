package grants_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
)

const (
	psARN     = "arn:aws:sso:::permissionSet/ssoins-7223e1a1b2c3d4e5/ps-1a2b3c4d5e6f7a8b"
	psAccount = "210987654321"
	ssoGroup  = "9067d4a2-1081-70c5-13d0-6e7a8b9c0d1e"
	aliceID   = "user-alice"
)

// fakeSSO is Identity Center: assignments and group memberships by key,
// and the Identity Store's users by email.
type fakeSSO struct {
	mu      sync.Mutex
	in      map[grants.Key]bool
	calls   []string
	users   map[string][]string // email -> user ids
	ended   []grants.Key        // MembershipEnded calls
	removed int
}

func newFakeSSO() *fakeSSO {
	return &fakeSSO{in: map[grants.Key]bool{}, users: map[string][]string{
		aliceMail: {aliceID}, approver: {"user-approver"}, "twin@example.com": {"u1", "u2"},
		"alice.alias@example.com": {aliceID}, // another email of the same Identity Store user
	}}
}

func (f *fakeSSO) Add(_ context.Context, k grants.Key) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "add "+k.String())
	if f.in[k] {
		return "", nil
	}
	f.in[k] = true
	return "req-add", nil
}

func (f *fakeSSO) Remove(_ context.Context, k grants.Key) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "remove "+k.String())
	if !f.in[k] {
		return "", nil
	}
	delete(f.in, k)
	f.removed++
	return "req-remove", nil
}

func (f *fakeSSO) IsMember(_ context.Context, k grants.Key) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.in[k], nil
}

func (f *fakeSSO) UserID(_ context.Context, email string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch ids := f.users[strings.ToLower(email)]; len(ids) {
	case 0:
		return "", &grants.IdentityError{Code: events.CodeUnknownUser, Msg: "no Identity Store user for " + email}
	case 1:
		return ids[0], nil
	default:
		return "", &grants.IdentityError{Code: events.CodeAmbiguousUser, Msg: "two users"}
	}
}

func (f *fakeSSO) MembershipEnded(_ context.Context, k grants.Key, _ time.Time) (grants.SessionsEnded, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = append(f.ended, k)
	return grants.SessionsEnded{Revoked: []string{k.Group + " in " + k.Account}}, nil
}

func (f *fakeSSO) isIn(k grants.Key) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.in[k]
}

// withSSO turns Identity Center on in the env's home account.
func withSSO(t *testing.T, e *env) *fakeSSO {
	t.Helper()
	f := newFakeSSO()
	h := e.svc.Accounts.Home()
	h.ID = home
	h.SSO = &grants.IdentityCenter{Members: f, Users: f, Sessions: f}
	accts, err := grants.NewAccounts(h)
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Accounts = accts
	e.svc.Policy.PermissionSets = []string{psARN}
	e.svc.Policy.AssignmentAccounts = []string{psAccount}
	e.svc.Policy.SSOGroups = []string{ssoGroup}
	return f
}

func permissionSetReq(req events.Request) events.Request {
	req.TargetType, req.Group = events.TargetSSOPermissionSet, ""
	req.PermissionSetARN, req.AccountID = psARN, psAccount
	return req
}

func ssoGroupReq(req events.Request) events.Request {
	req.TargetType, req.Group = events.TargetSSOGroup, ""
	req.SSOGroupID = ssoGroup
	return req
}

var (
	psKey  = grants.Key{Kind: grants.PermissionSet, Account: psAccount, User: aliceID, Group: psARN}
	grpKey = grants.Key{Kind: grants.SSOGroup, Account: home, User: aliceID, Group: ssoGroup}
)

// Both Identity Center kinds: granted with their own result fields, kept
// while an overlapping grant lasts, removed (and their sessions ended) with
// the last one; IAM is never touched.
func TestSSOGrantOverlapAndEnd(t *testing.T) {
	for _, c := range []struct {
		name string
		req  func(events.Request) events.Request
		key  grants.Key
	}{{"permission set", permissionSetReq, psKey}, {"group", ssoGroupReq, grpKey}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			f := withSSO(t, e)
			res := one(t, e.handle(t, c.req(escalate("sym-1", "a", 30))))
			if res.DetailType != events.AccessGranted || res.TargetType != string(c.key.Kind) || res.SSOUserID != aliceID ||
				res.AccountID != c.key.Account || res.IAMUser != "" || res.Group != "" {
				t.Fatalf("result %+v", res)
			}
			if c.key.Kind == grants.PermissionSet && res.PermissionSetARN != psARN || c.key.Kind == grants.SSOGroup && res.SSOGroupID != ssoGroup {
				t.Errorf("result %+v does not name its target", res)
			}
			if !f.isIn(c.key) {
				t.Fatal("Identity Center does not have the membership")
			}
			b := c.req(escalate("sym-2", "b", 60))
			b.TargetID = "target-2"
			e.handle(t, b)
			one(t, e.handle(t, c.req(deescalate("sym-3", "a"))))
			if !f.isIn(c.key) || len(f.ended) != 0 {
				t.Fatalf("the first grant's end removed the membership (in %v, sessions ended %v); the second still holds it", f.isIn(c.key), f.ended)
			}
			d := c.req(deescalate("sym-4", "b"))
			d.TargetID = "target-2"
			res = one(t, e.handle(t, d))
			if f.isIn(c.key) || len(f.ended) != 1 || f.ended[0] != c.key {
				t.Fatalf("after the last grant: in %v, sessions ended %v", f.isIn(c.key), f.ended)
			}
			if len(res.SessionsRevoked) != 1 {
				t.Errorf("Access Revoked %+v does not list the sessions ended", res)
			}
			if adds, removes := e.iam.calls(); adds+removes != 0 {
				t.Errorf("IAM was called: %d adds, %d removes", adds, removes)
			}
		})
	}
}

// Allow-lists, users and the switch: every refusal before Identity Center
// is asked to change anything.
func TestSSORefusals(t *testing.T) {
	e := newEnv(t)
	if r := one(t, e.handle(t, permissionSetReq(escalate("sym-off", "off", 30)))); r.Code != events.CodeUnsupportedTarget {
		t.Errorf("Identity Center off: %+v, want unsupported_target", r)
	}
	f := withSSO(t, e)
	cases := []struct {
		name string
		req  events.Request
		code events.Code
	}{
		{"permission set not allowed", func() events.Request {
			r := permissionSetReq(escalate("s1", "r1", 30))
			r.PermissionSetARN = psARN + "x"
			return r
		}(), events.CodeTargetNotAllowed},
		{"account not allowed", func() events.Request {
			r := permissionSetReq(escalate("s2", "r2", 30))
			r.AccountID = "999999999999"
			return r
		}(), events.CodeTargetNotAllowed},
		{"group not allowed", func() events.Request {
			r := ssoGroupReq(escalate("s3", "r3", 30))
			r.SSOGroupID = "other"
			return r
		}(), events.CodeTargetNotAllowed},
		{"group not allowed, the body also naming an IAM group", func() events.Request {
			r := ssoGroupReq(escalate("s9", "r9", 30))
			r.SSOGroupID, r.Group = "other", readonly
			return r
		}(), events.CodeTargetNotAllowed},
		{"no account", func() events.Request {
			r := permissionSetReq(escalate("s4", "r4", 30))
			r.AccountID = ""
			return r
		}(), events.CodeInvalidRequest},
		{"unknown email", func() events.Request {
			r := ssoGroupReq(escalate("s5", "r5", 30))
			r.Requester = "nobody@example.com"
			return r
		}(), events.CodeUnknownUser},
		{"ambiguous email", func() events.Request {
			r := ssoGroupReq(escalate("s6", "r6", 30))
			r.Requester = "twin@example.com"
			return r
		}(), events.CodeAmbiguousUser},
		{"approver is the same email", func() events.Request {
			r := ssoGroupReq(escalate("s7", "r7", 30))
			r.Approver = strings.ToUpper(aliceMail)
			return r
		}(), events.CodeSelfApproval},
		{"approver's email is the same Identity Store user", func() events.Request {
			r := ssoGroupReq(escalate("s8", "r8", 30))
			r.Approver = "alice.alias@example.com"
			return r
		}(), events.CodeSelfApproval},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := one(t, e.handle(t, c.req))
			if r.DetailType != events.AccessRejected || r.Code != c.code || r.TargetType != c.req.TargetType {
				t.Errorf("result %+v, want %s", r, c.code)
			}
			if r.Group != "" || r.GroupARN != "" || r.IAMUser != "" {
				t.Errorf("result %+v names IAM fields; an Identity Center result carries none", r)
			}
			if c.req.TargetType == events.TargetSSOPermissionSet && c.code == events.CodeTargetNotAllowed && r.AccountID != c.req.AccountID {
				t.Errorf("result %+v does not name the account asked for (%s)", r, c.req.AccountID)
			}
		})
	}
	if len(f.calls) != 0 {
		t.Errorf("refused requests reached Identity Center: %v", f.calls)
	}
}

// A redelivered escalate of an Identity Center grant converges the
// membership from the stored result's fields, as for IAM.
func TestSSODuplicateConverges(t *testing.T) {
	e := newEnv(t)
	f := withSSO(t, e)
	req := permissionSetReq(escalate("sym-1", "a", 30))
	e.handle(t, req)
	if _, err := f.Remove(context.Background(), psKey); err != nil { // someone took it away
		t.Fatal(err)
	}
	if out := e.handle(t, req); out.Kind != events.OutcomeDuplicate {
		t.Fatalf("outcome %s, want duplicate", out.Kind)
	}
	if !f.isIn(psKey) {
		t.Error("the duplicate did not converge the assignment back")
	}
}
