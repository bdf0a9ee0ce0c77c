package reconcile

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/sessions"
)

// fakeIAM is IAM's groups: name -> members.
type fakeIAM struct {
	groups  map[string][]string
	calls   []string
	failAdd error
	// listed, when set, is what ManagedGroups returns: a listing taken
	// before IAM changed to groups.
	listed map[string][]string
	// afterList runs once the groups are listed.
	afterList func()
}

func (f *fakeIAM) ManagedGroups(ctx context.Context, path string) (map[string][]string, error) {
	src := f.groups
	if f.listed != nil {
		src = f.listed
	}
	out := map[string][]string{}
	for g, us := range src {
		out[g] = slices.Clone(us)
	}
	if f.afterList != nil {
		f.afterList()
	}
	return out, nil
}

func (f *fakeIAM) IsMember(ctx context.Context, user, group string) (bool, error) {
	return slices.Contains(f.groups[group], user), nil
}

func (f *fakeIAM) AddUser(ctx context.Context, user, group string) (string, error) {
	f.calls = append(f.calls, "add "+user+" "+group)
	if f.failAdd != nil {
		return "", f.failAdd
	}
	if !slices.Contains(f.groups[group], user) {
		f.groups[group] = append(f.groups[group], user)
	}
	return "req-add-" + user, nil
}

func (f *fakeIAM) RemoveUser(ctx context.Context, user, group string) (string, error) {
	f.calls = append(f.calls, "remove "+user+" "+group)
	f.groups[group] = slices.DeleteFunc(f.groups[group], func(u string) bool { return u == user })
	return "req-remove-" + user, nil
}

type synced struct {
	user, group, grantID string
	t                    grants.Transition
}

// pair is a membership in the home account.
type pair = grants.Key

func homePair(user, group string) pair { return grants.Key{User: user, Group: group} }

// fakeStore holds grants and memberships; onRead runs before a membership
// is returned, to play a concurrent writer. It is the grants.Service's store
// too, which converges through Membership and MarkSynced only.
type fakeStore struct {
	grants.Store
	active  []grants.Grant
	members map[pair]grants.Membership
	synced  []synced
	onRead  func(p pair)
	reads   int
	// afterActive runs once the active grants are read: an escalate
	// landing between reconcile's reads.
	afterActive func()
}

func (f *fakeStore) ActiveGrants(ctx context.Context) ([]grants.Grant, error) {
	out := slices.Clone(f.active)
	if f.afterActive != nil {
		f.afterActive()
	}
	return out, nil
}

func (f *fakeStore) Membership(ctx context.Context, k grants.Key) (grants.Membership, error) {
	f.reads++
	if f.onRead != nil {
		f.onRead(k)
	}
	m, ok := f.members[k]
	if !ok {
		return grants.Membership{Account: k.Account, IAMUser: k.User, Group: k.Group}, nil
	}
	return m, nil
}

func (f *fakeStore) MarkSynced(ctx context.Context, k grants.Key, token, grantID string, t grants.Transition) (bool, error) {
	if f.members[k].Token != token {
		return false, nil
	}
	f.synced = append(f.synced, synced{k.User, k.Group, grantID, t})
	return true, nil
}

// grant adds an active grant and its membership to the store.
func (f *fakeStore) grant(id, user, group string, expires time.Time) {
	f.active = append(f.active, grants.Grant{ID: id, State: grants.StateActive, IAMUser: user, Group: group, ExpiresAt: expires})
	m := f.members[homePair(user, group)]
	m.IAMUser, m.Group, m.GrantIDs, m.Token = user, group, append(m.GrantIDs, id), "tok-"+id
	f.members[homePair(user, group)] = m
}

type fakePub struct {
	got []events.Result
	err error
}

func (f *fakePub) Publish(ctx context.Context, rs []events.Result) error {
	if f.err != nil {
		return f.err
	}
	f.got = append(f.got, rs...)
	return nil
}

var t0 = time.Date(2026, 5, 1, 12, 10, 0, 0, time.UTC)

func setup(t testing.TB) (*Reconciler, *fakeIAM, *fakeStore, *fakePub) {
	iam := &fakeIAM{groups: map[string][]string{"sym-ro": {}, "sym-admin": {}}}
	st := &fakeStore{members: map[pair]grants.Membership{}}
	pub := &fakePub{}
	now := func() time.Time { return t0 }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &Reconciler{Store: st, Publisher: pub, GroupPath: "/sym/", Window: time.Hour, Now: now, Log: log}
	withAccounts(t, r, &grants.Account{IAM: iam, Members: iam})
	return r, iam, st, pub
}

// withAccounts gives the reconciler and its grants service one registry of
// home (whose id is unknown here, as the fake store names it "") and
// members.
func withAccounts(t testing.TB, r *Reconciler, home *grants.Account, members ...*grants.Account) {
	accts, err := grants.NewAccounts(home, members...)
	if err != nil {
		t.Fatal(err)
	}
	r.Accounts = accts
	r.Converger = &grants.Service{Store: r.Store.(*fakeStore), Accounts: accts, Now: r.Now, Log: r.Log}
}

// service is the grants.Service setup gave r to change IAM with.
func service(r *Reconciler) *grants.Service { return r.Converger.(*grants.Service) }

func kinds(rep Report) []string {
	var out []string
	for _, d := range rep.Differences {
		out = append(out, string(d.Kind)+" "+d.IAMUser+" "+d.Group+" "+d.Action)
	}
	sort.Strings(out)
	return out
}

func TestNoDrift(t *testing.T) {
	r, iam, st, _ := setup(t)
	st.grant("g1", "alice", "sym-ro", t0.Add(time.Hour))
	iam.groups["sym-ro"] = []string{"alice"}
	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Drift() != 0 || len(rep.Differences) != 0 || rep.Active != 1 || rep.Groups != 2 {
		t.Fatalf("report = %+v, want no drift, 1 active grant, 2 groups", rep)
	}
	if len(iam.calls) != 0 {
		t.Fatalf("IAM calls without drift: %v", iam.calls)
	}
}

func TestReportOnlyChangesNothing(t *testing.T) {
	r, iam, st, pub := setup(t)
	st.grant("g1", "alice", "sym-ro", t0.Add(time.Hour))    // lost its membership
	st.grant("g2", "carol", "sym-ro", t0.Add(-time.Minute)) // overdue, still in IAM
	st.grant("g3", "dave", "sym-gone", t0.Add(time.Hour))   // group not managed
	iam.groups["sym-ro"] = []string{"bob", "carol"}         // bob: added by hand
	rep, err := r.Run(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"missing_group dave sym-gone ",
		"missing_member alice sym-ro ",
		"overdue_grant carol sym-ro ",
		"unexplained_member bob sym-ro ",
	}
	if got := kinds(rep); !slices.Equal(got, want) {
		t.Fatalf("differences:\n got %q\nwant %q", got, want)
	}
	if rep.Drift() != 3 {
		t.Fatalf("drift = %d, want 3 (overdue is the sweeper's)", rep.Drift())
	}
	for _, d := range rep.Differences {
		if d.Kind == MissingMember && !slices.Equal(d.GrantIDs, []string{"g1"}) {
			t.Fatalf("missing member names grants %v, want [g1]", d.GrantIDs)
		}
	}
	if len(iam.calls) != 0 || len(pub.got) != 0 || len(st.synced) != 0 {
		t.Fatalf("report-only run changed something: iam %v, published %v, synced %v", iam.calls, pub.got, st.synced)
	}
}

func TestEnforceRemovesAndReadds(t *testing.T) {
	r, iam, st, pub := setup(t)
	st.grant("g1", "alice", "sym-ro", t0.Add(time.Hour))
	st.grant("g2", "carol", "sym-ro", t0.Add(-time.Minute))
	iam.groups["sym-ro"] = []string{"bob", "carol"}
	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"missing_member alice sym-ro re-added", "overdue_grant carol sym-ro ", "unexplained_member bob sym-ro removed"}
	if got := kinds(rep); !slices.Equal(got, want) {
		t.Fatalf("differences:\n got %q\nwant %q", got, want)
	}
	members := slices.Sorted(slices.Values(iam.groups["sym-ro"]))
	if !slices.Equal(members, []string{"alice", "carol"}) {
		t.Fatalf("sym-ro members = %v, want alice (re-added) and carol (the sweeper's)", members)
	}
	if len(pub.got) != 1 {
		t.Fatalf("published %d results, want 1: %+v", len(pub.got), pub.got)
	}
	res := pub.got[0]
	wantID := events.ResultID(events.AccessRevoked, "drift/bob/sym-ro/2026-05-01T12:00:00Z")
	if res.DetailType != events.AccessRevoked || res.Reason != events.RevokedDrift || res.IAMUser != "bob" ||
		res.Group != "sym-ro" || res.ResultID != wantID || res.RevokedAt == nil || !res.RevokedAt.Equal(t0) {
		t.Fatalf("drift result = %+v, want Access Revoked drift for bob in sym-ro with id %s", res, wantID)
	}
	// The re-add is in g1's history with its IAM request id; the removal
	// names no grant.
	var readd, remove *synced
	for i := range st.synced {
		switch st.synced[i].user {
		case "alice":
			readd = &st.synced[i]
		case "bob":
			remove = &st.synced[i]
		}
	}
	if readd == nil || readd.grantID != "g1" || readd.t.Action != "iam_add" || readd.t.IAMRequestID != "req-add-alice" || readd.t.Note != readdNote {
		t.Fatalf("re-add recorded as %+v, want iam_add on g1 with the request id and the note %q", readd, readdNote)
	}
	if remove == nil || remove.grantID != "" || remove.t.Action != "iam_remove" {
		t.Fatalf("removal recorded as %+v, want iam_remove on no grant", remove)
	}
}

func TestDriftResultIDIsStablePerWindow(t *testing.T) {
	ids := map[string]bool{}
	for _, at := range []time.Time{t0, t0.Add(40 * time.Minute)} { // same hour: 12:10, 12:50
		r, iam, _, pub := setup(t)
		r.Now = func() time.Time { return at }
		iam.groups["sym-ro"] = []string{"bob"}
		if _, err := r.Run(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		ids[pub.got[0].ResultID] = true
	}
	if len(ids) != 1 {
		t.Fatalf("two detections in one window published %d result ids, want 1", len(ids))
	}
	r, iam, _, pub := setup(t)
	r.Now = func() time.Time { return t0.Add(time.Hour) }
	iam.groups["sym-ro"] = []string{"bob"}
	if _, err := r.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if ids[pub.got[0].ResultID] {
		t.Fatal("a detection in the next window reused the result id: downstream would drop a new incident")
	}
}

// A grant activated after the listing but before the repair explains the
// member: reconcile must keep it, not undo the new grant.
func TestEnforceKeepsAMemberAGrantNowExplains(t *testing.T) {
	r, iam, st, pub := setup(t)
	iam.groups["sym-ro"] = []string{"bob"}
	st.onRead = func(p pair) {
		if p.User == "bob" && st.members[p].Token == "" {
			st.members[p] = grants.Membership{IAMUser: "bob", Group: "sym-ro", GrantIDs: []string{"g9"}, Token: "tok-g9"}
		}
	}
	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(rep); !slices.Equal(got, []string{"unexplained_member bob sym-ro kept"}) {
		t.Fatalf("differences = %q", got)
	}
	if !slices.Contains(iam.groups["sym-ro"], "bob") || len(pub.got) != 0 {
		t.Fatalf("bob removed or a drift published although g9 explains him: members %v, published %v", iam.groups["sym-ro"], pub.got)
	}
}

// A writer that changes the membership between the read and the mark makes
// reconcile read and converge again, ending where the store says.
func TestEnforceConvergesAgainAfterAConcurrentWrite(t *testing.T) {
	r, iam, st, pub := setup(t)
	iam.groups["sym-ro"] = []string{"bob"}
	st.members[homePair("bob", "sym-ro")] = grants.Membership{IAMUser: "bob", Group: "sym-ro", Token: "tok-0"}
	m := &markRacer{fakeStore: st}
	r.Store, service(r).Store = m, m
	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(rep); !slices.Equal(got, []string{"unexplained_member bob sym-ro kept"}) {
		t.Fatalf("differences = %q", got)
	}
	if want := []string{"remove bob sym-ro", "add bob sym-ro"}; !slices.Equal(iam.calls, want) {
		t.Fatalf("IAM calls = %v, want %v", iam.calls, want)
	}
	if !slices.Contains(iam.groups["sym-ro"], "bob") || len(pub.got) != 0 {
		t.Fatalf("bob must end in the group with nothing published: %v %v", iam.groups["sym-ro"], pub.got)
	}
}

// markRacer fails the first MarkSynced as if another writer had replaced the
// token, and makes that write visible to the next read.
type markRacer struct {
	*fakeStore
	raced bool
}

func (m *markRacer) MarkSynced(ctx context.Context, k grants.Key, token, grantID string, t grants.Transition) (bool, error) {
	if !m.raced {
		m.raced = true
		m.members[k] = grants.Membership{IAMUser: k.User, Group: k.Group, GrantIDs: []string{"g9"}, Token: "tok-g9"}
		return false, nil
	}
	return m.fakeStore.MarkSynced(ctx, k, token, grantID, t)
}

func TestAllowedGroupsLimitsWhatIsJudged(t *testing.T) {
	r, iam, _, _ := setup(t)
	r.AllowedGroups = []string{"sym-ro"}
	iam.groups["sym-admin"] = []string{"root-ish"}
	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) != 0 || len(iam.calls) != 0 || rep.Groups != 1 {
		t.Fatalf("a group outside IAMJIT_ALLOWED_GROUPS was judged: %+v calls %v", rep, iam.calls)
	}
}

func TestEnforceReportsFailures(t *testing.T) {
	r, iam, st, pub := setup(t)
	st.grant("g1", "alice", "sym-ro", t0.Add(time.Hour))
	iam.groups["sym-ro"] = []string{"bob"}
	iam.failAdd = errors.New("AccessDenied")
	pub.err = errors.New("bus down")
	rep, err := r.Run(context.Background(), true)
	if err == nil {
		t.Fatal("no error although IAM and the bus failed")
	}
	got := kinds(rep)
	want := []string{"missing_member alice sym-ro failed", "unexplained_member bob sym-ro removed"}
	if !slices.Equal(got, want) {
		t.Fatalf("differences:\n got %q\nwant %q", got, want)
	}
	for _, d := range rep.Differences {
		if d.Kind == MissingMember && d.Error == "" {
			t.Fatal("failed re-add carries no error text")
		}
	}
}

type fakeSessions struct{ ended []string }

func (f *fakeSessions) MembershipEnded(ctx context.Context, k grants.Key, at time.Time) (grants.SessionsEnded, error) {
	f.ended = append(f.ended, k.User+" "+k.Group)
	return grants.SessionsEnded{Revoked: []string{"arn:aws:iam::123456789012:role/jit/ro"}}, nil
}

type fakeChecker struct {
	missing  []sessions.Missing
	enforced bool
}

func (f *fakeChecker) Check(ctx context.Context, enforce bool) ([]sessions.Missing, error) {
	f.enforced = enforce
	out := slices.Clone(f.missing)
	for i := range out {
		out[i].Restored = enforce
	}
	return out, nil
}

// A drift removal ends the sessions the membership enabled, and its Access
// Revoked says which; a missing revocation statement is reported and, with
// enforce, restored.
func TestSessionsOnDriftAndMissingRevocations(t *testing.T) {
	r, iam, _, pub := setup(t)
	ss := &fakeSessions{}
	chk := &fakeChecker{missing: []sessions.Missing{{RoleARN: "arn:aws:iam::123456789012:role/jit/ro", User: "dave", At: t0.Add(-time.Minute)}}}
	r.Accounts.Home().Sessions, r.SessionChecks = ss, map[string][]SessionChecker{"": {chk}}
	iam.groups["sym-ro"] = []string{"bob"}

	rep, err := r.Run(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(rep); !slices.Contains(got, "session_revocation_missing dave  ") || len(ss.ended) != 0 {
		t.Fatalf("report only: %q, sessions ended %v", got, ss.ended)
	}
	rep, err = r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(rep); !slices.Contains(got, "session_revocation_missing dave  restored") || !chk.enforced {
		t.Fatalf("enforce: %q", got)
	}
	if !slices.Equal(ss.ended, []string{"bob sym-ro"}) {
		t.Fatalf("sessions ended for %v, want bob in sym-ro", ss.ended)
	}
	if len(pub.got) != 1 || !slices.Equal(pub.got[0].SessionsRevoked, []string{"arn:aws:iam::123456789012:role/jit/ro"}) {
		t.Fatalf("drift result = %+v", pub.got)
	}
}

// A membership marked dirty has a writer converging it (the escalate
// between its transaction and its AddUser, or a deescalate before its
// RemoveUser): enforce leaves it to them and changes nothing in IAM.
func TestEnforceLeavesADirtyMembershipToItsWriter(t *testing.T) {
	r, iam, st, pub := setup(t)
	st.grant("g1", "alice", "sym-ro", t0.Add(time.Hour)) // escalate in flight: not in IAM yet
	m := st.members[homePair("alice", "sym-ro")]
	m.Dirty = true
	st.members[homePair("alice", "sym-ro")] = m
	st.members[homePair("bob", "sym-ro")] = grants.Membership{IAMUser: "bob", Group: "sym-ro", Token: "t", Dirty: true} // deescalate in flight
	iam.groups["sym-ro"] = []string{"bob"}
	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) != 2 {
		t.Fatalf("differences %q, want the in-flight missing and unexplained members", kinds(rep))
	}
	for _, d := range rep.Differences {
		if d.Action != ActionInFlight {
			t.Errorf("%s %s: action %q, want %q", d.Kind, d.IAMUser, d.Action, ActionInFlight)
		}
	}
	if len(iam.calls) != 0 || len(pub.got) != 0 || len(st.synced) != 0 {
		t.Fatalf("enforce raced a writer: iam %v, published %v, synced %v", iam.calls, pub.got, st.synced)
	}
}

// The group listing is older than the grants it is compared with: a member
// added (or removed) since is not drift, and nothing is reported or changed.
func TestDifferencesAreConfirmedBeforeTheyAreReported(t *testing.T) {
	r, iam, st, pub := setup(t)
	st.grant("g1", "alice", "sym-ro", t0.Add(time.Hour))
	iam.groups["sym-ro"] = []string{"alice"}            // her escalate's add landed
	iam.listed = map[string][]string{"sym-ro": {"bob"}} // listed before it, and before bob's removal
	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) != 0 {
		t.Fatalf("differences %q from a stale listing, want none", kinds(rep))
	}
	if len(iam.calls) != 0 || len(pub.got) != 0 {
		t.Fatalf("a stale listing changed IAM %v or published %v", iam.calls, pub.got)
	}
}

// Each account is compared with its own grants: the same user and group
// names in two accounts never explain each other, and enforce acts in the
// difference's account only.
func TestAccountsAreReconciledApart(t *testing.T) {
	r, home, st, pub := setup(t)
	member := &fakeIAM{groups: map[string][]string{"sym-ro": {"alice"}}}
	withAccounts(t, r, r.Accounts.Home(), &grants.Account{ID: "210987654321", IAM: member, Members: member})
	// alice's grant is in the home account; in the member account nothing
	// explains her.
	st.grant("g1", "alice", "sym-ro", t0.Add(time.Hour))
	home.groups["sym-ro"] = []string{"alice"}
	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) != 1 {
		t.Fatalf("differences %+v, want one", rep.Differences)
	}
	d := rep.Differences[0]
	if d.Kind != UnexplainedMember || d.Account != "210987654321" || d.Action != ActionRemoved {
		t.Errorf("difference %+v: want alice unexplained in 210987654321, removed", d)
	}
	if slices.Contains(member.groups["sym-ro"], "alice") || !slices.Contains(home.groups["sym-ro"], "alice") {
		t.Errorf("after enforce: member group %v (want no alice), home group %v (want alice)", member.groups["sym-ro"], home.groups["sym-ro"])
	}
	if len(home.calls) != 0 {
		t.Errorf("home IAM was changed: %v", home.calls)
	}
	if len(pub.got) != 1 || pub.got[0].AccountID != "210987654321" ||
		pub.got[0].ResultID == events.ResultID(events.AccessRevoked, DriftKey(grants.Key{User: "alice", Group: "sym-ro"}, "", t0, time.Hour)) {
		t.Errorf("drift results %+v: want one for the member account, its id apart from the home one's", pub.got)
	}
	if rep.Groups != 3 {
		t.Errorf("groups %d, want 3: the home account's 2 and the member's 1", rep.Groups)
	}
}

// An escalate whose grant and AddUserToGroup land between reconcile's reads
// is no drift: the groups are listed before the grants are read, so the
// member is in both reads or only in the grants (and then confirmed in
// IAM), never an unexplained member that enforce "keeps" with a re-add.
func TestEscalateBetweenTheReadsIsNoDrift(t *testing.T) {
	r, iam, st, pub := setup(t)
	landed := false
	escalate := func() { // right after whichever read comes first
		if landed {
			return
		}
		landed = true
		st.grant("g1", "alice", "sym-ro", t0.Add(time.Hour))
		iam.groups["sym-ro"] = append(iam.groups["sym-ro"], "alice")
	}
	st.afterActive, iam.afterList = escalate, escalate
	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) != 0 || len(iam.calls) != 0 || len(pub.got) != 0 {
		t.Fatalf("differences %+v, IAM calls %v, results %v: want none", rep.Differences, iam.calls, pub.got)
	}
}
