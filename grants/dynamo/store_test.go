package dynamo_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/dynamo"
	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/internal/testclock"
)

const retention = 90 * 24 * time.Hour

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// api wraps the real client: it counts calls (the store must Query the
// index, never Scan) and, with strip, drops the old items DynamoDB returns
// on a failed condition so that the store's GetItem fallback is exercised.
type api struct {
	*dynamodb.Client
	strip bool

	mu      sync.Mutex
	scans   int
	queries []string // index names
	oldSeen int      // failed conditions that carried the old item
}

func (a *api) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	a.mu.Lock()
	a.scans++
	a.mu.Unlock()
	return a.Client.Scan(ctx, in, opts...)
}

func (a *api) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	a.mu.Lock()
	a.queries = append(a.queries, aws.ToString(in.IndexName))
	a.mu.Unlock()
	return a.Client.Query(ctx, in, opts...)
}

func (a *api) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := a.Client.PutItem(ctx, in, opts...)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		a.sawOld(len(ccf.Item) > 0)
		if a.strip {
			ccf.Item = nil
		}
	}
	return out, err
}

func (a *api) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := a.Client.TransactWriteItems(ctx, in, opts...)
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for i := range tce.CancellationReasons {
			a.sawOld(len(tce.CancellationReasons[i].Item) > 0)
			if a.strip {
				tce.CancellationReasons[i].Item = nil
			}
		}
	}
	return out, err
}

func (a *api) sawOld(yes bool) {
	if yes {
		a.mu.Lock()
		a.oldSeen++
		a.mu.Unlock()
	}
}

type fixture struct {
	store *dynamo.Store
	api   *api
	clock *testclock.Clock
	table string
}

var tableN int

// newTable creates the store's table (dynamo.TableInput, TTL on ttl, as
// devstack does) and a store on it.
func newTable(t *testing.T, client *dynamodb.Client, strip bool) fixture {
	t.Helper()
	tableN++
	name := "grants-" + strconv.Itoa(tableN)
	ctx := context.Background()
	_, err := client.CreateTable(ctx, dynamo.TableInput(name))
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("ttl"), Enabled: aws.Bool(true)}}); err != nil {
		t.Fatalf("enable ttl: %v", err)
	}
	a := &api{Client: client, strip: strip}
	c := testclock.New(t0)
	return fixture{store: dynamo.New(a, name, retention, c.Now, ""), api: a, clock: c, table: name}
}

// rawItem reads an item as stored.
func (f fixture) rawItem(t *testing.T, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := f.api.Client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &f.table,
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func numAttr(t *testing.T, item map[string]types.AttributeValue, name string) int64 {
	t.Helper()
	n, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("item has no number %q: %v", name, item)
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func grant(id, sym string, expires time.Time) grants.Grant {
	return grants.Grant{
		ID: id, State: grants.StateActive, SymEventID: sym, RunSRN: "run", Requester: "alice@example.com",
		IAMUser: "alice", Group: "sym-readonly", GroupARN: "arn:aws:iam::123456789012:group/sym/sym-readonly",
		Approver: "boss@example.com", Reason: "r", GrantedAt: t0, ExpiresAt: expires,
		History: []grants.Transition{{At: t0, Action: "escalate", State: grants.StateActive, SymEventID: sym}},
	}
}

func granted(g grants.Grant) grants.ProcessedEvent {
	return grants.ProcessedEvent{SymEventID: g.SymEventID, GrantID: g.ID, At: t0, Result: events.Result{
		DetailType: events.AccessGranted, ResultID: events.ResultID(events.AccessGranted, g.ID), GrantID: g.ID,
		IAMUser: g.IAMUser, Group: g.Group, GrantedAt: events.TimePtr(g.GrantedAt), ExpiresAt: events.TimePtr(g.ExpiresAt)}}
}

// TestStore runs every case on one moto, each on its own table; the
// conflict cases run twice: with the old item returned on a failed
// condition, and without (the store must read it).
func TestStore(t *testing.T) {
	srv := motoserver.Start(t)
	client := dynamodb.NewFromConfig(srv.AWSConfig(t))
	cases := []struct {
		name string
		fn   func(*testing.T, fixture)
	}{
		{"activate", testActivate},
		{"conflicts", testConflicts},
		{"revoke", testRevoke},
		{"tombstone", testTombstone},
		{"fail and reactivate", testFail},
		{"mark synced", testMarkSynced},
		{"due", testDue},
		{"dirty", testDirty},
		{"undue", testUndue},
		{"read-back queue", testRechecks},
		{"accounts", testAccounts},
		{"kinds", testKinds},
		{"warned once", testWarned},
		{"history appends", testAppendHistory},
	}
	for _, strip := range []bool{false, true} {
		for _, tc := range cases {
			name := tc.name
			if strip {
				name += "/no old item"
			}
			t.Run(name, func(t *testing.T) {
				f := newTable(t, client, strip)
				tc.fn(t, f)
				f.api.mu.Lock()
				defer f.api.mu.Unlock()
				if f.api.oldSeen > 0 {
					t.Logf("moto returned the old item on %d failed conditions", f.api.oldSeen)
				}
				if f.api.scans != 0 {
					t.Errorf("store scanned the table %d times", f.api.scans)
				}
				for _, ix := range f.api.queries {
					if ix != dynamo.IndexName {
						t.Errorf("query on %q, want the %q index", ix, dynamo.IndexName)
					}
				}
			})
		}
	}
}

func testActivate(t *testing.T, f fixture) {
	ctx := context.Background()
	g := grant("run/a", "sym-1", t0.Add(30*time.Minute))
	if err := f.store.Activate(ctx, g, granted(g), "tok-1"); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.GetGrant(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != grants.StateActive || got.IAMUser != "alice" || got.GroupARN != g.GroupARN || !got.ExpiresAt.Equal(g.ExpiresAt) ||
		!got.GrantedAt.Equal(t0) || len(got.History) != 1 || got.History[0].Action != "escalate" {
		t.Errorf("read back %+v", got)
	}
	m, err := f.store.Membership(ctx, grants.Key{User: "alice", Group: "sym-readonly"})
	if err != nil || len(m.GrantIDs) != 1 || m.GrantIDs[0] != g.ID || m.Token != "tok-1" || !m.Dirty {
		t.Errorf("membership %+v %v: want [run/a], tok-1, dirty", m, err)
	}
	if ttl := numAttr(t, f.rawItem(t, "grant#run/a"), "ttl"); ttl != g.ExpiresAt.Add(retention).Unix() {
		t.Errorf("grant ttl %d, want expiry + retention %d", ttl, g.ExpiresAt.Add(retention).Unix())
	}
	if ttl := numAttr(t, f.rawItem(t, "event#sym-1"), "ttl"); ttl != t0.Add(30*24*time.Hour).Unix() {
		t.Errorf("event ttl %d, want +30 days", ttl)
	}
	if _, err := f.store.GetGrant(ctx, "nope"); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("GetGrant(missing) = %v", err)
	}
	if m, err := f.store.Membership(ctx, grants.Key{User: "nobody", Group: "sym-readonly"}); err != nil || m.Token != "" || len(m.GrantIDs) != 0 || m.Dirty {
		t.Errorf("unwritten membership %+v %v", m, err)
	}
}

// testAppendHistory: several transitions land in one write, in order,
// after the history the grant had; none is no write; a grant that does not
// exist is ErrNotFound, not created.
func testAppendHistory(t *testing.T, f fixture) {
	ctx := context.Background()
	g := grant("run/a", "sym-1", t0.Add(30*time.Minute))
	if err := f.store.Activate(ctx, g, granted(g), "tok-1"); err != nil {
		t.Fatal(err)
	}
	put := grants.Transition{At: t0, Action: "session_revoke", IAMRequestID: "req-put", Note: "PutInlinePolicyToPermissionSet ps"}
	prov := grants.Transition{At: t0, Action: "session_revoke", IAMRequestID: "req-prov", Note: "ProvisionPermissionSet ps"}
	if err := f.store.AppendHistory(ctx, g.ID, put, prov); err != nil {
		t.Fatal(err)
	}
	if err := f.store.AppendHistory(ctx, g.ID); err != nil {
		t.Fatalf("appending nothing: %v", err)
	}
	got, err := f.store.GetGrant(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, h := range got.History {
		acts = append(acts, h.Action+" "+h.IAMRequestID)
	}
	if want := []string{"escalate ", "session_revoke req-put", "session_revoke req-prov"}; !slices.Equal(acts, want) {
		t.Errorf("history %q, want %q", acts, want)
	}
	if err := f.store.AppendHistory(ctx, "run/missing", put); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("AppendHistory(missing grant) = %v, want ErrNotFound", err)
	}
	if item := f.rawItem(t, "grant#run/missing"); item != nil {
		t.Errorf("appending to a missing grant created it: %v", item)
	}
}

func testConflicts(t *testing.T, f fixture) {
	ctx := context.Background()
	g := grant("run/a", "sym-1", t0.Add(30*time.Minute))
	ev := granted(g)
	if err := f.store.Activate(ctx, g, ev, "tok-1"); err != nil {
		t.Fatal(err)
	}
	// The same Sym event again: the stored result comes back.
	err := f.store.Activate(ctx, g, ev, "tok-2")
	var c *grants.ConflictError
	if !errors.As(err, &c) || c.Event == nil || c.Event.Result.ResultID != ev.Result.ResultID || c.Event.GrantID != g.ID ||
		c.Event.Result.ExpiresAt == nil || !c.Event.Result.ExpiresAt.Equal(g.ExpiresAt) {
		t.Fatalf("duplicate Activate = %v (%+v), want ConflictError with the stored event", err, c)
	}
	// A new Sym event for an existing grant: the grant comes back.
	g2 := g
	g2.SymEventID = "sym-2"
	c = nil
	err = f.store.Activate(ctx, g2, granted(g2), "tok-3")
	if !errors.As(err, &c) || c.Grant == nil || c.Grant.State != grants.StateActive || c.Grant.SymEventID != "sym-1" || c.Grant.IAMUser != "alice" {
		t.Fatalf("second Activate of grant = %v (%+v), want ConflictError with the ACTIVE grant", err, c)
	}
	// Neither write happened: the membership kept its token.
	if m, _ := f.store.Membership(ctx, grants.Key{User: "alice", Group: "sym-readonly"}); m.Token != "tok-1" {
		t.Errorf("failed transaction changed the membership: %+v", m)
	}
	c = nil
	err = f.store.RecordEvent(ctx, grants.ProcessedEvent{SymEventID: "sym-1", At: t0, Result: events.Result{ResultID: "other"}})
	if !errors.As(err, &c) || c.Event == nil || c.Event.Result.ResultID != ev.Result.ResultID {
		t.Fatalf("RecordEvent of a processed event = %v, want its stored result", err)
	}
	if err := f.store.RecordEvent(ctx, grants.ProcessedEvent{SymEventID: "sym-9", At: t0, Result: events.Result{ResultID: "r9"}}); err != nil {
		t.Fatal(err)
	}
}

func testRevoke(t *testing.T, f fixture) {
	ctx := context.Background()
	a, b := grant("run/a", "sym-a", t0.Add(30*time.Minute)), grant("run/b", "sym-b", t0.Add(60*time.Minute))
	for i, g := range []grants.Grant{a, b} {
		if err := f.store.Activate(ctx, g, granted(g), "tok-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(5 * time.Minute)
	a.State, a.RevokedAt, a.RevokeReason, a.RevokeEventID = grants.StateRevoked, f.clock.Now(), events.RevokedDeescalated, "sym-de-a"
	ev := &grants.ProcessedEvent{SymEventID: "sym-de-a", GrantID: a.ID, At: f.clock.Now(), Result: events.Result{ResultID: "rev-a"}}
	if err := f.store.Revoke(ctx, a, ev, "tok-r", false); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.GetGrant(ctx, a.ID)
	if got.State != grants.StateRevoked || got.RevokeReason != events.RevokedDeescalated || got.RevokeEventID != "sym-de-a" ||
		!got.RevokedAt.Equal(a.RevokedAt) || got.History[len(got.History)-1].Action != "revoke" || got.IAMUser != "alice" {
		t.Errorf("revoked grant %+v", got)
	}
	if ttl := numAttr(t, f.rawItem(t, "grant#run/a"), "ttl"); ttl != a.RevokedAt.Add(retention).Unix() {
		t.Errorf("revoked grant ttl %d, want revoked_at + retention", ttl)
	}
	m, _ := f.store.Membership(ctx, grants.Key{User: "alice", Group: "sym-readonly"})
	if len(m.GrantIDs) != 1 || m.GrantIDs[0] != b.ID || m.Token != "tok-r" || !m.Dirty {
		t.Errorf("membership %+v: want only run/b, tok-r, dirty", m)
	}
	var c *grants.ConflictError
	if err := f.store.RecordEvent(ctx, *ev); !errors.As(err, &c) {
		t.Errorf("revoke did not record its event: %v", err)
	}
	if err := f.store.Revoke(ctx, a, nil, "tok-x", false); !errors.Is(err, grants.ErrNotActive) {
		t.Errorf("second Revoke = %v, want ErrNotActive", err)
	}
	if err := f.store.Revoke(ctx, grant("run/none", "s", t0), nil, "tok-x", false); !errors.Is(err, grants.ErrNotActive) {
		t.Errorf("Revoke of a missing grant = %v, want ErrNotActive", err)
	}
	// An event already recorded wins over the revoke.
	b.State, b.RevokedAt, b.RevokeReason = grants.StateRevoked, f.clock.Now(), events.RevokedDeescalated
	c = nil
	if err := f.store.Revoke(ctx, b, ev, "tok-y", false); !errors.As(err, &c) || c.Event == nil || c.Event.Result.ResultID != "rev-a" {
		t.Errorf("Revoke with a processed event = %v, want ConflictError with it", err)
	}
	if g, _ := f.store.GetGrant(ctx, b.ID); g.State != grants.StateActive {
		t.Errorf("failed Revoke changed the grant: %s", g.State)
	}
	// The sweeper's revoke keeps the grant in the index until Undue.
	if err := f.store.Revoke(ctx, b, nil, "tok-z", true); err != nil {
		t.Fatal(err)
	}
	due, err := f.store.Due(ctx, t0.Add(24*time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].ID != b.ID || due[0].State != grants.StateRevoked {
		t.Errorf("Due = %+v %v: want only run/b (revoked, kept due), not run/a", due, err)
	}
	if m, _ := f.store.Membership(ctx, grants.Key{User: "alice", Group: "sym-readonly"}); len(m.GrantIDs) != 0 {
		t.Errorf("membership %+v after both revoked", m)
	}
}

func testTombstone(t *testing.T, f fixture) {
	ctx := context.Background()
	now := t0.Add(time.Minute)
	g := grants.Grant{ID: "run/a", State: grants.StateRevoked, RevokeEventID: "sym-de", RunSRN: "run", Group: "sym-readonly",
		RevokedAt: now, RevokeReason: events.RevokedDeescalated, Tombstone: true}
	ev := grants.ProcessedEvent{SymEventID: "sym-de", GrantID: g.ID, At: now, Result: events.Result{ResultID: "rev"}}
	if err := f.store.Tombstone(ctx, g, ev); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.GetGrant(ctx, g.ID)
	if err != nil || !got.Tombstone || got.State != grants.StateRevoked {
		t.Fatalf("tombstone %+v %v", got, err)
	}
	if ttl := numAttr(t, f.rawItem(t, "grant#run/a"), "ttl"); ttl < now.Add(30*24*time.Hour+retention).Unix() {
		t.Errorf("tombstone ttl %d is shorter than a late escalate can arrive", ttl)
	}
	var c *grants.ConflictError
	if err := f.store.Tombstone(ctx, g, ev); !errors.As(err, &c) || c.Event == nil || c.Event.Result.ResultID != "rev" {
		t.Errorf("duplicate Tombstone = %v", err)
	}
	c = nil
	ev2 := ev
	ev2.SymEventID = "sym-de-2"
	if err := f.store.Tombstone(ctx, g, ev2); !errors.As(err, &c) || c.Grant == nil || !c.Grant.Tombstone {
		t.Errorf("Tombstone over an existing grant = %v", err)
	}
	// The late escalate finds the tombstone.
	c = nil
	late := grant("run/a", "sym-esc", t0.Add(time.Hour))
	if err := f.store.Activate(ctx, late, granted(late), "tok"); !errors.As(err, &c) || c.Grant == nil || c.Grant.State != grants.StateRevoked {
		t.Errorf("Activate over a tombstone = %v, want ConflictError with the REVOKED grant", err)
	}
	if due, _ := f.store.Due(ctx, t0.Add(48*time.Hour), 10); len(due) != 0 {
		t.Errorf("tombstone is in the expiry index: %+v", due)
	}
}

func testFail(t *testing.T, f fixture) {
	ctx := context.Background()
	g := grant("run/a", "sym-1", t0.Add(30*time.Minute))
	if err := f.store.Activate(ctx, g, granted(g), "tok-1"); err != nil {
		t.Fatal(err)
	}
	other := g
	other.SymEventID = "sym-other"
	if err := f.store.Fail(ctx, other, "tok-2"); !errors.Is(err, grants.ErrNotActive) {
		t.Errorf("Fail by another event = %v, want ErrNotActive", err)
	}
	g.State, g.RevokedAt, g.RevokeReason = grants.StateFailed, t0.Add(time.Minute), "failed"
	if err := f.store.Fail(ctx, g, "tok-3"); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.GetGrant(ctx, g.ID)
	if got.State != grants.StateFailed {
		t.Errorf("state %s, want FAILED", got.State)
	}
	if m, _ := f.store.Membership(ctx, grants.Key{User: "alice", Group: "sym-readonly"}); len(m.GrantIDs) != 0 || m.Token != "tok-3" {
		t.Errorf("membership %+v", m)
	}
	if len(f.rawItem(t, "event#sym-1")) != 0 {
		t.Error("Fail kept the event: a replay would be a duplicate")
	}
	if due, _ := f.store.Due(ctx, t0.Add(24*time.Hour), 10); len(due) != 0 {
		t.Errorf("failed grant still due: %+v", due)
	}
	if err := f.store.Fail(ctx, g, "tok-4"); !errors.Is(err, grants.ErrNotActive) {
		t.Errorf("second Fail = %v", err)
	}
	// The replay replaces the FAILED grant.
	g = grant("run/a", "sym-1", t0.Add(30*time.Minute))
	if err := f.store.Activate(ctx, g, granted(g), "tok-5"); err != nil {
		t.Fatalf("Activate over FAILED: %v", err)
	}
	if got, _ := f.store.GetGrant(ctx, g.ID); got.State != grants.StateActive {
		t.Errorf("after replay: %s", got.State)
	}
}

func testMarkSynced(t *testing.T, f fixture) {
	ctx := context.Background()
	tr := grants.Transition{At: t0, Action: "iam_add", IAMRequestID: "req-1"}
	// Never written: synced only while nobody writes it.
	if ok, err := f.store.MarkSynced(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "", "", tr); !ok || err != nil {
		t.Errorf("unwritten membership: %v %v", ok, err)
	}
	g := grant("run/a", "sym-1", t0.Add(30*time.Minute))
	if err := f.store.Activate(ctx, g, granted(g), "tok-1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.store.MarkSynced(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "", g.ID, tr); ok || err != nil {
		t.Errorf("empty token on a written membership: %v %v", ok, err)
	}
	if ok, err := f.store.MarkSynced(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "tok-old", g.ID, tr); ok || err != nil {
		t.Errorf("stale token: %v %v, want false", ok, err)
	}
	if m, _ := f.store.Membership(ctx, grants.Key{User: "alice", Group: "sym-readonly"}); !m.Dirty {
		t.Error("stale token cleared the dirty mark")
	}
	if ok, err := f.store.MarkSynced(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "tok-1", g.ID, tr); !ok || err != nil {
		t.Fatalf("current token: %v %v", ok, err)
	}
	if m, _ := f.store.Membership(ctx, grants.Key{User: "alice", Group: "sym-readonly"}); m.Dirty || m.Token != "tok-1" {
		t.Errorf("membership %+v: want clean", m)
	}
	got, _ := f.store.GetGrant(ctx, g.ID)
	if last := got.History[len(got.History)-1]; last.Action != "iam_add" || last.IAMRequestID != "req-1" {
		t.Errorf("history %+v: want the iam_add with its request id", got.History)
	}
	// Without a grant id only the mark changes.
	if ok, err := f.store.MarkSynced(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "tok-1", "", tr); !ok || err != nil {
		t.Errorf("no grant id: %v %v", ok, err)
	}
}

func testDue(t *testing.T, f fixture) {
	ctx := context.Background()
	// Written out of expiry order.
	for i, m := range []int{30, 10, 50, 20} {
		g := grant("run/"+strconv.Itoa(m), "sym-"+strconv.Itoa(i), t0.Add(time.Duration(m)*time.Minute))
		g.IAMUser = "u" + strconv.Itoa(i)
		if err := f.store.Activate(ctx, g, granted(g), "tok"); err != nil {
			t.Fatal(err)
		}
	}
	// run/20 is revoked by a deescalate: it leaves the index.
	r, _ := f.store.GetGrant(ctx, "run/20")
	r.State, r.RevokedAt, r.RevokeReason = grants.StateRevoked, t0, events.RevokedDeescalated
	if err := f.store.Revoke(ctx, r, nil, "tok-r", false); err != nil {
		t.Fatal(err)
	}
	ids := func(gs []grants.Grant) []string {
		out := []string{}
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}
	for _, tc := range []struct {
		at    time.Duration
		limit int32
		want  []string
	}{
		{5 * time.Minute, 10, []string{}},
		{10 * time.Minute, 10, []string{"run/10"}}, // due exactly at expiry
		{40 * time.Minute, 10, []string{"run/10", "run/30"}},
		{time.Hour, 10, []string{"run/10", "run/30", "run/50"}},
		{time.Hour, 2, []string{"run/10", "run/30"}},
	} {
		due, err := f.store.Due(ctx, t0.Add(tc.at), tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(due); len(got) != len(tc.want) || (len(got) > 0 && !equal(got, tc.want)) {
			t.Errorf("Due(t0+%v, %d) = %v, want %v", tc.at, tc.limit, got, tc.want)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testDirty(t *testing.T, f fixture) {
	ctx := context.Background()
	g := grant("run/a", "sym-1", t0.Add(30*time.Minute))
	if err := f.store.Activate(ctx, g, granted(g), "tok-1"); err != nil {
		t.Fatal(err)
	}
	if d, err := f.store.Dirty(ctx, t0.Add(-time.Second), 10); err != nil || len(d) != 0 {
		t.Errorf("Dirty before the write = %+v %v", d, err)
	}
	d, err := f.store.Dirty(ctx, t0, 10)
	if err != nil || len(d) != 1 || d[0].IAMUser != "alice" || d[0].Group != "sym-readonly" || d[0].Token != "tok-1" ||
		len(d[0].GrantIDs) != 1 || !d[0].Dirty {
		t.Fatalf("Dirty = %+v %v", d, err)
	}
	if ok, err := f.store.MarkSynced(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "tok-1", "", grants.Transition{}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if d, err := f.store.Dirty(ctx, t0.Add(time.Hour), 10); err != nil || len(d) != 0 {
		t.Errorf("Dirty after sync = %+v %v", d, err)
	}
	// Grants never show up as dirty memberships, nor the reverse.
	if due, _ := f.store.Due(ctx, t0.Add(time.Hour), 10); len(due) != 1 || due[0].ID != g.ID {
		t.Errorf("Due = %+v", due)
	}
}

func testUndue(t *testing.T, f fixture) {
	ctx := context.Background()
	g := grant("run/a", "sym-1", t0.Add(30*time.Minute))
	if err := f.store.Activate(ctx, g, granted(g), "tok-1"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Undue(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if due, _ := f.store.Due(ctx, t0.Add(time.Hour), 10); len(due) != 0 {
		t.Errorf("Due after Undue = %+v", due)
	}
	if err := f.store.Undue(ctx, "run/missing"); err != nil {
		t.Errorf("Undue of a missing grant = %v", err)
	}
	if len(f.rawItem(t, "grant#run/missing")) != 0 {
		t.Error("Undue created an item")
	}
}

// A removal synced with RecheckAfter set queues the membership for its
// read-back, due RecheckAfter later; Rechecked takes it off only for its own
// token, and a later sync (an add) supersedes it.
func testRechecks(t *testing.T, f fixture) {
	ctx := context.Background()
	f.store.RecheckAfter = 5 * time.Second
	g := grant("run/a", "sym-1", t0.Add(30*time.Minute))
	if err := f.store.Activate(ctx, g, granted(g), "tok-1"); err != nil {
		t.Fatal(err)
	}
	g.State, g.RevokedAt, g.RevokeReason = grants.StateRevoked, t0.Add(time.Minute), events.RevokedDeescalated
	if err := f.store.Revoke(ctx, g, nil, "tok-2", false); err != nil {
		t.Fatal(err)
	}
	removed := t0.Add(time.Minute)
	if ok, err := f.store.MarkSynced(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "tok-2", g.ID, grants.Transition{At: removed, Action: "iam_remove"}); !ok || err != nil {
		t.Fatalf("mark the removal synced: %v %v", ok, err)
	}
	if m, _ := f.store.Membership(ctx, grants.Key{User: "alice", Group: "sym-readonly"}); m.Dirty {
		t.Fatal("a synced removal is still dirty")
	}
	if got, err := f.store.Rechecks(ctx, removed.Add(4*time.Second), 10); err != nil || len(got) != 0 {
		t.Fatalf("read-backs due before the delay: %v %v, want none", got, err)
	}
	got, err := f.store.Rechecks(ctx, removed.Add(5*time.Second), 10)
	if err != nil || len(got) != 1 || got[0].IAMUser != "alice" || got[0].Group != "sym-readonly" || got[0].Token != "tok-2" {
		t.Fatalf("read-backs due at the delay: %+v %v, want alice's with tok-2", got, err)
	}
	if err := f.store.Rechecked(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "tok-other"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Rechecks(ctx, removed.Add(time.Hour), 10); len(got) != 1 {
		t.Fatal("Rechecked with another token took the read-back off")
	}
	if err := f.store.Rechecked(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "tok-2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Rechecks(ctx, removed.Add(time.Hour), 10); len(got) != 0 {
		t.Fatalf("read-backs after Rechecked: %+v, want none", got)
	}

	// Queued again, then a new grant's add syncs: the read-back is gone.
	if ok, _ := f.store.MarkSynced(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "tok-2", "", grants.Transition{At: removed, Action: "iam_remove"}); !ok {
		t.Fatal("re-queue")
	}
	if ok, _ := f.store.MarkSynced(ctx, grants.Key{User: "alice", Group: "sym-readonly"}, "tok-2", "", grants.Transition{At: removed, Action: "iam_add"}); !ok {
		t.Fatal("sync an add")
	}
	if got, _ := f.store.Rechecks(ctx, removed.Add(time.Hour), 10); len(got) != 0 {
		t.Fatalf("an add left the read-back queued: %+v", got)
	}
}

// testAccounts: the same user and group names in the home account and in a
// member account are two memberships; the home account's items keep the
// keys of a table written before accounts existed.
func testAccounts(t *testing.T, f fixture) {
	ctx := context.Background()
	// Above the store every account is named by its id, the home one too.
	f.store = dynamo.New(f.api, f.table, retention, f.clock.Now, "123456789012")
	home := grant("run/home", "sym-1", t0.Add(30*time.Minute))
	home.Account = "123456789012"
	member := grant("run/member", "sym-2", t0.Add(30*time.Minute))
	member.Account = "210987654321"
	member.GroupARN = "arn:aws:iam::210987654321:group/sym/sym-readonly"
	if err := f.store.Activate(ctx, home, granted(home), "tok-h"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Activate(ctx, member, granted(member), "tok-m"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.rawItem(t, "member#alice#sym-readonly")["account"]; ok {
		t.Error("the home membership item carries an account: its key and shape must stay as before accounts")
	}
	if got := f.rawItem(t, "member#210987654321#alice#sym-readonly")["account"]; got == nil {
		t.Error("the member account's membership item has no account attribute")
	}
	hk := grants.Key{Account: "123456789012", User: "alice", Group: "sym-readonly"}
	mk := grants.Key{Account: "210987654321", User: "alice", Group: "sym-readonly"}
	if m, _ := f.store.Membership(ctx, hk); len(m.GrantIDs) != 1 || m.GrantIDs[0] != home.ID || m.Account != hk.Account {
		t.Errorf("home membership %+v, want only %s", m, home.ID)
	}
	if m, _ := f.store.Membership(ctx, mk); len(m.GrantIDs) != 1 || m.GrantIDs[0] != member.ID || m.Account != mk.Account {
		t.Errorf("member membership %+v, want only %s in %s", m, member.ID, mk.Account)
	}
	if g, _ := f.store.GetGrant(ctx, member.ID); g.Account != member.Account {
		t.Errorf("grant read back in account %q, want %q", g.Account, member.Account)
	}
	if _, ok := f.rawItem(t, "grant#"+home.ID)["account"]; ok {
		t.Error("the home grant item carries an account: its shape must stay as before accounts")
	}
	if g, _ := f.store.GetGrant(ctx, home.ID); g.Account != home.Account {
		t.Errorf("home grant read back in account %q, want the home id %q", g.Account, home.Account)
	}
	dirty, err := f.store.Dirty(ctx, t0, 10)
	if err != nil || len(dirty) != 2 {
		t.Fatalf("Dirty = %+v %v, want both", dirty, err)
	}
	for _, d := range dirty {
		want := hk.Account
		if d.Token == "tok-m" {
			want = mk.Account
		}
		if d.Account != want {
			t.Errorf("dirty membership %+v: account %q, want %q", d, d.Account, want)
		}
	}
	// Revoking the member grant leaves the home membership alone.
	member.State, member.RevokedAt, member.RevokeReason = grants.StateRevoked, t0.Add(time.Minute), "manual"
	if err := f.store.Revoke(ctx, member, nil, "tok-m2", false); err != nil {
		t.Fatal(err)
	}
	if m, _ := f.store.Membership(ctx, hk); len(m.GrantIDs) != 1 || m.Token != "tok-h" {
		t.Errorf("home membership after the member revoke %+v", m)
	}
	if m, _ := f.store.Membership(ctx, mk); len(m.GrantIDs) != 0 || m.Token != "tok-m2" {
		t.Errorf("member membership after its revoke %+v", m)
	}
	for _, c := range []struct {
		filter dynamo.Filter
		want   string
	}{
		{dynamo.Filter{Account: "123456789012"}, home.ID},
		{dynamo.Filter{Account: "210987654321"}, member.ID},
	} {
		list, err := f.store.List(ctx, c.filter)
		if err != nil || len(list) != 1 || list[0].ID != c.want {
			t.Errorf("List(%+v) = %+v %v, want only %s", c.filter, list, err, c.want)
		}
	}
	f.api.mu.Lock()
	f.api.scans = 0 // List is the operator command's scan, on purpose
	f.api.mu.Unlock()
}

// testKinds: an Identity Center membership is its own item, keyed by kind,
// beside an IAM membership of the same names; both read back as written,
// and the dirty index names each one's kind.
func testKinds(t *testing.T, f fixture) {
	ctx := context.Background()
	f.store = dynamo.New(f.api, f.table, retention, f.clock.Now, "123456789012")
	iam := grant("run/iam", "sym-1", t0.Add(30*time.Minute))
	iam.Account = "123456789012"
	ps := grant("run/ps", "sym-2", t0.Add(30*time.Minute))
	ps.Kind, ps.Account, ps.GroupARN = grants.PermissionSet, "210987654321", ""
	ps.Group = "arn:aws:sso:::permissionSet/ssoins-1/ps-1"
	grp := grant("run/grp", "sym-3", t0.Add(30*time.Minute))
	grp.Kind, grp.Account, grp.GroupARN = grants.SSOGroup, "123456789012", ""
	grp.Group = "sym-readonly" // the same string as the IAM group: still another membership
	for _, g := range []grants.Grant{iam, ps, grp} {
		if err := f.store.Activate(ctx, g, granted(g), "tok-"+g.ID); err != nil {
			t.Fatal(err)
		}
		m, err := f.store.Membership(ctx, g.Key())
		if err != nil || len(m.GrantIDs) != 1 || m.GrantIDs[0] != g.ID || m.Key() != g.Key() {
			t.Errorf("membership of %s = %+v %v, want only its grant under key %+v", g.ID, m, err, g.Key())
		}
		back, err := f.store.GetGrant(ctx, g.ID)
		if err != nil || back.Kind != g.Kind || back.Account != g.Account {
			t.Errorf("grant %s read back as kind %q account %q (%v), want %q %q", g.ID, back.Kind, back.Account, err, g.Kind, g.Account)
		}
	}
	raw := f.rawItem(t, "member#aws_sso_group#123456789012#alice#sym-readonly")
	if raw["target_type"] == nil {
		t.Error("the Identity Store membership item has no target_type")
	}
	if _, ok := f.rawItem(t, "member#alice#sym-readonly")["target_type"]; ok {
		t.Error("the IAM membership item carries a target_type: its shape must stay as before")
	}
	dirty, err := f.store.Dirty(ctx, t0, 10)
	if err != nil || len(dirty) != 3 {
		t.Fatalf("Dirty = %+v %v, want three", dirty, err)
	}
	kinds := map[grants.Kind]bool{}
	for _, d := range dirty {
		kinds[d.Kind] = true
	}
	if len(kinds) != 3 {
		t.Errorf("dirty memberships %+v: want one of each kind", dirty)
	}
}

// testWarned: one caller may send a grant's Access Expiring, and none once
// the grant has ended.
func testWarned(t *testing.T, f fixture) {
	ctx := context.Background()
	g := grant("run/w", "sym-w", t0.Add(30*time.Minute))
	ended := grant("run/e", "sym-e", t0.Add(30*time.Minute))
	for _, x := range []grants.Grant{g, ended} {
		if err := f.store.Activate(ctx, x, granted(x), "tok-"+x.ID); err != nil {
			t.Fatal(err)
		}
	}
	ended.State, ended.RevokedAt, ended.RevokeReason = grants.StateRevoked, t0.Add(time.Minute), "deescalated"
	if err := f.store.Revoke(ctx, ended, nil, "tok-e2", false); err != nil {
		t.Fatal(err)
	}
	var firsts int
	for range 3 {
		ok, err := f.store.MarkWarned(ctx, g.ID, t0.Add(20*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			firsts++
		}
	}
	if firsts != 1 {
		t.Errorf("%d callers were told to warn of one grant, want 1", firsts)
	}
	if ok, err := f.store.MarkWarned(ctx, ended.ID, t0.Add(20*time.Minute)); ok || err != nil {
		t.Errorf("an ended grant: MarkWarned = %v, %v; want false", ok, err)
	}
	if ok, err := f.store.MarkWarned(ctx, "no-such-grant", t0); ok || err != nil {
		t.Errorf("no grant: MarkWarned = %v, %v; want false", ok, err)
	}
}
