package sessions_test

// Permission sets against a real moto with the real SDK: the Identity
// Center adapter (grants/identitycenter, through sessions/idcsets) and the
// DynamoDB store. moto stores the inline policy but evaluates no policy
// (the IAM simulator does, below), and answers ProvisionPermissionSet
// SUCCEEDED at once, provisioning to the caller's account whatever the
// target (identitycenter's fakes cover IN_PROGRESS then SUCCEEDED, and
// FAILED).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	gdynamo "github.com/iamjit/iamjit/grants/dynamo"
	"github.com/iamjit/iamjit/grants/identitycenter"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/testclock"
	"github.com/iamjit/iamjit/sessions"
	sdynamo "github.com/iamjit/iamjit/sessions/dynamo"
	"github.com/iamjit/iamjit/sessions/idcsets"
)

type motoSets struct {
	acct    string // the moto account it acts in, where moto provisions whatever the target
	sso     *ssoadmin.Client
	ids     *identitystore.Client
	inst    string
	store   string
	clk     *testclock.Clock
	items   *sdynamo.Store
	counter *awsx.Counter
	newP    func() *sessions.PermissionSets // each its own adapter: a replica
}

func newMotoSets(t *testing.T) *motoSets {
	t.Helper()
	ctx := context.Background()
	_, cfg, acct := shared.Account(t)
	m := &motoSets{acct: acct, sso: ssoadmin.NewFromConfig(cfg), ids: identitystore.NewFromConfig(cfg), counter: awsx.NewCounter(),
		clk: testclock.New(time.Now().UTC().Truncate(time.Millisecond))}
	ddb := dynamodb.NewFromConfig(cfg)
	if _, err := ddb.CreateTable(ctx, gdynamo.TableInput(table)); err != nil {
		t.Fatal(err)
	}
	m.items = sdynamo.New(ddb, table, m.clk.Now)
	out, err := m.sso.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
	if err != nil || len(out.Instances) != 1 {
		t.Fatalf("moto's instance: %v %v", out, err)
	}
	m.inst, m.store = aws.ToString(out.Instances[0].InstanceArn), aws.ToString(out.Instances[0].IdentityStoreId)
	counted := cfg.Copy()
	counted.APIOptions = append(counted.APIOptions, m.counter.Register)
	var n atomic.Int64
	m.newP = func() *sessions.PermissionSets {
		c := identitycenter.New(counted, identitycenter.Options{TTL: time.Minute})
		if _, err := c.Discover(ctx, m.inst); err != nil {
			t.Fatal(err)
		}
		return &sessions.PermissionSets{API: idcsets.Sets{C: c}, Store: m.items, Mode: sessions.RevokeUser, Now: m.clk.Now,
			NewToken: func() string { return "tok-" + strconv.FormatInt(n.Add(1), 10) },
			Log:      slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	return m
}

func (m *motoSets) calls(op string) int64 {
	for _, c := range m.counter.Snapshot() {
		if c.Operation == op {
			return c.Calls
		}
	}
	return 0
}

func (m *motoSets) permissionSet(t *testing.T, name, inline string) string {
	t.Helper()
	ctx := context.Background()
	out, err := m.sso.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{InstanceArn: &m.inst, Name: &name, SessionDuration: aws.String("PT2H")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.PermissionSet.PermissionSetArn)
	if inline != "" {
		if _, err := m.sso.PutInlinePolicyToPermissionSet(ctx, &ssoadmin.PutInlinePolicyToPermissionSetInput{InstanceArn: &m.inst, PermissionSetArn: &arn, InlinePolicy: &inline}); err != nil {
			t.Fatal(err)
		}
	}
	return arn
}

func (m *motoSets) inline(t *testing.T, arn string) string {
	t.Helper()
	out, err := m.sso.GetInlinePolicyForPermissionSet(context.Background(), &ssoadmin.GetInlinePolicyForPermissionSetInput{InstanceArn: &m.inst, PermissionSetArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.InlinePolicy)
}

func (m *motoSets) user(t *testing.T, name string) string {
	t.Helper()
	out, err := m.ids.CreateUser(context.Background(), &identitystore.CreateUserInput{IdentityStoreId: &m.store, UserName: &name, DisplayName: &name,
		Name: &istypes.Name{GivenName: &name, FamilyName: aws.String("test")}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.UserId)
}

func (m *motoSets) assign(t *testing.T, ps string, typ ssotypes.PrincipalType, id string) {
	t.Helper()
	if _, err := m.sso.CreateAccountAssignment(context.Background(), &ssoadmin.CreateAccountAssignmentInput{InstanceArn: &m.inst, PermissionSetArn: &ps,
		TargetId: aws.String(m.acct), TargetType: ssotypes.TargetTypeAwsAccount, PrincipalType: typ, PrincipalId: &id}); err != nil {
		t.Fatal(err)
	}
}

// statementSids lists the Sids of a policy's statements.
func statementSids(t *testing.T, doc string) []string {
	t.Helper()
	var d struct{ Statement []struct{ Sid string } }
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("%v: %s", err, doc)
	}
	var out []string
	for _, st := range d.Statement {
		out = append(out, st.Sid)
	}
	return out
}

func TestMotoAssignmentEndedWritesAndProvisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMotoSets(t)
	const theirs = `{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Deny","Action":"s3:PutObject","Resource":"*"}]}`
	ps := m.permissionSet(t, "ops", theirs)
	alice, bob := m.user(t, "alice"), m.user(t, "bob")
	m.assign(t, ps, ssotypes.PrincipalTypeUser, alice)
	p := m.newP()

	ended := m.clk.Now()
	res, err := p.AssignmentEnded(ctx, alice, ps, m.acct, ended)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{sessions.SetTarget(ps, m.acct)}; !slices.Equal(res.Revoked, want) {
		t.Fatalf("revoked %v, want %v (%+v)", res.Revoked, want, res)
	}
	doc := m.inline(t, ps)
	sids := statementSids(t, doc)
	if len(sids) != 2 || sids[0] != "Theirs" || !sessions.DeniesIn(doc, alice, m.acct, ended) || sessions.DeniesIn(doc, bob, m.acct, ended) {
		t.Fatalf("inline policy in moto: %s", doc)
	}
	if m.calls("PutInlinePolicyToPermissionSet") != 1 || m.calls("ProvisionPermissionSet") != 1 {
		t.Fatalf("calls: %+v", m.counter.Snapshot())
	}
	prov, err := m.sso.ListAccountsForProvisionedPermissionSet(ctx, &ssoadmin.ListAccountsForProvisionedPermissionSetInput{InstanceArn: &m.inst, PermissionSetArn: &ps})
	if err != nil || !slices.Contains(prov.AccountIds, m.acct) {
		t.Fatalf("provisioned to %v, %v", prov, err)
	}
	if st, err := m.items.GetSet(ctx, ps); err != nil || st.Dirty || len(st.Pending) != 0 || len(st.Entries) != 1 {
		t.Fatalf("item: %+v %v", st, err)
	}
	// Role items and permission set items do not meet.
	if roles, err := m.items.All(ctx); err != nil || len(roles) != 0 {
		t.Fatalf("role items: %+v %v", roles, err)
	}

	// What moto holds, evaluated.
	const perms = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"}]}`
	got := simulate(t, []simCase{
		ssoSession("alice before", alice, m.acct, ended.Add(-time.Minute), "s3:GetObject", perms, doc),
		ssoSession("alice after", alice, m.acct, ended.Add(2*time.Second), "s3:GetObject", perms, doc),
		ssoSession("bob before", bob, m.acct, ended.Add(-time.Minute), "s3:GetObject", perms, doc),
	})
	for k, v := range map[string]string{"alice before": "ExplicitlyDenied", "alice after": "Allowed", "bob before": "Allowed"} {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}

	// reconcile: the customer puts their policy back; Check finds it and
	// enforce restores and provisions.
	if _, err := m.sso.PutInlinePolicyToPermissionSet(ctx, &ssoadmin.PutInlinePolicyToPermissionSetInput{InstanceArn: &m.inst, PermissionSetArn: &ps, InlinePolicy: aws.String(theirs)}); err != nil {
		t.Fatal(err)
	}
	miss, err := p.Check(ctx, true)
	if err != nil || len(miss) != 1 || miss[0].User != alice || miss[0].Account != m.acct || !miss[0].Restored {
		t.Fatalf("check: %+v %v", miss, err)
	}
	if !sessions.DeniesIn(m.inline(t, ps), alice, m.acct, ended) || m.calls("ProvisionPermissionSet") != 2 {
		t.Fatalf("enforce: %s, %d provisions", m.inline(t, ps), m.calls("ProvisionPermissionSet"))
	}

	// Past the two-hour session duration the sweeper prunes iamjit's
	// statement and keeps the customer's.
	m.clk.Advance(2*time.Hour + time.Minute)
	if n, err := p.Repair(ctx, time.Minute, 10, false); err != nil || n != 0 || !sessions.DeniesIn(m.inline(t, ps), alice, m.acct, ended) {
		t.Fatalf("repair without prune: %d %v, %s; want nothing pruned", n, err, m.inline(t, ps))
	}
	if n, err := p.Repair(ctx, time.Minute, 10, true); err != nil || n != 1 {
		t.Fatalf("repair: %d %v", n, err)
	}
	if sids := statementSids(t, m.inline(t, ps)); !slices.Equal(sids, []string{"Theirs"}) {
		t.Fatalf("after pruning: %s", m.inline(t, ps))
	}
}

func TestMotoGroupMembershipEndedAndConcurrentReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMotoSets(t)
	ro, admin := m.permissionSet(t, "ro", ""), m.permissionSet(t, "admin", "")
	g, err := m.ids.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: &m.store, DisplayName: aws.String("ops")})
	if err != nil {
		t.Fatal(err)
	}
	gid := aws.ToString(g.GroupId)
	m.assign(t, ro, ssotypes.PrincipalTypeGroup, gid)
	m.assign(t, admin, ssotypes.PrincipalTypeGroup, gid)
	alice := m.user(t, "alice")

	ended := m.clk.Now()
	res, err := m.newP().GroupMembershipEnded(ctx, alice, gid, ended)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{sessions.SetTarget(ro, m.acct), sessions.SetTarget(admin, m.acct)}
	slices.Sort(want)
	if !slices.Equal(res.Revoked, want) {
		t.Fatalf("revoked %v, want %v", res.Revoked, want)
	}
	for _, ps := range []string{ro, admin} {
		if !sessions.DeniesIn(m.inline(t, ps), alice, m.acct, ended) {
			t.Fatalf("%s: %s", ps, m.inline(t, ps))
		}
	}

	// Six replicas, each its own adapter, end six users' assignments of one
	// permission set at once: DynamoDB's conditions and the lease keep
	// every statement.
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = m.newP().AssignmentEnded(ctx, fmt.Sprintf("user-%d", i), ro, m.acct, ended.Add(time.Duration(i)*time.Second))
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	doc := m.inline(t, ro)
	for i := range n {
		if !sessions.DeniesIn(doc, fmt.Sprintf("user-%d", i), m.acct, ended.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("user-%d lost: %s", i, doc)
		}
	}
	if st, err := m.items.GetSet(ctx, ro); err != nil || st.Dirty || len(st.Entries) != n+1 {
		t.Fatalf("item: %+v %v", st, err)
	}
}

// The item says who holds its lease until when, so a writer that finds it
// held waits by reading, not by asking for it again.
func TestMotoPermissionSetItemShowsItsLease(t *testing.T) {
	m := newMotoSets(t)
	ctx := context.Background()
	ps := "arn:aws:sso:::permissionSet/ssoins-lease/ps-lease"
	if err := m.items.AddEntry(ctx, ps, sessions.Entry{User: "u-1", Account: m.acct}, m.clk.Now(), "tok-1"); err != nil {
		t.Fatal(err)
	}
	until := m.clk.Now().Add(time.Minute)
	if ok, err := m.items.Lease(ctx, ps, "writer-1", until, m.clk.Now()); err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	if st, err := m.items.GetSet(ctx, ps); err != nil || !st.LeasedUntil.Equal(until) {
		t.Fatalf("leased until %s (%v), want %s", st.LeasedUntil, err, until)
	}
	if err := m.items.Release(ctx, ps, "writer-1"); err != nil {
		t.Fatal(err)
	}
	if st, err := m.items.GetSet(ctx, ps); err != nil || !st.LeasedUntil.IsZero() {
		t.Fatalf("after release leased until %s (%v), want none", st.LeasedUntil, err)
	}
}
