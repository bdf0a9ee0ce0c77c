package sessions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iamjit/iamjit/internal/testclock"
	"github.com/iamjit/iamjit/sessions"
)

const (
	acct       = "arn:aws:iam::123456789012:"
	trustSI    = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["sts:AssumeRole","sts:SetSourceIdentity"],"Condition":{"StringEquals":{"sts:SourceIdentity":"${aws:username}"}}}]}`
	trustPlain = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`
)

func role(path, name string) sessions.Role {
	return sessions.Role{ARN: acct + "role" + path + name, Name: name, Path: path, MaxSessionDuration: time.Hour}
}

func names(rs []sessions.Role) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

func TestFindRoles(t *testing.T) {
	existing := []sessions.Role{role("/jit/", "ro"), role("/jit/", "admin"), role("/jit/team/", "deep"), role("/", "other"), role("/sym/", "iamjit-connector")}
	cases := []struct {
		name string
		docs []string
		want []string
	}{
		{"one ARN, statement as an object, action as a string",
			[]string{`{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + acct + `role/jit/ro"}}`}, []string{"ro"}},
		{"inline and attached documents add up",
			[]string{`{"Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":"*"},{"Effect":"Allow","Action":["sts:AssumeRole"],"Resource":["` + acct + `role/jit/ro"]}]}`,
				`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + acct + `role/other"}]}`}, []string{"other", "ro"}},
		{"* resolves against every role", []string{`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`},
			[]string{"admin", "deep", "iamjit-connector", "other", "ro"}},
		{"role/* and a path wildcard", []string{`{"Statement":[{"Effect":"Allow","Action":"sts:*","Resource":"arn:aws:iam::*:role/jit/*"}]}`},
			[]string{"admin", "deep", "ro"}},
		{"? and case-insensitive action", []string{`{"Statement":[{"Effect":"Allow","Action":"STS:assumerole","Resource":"` + acct + `role/jit/r?"}]}`}, []string{"ro"}},
		{"policy variable counts as a wildcard", []string{`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + acct + `role/jit/${aws:username}"}]}`},
			[]string{"admin", "deep", "ro"}}, // user names hold no /, but the match stays on the safe side
		{"Action * allows AssumeRole", []string{`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"` + acct + `role/jit/admin"}]}`}, []string{"admin"}},
		{"NotAction not excluding AssumeRole allows it", []string{`{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"` + acct + `role/jit/admin"}]}`}, []string{"admin"}},
		{"NotAction excluding AssumeRole does not", []string{`{"Statement":[{"Effect":"Allow","NotAction":["sts:Assume*"],"Resource":"*"}]}`}, nil},
		{"NotResource takes in every other role", []string{`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","NotResource":["` + acct + `role/jit/*","` + acct + `role/sym/*"]}]}`}, []string{"other"}},
		{"TagSession and SetSourceIdentity alone assume nothing", []string{`{"Statement":[{"Effect":"Allow","Action":["sts:TagSession","sts:SetSourceIdentity"],"Resource":"*"}]}`}, nil},
		{"a Deny adds nothing and removes nothing", []string{`{"Statement":[{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"},{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + acct + `role/jit/ro"}]}`}, []string{"ro"}},
		{"a role that does not exist matches nothing", []string{`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + acct + `role/jit/gone"}]}`}, nil},
		{"no policies, no roles", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := sessions.FindRoles(c.docs, existing)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names(got), c.want) {
				t.Fatalf("roles = %v, want %v", names(got), c.want)
			}
		})
	}
	if _, err := sessions.FindRoles([]string{`{"Statement":[`}, existing); err == nil {
		t.Fatal("a document that does not parse found no roles instead of failing")
	}
}

func TestRequiresSourceIdentity(t *testing.T) {
	cases := map[string]bool{
		trustSI:    true,
		trustPlain: false,
		`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Condition":{"StringLike":{"sts:SourceIdentity":"*"}}}]}`:                                                                                                          false,
		`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:SourceIdentity":"${aws:username}"}}},{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":"ec2.amazonaws.com"}}]}`: false,
		`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRoleWithSAML"}]}`:                                                                                                                                                        false,
		`not json`: false,
	}
	for doc, want := range cases {
		if got := sessions.RequiresSourceIdentity(doc); got != want {
			t.Errorf("RequiresSourceIdentity(%s) = %v, want %v", doc, got, want)
		}
	}
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 500_000_000, time.UTC)

func TestRenderPerUserAndPruning(t *testing.T) {
	entries := map[string]time.Time{
		"alice": t0,
		"bob":   t0.Add(200 * time.Millisecond), // same second as alice: one statement
		"carol": t0.Add(-2 * time.Hour),         // older than MaxSessionDuration: denies nothing
	}
	p := sessions.Render(entries, true, time.Hour, t0.Add(time.Minute), sessions.InlineLimit)
	if p.Mode != sessions.ModeUser || p.Fallback || p.NoRoom {
		t.Fatalf("plan = %+v, want per-user", p)
	}
	if !slices.Equal(p.Drop, []string{"carol"}) {
		t.Fatalf("drop = %v, want [carol]", p.Drop)
	}
	if want := sessions.Cutoff(t0).Add(time.Hour); !p.Prune.Equal(want) {
		t.Fatalf("prune = %s, want %s", p.Prune, want)
	}
	var d struct{ Statement []map[string]any }
	if err := json.Unmarshal([]byte(p.Doc), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Statement) != 1 || !strings.Contains(p.Doc, `"aws:SourceIdentity":["alice","bob"]`) ||
		!strings.Contains(p.Doc, `"aws:TokenIssueTime":"2025-06-01T12:00:01Z"`) || strings.Contains(p.Doc, "carol") {
		t.Fatalf("doc = %s", p.Doc)
	}
	for _, u := range []string{"alice", "bob"} {
		if !sessions.Denies(p.Doc, u, entries[u]) {
			t.Errorf("doc does not deny %s", u)
		}
	}
	if sessions.Denies(p.Doc, "dave", t0) {
		t.Error("doc denies a user it does not name")
	}
	// All pruned: nothing to deny, the policy is deleted.
	p = sessions.Render(entries, true, time.Hour, t0.Add(2*time.Hour), sessions.InlineLimit)
	if p.Doc != "" || len(p.Drop) != 3 || len(p.Users) != 0 {
		t.Fatalf("all expired: plan = %+v", p)
	}
}

func TestRenderRoleWide(t *testing.T) {
	entries := map[string]time.Time{"alice": t0, "bob": t0.Add(10 * time.Second)}
	p := sessions.Render(entries, false, time.Hour, t0.Add(time.Minute), sessions.InlineLimit)
	if p.Mode != sessions.ModeRole || strings.Contains(p.Doc, "SourceIdentity") ||
		!strings.Contains(p.Doc, `"aws:TokenIssueTime":"2025-06-01T12:00:11Z"`) {
		t.Fatalf("role-wide doc = %s", p.Doc)
	}
	if !sessions.Denies(p.Doc, "anyone", t0) {
		t.Fatal("role-wide doc does not deny an older session")
	}
}

func TestRenderSizeFallback(t *testing.T) {
	entries := map[string]time.Time{}
	for i := range 100 { // distinct seconds: one statement each, ~170 chars
		entries["user-"+strings.Repeat("x", 20)+string(rune('a'+i%26))+string(rune('a'+i/26))] = t0.Add(time.Duration(i) * time.Second)
	}
	p := sessions.Render(entries, true, time.Hour, t0.Add(5*time.Minute), sessions.InlineLimit)
	if !p.Fallback || p.Mode != sessions.ModeRole || p.NoRoom {
		t.Fatalf("100 users: plan mode=%s fallback=%v noroom=%v size=%d", p.Mode, p.Fallback, p.NoRoom, sessions.Size(p.Doc))
	}
	for u, at := range entries {
		if !sessions.Denies(p.Doc, u, at) {
			t.Fatalf("fallback does not deny %s", u)
		}
	}
	// The role's other inline policies leave room for the role-wide
	// statement only.
	small := map[string]time.Time{"alice": t0}
	per := sessions.Render(small, true, time.Hour, t0, sessions.InlineLimit)
	roleWide := sessions.Render(small, false, time.Hour, t0, sessions.InlineLimit)
	p = sessions.Render(small, true, time.Hour, t0, sessions.Size(roleWide.Doc))
	if sessions.Size(per.Doc) <= sessions.Size(roleWide.Doc) || !p.Fallback || p.Doc != roleWide.Doc {
		t.Fatalf("tight budget: plan = %+v", p)
	}
	// Not even that fits.
	p = sessions.Render(small, true, time.Hour, t0, sessions.Size(roleWide.Doc)-1)
	if !p.NoRoom || p.Doc != "" {
		t.Fatalf("no room: plan = %+v", p)
	}
	if sessions.Size(" { \"a\" :\n 1 }\t") != 7 {
		t.Fatal("Size counts whitespace")
	}
}

func TestCutoff(t *testing.T) {
	if got := sessions.Cutoff(t0); !got.Equal(time.Date(2025, 6, 1, 12, 0, 1, 0, time.UTC)) {
		t.Fatalf("Cutoff(%s) = %s", t0, got)
	}
	whole := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	if !sessions.Cutoff(whole).Equal(whole) {
		t.Fatal("a whole second moved")
	}
}

type fixture struct {
	roles *fakeRoles
	store *fakeStore
	clk   *testclock.Clock
	obs   *fakeObserver
	tok   *tokens // shared: two writers' tokens never collide, as random ones do not
	rev   *sessions.Revoker
}

func newFixture(mode string) *fixture {
	clk := testclock.New(t0)
	f := &fixture{roles: newFakeRoles(), store: newFakeStore(clk.Now), clk: clk, obs: &fakeObserver{}, tok: &tokens{}}
	f.rev = f.revoker(mode)
	return f
}

func (f *fixture) revoker(mode string) *sessions.Revoker {
	return &sessions.Revoker{Roles: f.roles, Store: f.store, Mode: mode, RolePath: "/jit/", Now: f.clk.Now,
		NewToken: f.tok.New, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: f.obs}
}

func TestMembershipEndedModesAndPath(t *testing.T) {
	ctx := context.Background()
	f := newFixture(sessions.RevokeUser)
	si := f.roles.add("si", "/jit/", trustSI)
	plain := f.roles.add("plain", "/jit/", trustPlain)
	other := f.roles.add("other", "/", trustSI)
	res, err := f.rev.MembershipEnded(ctx, "alice", "g", t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(res.Revoked)); !slices.Equal(got, []string{plain.ARN, si.ARN}) {
		t.Fatalf("revoked = %v", res.Revoked)
	}
	if !slices.Equal(res.Skipped, []string{other.ARN}) || f.roles.policy("other") != "" {
		t.Fatalf("skipped = %v, other's policy = %q", res.Skipped, f.roles.policy("other"))
	}
	if !strings.Contains(f.roles.policy("si"), `"aws:SourceIdentity":"alice"`) {
		t.Fatalf("si role: %s", f.roles.policy("si"))
	}
	if strings.Contains(f.roles.policy("plain"), "SourceIdentity") || !sessions.Denies(f.roles.policy("plain"), "bob", t0) {
		t.Fatalf("plain role is not role-wide: %s", f.roles.policy("plain"))
	}
	if len(res.Writes) != 2 || res.Writes[0].RequestID == "" {
		t.Fatalf("writes = %+v", res.Writes)
	}
	if f.obs.revoked[sessions.ModeUser] != 1 || f.obs.revoked[sessions.ModeRole] != 1 || f.obs.skipped != 1 {
		t.Fatalf("observer = %+v", f.obs)
	}

	// role mode: role-wide even where source identity is required.
	f2 := newFixture(sessions.RevokeRole)
	f2.roles.add("si", "/jit/", trustSI)
	if _, err := f2.rev.MembershipEnded(ctx, "alice", "g", t0); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f2.roles.policy("si"), "SourceIdentity") {
		t.Fatalf("role mode wrote per-user: %s", f2.roles.policy("si"))
	}

	// off: nothing written, nothing stored.
	f3 := newFixture(sessions.RevokeOff)
	f3.roles.add("si", "/jit/", trustSI)
	res, err = f3.rev.MembershipEnded(ctx, "alice", "g", t0)
	if err != nil || len(res.Revoked)+len(res.Writes) != 0 || f3.roles.policy("si") != "" || len(f3.store.items) != 0 {
		t.Fatalf("off wrote: %+v %v", res, err)
	}
}

func TestNoAssumableRoleWritesNothing(t *testing.T) {
	f := newFixture(sessions.RevokeUser)
	res, err := f.rev.MembershipEnded(context.Background(), "alice", "g", t0)
	if err != nil || len(res.Revoked)+len(res.Skipped)+len(res.Writes) != 0 || f.roles.puts != 0 {
		t.Fatalf("res = %+v, err = %v, puts = %d", res, err, f.roles.puts)
	}
}

// Two writers interleaved: B adds and writes between A's read and A's
// write. A's PutRolePolicy lacks B's user; A's token check fails, it reads
// again and writes both. No statement is lost.
func TestTwoWritersLoseNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(sessions.RevokeUser)
	f.roles.add("si", "/jit/", trustSI)
	b := f.revoker(sessions.RevokeUser)
	var bErr error
	f.roles.beforePut = func() {
		_, bErr = b.MembershipEnded(ctx, "bob", "g", t0.Add(3*time.Second))
		// A's entry was recorded before its read, so B wrote both; A is
		// about to overwrite that with what it read: alice alone.
		if p := f.roles.policy("si"); !strings.Contains(p, `"bob"`) || !strings.Contains(p, `"alice"`) {
			t.Errorf("after B: %s", p)
		}
	}
	if _, err := f.rev.MembershipEnded(ctx, "alice", "g", t0); err != nil {
		t.Fatal(err)
	}
	if bErr != nil {
		t.Fatal(bErr)
	}
	p := f.roles.policy("si")
	if !sessions.Denies(p, "alice", t0) || !sessions.Denies(p, "bob", t0.Add(3*time.Second)) {
		t.Fatalf("a statement was lost: %s", p)
	}
	if f.roles.puts != 3 { // B once, A's stale write, A's rewrite
		t.Fatalf("puts = %d, want 3", f.roles.puts)
	}
	if st, _ := f.store.Get(ctx, acct+"role/jit/si"); st.Dirty {
		t.Fatal("item left dirty")
	}
}

// A writer that dies after recording its entry leaves the item dirty;
// Repair (the sweeper) writes the policy once the grace has passed.
func TestRepairFinishesADeadWriter(t *testing.T) {
	ctx := context.Background()
	f := newFixture(sessions.RevokeUser)
	r := f.roles.add("si", "/jit/", trustSI)
	if err := f.store.Add(ctx, r, "alice", t0, "dead-writer"); err != nil {
		t.Fatal(err)
	}
	if n, err := f.rev.Repair(ctx, 30*time.Second, 100, true); err != nil || n != 0 {
		t.Fatalf("repaired within the grace: %d %v", n, err)
	}
	f.clk.Advance(time.Minute)
	if n, err := f.rev.Repair(ctx, 30*time.Second, 100, false); err != nil || n != 1 {
		t.Fatalf("repair = %d %v, want 1 (a dirty item is repaired without prune)", n, err)
	}
	if !sessions.Denies(f.roles.policy("si"), "alice", t0) {
		t.Fatalf("repair did not write: %q", f.roles.policy("si"))
	}
	// Past MaxSessionDuration the statement is pruned and the policy goes,
	// on a sweep that prunes only.
	f.clk.Advance(time.Hour)
	if n, err := f.rev.Repair(ctx, 30*time.Second, 100, false); err != nil || n != 0 || f.roles.policy("si") == "" {
		t.Fatalf("repair without prune = %d %v, policy %q; want nothing pruned", n, err, f.roles.policy("si"))
	}
	if n, err := f.rev.Repair(ctx, 30*time.Second, 100, true); err != nil || n != 1 {
		t.Fatalf("prune repair = %d %v", n, err)
	}
	if f.roles.policy("si") != "" || len(f.store.items) != 0 {
		t.Fatalf("expired statement kept: %q, items %d", f.roles.policy("si"), len(f.store.items))
	}
}

func TestRoleDeletedBeforeWrite(t *testing.T) {
	ctx := context.Background()
	f := newFixture(sessions.RevokeUser)
	f.roles.add("si", "/jit/", trustSI)
	f.roles.beforePut = func() {
		f.roles.mu.Lock()
		delete(f.roles.roles, "si")
		f.roles.mu.Unlock()
	}
	res, err := f.rev.MembershipEnded(ctx, "alice", "g", t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Revoked) != 0 || len(res.Gone) != 1 || len(f.store.items) != 0 {
		t.Fatalf("res = %+v, items = %d", res, len(f.store.items))
	}
}

func TestNoRoomTouchesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(sessions.RevokeUser)
	f.roles.add("full", "/jit/", trustSI)
	f.roles.others["full"] = sessions.InlineLimit - 50
	res, err := f.rev.MembershipEnded(ctx, "alice", "g", t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.NoRoom) != 1 || len(res.Revoked) != 0 || f.roles.puts != 0 || f.obs.failed["no_room"] != 1 {
		t.Fatalf("res = %+v puts = %d obs = %+v", res, f.roles.puts, f.obs)
	}
	// reconcile sees the missing statement
	missing, err := f.rev.Check(ctx, false)
	if err != nil || len(missing) != 1 || missing[0].User != "alice" {
		t.Fatalf("check = %+v %v", missing, err)
	}
}

func TestCheckFindsAndRestoresAMissingStatement(t *testing.T) {
	ctx := context.Background()
	f := newFixture(sessions.RevokeUser)
	f.roles.add("si", "/jit/", trustSI)
	if _, err := f.rev.MembershipEnded(ctx, "alice", "g", t0); err != nil {
		t.Fatal(err)
	}
	if m, err := f.rev.Check(ctx, false); err != nil || len(m) != 0 {
		t.Fatalf("fresh policy reported: %+v %v", m, err)
	}
	_, _ = f.roles.DeletePolicy(ctx, "si") // someone removed it by hand
	m, err := f.rev.Check(ctx, true)
	if err != nil || len(m) != 1 || m[0].User != "alice" {
		t.Fatalf("check = %+v %v", m, err)
	}
	if !sessions.Denies(f.roles.policy("si"), "alice", t0) {
		t.Fatal("--enforce did not restore the statement")
	}
	// Past MaxSessionDuration nothing is missing any more.
	f.clk.Advance(2 * time.Hour)
	_, _ = f.roles.DeletePolicy(ctx, "si")
	if m, err := f.rev.Check(ctx, false); err != nil || len(m) != 0 {
		t.Fatalf("expired revocation reported: %+v %v", m, err)
	}
}

// IAM refusing the document for its size (LimitExceeded) is no room, not a
// failure to retry forever; any other error is returned and leaves the item
// dirty for the sweeper.
func TestPutErrors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(sessions.RevokeUser)
	f.roles.add("si", "/jit/", trustSI)
	f.roles.putErr = fmt.Errorf("put: %w", sessions.ErrNoRoom)
	res, err := f.rev.MembershipEnded(ctx, "alice", "g", t0)
	if err != nil || len(res.NoRoom) != 1 || len(res.Writes) != 0 || f.obs.failed["no_room"] != 1 {
		t.Fatalf("no room from IAM: %+v %v", res, err)
	}
	f.roles.putErr = errors.New("throttled")
	if _, err := f.rev.MembershipEnded(ctx, "bob", "g", t0); err == nil {
		t.Fatal("a failed put was not returned")
	}
	if st, _ := f.store.Get(ctx, acct+"role/jit/si"); !st.Dirty {
		t.Fatal("a failed put left the item clean")
	}
}

// Settle moves the cutoff past the removal: a session the user started
// while IAM was still applying the removal is denied too; one started after
// the settle is not.
func TestSettleDeniesSessionsStartedWhileIAMApplies(t *testing.T) {
	ctx := context.Background()
	f := newFixture(sessions.RevokeUser)
	f.roles.add("si", "/jit/", trustSI)
	f.rev.Settle = 5 * time.Second
	if _, err := f.rev.MembershipEnded(ctx, "alice", "g", t0); err != nil {
		t.Fatal(err)
	}
	p := f.roles.policy("si")
	if !sessions.Denies(p, "alice", t0.Add(4*time.Second)) {
		t.Fatalf("a session 4 s after the removal is not denied: %s", p)
	}
	if sessions.Denies(p, "alice", t0.Add(6*time.Second)) {
		t.Fatalf("a session 6 s after the removal is denied: %s", p)
	}
}

// One table holds every account's role items; each account's Revoker
// repairs and checks its own only, through its own chain.
func TestRevokerTakesOnlyItsAccountsItems(t *testing.T) {
	ctx := context.Background()
	f := newFixture(sessions.RevokeUser)
	r := f.roles.add("si", "/jit/", trustSI) // a role of 123456789012
	if err := f.store.Add(ctx, r, "alice", t0, "dead-writer"); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Minute)
	other := f.revoker(sessions.RevokeUser)
	other.Account = "210987654321"
	if n, err := other.Repair(ctx, 30*time.Second, 100, true); err != nil || n != 0 || f.roles.policy("si") != "" {
		t.Fatalf("another account's revoker repaired this account's role: %d %v %q", n, err, f.roles.policy("si"))
	}
	if m, err := other.Check(ctx, true); err != nil || len(m) != 0 {
		t.Fatalf("another account's revoker checked this account's role: %+v %v", m, err)
	}
	f.rev.Account = "123456789012"
	if n, err := f.rev.Repair(ctx, 30*time.Second, 100, true); err != nil || n != 1 || !sessions.Denies(f.roles.policy("si"), "alice", t0) {
		t.Fatalf("its own account's revoker: repaired %d %v, policy %q", n, err, f.roles.policy("si"))
	}
}

// withPeer is a home fixture (account 123456789012) and the fixture of a
// second managed account (210987654321) sharing its table, each the
// other's peer.
func withPeer() (home, other *fixture) {
	home = newFixture(sessions.RevokeUser)
	home.rev.Account = "123456789012"
	other = &fixture{roles: newFakeRoles(), store: home.store, clk: home.clk, obs: home.obs, tok: home.tok}
	other.roles.account = "210987654321"
	other.rev = other.revoker(sessions.RevokeUser)
	other.rev.Account = "210987654321"
	home.rev.Peers = map[string]*sessions.Revoker{"210987654321": other.rev}
	other.rev.Peers = map[string]*sessions.Revoker{"123456789012": home.rev}
	return home, other
}

// A group may let its members assume a role in another account iamjit
// manages: that role's older sessions end with the membership, written
// through that account's Revoker (its Roles, its chain), never through the
// home one; the role's item is the other account's to repair and check.
// A role in an account iamjit does not manage is reported, not written.
func TestMembershipEndedReachesRolesOfOtherAccounts(t *testing.T) {
	ctx := context.Background()
	f, other := withPeer()
	home := f.roles.add("home-ro", "/jit/", trustSI)
	far := other.roles.add("far-ro", "/jit/", trustPlain)
	other.roles.assumable = nil // the home group's policy names it, not the other account's
	outside := other.roles.add("outside", "/", trustPlain)
	other.roles.assumable = nil
	unmanaged := "arn:aws:iam::333333333333:role/jit/elsewhere"
	f.roles.foreign = []string{far.ARN, outside.ARN, unmanaged}

	res, err := f.rev.MembershipEnded(ctx, "alice", "g", t0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Revoked, []string{home.ARN, far.ARN}) {
		t.Fatalf("revoked = %v, want the home role and the other account's", res.Revoked)
	}
	if !slices.Equal(res.Skipped, []string{outside.ARN, unmanaged}) || f.obs.skipped != 2 {
		t.Fatalf("skipped = %v (observer %d), want the role outside the path and the unmanaged account's", res.Skipped, f.obs.skipped)
	}
	if !sessions.Denies(other.roles.policy("far-ro"), "bob", t0) || f.roles.policy("far-ro") != "" {
		t.Fatalf("far-ro written through the wrong account: other %q, home %q", other.roles.policy("far-ro"), f.roles.policy("far-ro"))
	}
	if other.roles.policy("home-ro") != "" || other.roles.policy("outside") != "" {
		t.Fatal("the other account's Revoker wrote a role it must not")
	}

	// The other account's Check owns the far role's item: it finds the
	// statement gone and restores it; the home Check does not see it.
	other.roles.policies = map[string]string{}
	if m, err := f.rev.Check(ctx, false); err != nil || len(m) != 0 {
		t.Fatalf("home check: %v %v", m, err)
	}
	m, err := other.rev.Check(ctx, true)
	if err != nil || len(m) != 1 || m[0].RoleARN != far.ARN || !m[0].Restored || !sessions.Denies(other.roles.policy("far-ro"), "alice", t0) {
		t.Fatalf("other check: %+v %v", m, err)
	}
}

// An account whose roles cannot be listed does not keep the others'
// sessions from ending; where the group's policy names that account, its
// error leaves the membership to be ended again, and where no policy names
// it, it is never asked: a member account that is down holds up only the
// memberships that reach into it.
func TestAnAccountThatCannotBeListedDoesNotStopTheOthers(t *testing.T) {
	ctx := context.Background()
	for _, named := range []bool{true, false} {
		f, other := withPeer()
		home := f.roles.add("home-ro", "/jit/", trustSI)
		other.roles.listErr = errors.New("throttled")
		if named {
			f.roles.foreign = []string{"arn:aws:iam::210987654321:role/jit/far"}
		}

		res, err := f.rev.MembershipEnded(ctx, "alice", "g", t0)
		if named && (err == nil || !strings.Contains(err.Error(), "210987654321")) {
			t.Fatalf("err = %v, want the other account's listing error", err)
		}
		if !named && (err != nil || other.roles.lists != 0) {
			t.Fatalf("err = %v, %d listings of the other account: a policy that names only home roles must not ask it", err, other.roles.lists)
		}
		if !slices.Equal(res.Revoked, []string{home.ARN}) || !sessions.Denies(f.roles.policy("home-ro"), "alice", t0) {
			t.Fatalf("named=%v: revoked = %v: the home role must still be written", named, res.Revoked)
		}
	}
}

// A session of a role the group allows can assume the roles that role's own
// policies allow and that trust it, and so on: those sessions came from the
// membership too, and end with it, in whichever managed account they are.
// The chain stops at roles outside the path (reported) and at roles that do
// not trust the one before; a cycle ends.
func TestMembershipEndedFollowsRoleChains(t *testing.T) {
	ctx := context.Background()
	f, other := withPeer()
	trusting := func(arn string) string {
		return `{"Statement":[{"Effect":"Allow","Principal":{"AWS":["` + arn + `"]},"Action":"sts:AssumeRole"}]}`
	}
	a := f.roles.add("a", "/jit/", trustPlain)
	b := f.roles.add("b", "/jit/", trustSI) // trusts the account: a's sessions too
	c := f.roles.add("c", "/", trustPlain)
	d := f.roles.add("d", "/jit/", trusting("arn:aws:iam::123456789012:role/jit/someone-else"))
	e := other.roles.add("e", "/jit/", trusting(b.ARN))
	f.roles.assumable, other.roles.assumable = []string{"a"}, nil // the group allows a only
	unmanaged := "arn:aws:iam::333333333333:role/jit/x"
	f.roles.chains = map[string][]string{
		"a": {b.ARN, c.ARN, d.ARN, a.ARN},
		"b": {e.ARN, unmanaged, a.ARN},
	}

	res, err := f.rev.MembershipEnded(ctx, "alice", "g", t0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Revoked, []string{a.ARN, b.ARN, e.ARN}) {
		t.Fatalf("revoked = %v, want a, b (a may assume it) and the other account's e (b may)", res.Revoked)
	}
	if !slices.Equal(res.Skipped, []string{c.ARN, unmanaged}) {
		t.Fatalf("skipped = %v, want c (outside the path) and the unmanaged account's role", res.Skipped)
	}
	if f.roles.policy("d") != "" {
		t.Fatal("d trusts neither a nor its account, yet was written")
	}
	if !sessions.Denies(other.roles.policy("e"), "alice", t0) || !strings.Contains(f.roles.policy("b"), `"aws:SourceIdentity":"alice"`) {
		t.Fatalf("chained roles not revoked: e %q, b %q", other.roles.policy("e"), f.roles.policy("b"))
	}
}

func TestTrusts(t *testing.T) {
	const from = "arn:aws:iam::123456789012:role/jit/a"
	doc := func(principal string) string {
		return `{"Statement":[{"Effect":"Allow","Principal":` + principal + `,"Action":"sts:AssumeRole"}]}`
	}
	for trust, want := range map[string]bool{
		doc(`"*"`):                    true,
		doc(`{"AWS":"*"}`):            true,
		doc(`{"AWS":"123456789012"}`): true,
		doc(`{"AWS":"arn:aws:iam::123456789012:root"}`):                                           true,
		doc(`{"AWS":["x","` + from + `"]}`):                                                       true,
		doc(`{"AWS":"arn:aws:iam::210987654321:root"}`):                                           false,
		doc(`{"AWS":"arn:aws:iam::123456789012:role/b"}`):                                         false,
		doc(`{"Service":"ec2.amazonaws.com"}`):                                                    false,
		`{"Statement":[{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole"}]}`:             false,
		`{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"sts:AssumeRole"}]}`: true,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRoleWithSAML"}]}`:    false,
		`not json`: true,
	} {
		if got := sessions.Trusts(trust, from); got != want {
			t.Errorf("Trusts(%s) = %v, want %v", trust, got, want)
		}
	}
}

func TestMayName(t *testing.T) {
	allow := func(res string) string {
		return `{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":` + res + `}]}`
	}
	const other = "210987654321"
	for doc, want := range map[string]bool{
		allow(`"arn:aws:iam::123456789012:role/jit/a"`):                                   false,
		allow(`["arn:aws:iam::123456789012:role/a","arn:aws:iam::` + other + `:role/b"]`): true,
		allow(`"*"`):                                               true,
		allow(`"arn:aws:iam::*:role/jit/*"`):                       true,
		allow(`"arn:aws:iam::21098765432?:role/jit/x"`):            true,
		allow(`"arn:aws:iam::${aws:PrincipalAccount}:role/jit/x"`): true,
		`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","NotResource":"arn:aws:iam::123456789012:role/x"}]}`: true,
		`{"Statement":[{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"}]}`:                                    false,
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`:                                             false,
	} {
		if got := sessions.MayName([]string{doc}, other); got != want {
			t.Errorf("MayName(%s, %s) = %v, want %v", doc, other, got, want)
		}
	}
	if !sessions.MayName([]string{allow(`"arn:aws:iam::123456789012:role/a"`)}, "") {
		t.Error("an unknown account must always be asked")
	}
}
