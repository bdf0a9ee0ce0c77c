package sessions_test

// Integration against a real moto with the real SDK: grants.Service on the
// real table and IAM adapters, sessions on its own, and what iamjit wrote
// read back with GetRolePolicy and evaluated by the IAM simulator (moto
// stores but never evaluates aws:TokenIssueTime or aws:SourceIdentity).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	gdynamo "github.com/iamjit/iamjit/grants/dynamo"
	"github.com/iamjit/iamjit/grants/iamgroups"
	"github.com/iamjit/iamjit/internal/cli"
	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/internal/testclock"
	"github.com/iamjit/iamjit/sessions"
	sdynamo "github.com/iamjit/iamjit/sessions/dynamo"
	"github.com/iamjit/iamjit/sessions/iamroles"
)

const (
	// IAM users named by their email: the username identity strategy.
	alice = "alice@example.com"
	bob   = "bob@example.com"
	group = "sym-ops"
	table = "grants"
)

type motoEnv struct {
	srv   *motoserver.Server
	acct  string // the moto account this env's clients act in
	iam   *iam.Client
	ddb   *dynamodb.Client
	clk   *testclock.Clock
	store *gdynamo.Store
	rev   *sessions.Revoker
	roles *iamroles.Roles
	svc   *grants.Service
	obs   *fakeObserver
}

// newMotoEnv is an env in an account of its own on the package's shared
// moto: accounts share nothing in moto (IAM, DynamoDB), so tests that only
// need a fresh account need not start a server each.
func newMotoEnv(t *testing.T, mode string) *motoEnv {
	t.Helper()
	srv, cfg, acct := shared.Account(t)
	return newMotoEnvOn(t, mode, srv, acct, cfg)
}

// newMotoEnvOwnServer is an env on a moto of its own, in its default
// account: for a test that turns IAM access control on, which is
// server-wide.
func newMotoEnvOwnServer(t *testing.T, mode string) *motoEnv {
	t.Helper()
	srv := motoserver.Start(t)
	return newMotoEnvOn(t, mode, srv, motoserver.AccountID, srv.AWSConfig(t))
}

func newMotoEnvOn(t *testing.T, mode string, srv *motoserver.Server, acct string, cfg aws.Config) *motoEnv {
	t.Helper()
	e := &motoEnv{srv: srv, acct: acct, iam: iam.NewFromConfig(cfg), ddb: dynamodb.NewFromConfig(cfg), clk: testclock.New(time.Now().UTC().Truncate(time.Millisecond)), obs: &fakeObserver{}}
	ctx := context.Background()
	if _, err := e.ddb.CreateTable(ctx, gdynamo.TableInput(table)); err != nil {
		t.Fatal(err)
	}
	e.must(t)(e.iam.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(group), Path: aws.String("/sym/")}))
	for _, u := range []string{alice, bob} {
		e.must(t)(e.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(u)}))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var n atomic.Int64
	tok := func() string { return "tok-" + strconv.FormatInt(n.Add(1), 10) }
	e.store = gdynamo.New(e.ddb, table, 90*24*time.Hour, e.clk.Now, "")
	e.roles = iamroles.New(e.iam, 5*time.Minute, e.clk.Now, log)
	e.rev = &sessions.Revoker{Roles: e.roles, Store: sdynamo.New(e.ddb, table, e.clk.Now), Mode: mode, RolePath: "/jit/",
		Now: e.clk.Now, NewToken: tok, Log: log, Observer: e.obs}
	groups := iamgroups.New(e.iam, 5*time.Minute, e.clk.Now, log)
	id, err := grants.NewIdentity(groups, []string{"username"}, 5*time.Minute, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := grants.NewAccounts(&grants.Account{IAM: groups, Groups: groups, Members: groups, Identity: id,
		Sessions: cli.SessionsHook{Revoker: e.rev}})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = &grants.Service{Store: e.store, Accounts: accts, Now: e.clk.Now, Log: log, NewToken: tok,
		Policy: grants.Policy{GroupPath: "/sym/", MaxDuration: 12 * time.Hour, DurationUnit: time.Second,
			Sources: []string{"sym"}, MaxClockSkew: 5 * time.Minute}}
	return e
}

func (e *motoEnv) must(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// role creates a role; si: its trust requires sts:SourceIdentity =
// ${aws:username}.
func (e *motoEnv) role(t *testing.T, path, name string, si bool, maxSession int32) string {
	t.Helper()
	trust := trustPlain
	if si {
		trust = trustSI
	}
	out, err := e.iam.CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: &name, Path: &path,
		AssumeRolePolicyDocument: &trust, MaxSessionDuration: aws.Int32(maxSession)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Role.Arn)
}

func (e *motoEnv) allowAssume(t *testing.T, name string, resources ...string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{{
		"Effect": "Allow", "Action": []string{"sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"}, "Resource": resources}}})
	e.must(t)(e.iam.PutGroupPolicy(context.Background(), &iam.PutGroupPolicyInput{GroupName: aws.String(group),
		PolicyName: aws.String(name), PolicyDocument: aws.String(string(b))}))
}

// policy reads iamjit's policy back from IAM ("" when there is none).
func (e *motoEnv) policy(t *testing.T, role string) string {
	t.Helper()
	list, err := e.iam.ListRolePolicies(context.Background(), &iam.ListRolePoliciesInput{RoleName: &role})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(list.PolicyNames, sessions.PolicyName) {
		return ""
	}
	out, err := e.iam.GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{RoleName: &role, PolicyName: aws.String(sessions.PolicyName)})
	if err != nil {
		t.Fatal(err)
	}
	doc := aws.ToString(out.PolicyDocument)
	if !strings.HasPrefix(doc, "{") {
		doc, _ = url.PathUnescape(doc)
	}
	return doc
}

func (e *motoEnv) inlinePolicies(t *testing.T, role string) []string {
	t.Helper()
	list, err := e.iam.ListRolePolicies(context.Background(), &iam.ListRolePoliciesInput{RoleName: &role})
	if err != nil {
		t.Fatal(err)
	}
	return list.PolicyNames
}

func req(typ, symID, run, user string, at time.Time) events.Request {
	return events.Request{
		SymEventID: symID, Source: "sym", Type: typ, Template: "sym:template:approval:1.0.0",
		RunSRN: "acme:run:aws:1.0.0:" + run, TargetID: "t", TargetType: "aws_iam_group",
		Requester: user, Approver: "boss@example.com", Group: group, Reason: "r",
		Duration: 3600, HasDur: typ == events.TypeEscalate, Timestamp: at,
	}
}

func (e *motoEnv) handle(t *testing.T, r events.Request) events.Result {
	t.Helper()
	out, err := e.svc.Handle(context.Background(), r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Type, r.SymEventID, err)
	}
	if len(out.Results) != 1 {
		t.Fatalf("%s %s: %d results", r.Type, r.SymEventID, len(out.Results))
	}
	return out.Results[0]
}

// session is a request made with credentials of a session of role.
func session(name, role, user string, issued time.Time, policies ...string) simCase {
	return simCase{Name: name, Policies: policies, Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket/key",
		Principal: "arn:aws:sts::" + motoserver.AccountID + ":assumed-role/" + role + "/" + user,
		Context:   map[string]string{"aws:SourceIdentity": user, "aws:TokenIssueTime": issued.UTC().Format(time.RFC3339)}}
}

// The role's own permissions: what a session could do before revocation.
const rolePermissions = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`

// Escalate, then deescalate: both /jit/ roles the group may assume carry
// the statement (per user where the trust requires source identity,
// role-wide where not), the role elsewhere is untouched and reported, and
// the simulator confirms what the read-back documents deny.
func TestDeescalateEndsSessionsOnJITRolesOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newMotoEnv(t, sessions.RevokeUser)
	ro := e.role(t, "/jit/", "jit-ro", true, 3600)
	plain := e.role(t, "/jit/team/", "jit-plain", false, 3600)
	other := e.role(t, "/", "elsewhere", true, 3600)
	e.allowAssume(t, "assume", ro, plain, other)

	granted := e.clk.Now()
	e.handle(t, req(events.TypeEscalate, "esc-1", "run-1", alice, granted))
	if p := e.policy(t, "jit-ro") + e.policy(t, "jit-plain"); p != "" {
		t.Fatalf("an escalate wrote a revocation: %s", p)
	}
	e.clk.Advance(10 * time.Minute)
	revokedAt := e.clk.Now()
	res := e.handle(t, req(events.TypeDeescalate, "de-1", "run-1", alice, revokedAt))

	if got := slices.Sorted(slices.Values(res.SessionsRevoked)); !slices.Equal(got, slices.Sorted(slices.Values([]string{ro, plain}))) {
		t.Fatalf("sessions_revoked = %v, want %s and %s", res.SessionsRevoked, ro, plain)
	}
	if !slices.Equal(res.SessionsSkipped, []string{other}) {
		t.Fatalf("sessions_skipped = %v, want [%s]", res.SessionsSkipped, other)
	}
	if names := e.inlinePolicies(t, "elsewhere"); len(names) != 0 {
		t.Fatalf("the role outside the path was touched: %v", names)
	}
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"sessions_revoked":[`) {
		t.Fatalf("Access Revoked JSON lacks sessions_revoked: %s", b)
	}
	g, err := e.store.GetGrant(ctx, "acme:run:aws:1.0.0:run-1/t")
	if err != nil {
		t.Fatal(err)
	}
	puts := 0
	for _, h := range g.History {
		if h.Action == "session_revoke" && h.IAMRequestID != "" && strings.HasPrefix(h.Note, "PutRolePolicy ") {
			puts++
		}
	}
	if puts != 2 {
		t.Fatalf("history has %d PutRolePolicy request ids, want 2: %+v", puts, g.History)
	}

	roDoc, plainDoc := e.policy(t, "jit-ro"), e.policy(t, "jit-plain")
	before, after := revokedAt.Add(-5*time.Minute), revokedAt.Add(5*time.Minute)
	got := simulate(t, []simCase{
		session("alice before, per-user role", "jit-ro", alice, before, rolePermissions, roDoc),
		session("alice after, per-user role", "jit-ro", alice, after, rolePermissions, roDoc),
		session("bob before, per-user role", "jit-ro", bob, before, rolePermissions, roDoc),
		session("alice before, role-wide role", "jit-plain", alice, before, rolePermissions, plainDoc),
		session("bob before, role-wide role", "jit-plain", bob, before, rolePermissions, plainDoc),
		session("bob after, role-wide role", "jit-plain", bob, after, rolePermissions, plainDoc),
		// the same second as the revocation is before it
		session("alice same second", "jit-ro", alice, revokedAt.Truncate(time.Second), rolePermissions, roDoc),
	})
	want := map[string]string{
		"alice before, per-user role":  "ExplicitlyDenied",
		"alice after, per-user role":   "Allowed",
		"bob before, per-user role":    "Allowed",
		"alice before, role-wide role": "ExplicitlyDenied",
		"bob before, role-wide role":   "ExplicitlyDenied",
		"bob after, role-wide role":    "Allowed",
		"alice same second":            "ExplicitlyDenied",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: simulator says %s, want %s", k, got[k], v)
		}
	}
	if e.obs.revoked[sessions.ModeUser] != 1 || e.obs.revoked[sessions.ModeRole] != 1 || e.obs.skipped != 1 {
		t.Errorf("observer = %+v", e.obs)
	}
	t.Logf("per-user document (%d chars): %s", sessions.Size(roDoc), roDoc)

	// reconcile: nothing missing; a deleted statement is reported and
	// --enforce restores it.
	if m, err := e.rev.Check(ctx, false); err != nil || len(m) != 0 {
		t.Fatalf("check: %+v %v", m, err)
	}
	e.must(t)(e.iam.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("jit-ro"), PolicyName: aws.String(sessions.PolicyName)}))
	m, err := e.rev.Check(ctx, true)
	if err != nil || len(m) != 1 || m[0].RoleARN != ro || m[0].User != alice || !m[0].Restored {
		t.Fatalf("check after delete: %+v %v", m, err)
	}
	if !sessions.Denies(e.policy(t, "jit-ro"), alice, revokedAt) {
		t.Fatal("--enforce did not restore the statement")
	}
}

// With two overlapping grants nothing is written until the last ends.
func TestOverlappingGrantsWriteNothingUntilTheLastEnds(t *testing.T) {
	t.Parallel()
	e := newMotoEnv(t, sessions.RevokeUser)
	ro := e.role(t, "/jit/", "jit-ro", true, 3600)
	e.allowAssume(t, "assume", ro)
	now := e.clk.Now()
	e.handle(t, req(events.TypeEscalate, "esc-1", "run-1", alice, now))
	if r := e.handle(t, req(events.TypeEscalate, "esc-2", "run-2", alice, now)); r.DetailType != events.AccessGranted {
		t.Fatalf("second escalate: %+v", r)
	}
	e.clk.Advance(time.Minute)
	if res := e.handle(t, req(events.TypeDeescalate, "de-1", "run-1", alice, e.clk.Now())); len(res.SessionsRevoked) != 0 {
		t.Fatalf("first of two grants revoked sessions: %v", res.SessionsRevoked)
	}
	if names := e.inlinePolicies(t, "jit-ro"); len(names) != 0 {
		t.Fatalf("written while a grant still keeps alice in: %v", names)
	}
	e.clk.Advance(time.Minute)
	last := e.clk.Now()
	if res := e.handle(t, req(events.TypeDeescalate, "de-2", "run-2", alice, last)); !slices.Equal(res.SessionsRevoked, []string{ro}) {
		t.Fatalf("last grant: sessions_revoked = %v; %+v; obs %+v", res.SessionsRevoked, res, e.obs)
	}
	if !sessions.Denies(e.policy(t, "jit-ro"), alice, last) {
		t.Fatalf("policy after the last grant: %s", e.policy(t, "jit-ro"))
	}
}

// Revocations on one role, an hour's MaxSessionDuration, the clock moving
// 90 s each: the policy holds only the statements younger than an hour
// (3600/90 + 1 = 41 of them) and stays under IAM's limit; then at 30 s
// each the users still live would not fit, and one role-wide statement
// stands in for them. Per-user statements cost about 212 characters here,
// so 48 fit under sessions.InlineLimit and the 49th falls back: 60 per step
// prunes 19 at 90 s and puts 60 (plus the 90 s users not yet aged out)
// past the limit at 30 s. The test checks both premises itself.
func TestManyRevocationsStayBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newMotoEnv(t, sessions.RevokeUser)
	ro := e.role(t, "/jit/", "jit-ro", true, 3600)
	e.allowAssume(t, "assume", ro)
	const perStep = 60
	var all []time.Time      // every revocation so far, both steps
	var perStatement float64 // characters per per-user statement, measured at 90 s
	for _, step := range []time.Duration{90 * time.Second, 30 * time.Second} {
		var ats []time.Time
		for i := range perStep {
			e.clk.Advance(step)
			ats = append(ats, e.clk.Now())
			if _, err := e.rev.MembershipEnded(ctx, fmt.Sprintf("user-%s-%03d", step, i), group, e.clk.Now()); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, ats...)
		doc := e.policy(t, "jit-ro")
		if sessions.Size(doc) > sessions.InlineLimit {
			t.Fatalf("policy is %d chars, over %d", sessions.Size(doc), sessions.InlineLimit)
		}
		var raw struct {
			Statement []struct {
				Condition map[string]map[string]any
			}
		}
		if err := json.Unmarshal([]byte(doc), &raw); err != nil {
			t.Fatal(err)
		}
		now := e.clk.Now()
		users := 0
		for _, st := range raw.Statement {
			at, err := time.Parse(time.RFC3339, fmt.Sprint(st.Condition["DateLessThan"]["aws:TokenIssueTime"]))
			if err != nil || !at.Add(time.Hour).After(now) {
				t.Fatalf("a statement older than MaxSessionDuration was kept: %v (%v)", st.Condition, err)
			}
			switch si := st.Condition["StringEquals"]["aws:SourceIdentity"].(type) {
			case string:
				users++
			case []any:
				users += len(si)
			}
		}
		isLive := func(at time.Time) bool { return sessions.Cutoff(at).Add(time.Hour).After(now) }
		live, liveThisStep := 0, 0
		for _, at := range all {
			if isLive(at) {
				live++
			}
		}
		for _, at := range ats {
			if isLive(at) {
				liveThisStep++
			}
		}
		item, err := sdynamo.New(e.ddb, table, e.clk.Now).Get(ctx, ro)
		if err != nil {
			t.Fatal(err)
		}
		if step == 90*time.Second {
			if live >= len(all) {
				t.Fatalf("premise: all %d revocations are younger than an hour, nothing to prune; make more", len(all))
			}
			if users != live || len(raw.Statement) != live || len(item.Users) != live {
				t.Fatalf("90s: %d users in %d statements, %d in the item; %d revocations are younger than an hour", users, len(raw.Statement), len(item.Users), live)
			}
			perStatement = float64(sessions.Size(doc)) / float64(users)
		} else {
			// This step's live users alone would not fit per user, at the
			// size a statement measured at 90 s (names two characters
			// longer than these: the margin below is larger than that).
			if need := float64(liveThisStep) * (perStatement - 2); need <= sessions.InlineLimit {
				t.Fatalf("premise: per-user statements for %d live users take about %.0f chars, which fits in %d; make more", liveThisStep, need, sessions.InlineLimit)
			}
			if len(raw.Statement) != 1 || users != 0 || !sessions.Denies(doc, "anyone", ats[len(ats)-1]) {
				t.Fatalf("30s: want one role-wide statement, got %s", doc)
			}
			// The item keeps every live entry, the 90 s users not yet aged
			// out too; the older ones are pruned.
			if len(item.Users) != live {
				t.Fatalf("30s: item keeps %d entries, want %d", len(item.Users), live)
			}
		}
		t.Logf("every %s: %d revocations, %d of all younger than MaxSessionDuration, policy %d chars in %d statements (limit %d)",
			step, len(ats), live, sessions.Size(doc), len(raw.Statement), sessions.InlineLimit)
	}
}

// Bad input, each with its documented outcome; nothing outside the path is
// touched.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("sts:AssumeRole on * and role/*", func(t *testing.T) {
		t.Parallel()
		e := newMotoEnv(t, sessions.RevokeUser)
		a := e.role(t, "/jit/", "a", true, 3600)
		b := e.role(t, "/jit/deep/", "b", false, 3600)
		x := e.role(t, "/", "x", false, 3600)
		y := e.role(t, "/sym/", "y", false, 3600)
		for _, res := range [][]string{{"*"}, {"arn:aws:iam::" + e.acct + ":role/*"}} {
			e.allowAssume(t, "assume", res...)
			e.clk.Advance(10 * time.Minute) // past the 5-minute cache
			r, err := e.rev.MembershipEnded(ctx, "alice", group, e.clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(slices.Values(r.Revoked)); !slices.Equal(got, slices.Sorted(slices.Values([]string{a, b}))) {
				t.Fatalf("%v: revoked %v", res, r.Revoked)
			}
			if got := slices.Sorted(slices.Values(r.Skipped)); !slices.Equal(got, slices.Sorted(slices.Values([]string{x, y}))) {
				t.Fatalf("%v: skipped %v", res, r.Skipped)
			}
			for _, n := range []string{"x", "y"} {
				if names := e.inlinePolicies(t, n); len(names) != 0 {
					t.Fatalf("%s outside the path touched: %v", n, names)
				}
			}
		}
	})

	t.Run("near the inline limit: role-wide fallback", func(t *testing.T) {
		t.Parallel()
		e := newMotoEnv(t, sessions.RevokeUser)
		full := e.role(t, "/jit/", "full", true, 3600)
		e.allowAssume(t, "assume", full)
		// Another inline policy leaves room for the role-wide statement only.
		other := bigPolicy(sessions.InlineLimit - 200)
		e.must(t)(e.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("full"), PolicyName: aws.String("team"), PolicyDocument: &other}))
		for _, u := range []string{"alice", "bob"} {
			e.clk.Advance(2 * time.Second)
			if _, err := e.rev.MembershipEnded(ctx, u, group, e.clk.Now()); err != nil {
				t.Fatal(err)
			}
		}
		doc := e.policy(t, "full")
		if strings.Contains(doc, "SourceIdentity") || !sessions.Denies(doc, "alice", e.clk.Now().Add(-2*time.Second)) || !sessions.Denies(doc, "bob", e.clk.Now()) {
			t.Fatalf("want the role-wide fallback, got %s", doc)
		}
	})

	t.Run("no room even for the role-wide statement: report, count, never touch the other policy", func(t *testing.T) {
		t.Parallel()
		e2 := newMotoEnv(t, sessions.RevokeUser)
		stuffed := e2.role(t, "/jit/", "stuffed", true, 3600)
		e2.allowAssume(t, "assume", stuffed)
		other := bigPolicy(sessions.InlineLimit - 40)
		e2.must(t)(e2.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("stuffed"), PolicyName: aws.String("team"), PolicyDocument: &other}))
		r, err := e2.rev.MembershipEnded(ctx, "alice", group, e2.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.NoRoom, []string{stuffed}) || len(r.Revoked) != 0 || e2.obs.failed["no_room"] != 1 {
			t.Fatalf("no room: %+v, observer %+v", r, e2.obs)
		}
		if names := e2.inlinePolicies(t, "stuffed"); !slices.Equal(names, []string{"team"}) {
			t.Fatalf("policies = %v, want only team", names)
		}
		out, err := e2.iam.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("stuffed"), PolicyName: aws.String("team")})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := url.PathUnescape(aws.ToString(out.PolicyDocument)); sessions.Size(got) != sessions.Size(other) {
			t.Fatal("the other policy changed")
		}
	})

	t.Run("role deleted between lookup and write", func(t *testing.T) {
		t.Parallel()
		e := newMotoEnv(t, sessions.RevokeUser)
		gone := e.role(t, "/jit/", "gone", true, 3600)
		e.allowAssume(t, "assume", gone)
		docs, err := e.roles.GroupPolicies(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		all, err := e.roles.AllRoles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if roles, err := sessions.FindRoles(docs, all); err != nil || len(roles) != 1 {
			t.Fatalf("lookup: %v %v", roles, err)
		}
		e.must(t)(e.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("gone")}))
		r, err := e.rev.MembershipEnded(ctx, "alice", group, e.clk.Now()) // the lookup is cached
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Gone, []string{gone}) || len(r.Revoked) != 0 {
			t.Fatalf("deleted role: %+v", r)
		}
		if st, _ := sdynamo.New(e.ddb, table, e.clk.Now).Get(ctx, gone); st.Token != "" {
			t.Fatalf("the deleted role's item was kept: %+v", st)
		}
	})

	t.Run("a group with no assumable role", func(t *testing.T) {
		t.Parallel()
		e := newMotoEnv(t, sessions.RevokeUser)
		e.role(t, "/jit/", "unrelated", true, 3600)
		e.must(t)(e.iam.PutGroupPolicy(ctx, &iam.PutGroupPolicyInput{GroupName: aws.String(group), PolicyName: aws.String("s3"),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`)}))
		r, err := e.rev.MembershipEnded(ctx, "alice", group, e.clk.Now())
		if err != nil || len(r.Revoked)+len(r.Skipped)+len(r.Writes) != 0 {
			t.Fatalf("res = %+v, %v", r, err)
		}
		if names := e.inlinePolicies(t, "unrelated"); len(names) != 0 {
			t.Fatalf("written: %v", names)
		}
	})

	t.Run("attached managed policy", func(t *testing.T) {
		t.Parallel()
		e := newMotoEnv(t, sessions.RevokeUser)
		m := e.role(t, "/jit/", "managed", true, 3600)
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + m + `"}]}`
		p, err := e.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("assume-managed"), PolicyDocument: &doc})
		if err != nil {
			t.Fatal(err)
		}
		e.must(t)(e.iam.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String(group), PolicyArn: p.Policy.Arn}))
		r, err := e.rev.MembershipEnded(ctx, "alice", group, e.clk.Now())
		if err != nil || !slices.Equal(r.Revoked, []string{m}) {
			t.Fatalf("managed policy: %+v %v", r, err)
		}
	})

	t.Run("a role the group allows may assume others: their sessions end too", func(t *testing.T) {
		t.Parallel()
		e := newMotoEnvOwnServer(t, sessions.RevokeUser) // it turns access control on
		first := e.role(t, "/jit/", "first", true, 3600)
		inline := e.role(t, "/jit/", "by-inline", true, 3600)
		managed := e.role(t, "/jit/", "by-managed", false, 3600)
		e.role(t, "/jit/", "unreached", true, 3600)
		e.allowAssume(t, "assume-first", first)
		assume := func(arn string) *string {
			return aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + arn + `"}]}`)
		}
		e.must(t)(e.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("first"), PolicyName: aws.String("chain"), PolicyDocument: assume(inline)}))
		p, err := e.iam.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("chain-managed"), PolicyDocument: assume(managed)})
		if err != nil {
			t.Fatal(err)
		}
		e.must(t)(e.iam.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("by-inline"), PolicyArn: p.Policy.Arn}))
		r, err := e.rev.MembershipEnded(ctx, "alice", group, e.clk.Now())
		if err != nil || !slices.Equal(r.Revoked, []string{first, inline, managed}) {
			t.Fatalf("chain: %+v %v; want first, the role its inline policy allows, the role that one's managed policy allows", r, err)
		}
		for _, name := range []string{"first", "by-inline", "by-managed"} {
			if !sessions.Denies(e.policy(t, name), "alice", e.clk.Now()) {
				t.Errorf("%s does not deny alice's older sessions: %q", name, e.policy(t, name))
			}
		}
		if e.policy(t, "unreached") != "" {
			t.Error("a role no chain reaches was written")
		}

		// A modifier not allowed iam:ListAttachedRolePolicies (one from
		// before chains were followed; here a user moto's access control
		// denies it) follows inline policies only, says so once, and still
		// ends the membership without an error.
		e.must(t)(e.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("old-modifier")}))
		e.must(t)(e.iam.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("old-modifier"), PolicyName: aws.String("all-but"),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},` +
				`{"Effect":"Deny","Action":"iam:ListAttachedRolePolicies","Resource":"*"}]}`)}))
		key, err := e.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("old-modifier")})
		if err != nil {
			t.Fatal(err)
		}
		old := e.srv.AWSConfig(t)
		old.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), "")
		e.srv.ResetAuth(t, 0)
		var logged bytes.Buffer
		e.rev.Roles = iamroles.New(iam.NewFromConfig(old), 5*time.Minute, e.clk.Now, slog.New(slog.NewTextHandler(&logged, nil)))
		e.rev.Store = sdynamo.New(dynamodb.NewFromConfig(old), table, e.clk.Now)
		for range 2 {
			r, err = e.rev.MembershipEnded(ctx, "bob", group, e.clk.Now())
			if err != nil || !slices.Equal(r.Revoked, []string{first, inline}) {
				t.Fatalf("denied ListAttachedRolePolicies: %+v %v; want first and the inline chain's role, no error", r, err)
			}
		}
		if n := strings.Count(logged.String(), "ListAttachedRolePolicies is denied"); n != 1 {
			t.Fatalf("%d warnings, want 1: %s", n, logged.String())
		}
	})
}

// bigPolicy is a valid policy of about n characters.
func bigPolicy(n int) string {
	head := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::`
	tail := `"}]}`
	return head + strings.Repeat("b", n-len(head)-len(tail)) + tail
}

// Replicas at once: eight revokers, each its own adapter cache, end eight
// users' memberships on one role concurrently. The token protocol on real
// DynamoDB conditions keeps every statement: the last PutRolePolicy
// reflects every entry.
func TestConcurrentWritersLoseNoStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newMotoEnv(t, sessions.RevokeUser)
	ro := e.role(t, "/jit/", "jit-ro", true, 3600)
	e.allowAssume(t, "assume", ro)
	const n = 8
	errs := make(chan error, n)
	at := e.clk.Now()
	for i := range n {
		rev := *e.rev
		rev.Roles = iamroles.New(e.iam, 5*time.Minute, e.clk.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
		go func() {
			_, err := rev.MembershipEnded(ctx, fmt.Sprintf("user-%d", i), group, at.Add(time.Duration(i)*time.Second))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	doc := e.policy(t, "jit-ro")
	for i := range n {
		if !sessions.Denies(doc, fmt.Sprintf("user-%d", i), at.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("user-%d's statement was lost: %s", i, doc)
		}
	}
	if st, err := sdynamo.New(e.ddb, table, e.clk.Now).Get(ctx, ro); err != nil || st.Dirty || len(st.Users) != n {
		t.Fatalf("item after the race: %+v %v", st, err)
	}
}
