package reconcile

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
)

const (
	testPS      = "arn:aws:sso:::permissionSet/ssoins-1/ps-1"
	testAccount = "210987654321"
	testGroup   = "grp-1"
)

// fakeSSO is Identity Center: its memberships by key, listed and changed.
type fakeSSO struct {
	in    map[grants.Key]bool
	calls []string
}

func (f *fakeSSO) Add(_ context.Context, k grants.Key) (string, error) {
	f.calls = append(f.calls, "add "+k.String())
	f.in[k] = true
	return "req", nil
}

func (f *fakeSSO) Remove(_ context.Context, k grants.Key) (string, error) {
	f.calls = append(f.calls, "remove "+k.String())
	if !f.in[k] {
		return "", nil
	}
	delete(f.in, k)
	return "req", nil
}

func (f *fakeSSO) IsMember(_ context.Context, k grants.Key) (bool, error) { return f.in[k], nil }

func (f *fakeSSO) Assigned(_ context.Context, pss, accts []string) ([]grants.Key, error) {
	var out []grants.Key
	for k := range f.in {
		if k.Kind == grants.PermissionSet && slices.Contains(pss, k.Group) && slices.Contains(accts, k.Account) {
			out = append(out, k)
		}
	}
	return out, nil
}

func (f *fakeSSO) GroupMembersOf(_ context.Context, groups []string, _ string) ([]grants.Key, error) {
	var out []grants.Key
	for k := range f.in {
		if k.Kind == grants.SSOGroup && slices.Contains(groups, k.Group) {
			out = append(out, k)
		}
	}
	return out, nil
}

func withSSO(t *testing.T, r *Reconciler) *fakeSSO {
	t.Helper()
	f := &fakeSSO{in: map[grants.Key]bool{}}
	home := r.Accounts.Home()
	home.SSO = &grants.IdentityCenter{Members: f, Lister: f}
	withAccounts(t, r, home)
	r.SSO = SSOTargets{PermissionSets: []string{testPS}, Accounts: []string{testAccount}, Groups: []string{testGroup}}
	return f
}

// Identity Center drift: an assignment no grant explains is removed (and
// its drift result names the permission set and the user), a grant's lost
// group membership is put back, and an assignment of a permission set
// outside the allow-list is not iamjit's to judge.
func TestIdentityCenterDrift(t *testing.T) {
	r, iam, st, pub := setup(t)
	sso := withSSO(t, r)
	stray := grants.Key{Kind: grants.PermissionSet, Account: testAccount, User: "u-stray", Group: testPS}
	foreign := grants.Key{Kind: grants.PermissionSet, Account: testAccount, User: "u-other", Group: "arn:aws:sso:::permissionSet/ssoins-1/ps-other"}
	lost := grants.Key{Kind: grants.SSOGroup, User: "u-alice", Group: testGroup}
	sso.in[stray], sso.in[foreign] = true, true
	st.active = append(st.active, grants.Grant{ID: "g-sso", State: grants.StateActive, Kind: lost.Kind, Account: lost.Account,
		IAMUser: lost.User, Group: lost.Group, ExpiresAt: t0.Add(time.Hour)})
	st.members[lost] = grants.Membership{Kind: lost.Kind, IAMUser: lost.User, Group: lost.Group, GrantIDs: []string{"g-sso"}, Token: "tok-sso"}

	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[Kind]Difference{}
	for _, d := range rep.Differences {
		got[d.Kind] = d
	}
	if len(rep.Differences) != 2 || got[UnexplainedMember].Action != ActionRemoved || got[MissingMember].Action != ActionReadded {
		t.Fatalf("differences %+v: want the stray assignment removed and the lost membership re-added", rep.Differences)
	}
	if d := got[UnexplainedMember]; d.TargetType != "aws_sso_permission_set" || d.IAMUser != stray.User || d.Group != testPS {
		t.Errorf("unexplained %+v does not name the assignment", d)
	}
	if sso.in[stray] || !sso.in[lost] || !sso.in[foreign] {
		t.Errorf("after enforce: stray %v (want gone), lost %v (want back), foreign %v (want untouched)", sso.in[stray], sso.in[lost], sso.in[foreign])
	}
	if len(pub.got) != 1 {
		t.Fatalf("published %+v, want one drift revocation", pub.got)
	}
	if res := pub.got[0]; res.TargetType != "aws_sso_permission_set" || res.PermissionSetARN != testPS || res.SSOUserID != stray.User ||
		res.IAMUser != "" || res.Reason != events.RevokedDrift {
		t.Errorf("drift result %+v", res)
	}
	if len(iam.calls) != 0 {
		t.Errorf("IAM was changed: %v", iam.calls)
	}
}
