package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/dynamo"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/metrics"
)

const (
	testHome   = "123456789012"
	testMember = "111111111111"
)

// testCast is the run's cast: a member account with the names of the first
// three home groups and the first overlap group, and users of eight of the
// twelve home emails; and the Identity Center spaces the run makes
// (createSSO): permission sets assigned in both accounts, Identity Store
// groups, their users of the first home emails.
func testCast() Cast {
	c := NewCast("t", testHome, 12, 4, 2).WithMember(testMember, 8, 3, 1)
	var users []User
	for i, u := range c.Users[:ssoUsers] {
		users = append(users, User{Name: fmt.Sprintf("9067%06d-sso", i+1), Email: u.Email})
	}
	ps := func(n string) string { return "arn:aws:sso:::permissionSet/ssoins-test/ps-" + n }
	return c.WithSSO(grants.PermissionSet, testHome, users, []string{ps("1"), ps("2")}, []string{ps("ov")}, ps("out")).
		WithSSO(grants.PermissionSet, testMember, users[:ssoMemberUsers], []string{ps("1")}, []string{ps("ov")}, ps("out")).
		WithSSO(grants.SSOGroup, testHome, users, []string{"g-1", "g-2"}, []string{"g-ov"}, "g-out")
}

// Identity Center spaces of testCast.
var (
	psHome   = SpaceID(grants.PermissionSet, testHome)
	psMember = SpaceID(grants.PermissionSet, testMember)
	sgHome   = SpaceID(grants.SSOGroup, testHome)
)

// The plan holds every scenario, in both accounts where it has a meaning
// there, its bodies decode to what was planned and its ids are unique.
func TestWorkloadPlan(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cast := testCast()
	// Same emails, other names; each account's decoys are the other's
	// first user names, none of its own.
	m := cast.Members[0]
	if len(m.Users) != 8 || m.Users[0].Email != cast.Users[0].Email || m.Users[0].Name == cast.Users[0].Name || !slices.Equal(m.Groups, cast.Groups[:3]) {
		t.Fatalf("member cast %+v", m)
	}
	if !slices.Equal(m.Decoys, []string{"t-u01", "t-u02", "t-u03", "t-u04"}) || len(cast.Decoys) != Decoys || cast.HasUser(cast.Decoys[0]) || !m.HasUser(cast.Decoys[0]) {
		t.Fatalf("decoys: home %v, member %v", cast.Decoys, m.Decoys)
	}
	w := NewWorkload(cast, start, WorkloadOptions{Events: 600, Spread: 30 * time.Second, Seed: 1})
	seen := map[string]int{}
	ids := map[string]bool{}
	byAcct := map[string]int{}
	for _, e := range w.Events {
		seen[e.Scenario]++
		if e.Scenario != ScenPoison {
			seen[e.Scenario+"@"+e.Account]++
			byAcct[e.Account]++
		}
		a, known := cast.Find(e.Account)
		switch {
		case e.Scenario == ScenPoison:
		case e.Scenario == ScenForeign:
			if e.Account != ForeignAccount || e.ARN != GroupARN(ForeignAccount, "/sym/", e.Group) {
				t.Errorf("foreign escalate %s names %s in %s", e.SymID, e.Target(), e.Account)
			}
		case !known:
			t.Errorf("%s event %s in account %q, not the cast's", e.Scenario, e.SymID, e.Account)
		case a.IsSSO():
			if e.Kind != a.Kind || e.ARN != "" || e.User != "" && !a.HasUser(e.User) {
				t.Errorf("Identity Center event %s: kind %q, ARN %q, user %q in space %s", e.SymID, e.Kind, e.ARN, e.User, a.ID)
			}
			if e.AWS != a.AWS && !(e.Scenario == ScenOutside && e.AWS == ForeignAccount) {
				t.Errorf("Identity Center event %s names account %s in space %s", e.SymID, e.AWS, a.ID)
			}
		case cast.IsMember(e.Account):
			// A member account's group by its ARN; its user by that
			// account's name for the email.
			if e.ARN != a.ARN(e.Group) {
				t.Errorf("member event %s names group %q, want %s", e.SymID, e.Target(), a.ARN(e.Group))
			}
			if e.User != "" && (!a.HasUser(e.User) || cast.HasUser(e.User)) {
				t.Errorf("member event %s is for user %s", e.SymID, e.User)
			}
			if e.Scenario == ScenAbsent && slices.Contains(a.Managed(), e.Group) {
				t.Errorf("absent escalate %s names group %s, which account %s has", e.SymID, e.Group, a.ID)
			}
		default:
			if e.ARN != "" && e.ARN != a.ARN(e.Group) {
				t.Errorf("home event %s names group %q", e.SymID, e.ARN)
			}
			if e.User != "" && !a.HasUser(e.User) {
				t.Errorf("home event %s is for user %s", e.SymID, e.User)
			}
		}
		if ids[e.SymID] {
			t.Fatalf("Sym id %s planned twice", e.SymID)
		}
		ids[e.SymID] = true
		req, err := events.Decode([]byte(e.Body))
		if e.Scenario == ScenPoison {
			var de *events.DecodeError
			if !errors.As(err, &de) || de.SymEventID != "" {
				t.Errorf("poison body decodes as %v, want a DecodeError without a Sym id", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s body does not decode: %v", e.Scenario, err)
		}
		if req.SymEventID != e.SymID || req.Type != e.Type || req.GrantID() != e.GrantID || req.TargetType != e.Kind.TargetType() ||
			req.Requester != e.Email || req.Duration != e.Duration || !req.Timestamp.Equal(e.Timestamp) || req.Source != "sym" {
			t.Errorf("body of %s decodes to %+v", e.SymID, req)
		}
		var target string
		switch e.Kind {
		case grants.PermissionSet:
			target = req.PermissionSetARN + "@" + req.AccountID
			seen["ps-target@"+map[bool]string{true: "custom", false: "typed"}[e.Custom]]++
		case grants.SSOGroup:
			target = req.SSOGroupID
			seen["sg-target@"+map[bool]string{true: "custom", false: "typed"}[e.Custom]]++
		default:
			target = req.Group
		}
		if want := map[grants.Kind]string{grants.PermissionSet: e.Group + "@" + e.AWS, grants.SSOGroup: e.Group}[e.Kind]; e.Kind != grants.IAMGroup && target != want ||
			e.Kind == grants.IAMGroup && target != e.Target() {
			t.Errorf("body of %s (%s) names target %q", e.SymID, e.Kind.TargetType(), target)
		}
	}
	// Both kinds of Identity Center target, each named by its own type
	// and by a custom target's settings.
	for _, k := range []string{"ps-target@custom", "ps-target@typed", "sg-target@custom", "sg-target@typed"} {
		if seen[k] == 0 {
			t.Errorf("no %s in the plan: %v", k, seen)
		}
	}
	for _, s := range []string{ScenPlain, ScenHot, ScenReorder, ScenStale, ScenOverlap, ScenUnknown, ScenOutside, ScenNoise, ScenPoison, ScenAbsent, ScenForeign} {
		if seen[s] == 0 {
			t.Errorf("no %s scenario in the plan: %v", s, seen)
		}
	}
	for _, s := range []string{ScenPlain, ScenHot, ScenReorder, ScenStale, ScenOverlap, ScenUnknown, ScenOutside, ScenNoise} {
		for _, a := range cast.IAMAccounts() {
			if seen[s+"@"+a.ID] == 0 {
				t.Errorf("no %s scenario in account %s: %v", s, a.ID, seen)
			}
		}
		// Each kind of Identity Center target, in one space or another.
		if seen[s+"@"+psHome]+seen[s+"@"+psMember] == 0 || seen[s+"@"+sgHome] == 0 {
			t.Errorf("no %s scenario on permission sets or on Identity Store groups: %v", s, seen)
		}
	}
	if share := float64(byAcct[testMember]) / float64(byAcct[testMember]+byAcct[testHome]); share < 0.2 || share > 0.45 {
		t.Errorf("member account's share of IAM events %.2f (%v), want about a third", share, byAcct)
	}
	sso := byAcct[psHome] + byAcct[psMember] + byAcct[sgHome]
	if share := float64(sso) / float64(len(w.Events)); share < 0.2 || share > 0.45 {
		t.Errorf("Identity Center's share of events %.2f (%v), want about a third", share, byAcct)
	}
	// Some unknown requesters in the member account are home users: their
	// email must not be mapped in the home account.
	homeOnly := 0
	for _, e := range w.Events {
		if m, _ := cast.Find(testMember); e.Scenario == ScenUnknown && e.Account == testMember &&
			slices.ContainsFunc(cast.Users, func(u User) bool { return u.Email == e.Email }) &&
			!slices.ContainsFunc(m.Users, func(u User) bool { return u.Email == e.Email }) {
			homeOnly++
		}
	}
	if homeOnly == 0 {
		t.Errorf("no member-account request for a home-only email")
	}
	for i, s := range w.Sends {
		if i > 0 && s.At < w.Sends[i-1].At {
			t.Fatalf("sends out of order at %d", i)
		}
	}
	for _, e := range w.Events {
		if e.Scenario == ScenStale && e.Expires().After(w.Start.Add(30*time.Second)) {
			t.Errorf("stale escalate %s expires at %s, after its send", e.SymID, e.Expires())
		}
	}
	pairs := map[string]bool{}
	for _, sc := range w.Scripts {
		for _, e := range sc.Events {
			if !slices.Contains(w.Events, e) || e.Scenario != sc.Scenario {
				t.Errorf("%s script event %s is not a planned %s event", sc.Scenario, e.SymID, sc.Scenario)
			}
		}
		if sc.Scenario == ScenOverlap {
			long, short := sc.Events[0], sc.Events[1]
			if long.Role != "long" || short.Role != "short" || long.Pair != short.GrantID || short.Expires().After(long.Expires()) {
				t.Errorf("overlap script %+v, %+v", long, short)
			}
			if long.Account != short.Account || long.ARN != short.ARN {
				t.Errorf("overlap script's grants in %s (%s) and %s (%s)", long.Account, long.ARN, short.Account, short.ARN)
			}
			if p := long.Account + "/" + long.User + "/" + long.Group; pairs[p] {
				t.Errorf("overlap pair %s used twice", p)
			} else {
				pairs[p] = true
			}
		}
	}
	// 12 users x 2 overlap groups at home, 8 x 1 in the member account,
	// 6 + 4 + 6 in the Identity Center spaces: 48 pairs, each used once.
	if extra := w.AddOverlap("", start, 30*time.Second); len(pairs) > 48 || (extra == nil) != (len(pairs) == 48) {
		t.Errorf("%d overlap pairs used, and AddOverlap gives %v", len(pairs), extra)
	}
	small := NewWorkload(cast, start, WorkloadOptions{Events: 20, Spread: 30 * time.Second, Seed: 1})
	for _, a := range cast.Accounts() {
		if !small.hasScript(ScenOverlap, a.ID) || !small.hasScript(ScenReorder, a.ID) {
			t.Errorf("a small plan has no overlap or reorder script in account %s", a.ID)
		}
		extra := small.AddOverlap(a.ID, start.Add(time.Minute), 30*time.Second)
		if extra == nil || extra.At != time.Minute || extra.Scenario != ScenOverlap || extra.Account() != a.ID || extra.Events[0].Duration < 30 || len(extra.Events) != 4 || extra.Events[3].Type != TypeDeesc || extra.Events[3].GrantID != extra.Events[0].GrantID {
			t.Errorf("AddOverlap(%s) = %+v, want a deescalated overlap script there a minute in", a.ID, extra)
		}
		if re := small.AddReorder(a.ID, start); re == nil || re.Account() != a.ID || re.Scenario != ScenReorder {
			t.Errorf("AddReorder(%s) = %+v", a.ID, re)
		}
	}
	if small.AddReorder(ForeignAccount, start) != nil {
		t.Errorf("AddReorder plans in an account the cast does not have")
	}
	tail := w.AddTail(start.Add(time.Minute), 2*len(cast.Accounts()), 20*time.Second, 2, nil)
	if len(tail) < 12 || tail[0].At < time.Minute {
		t.Errorf("tail = %d sends starting at %s", len(tail), tail[0].At)
	}
	// Two tail grants in every account and space, the first on the group
	// whose members may assume its /jit/ role, never deescalated.
	for _, a := range cast.Accounts() {
		var esc []*Event
		for _, s := range tail {
			if s.Event.Account == a.ID && s.Event.Type == TypeEsc && !slices.Contains(esc, s.Event) {
				esc = append(esc, s.Event)
			}
		}
		kept := slices.ContainsFunc(esc, func(e *Event) bool {
			return e.Group == a.Groups[0] && !slices.ContainsFunc(tail, func(s Send) bool { return s.Event.Type == TypeDeesc && s.Event.GrantID == e.GrantID })
		})
		if len(esc) != 2 || !kept {
			t.Errorf("tail grants in %s: %v, want two, one on %s not deescalated", a.ID, esc, a.Groups[0])
		}
	}
	if !slices.ContainsFunc(tail, func(s Send) bool { return s.Event.Type == TypeDeesc }) {
		t.Errorf("no tail grant deescalated: %v", tail)
	}
	// The late-add tail: IAM accounts only.
	for _, s := range w.AddTail(start.Add(2*time.Minute), 3, 10*time.Second, 3, cast.IAMAccounts()) {
		if _, ok := cast.Find(s.Event.Account); !ok || cast.IsMember(s.Event.Account) && s.Event.Account != testMember || s.Event.Kind != grants.IAMGroup {
			t.Errorf("IAM tail event in %s (%s)", s.Event.Account, s.Event.Kind)
		}
	}
}

// The checker finds planted violations of each invariant.
func TestCheckFindsViolations(t *testing.T) {
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	cast := NewCast("t", testHome, 2, 1, 1)
	u, grp, ov := cast.Users[0], cast.Groups[0], cast.OverlapGroups[0]
	w := &Workload{Cast: cast, Start: start}
	esc := &Event{SymID: "e1", Type: TypeEsc, Scenario: ScenPlain, GrantID: "r1/t", User: u.Name, Group: grp, Account: testHome, Timestamp: start, Duration: 10}
	stale := &Event{SymID: "e2", Type: TypeEsc, Scenario: ScenStale, GrantID: "r2/t", User: u.Name, Group: grp, Account: testHome, Timestamp: start, Duration: 1}
	lost := &Event{SymID: "e3", Type: TypeEsc, Scenario: ScenPlain, GrantID: "r3/t", User: u.Name, Group: grp, Account: testHome, Timestamp: start, Duration: 10}
	long := &Event{SymID: "e4", Type: TypeEsc, Scenario: ScenOverlap, Role: "long", GrantID: "r4/t", Pair: "r5/t", User: u.Name, Group: ov, Account: testHome, Timestamp: start, Duration: 40}
	w.Events = []*Event{esc, stale, lost, long}
	g1 := grants.Grant{ID: "r1/t", State: grants.StateRevoked, SymEventID: "e1", IAMUser: u.Name, Group: grp, RevokedAt: start.Add(10 * time.Second), RevokeReason: "expired",
		History: []grants.Transition{{Action: "escalate"}, {Action: "escalate"}}}
	g2 := grants.Grant{ID: "r2/t", State: grants.StateActive, SymEventID: "e2", IAMUser: u.Name, Group: grp, ExpiresAt: start.Add(time.Second)}
	longG := grants.Grant{ID: "r4/t", State: grants.StateRevoked, SymEventID: "e4", IAMUser: u.Name, Group: ov, GrantedAt: start, ExpiresAt: start.Add(40 * time.Second), RevokedAt: start.Add(41 * time.Second)}
	shortG := grants.Grant{ID: "r5/t", State: grants.StateRevoked, IAMUser: u.Name, Group: ov, GrantedAt: start, RevokedAt: start.Add(5 * time.Second),
		History: []grants.Transition{{Action: "revoke"}, {Action: "iam_add", At: start.Add(6 * time.Second)}}}
	now := time.Now()
	final := Snapshot{T0: now, T1: now, T2: now, IAM: map[Place][]string{{testHome, grp}: {u.Name, cast.Users[1].Name}, {testHome, ov}: {}, {testHome, cast.OutsideGroup}: {}},
		After: map[string]grants.Grant{g1.ID: g1, g2.ID: g2, longG.ID: longG, shortG.ID: shortG}}
	granted := events.Result{DetailType: events.AccessGranted, ResultID: "a", SymEventID: "e1", GrantID: "r1/t", IAMUser: u.Name, Group: grp}
	obs := Observed{
		Final: final,
		Results: []events.Result{granted, {DetailType: events.AccessGranted, ResultID: "b", SymEventID: "e1", GrantID: "r1/t", IAMUser: u.Name, Group: grp},
			{DetailType: events.AccessGranted, ResultID: "c", SymEventID: "e2", GrantID: "r2/t", IAMUser: u.Name, Group: grp},
			{DetailType: events.AccessRevoked, ResultID: "d", GrantID: "r1/t", Reason: "deescalated"},
			{DetailType: events.AccessGranted, ResultID: "e", SymEventID: "e4", GrantID: "r4/t", IAMUser: u.Name, Group: ov}},
		DLQ: []DLQMessage{{Body: "{}"}},
		Samples: []Sample{
			{Start: start.Add(7 * time.Second), End: start.Add(7100 * time.Millisecond), Account: testHome, Group: ov, Members: map[string]bool{u.Name: true}},
			{Start: start.Add(8 * time.Second), End: start.Add(8100 * time.Millisecond), Account: testHome, Group: ov, Members: map[string]bool{}},
		},
		OutsideBefore: map[string][]string{testHome: {cast.Users[1].Name}},
	}
	rep := Check(w, obs)
	all := strings.Join(rep.Violations, "\n")
	for _, want := range []string{
		"inv1: at rest " + cast.Users[1].Name + " is in IAM group " + grp + " of account " + testHome + " without an active grant",
		"inv1: at rest grant r2/t",                // ACTIVE past expiry
		"inv2: escalate e3 (plain) has no result", // lost
		"inv2: message  \"{}\" reached the DLQ without iamjit's reason",
		"inv3: Sym event e1|Access Granted has 2 different result_ids",
		"inv3: grant r1/t took effect more than once",
		"inv3: grant r1/t is REVOKED (expired) in DynamoDB but its results say [deescalated]",
		"inv4: stale escalate e2 (group t-g1): want Access Request Rejected expired",
		"inv5: " + u.Name + " left " + ov + " of account " + testHome,
		"inv7: group t-outside of account " + testHome + ", outside the managed path, changed",
		"inv9: Access Granted result of grant r1/t (t-u01 in t-g1) carries account_id \"\"", // results name the home account too
	} {
		if !strings.Contains(all, want) {
			t.Errorf("violations lack %q; got:\n%s", want, all)
		}
	}
}

// Each fault reaches the SDK as the error a real service would give, and
// awsx classifies it as retryable by its type or code; apply_drop reaches
// the backend although the caller sees a failure.
func TestProxyFaults(t *testing.T) {
	backend, hits := countingBackend(t)
	cases := []struct {
		kind, sqsCode, iamCode, ddbCode string
		reaches                         bool
	}{
		{FaultThrottle, "ThrottlingException", "Throttling", "ThrottlingException", false},
		{Fault500, "InternalFailure", "InternalFailure", "InternalFailure", false},
		{FaultHoldDrop, "", "", "", false},
		{FaultApplyDrop, "", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			p, cfg := throughProxy(t, backend, ProxyOptions{Rate: 1, Kinds: []string{c.kind}, MaxHold: 10 * time.Millisecond, Seed: 3}, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			before := hits.Load()
			_, sqsErr := sqs.NewFromConfig(cfg).GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("q")})
			_, iamErr := iam.NewFromConfig(cfg).GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("g")})
			_, ddbErr := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("t")})
			for name, e := range map[string]struct {
				err  error
				code string
			}{"sqs": {sqsErr, c.sqsCode}, "iam": {iamErr, c.iamCode}, "dynamodb": {ddbErr, c.ddbCode}} {
				if e.err == nil {
					t.Fatalf("%s: call succeeded through a %s fault", name, c.kind)
				}
				if !awsx.Retryable(e.err) {
					t.Errorf("%s: %s fault is not retryable: %v", name, c.kind, e.err)
				}
				if e.code != "" && awsx.Code(e.err) != e.code {
					t.Errorf("%s: code %q, want %q (%v)", name, awsx.Code(e.err), e.code, e.err)
				}
			}
			if got := hits.Load() - before; (got == 3) != c.reaches || (!c.reaches && got != 0) {
				t.Errorf("backend saw %d calls, want reached=%v", got, c.reaches)
			}
			if st := p.Stats(); st.Faults[c.kind] != 3 {
				t.Errorf("faults counted %v, want 3 %s", st.Faults, c.kind)
			}
		})
	}
}

// The DynamoDB transaction faults reach the SDK as DynamoDB's own errors
// (the cancellation reasons decoded), never reach moto, touch only
// TransactWriteItems, and the proxy tells the SDK's retries of the same
// request from new requests.
func TestProxyTransactionFaults(t *testing.T) {
	backend, hits := countingBackend(t)
	// A new input for every call: the SDK writes the ClientRequestToken it
	// draws into the input.
	three := func() *dynamodb.TransactWriteItemsInput {
		var items []ddbtypes.TransactWriteItem
		for _, pk := range []string{"a", "b", "c"} {
			items = append(items, ddbtypes.TransactWriteItem{Put: &ddbtypes.Put{TableName: aws.String("t"),
				Item: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: pk}}}})
		}
		return &dynamodb.TransactWriteItemsInput{TransactItems: items}
	}
	client := func(t *testing.T, kind string, attempts int, opts ...func(*dynamodb.Options)) (*Proxy, *dynamodb.Client) {
		p, cfg := throughProxy(t, backend, ProxyOptions{TxRate: 1, TxKinds: []string{kind}, Seed: 5}, attempts)
		return p, dynamodb.NewFromConfig(cfg, opts...)
	}
	for kind, reason := range map[string]string{FaultTxConflict: "TransactionConflict", FaultTxThrottle: "ThrottlingError", FaultThroughput: ""} {
		t.Run(kind, func(t *testing.T) {
			p, db := client(t, kind, 1)
			before := hits.Load()
			_, err := db.TransactWriteItems(context.Background(), three())
			if reason == "" {
				var pe *ddbtypes.ProvisionedThroughputExceededException
				if !errors.As(err, &pe) || aws.ToString(pe.Message) == "" {
					t.Fatalf("err = %v, want a ProvisionedThroughputExceededException with its message", err)
				}
			} else {
				var tce *ddbtypes.TransactionCanceledException
				if !errors.As(err, &tce) {
					t.Fatalf("err = %v, want a TransactionCanceledException", err)
				}
				var codes []string
				for _, r := range tce.CancellationReasons {
					codes = append(codes, aws.ToString(r.Code))
				}
				if len(codes) != 3 || slices.Index(codes, reason) < 0 || slices.Index(codes, reason) != slices.IndexFunc(codes, func(c string) bool { return c != "None" }) ||
					strings.Count(strings.Join(codes, ","), "None") != 2 {
					t.Errorf("reasons %v, want one %s and two None", codes, reason)
				}
				if dynamo.TransientCancellation(err) != reason {
					t.Errorf("iamjit classifies it as %q, want %q", dynamo.TransientCancellation(err), reason)
				}
			}
			if n := hits.Load() - before; n != 0 {
				t.Errorf("a %s fault reached the backend %d times", kind, n)
			}
			if _, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("t"),
				Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "a"}}}); err != nil {
				t.Errorf("GetItem met a transaction fault: %v", err)
			}
			if st := p.Stats(); st.Faults[kind] != 1 || st.TxFaults() != 1 || st.Total() != 1 {
				t.Errorf("faults counted %v, want one %s", st.Faults, kind)
			}
		})
	}
	t.Run("retries", func(t *testing.T) {
		p, db := client(t, FaultTxConflict, 0, dynamo.WithRetryer(nil))
		for range 2 {
			if _, err := db.TransactWriteItems(context.Background(), three()); dynamo.TransientCancellation(err) == "" {
				t.Fatalf("err = %v, want the conflict after the last attempt", err)
			}
		}
		st := p.Stats()
		// Every call: RetryMaxAttempts attempts with one body; the second
		// call has a new ClientRequestToken, so it is not a retry.
		want := 2 * dynamo.RetryMaxAttempts
		if st.Faults[FaultTxConflict] != want || st.Retried[FaultTxConflict] != want-2 || st.RetriedLate[FaultTxConflict] != 0 {
			t.Errorf("faults %v, retried %v, late %v; want %d faults and %d retried", st.Faults, st.Retried, st.RetriedLate, want, want-2)
		}
		if st.MaxRetryDelay <= 0 || st.MaxRetryDelay > RetryWindow {
			t.Errorf("longest retry delay %s", st.MaxRetryDelay)
		}
	})
}

// countingBackend stands in for AWS behind a proxy under test: it answers
// every request with an empty JSON object and counts the requests.
func countingBackend(t *testing.T) (string, *atomic.Int64) {
	hits := &atomic.Int64{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(backend.Close)
	return backend.URL, hits
}

// throughProxy starts a proxy with opts in front of backend, closed when
// the test ends, and an SDK config that calls through it with attempts
// attempts per call.
func throughProxy(t *testing.T, backend string, opts ProxyOptions, attempts int) (*Proxy, aws.Config) {
	t.Helper()
	p, err := NewProxy(backend, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	url, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	return p, aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), RetryMaxAttempts: attempts,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
}

// The replicas' retry and stale-add counters are read from what metrics
// really writes.
func TestParseRetries(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry(), awsx.NewCounter())
	if err != nil {
		t.Fatal(err)
	}
	m.TransactionRetried("TransactionConflict")
	m.TransactionRetried("TransactionConflict")
	m.TransactionRetried("ProvisionedThroughputExceededException")
	m.StaleAddsRepaired(3)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	got, err := parseRetries(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["TransactionConflict"] != 2 || got["ProvisionedThroughputExceededException"] != 1 || got[staleAddsKey] != 3 {
		t.Errorf("parsed %v", got)
	}
}

// The revocation check reads iamjit's own documents: per-user statements
// (one name or several) and the role-wide one, and fails on an old cutoff.
func TestRevocationPolicyDenies(t *testing.T) {
	end := time.Date(2026, 12, 1, 10, 0, 0, 500e6, time.UTC)
	doc := `{"Version":"2012-10-17","Statement":[
		{"Sid":"a","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceIdentity":"alice"},"DateLessThan":{"aws:TokenIssueTime":"2026-12-01T10:00:01Z"}}},
		{"Sid":"b","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceIdentity":["bob","carol"]},"DateLessThan":{"aws:TokenIssueTime":"2026-12-01T09:59:00Z"}}}]}`
	p, err := parseRevocationPolicy(url.QueryEscape(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !p.denies("alice", end) || p.denies("bob", end) || p.denies("dave", end) || !p.denies("carol", end.Add(-2*time.Minute)) {
		t.Errorf("per-user: %+v", p)
	}
	p, err = parseRevocationPolicy(`{"Statement":[{"Effect":"Deny","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-01T10:00:01Z"}}}]}`)
	if err != nil || !p.denies("anyone", end) || p.denies("anyone", end.Add(time.Second)) {
		t.Errorf("role-wide: %+v, %v", p, err)
	}
}

// The late-add check fails when nothing was injected, when the read-back
// undid none of them (an undo of the same names in another account is
// none), and when the counter lacks an undo logged before it was read or
// holds more than were logged.
func TestCheckLateAddsFails(t *testing.T) {
	in := []injection{{Account: testHome, User: "u1", Group: "g1"}, {Account: testMember, User: "u2", Group: "g1"}}
	for _, c := range []struct {
		name       string
		injected   []injection
		undone     []string
		beforeRead int
		metric     int64
		fails      bool
	}{
		{"none injected", nil, nil, 0, 0, true},
		{"read-back undid none", in, []string{testHome + "#u9#g1"}, 1, 1, true},
		{"read-back undid the same names in another account", in, []string{testMember + "#u1#g1", testHome + "#u2#g1"}, 2, 2, true},
		{"metric short", in, []string{testHome + "#u1#g1", testHome + "#u9#g1"}, 2, 1, true},
		{"metric invents", in, []string{testHome + "#u1#g1", testHome + "#u9#g1"}, 2, 3, true},
		{"ok", in, []string{testHome + "#u1#g1", testHome + "#u9#g1"}, 2, 2, false},
		{"ok in the member account", in, []string{testMember + "#u2#g1"}, 1, 1, false},
		{"ok: killed between the read and an undo", in, []string{testHome + "#u1#g1", testHome + "#u9#g1"}, 1, 1, false},
	} {
		r := Report{Figures: map[string]int{}}
		checkLateAdds(&r, c.injected, c.undone, c.beforeRead, c.metric, nil)
		if got := len(r.Violations) > 0; got != c.fails {
			t.Errorf("%s: violations %v", c.name, r.Violations)
		}
	}
}

// undoneInLog counts an undo as before the read only between a start and
// the harness's read marker.
func TestUndoneInLogSplitsAtTheRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replica.log")
	log := `{"chaos":"start","replica":0,"start":1}
{"msg":"late add undone: IAM had the user","account_id":"123456789012","iam_user":"a","group":"g"}
{"chaos":"scraped","replica":0}
{"msg":"late add undone: IAM had the user","account_id":"123456789012","iam_user":"b","group":"g"}
{"chaos":"start","replica":0,"start":2}
{"msg":"late add undone: IAM had the user","account_id":"111111111111","iam_user":"c","group":"g"}
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	undone, before := undoneInLog(path)
	if strings.Join(undone, ",") != testHome+"#a#g,"+testHome+"#b#g,"+testMember+"#c#g" || before != 2 {
		t.Fatalf("undone %v, before the read %d; want a, b, c and 2 (a and c)", undone, before)
	}
}

// perAccountRun is a correct run in two accounts with one group name in
// both: t-u01 granted t-g1 at home, t-u01-111111111111 (the same email)
// granted t-g1 in the member account, both active at the mid-point and
// expired at rest.
func perAccountRun() (*Workload, Observed) {
	cast := testCast()
	m := cast.Members[0]
	hu, mu, g := cast.Users[0], m.Users[0], cast.Groups[0]
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	w := &Workload{Cast: cast, Start: start}
	eh := &Event{SymID: "eh", Type: TypeEsc, Scenario: ScenPlain, GrantID: "rh/t-" + g, User: hu.Name, Email: hu.Email, Group: g, Account: testHome, Timestamp: start, Duration: 10}
	em := &Event{SymID: "em", Type: TypeEsc, Scenario: ScenPlain, GrantID: "rm/t-" + testMember + "-" + g, User: mu.Name, Email: mu.Email, Group: g,
		Account: testMember, ARN: m.ARN(g), Timestamp: start, Duration: 10}
	ab := &Event{SymID: "ea", Type: TypeEsc, Scenario: ScenAbsent, GrantID: "ra/t", User: mu.Name, Email: mu.Email, Group: cast.Groups[3],
		Account: testMember, ARN: m.ARN(cast.Groups[3]), Timestamp: start, Duration: 3600}
	w.Events = []*Event{eh, em, ab}
	grant := func(e *Event, acct string, state grants.State) grants.Grant {
		return grants.Grant{ID: e.GrantID, State: state, Account: acct, SymEventID: e.SymID, IAMUser: e.User, Group: g,
			GrantedAt: start, ExpiresAt: start.Add(10 * time.Second), RevokedAt: start.Add(10 * time.Second), RevokeReason: "expired",
			History: []grants.Transition{{Action: "escalate"}, {Action: "revoke"}}}
	}
	gh, gm := grant(eh, "", grants.StateRevoked), grant(em, testMember, grants.StateRevoked)
	now := time.Now()
	empty := func() map[Place][]string {
		out := map[Place][]string{}
		for _, p := range managedAndOutside(cast) {
			out[p] = []string{}
		}
		for _, a := range cast.Accounts() {
			out[Place{a.ID, a.OutsideGroup}] = []string{a.Users[0].Name}
		}
		return out
	}
	// The mid-point: both active, each user in its own account's group.
	ah, am := grant(eh, "", grants.StateActive), grant(em, testMember, grants.StateActive)
	ah.ExpiresAt, am.ExpiresAt, ah.RevokedAt, am.RevokedAt = now.Add(time.Minute), now.Add(time.Minute), time.Time{}, time.Time{}
	mid := Snapshot{T0: now, T1: now, T2: now, IAM: empty(), Expiring: map[string]bool{},
		Before: map[string]grants.Grant{ah.ID: ah, am.ID: am}, After: map[string]grants.Grant{ah.ID: ah, am.ID: am}}
	mid.IAM[Place{testHome, g}] = []string{hu.Name}
	mid.IAM[Place{testMember, g}] = []string{mu.Name}
	result := func(kind string, gr grants.Grant, acct string, e *Event) events.Result {
		return events.Result{DetailType: kind, ResultID: kind + gr.ID, SymEventID: e.SymID, GrantID: gr.ID, IAMUser: gr.IAMUser, Group: g,
			GroupARN: GroupARN(acct, "/sym/", g), AccountID: acct, Reason: map[string]string{events.AccessRevoked: "expired"}[kind]}
	}
	o := Observed{
		Mid:   &mid,
		Final: Snapshot{T0: now, T1: now, T2: now, IAM: empty(), After: map[string]grants.Grant{gh.ID: gh, gm.ID: gm}},
		Members: []MemberItem{
			{PK: "member#" + hu.Name + "#" + g, IAMUser: hu.Name, Group: g},
			{PK: "member#" + testMember + "#" + mu.Name + "#" + g, Account: testMember, IAMUser: mu.Name, Group: g},
		},
		Results: []events.Result{result(events.AccessGranted, gh, testHome, eh), result(events.AccessRevoked, gh, testHome, eh),
			result(events.AccessGranted, gm, testMember, em), result(events.AccessRevoked, gm, testMember, em),
			{DetailType: events.AccessRejected, ResultID: "x", SymEventID: ab.SymID, GrantID: ab.GrantID, Group: ab.ARN, Code: events.CodeUnknownGroup}},
		Samples: []Sample{
			{Start: start.Add(time.Second), End: start.Add(1100 * time.Millisecond), Account: testHome, Group: g, Members: map[string]bool{hu.Name: true}},
			{Start: start.Add(time.Second), End: start.Add(1100 * time.Millisecond), Account: testMember, Group: g, Members: map[string]bool{mu.Name: true}},
		},
		OutsideBefore: map[string][]string{testHome: {hu.Name}, testMember: {mu.Name}},
		Slack:         5 * time.Second,
	}
	// And in each Identity Center space: its first user granted its first
	// target (the same permission set in both accounts), active at the
	// mid-point with one copy, ended at rest.
	for _, sp := range cast.SSO {
		u, target := sp.Users[0], sp.Groups[0]
		e := &Event{SymID: "e-" + sp.ID, Type: TypeEsc, Scenario: ScenPlain, GrantID: "r-" + sp.ID + "/t", User: u.Name, Email: u.Email, Group: target,
			Account: sp.ID, Kind: sp.Kind, AWS: sp.AWS, Timestamp: start, Duration: 10}
		w.Events = append(w.Events, e)
		stored := map[bool]string{true: "", false: sp.AWS}[sp.AWS == testHome]
		gr := grants.Grant{ID: e.GrantID, Kind: sp.Kind, State: grants.StateRevoked, Account: stored, SymEventID: e.SymID, IAMUser: u.Name, Group: target,
			GrantedAt: start, ExpiresAt: start.Add(10 * time.Second), RevokedAt: start.Add(10 * time.Second), RevokeReason: "expired",
			History: []grants.Transition{{Action: "escalate"}, {Action: "revoke"}}}
		act := gr
		act.State, act.ExpiresAt, act.RevokedAt = grants.StateActive, now.Add(time.Minute), time.Time{}
		o.Final.After[gr.ID], o.Mid.Before[gr.ID], o.Mid.After[gr.ID] = gr, act, act
		o.Mid.IAM[Place{sp.ID, target}] = []string{u.Name}
		o.Final.IAM[Place{sp.ID, sp.OutsideGroup}] = []string{u.Name}
		o.Mid.IAM[Place{sp.ID, sp.OutsideGroup}] = []string{u.Name}
		o.OutsideBefore[sp.ID] = []string{u.Name}
		o.Members = append(o.Members, MemberItem{PK: "member#" + string(sp.Kind) + "#" + sp.AWS + "#" + u.Name + "#" + target, Kind: sp.Kind, Account: stored, IAMUser: u.Name, Group: target})
		o.Samples = append(o.Samples, NewSample(Place{sp.ID, target}, start.Add(time.Second), start.Add(1100*time.Millisecond), []string{u.Name}))
		for _, kind := range []string{events.AccessGranted, events.AccessRevoked} {
			res := events.Result{DetailType: kind, ResultID: kind + gr.ID, SymEventID: e.SymID, GrantID: gr.ID, TargetType: sp.Kind.TargetType(),
				SSOUserID: u.Name, AccountID: sp.AWS, Reason: map[string]string{events.AccessRevoked: "expired"}[kind]}
			if sp.Kind == grants.PermissionSet {
				res.PermissionSetARN = target
			} else {
				res.SSOGroupID = target
			}
			o.Results = append(o.Results, res)
		}
	}
	for i := range o.Results {
		if o.Results[i].TargetType == "" {
			o.Results[i].TargetType = "aws_iam_group"
		}
	}
	return w, o
}

// ssoResult is the index in o.Results of the kind's result of the
// Identity Center grant in space sp.
func ssoResult(o Observed, sp, kind string) int {
	return slices.IndexFunc(o.Results, func(r events.Result) bool { return r.GrantID == "r-"+sp+"/t" && r.DetailType == kind })
}

// Every check holds per account: a correct run with the same group name
// in two accounts passes, and each way of mixing the accounts up, or of
// leaving one unexercised, fails it.
func TestCheckPerAccount(t *testing.T) {
	// check is the run's verdict, with the figures the harness adds (the
	// scripts' and the proxy's) set in both accounts, fig then changing them.
	check := func(w *Workload, o Observed, fig func(map[string]int)) Report {
		r := Check(w, o)
		for _, a := range w.Cast.Accounts() {
			for _, f := range []string{"overlap_exercised", "reorder_tombstoned", "proxy_calls", "proxy_faults", events.RevokedDeescalated} {
				r.Figures[f+"@"+a.ID] = 1
			}
		}
		if fig != nil {
			fig(r.Figures)
		}
		RequireExercised(&r, w.Cast)
		return r
	}
	w, o := perAccountRun()
	rep := check(w, o, nil)
	if len(rep.Violations) > 0 {
		t.Fatalf("a correct run in two accounts has violations:\n%s", strings.Join(rep.Violations, "\n"))
	}
	for _, f := range []string{"granted@" + testHome, "granted@" + testMember, "mid_active_grants@" + testMember, "samples@" + testMember,
		"results/Access Revoked@" + testMember, "rejected_as_expected@" + testMember, "memberships@" + testMember,
		"granted@" + psHome, "granted@" + psMember, "granted@" + sgHome, "mid_active_grants@" + psMember, "memberships@" + sgHome, "samples@" + psMember} {
		if rep.Figures[f] != 1 {
			t.Errorf("figure %s = %d, want 1 (%v)", f, rep.Figures[f], rep.Figures)
		}
	}
	hu, mu, g := w.Cast.Users[0].Name, w.Cast.Members[0].Users[0].Name, w.Cast.Groups[0]
	home, member := Place{testHome, g}, Place{testMember, g}
	for _, c := range []struct {
		name string
		obs  func(w *Workload, o *Observed)
		fig  func(map[string]int)
		want string
	}{
		{"a member grant's result names the home account", func(w *Workload, o *Observed) {
			o.Results[2].AccountID = testHome
		}, nil, "inv9: Access Granted result of grant rm/t-111111111111-t-g1 (t-u01-111111111111 in t-g1) carries account_id \"123456789012\"; its group is in account 111111111111"},
		{"a result names the group of the other account", func(w *Workload, o *Observed) {
			o.Results[1].GroupARN = GroupARN(testMember, "/sym/", g)
		}, nil, "inv9: Access Revoked result of grant rh/t-t-g1 names group arn:aws:iam::111111111111:group/sym/t-g1"},
		{"a member grant stored as a home grant", func(w *Workload, o *Observed) {
			gm := o.Final.After["rm/t-111111111111-t-g1"]
			gm.Account = ""
			o.Final.After[gm.ID] = gm
		}, nil, "inv9: grant rm/t-111111111111-t-g1 (t-u01-111111111111 in t-g1) is stored in account 123456789012; its request named a group of account 111111111111"},
		{"a member grant for the home user (email mapped at home)", func(w *Workload, o *Observed) {
			gm := o.Final.After["rm/t-111111111111-t-g1"]
			gm.IAMUser = hu
			o.Final.After[gm.ID] = gm
		}, nil, "inv9: grant rm/t-111111111111-t-g1 in account 111111111111 is for IAM user t-u01, who is not a user of that account"},
		{"the mid-point finds the member user in the home group", func(w *Workload, o *Observed) {
			o.Mid.IAM[home] = []string{hu, mu}
		}, nil, "t-u01-111111111111 is in IAM group t-g1 of account 123456789012 with no grant there active or just ended"},
		{"the home grant applied in the member group", func(w *Workload, o *Observed) {
			o.Mid.IAM[home], o.Mid.IAM[member] = []string{}, []string{mu, hu}
		}, nil, "inv1 (mid-point): grant rh/t-t-g1 was active throughout the read but t-u01 is not in IAM group t-g1 of account 123456789012"},
		{"the home user's name (a decoy) in the member group", func(w *Workload, o *Observed) {
			o.Samples = append(o.Samples, Sample{Start: w.Start.Add(2 * time.Second), End: w.Start.Add(2 * time.Second), Account: testMember, Group: g, Members: map[string]bool{hu: true}})
		}, nil, "is in IAM group t-g1 of account 111111111111, and is not a user of that account"},
		{"the member user in the member group before any grant there", func(w *Workload, o *Observed) {
			o.Samples = append(o.Samples, Sample{Start: w.Start.Add(-2 * time.Second), End: w.Start.Add(-time.Second), Account: testMember, Group: g, Members: map[string]bool{mu: true}})
		}, nil, "is in IAM group t-g1 of account 111111111111, never granted there by then"},
		{"at rest the member group keeps its user", func(w *Workload, o *Observed) {
			o.Final.IAM[member] = []string{mu}
		}, nil, "inv1: at rest t-u01-111111111111 is in IAM group t-g1 of account 111111111111 without an active grant there"},
		{"at rest the member group was not read", func(w *Workload, o *Observed) {
			delete(o.Final.IAM, member)
		}, nil, "inv1: at rest IAM group t-g1 of account 111111111111 was not read"},
		{"a member membership item under the home key", func(w *Workload, o *Observed) {
			o.Members[1].PK = "member#" + mu + "#" + g
		}, nil, "inv9: membership item member#t-u01-111111111111#t-g1 has account \"111111111111\""},
		{"the member account's outside group changed", func(w *Workload, o *Observed) {
			o.Final.IAM[Place{testMember, w.Cast.OutsideGroup}] = []string{}
		}, nil, "inv7: group t-outside of account 111111111111, outside the managed path, changed"},
		{"a member request for a home-only group applied at home", func(w *Workload, o *Observed) {
			o.Results[4] = events.Result{DetailType: events.AccessGranted, ResultID: "y", SymEventID: "ea", GrantID: "ra/t", IAMUser: mu, Group: w.Cast.Groups[3], AccountID: testHome}
		}, nil, "inv4: absent escalate ea (group arn:aws:iam::111111111111:group/sym/t-g4): want Access Request Rejected unknown_group"},
		{"a copy of an assignment left at rest by a grant's removal", func(w *Workload, o *Observed) {
			p := Place{psMember, w.Cast.SSO[1].Groups[0]}
			o.Final.IAM[p] = []string{"9067000001-sso", "9067000001-sso"}
		}, nil, "inv1 (at rest): the assignments of permission set arn:aws:sso:::permissionSet/ssoins-test/ps-1 in account 111111111111 holds 2 copies of 9067000001-sso's membership; want exactly one"},
		{"an assignment left at rest", func(w *Workload, o *Observed) {
			o.Final.IAM[Place{psHome, w.Cast.SSO[0].Groups[0]}] = []string{"9067000001-sso"}
		}, nil, "inv1: at rest 9067000001-sso is in the assignments of permission set arn:aws:sso:::permissionSet/ssoins-test/ps-1 in account 123456789012 without an active grant there"},
		{"a group membership left at rest", func(w *Workload, o *Observed) {
			o.Final.IAM[Place{sgHome, "g-1"}] = []string{"9067000001-sso"}
		}, nil, "inv1: at rest 9067000001-sso is in Identity Store group g-1 (instance of account 123456789012) without an active grant there"},
		{"the member space's grant assigned in the home account", func(w *Workload, o *Observed) {
			p := Place{psHome, w.Cast.SSO[0].Groups[0]}
			o.Mid.IAM[Place{psMember, w.Cast.SSO[1].Groups[0]}], o.Mid.IAM[p] = []string{}, []string{"9067000001-sso"}
			delete(o.Mid.Before, "r-"+psHome+"/t")
			delete(o.Mid.After, "r-"+psHome+"/t")
		}, nil, "inv1 (mid-point, IAM read at"},
		{"a permission set's result without the user id", func(w *Workload, o *Observed) {
			o.Results[ssoResult(*o, psHome, events.AccessGranted)].SSOUserID = ""
		}, nil, "names aws_sso_permission_set arn:aws:sso:::permissionSet/ssoins-test/ps-1 for user \"\"; planned arn:aws:sso:::permissionSet/ssoins-test/ps-1 for 9067000001-sso"},
		{"a group's result with an IAM field", func(w *Workload, o *Observed) {
			o.Results[ssoResult(*o, sgHome, events.AccessRevoked)].IAMUser = "t-u01"
		}, nil, "(aws_sso_group) sets [iam_user], fields of another kind of target"},
		{"a group's result typed as an IAM group", func(w *Workload, o *Observed) {
			o.Results[ssoResult(*o, sgHome, events.AccessGranted)].TargetType = "aws_iam_group"
		}, nil, "carries target_type \"aws_iam_group\"; its request's target is aws_sso_group"},
		{"an IAM result typed as a permission set", func(w *Workload, o *Observed) {
			o.Results[0].TargetType = events.TargetSSOPermissionSet
		}, nil, "carries target_type \"aws_sso_permission_set\"; its request's target is aws_iam_group"},
		{"a member assignment's result names the home account", func(w *Workload, o *Observed) {
			o.Results[ssoResult(*o, psMember, events.AccessRevoked)].AccountID = testHome
		}, nil, "carries account_id \"123456789012\"; its group is in account 111111111111"},
		{"a member assignment stored in the home account", func(w *Workload, o *Observed) {
			g := o.Final.After["r-"+psMember+"/t"]
			g.Account = ""
			o.Final.After[g.ID] = g
		}, nil, "is stored in account ps:123456789012; its request named a group of account ps:111111111111"},
		{"an Identity Center membership item under an IAM key", func(w *Workload, o *Observed) {
			o.Members[len(o.Members)-1].PK = "member#9067000001-sso#g-1"
		}, nil, "inv9: membership item member#9067000001-sso#g-1"},
		{"the outside permission set changed", func(w *Workload, o *Observed) {
			o.Final.IAM[Place{psHome, w.Cast.SSO[0].OutsideGroup}] = []string{}
		}, nil, "inv7: the assignments of permission set arn:aws:sso:::permissionSet/ssoins-test/ps-out in account 123456789012, outside IAMJIT_SSO_*, changed"},
		{"no Identity Center membership read with one copy", func(w *Workload, o *Observed) {
			o.Mid.IAM[Place{sgHome, "g-1"}] = []string{}
			o.Samples = slices.DeleteFunc(o.Samples, func(s Sample) bool { return s.Account == sgHome })
			delete(o.Mid.Before, "r-"+sgHome+"/t")
			delete(o.Mid.After, "r-"+sgHome+"/t")
		}, nil, "inv9: account sg:123456789012 was not exercised: one_copy_checked@sg:123456789012 is 0"},
		{"no result of a space checked", func(w *Workload, o *Observed) {
			o.Results = slices.DeleteFunc(o.Results, func(r events.Result) bool {
				return r.AccountID == testMember && r.TargetType == events.TargetSSOPermissionSet
			})
		}, nil, "inv9: account ps:111111111111 was not exercised: results_target_checked@ps:111111111111 is 0"},
		{"nothing granted in the member account", nil, func(f map[string]int) {
			delete(f, "granted@"+testMember)
		}, "inv9: account 111111111111 was not exercised: granted@111111111111 is 0"},
		{"no IAM call in the member account went through the proxy", nil, func(f map[string]int) {
			delete(f, "proxy_calls@"+testMember)
		}, "inv9: account 111111111111 was not exercised: proxy_calls@111111111111 is 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, o := perAccountRun()
			if c.obs != nil {
				c.obs(w, &o)
			}
			r := check(w, o, c.fig)
			all := strings.Join(r.Violations, "\n")
			if !strings.Contains(all, c.want) {
				t.Errorf("violations lack %q; got:\n%s", c.want, all)
			}
		})
	}
}

// The proxy counts requests and faults by the account of the credentials
// that signed them: keys handed out by an AssumeRole answer through it act
// in the assumed role's account; others are BaseCredentials.
func TestProxyCountsByAccount(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "Action=AssumeRole") {
			w.Header().Set("Content-Type", "text/xml")
			fmt.Fprint(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAMEMBERKEY</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>tok</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><AssumedRoleId>AROA:x</AssumedRoleId><Arn>arn:aws:sts::111111111111:assumed-role/chaos-connector/x</Arn></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>`)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, `<GetGroupResponse><GetGroupResult><Group><GroupName>g</GroupName></Group><Users></Users><IsTruncated>false</IsTruncated></GetGroupResult></GetGroupResponse>`)
	}))
	t.Cleanup(backend.Close)
	// Every IAM call fails once (then succeeds on the SDK's retry); the
	// AssumeRole is exempt.
	p, cfg := throughProxy(t, backend.URL, ProxyOptions{Rate: 0.5, Kinds: []string{Fault500}, Seed: 9, Exempt: map[string]bool{"sts.AssumeRole": true}}, 8)
	ctx := context.Background()
	out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111111111111:role/sym/chaos-connector"), RoleSessionName: aws.String("x")})
	if err != nil {
		t.Fatal(err)
	}
	member := cfg.Copy()
	member.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
	for range 6 {
		if _, err := iam.NewFromConfig(member).GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("g")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := iam.NewFromConfig(cfg).GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	var total int64
	for _, n := range st.ByAccount {
		total += n
	}
	if st.ByAccount["111111111111"] < 6 || st.ByAccount[BaseCredentials] < 2 || total != st.Requests {
		t.Errorf("requests by account %v (of %d), want 6+ in 111111111111 and 2+ with the base credentials", st.ByAccount, st.Requests)
	}
	if st.FaultsByAccount["111111111111"] == 0 || st.FaultsByAccount["111111111111"]+st.FaultsByAccount[BaseCredentials] != st.Total() {
		t.Errorf("faults by account %v, of %d", st.FaultsByAccount, st.Total())
	}
}

// A second copy of an assignment while its grant is active (the mid-point,
// a sample) is moto's, counted and listed; at rest it fails the run
// (TestCheckPerAccount).
func TestCopiesWhileActiveAreCounted(t *testing.T) {
	w, o := perAccountRun()
	p := Place{psMember, w.Cast.SSO[1].Groups[0]}
	o.Mid.IAM[p] = append(o.Mid.IAM[p], o.Mid.IAM[p]...)
	o.Samples = append(o.Samples, NewSample(p, w.Start.Add(time.Second), w.Start.Add(time.Second), o.Mid.IAM[p]))
	r := Check(w, o)
	for _, v := range r.Violations {
		if strings.Contains(v, "copies") {
			t.Errorf("a copy while the grant is active failed the run: %s", v)
		}
	}
	if r.Figures["copies@"+psMember] != 2 || len(r.Notes) != 2 {
		t.Errorf("copies@%s = %d, notes %v; want 2 and both listed", psMember, r.Figures["copies@"+psMember], r.Notes)
	}
}
