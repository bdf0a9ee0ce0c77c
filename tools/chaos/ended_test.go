package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/sessions"
)

// lateAdder plays a dead replica's late AddUserToGroup: it watches the
// managed groups of every account and, when a user leaves one while their
// membership item holds no grant, adds them back at once, in that account,
// before the replicas' read-back of that removal (IAMJIT_READBACK_DELAY,
// 5 s). Only while armed, so that no injected add is pending while the
// test compares IAM with the grants (the mid-point snapshot). Every read
// it makes is kept as a sample for the whole-run check (checkSamples).
type lateAdder struct {
	aw     *awsClients
	groups []Place
	max    int // injections at most

	armed atomic.Bool
	mu    sync.Mutex
	got   []injection
	errs  []string
	reads []Sample
}

// injection is one late add the test made.
type injection struct {
	Account, User, Group string
	At                   time.Time
}

func (in injection) key() Key { return Key{in.Account, in.User, in.Group} }

// undoneIn reports whether a replica logged undoing this late add (undone
// as undoneInLog lists them).
func (in injection) undoneIn(undone []string) bool {
	return slices.Contains(undone, in.Account+"#"+in.User+"#"+in.Group)
}

// undoneByReadBack counts the injected late adds the replicas' logs say
// their read-back undid.
func undoneByReadBack(injected []injection, replicas []*Replica) int {
	var undone []string
	for _, r := range replicas {
		u, _ := undoneInLog(r.LogPath())
		undone = append(undone, u...)
	}
	n := 0
	for _, in := range injected {
		if in.undoneIn(undone) {
			n++
		}
	}
	return n
}

func (l *lateAdder) run(ctx context.Context, every time.Duration) {
	prev := map[Place]map[string]bool{}
	for ctx.Err() == nil {
		for _, p := range l.groups {
			start := time.Now()
			members, err := groupMembers(ctx, l.aw.iamOf(p.Account), p.Group)
			if err != nil {
				continue
			}
			s := NewSample(p, start, time.Now(), members)
			now := s.Members
			l.mu.Lock()
			l.reads = append(l.reads, s)
			l.mu.Unlock()
			for u := range prev[p] {
				k := Key{p.Account, u, p.Group}
				if !now[u] && l.armed.Load() && l.room() && !l.injected(k) {
					l.maybeAdd(ctx, k)
				}
			}
			prev[p] = now
		}
		sleep(ctx, every)
	}
}

// room reports whether the adder may inject one more.
func (l *lateAdder) room() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.got) < l.max
}

// allow lets the adder inject n more than it has.
func (l *lateAdder) allow(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max = len(l.got) + n
}

// samples are the reads the adder made.
func (l *lateAdder) samples() []Sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reads)
}

// storeKey is the store's key of membership k (grants/dynamo): the home
// account's items keep their old key, a member account's name it.
func (a *awsClients) storeKey(k Key) string {
	if k.Account == a.home {
		return "member#" + k.User + "#" + k.Group
	}
	return "member#" + k.Account + "#" + k.User + "#" + k.Group
}

// maybeAdd adds the user back to the group if the store says the
// membership is empty (a removal iamjit meant, not one between two grants'
// writes) and its read-back is queued.
func (l *lateAdder) maybeAdd(ctx context.Context, k Key) {
	out, err := l.aw.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: &l.aw.stack.Table, ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: l.aw.storeKey(k)}}})
	if err != nil || out.Item == nil {
		return
	}
	if gs, ok := out.Item["grants"].(*ddbtypes.AttributeValueMemberSS); ok && len(gs.Value) > 0 {
		return
	}
	// Only once the removal is synced and its read-back queued: while the
	// item is dirty, the next converge (a sweep's repair, a redelivery)
	// removes the user as a plain convergence, not as a late add undone.
	if d, ok := out.Item["due_pk"].(*ddbtypes.AttributeValueMemberS); !ok || d.Value != "RECHECK" {
		return
	}
	at := time.Now()
	if _, err := l.aw.iamOf(k.Account).AddUserToGroup(ctx, &iam.AddUserToGroupInput{UserName: &k.User, GroupName: &k.Group}); err != nil {
		if ctx.Err() == nil {
			l.mu.Lock()
			l.errs = append(l.errs, fmt.Sprintf("late add of %s: %v", k, err))
			l.mu.Unlock()
		}
		return
	}
	l.mu.Lock()
	l.got = append(l.got, injection{Account: k.Account, User: k.User, Group: k.Group, At: at})
	l.mu.Unlock()
}

// injected reports whether the membership had its late add already: once
// per membership, since the removal that undoes a late add is not read
// back again (a second late add after it would stay; a dead replica sends
// one).
func (l *lateAdder) injected(k Key) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.got, func(in injection) bool { return in.key() == k })
}

func (l *lateAdder) injections() []injection {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// waitUndone waits until every injected user is out of their group or has
// an ACTIVE grant on it again in its account (a newer grant superseded the
// read-back).
func (l *lateAdder) waitUndone(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var still []string
		all, err := l.aw.scanGrants(ctx)
		if err != nil {
			return err
		}
		for _, in := range l.injections() {
			members, err := groupMembers(ctx, l.aw.iamOf(in.Account), in.Group)
			if err != nil {
				return err
			}
			if !slices.Contains(members, in.User) {
				continue
			}
			active := false
			for _, s := range all {
				if l.aw.keyOf(s.grant) == in.key() && s.grant.State == grants.StateActive {
					active = true
				}
			}
			if !active {
				still = append(still, in.key().String())
			}
		}
		if len(still) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("late adds not undone %s after the removal: %s", limit, strings.Join(still, ", "))
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// checkLateAdds: at rest every injected user is out (waitUndone and the
// final snapshot check IAM against the grants, and only iamjit removes).
// Who undid each: the read-back (logged "late add undone" and counted in
// iamjit_stale_adds_repaired_total), or, before it, another convergence
// of the same membership (a redelivered or duplicate message, a losing
// replica's expiry, a sweep re-reading a grant still in the expiry index),
// which removes the user as plain convergence, uncounted. So: the counter
// must hold every undo logged before the counter was read (none lost) and
// no more than were logged (none invented; a SIGKILL may fall between the
// read and an undo), and the read-back must have undone at least one
// injected late add. undone lists the logged undos as "account#user#group";
// beforeRead of them were logged before their process's counter was read.
// An undo logged in another account than its injection's is no undo of it.
func checkLateAdds(rep *Report, injected []injection, undone []string, beforeRead int, repaired int64, errs []string) {
	for _, e := range errs {
		rep.fail("late add: the test could not inject: %s", e)
	}
	if len(injected) == 0 {
		rep.fail("late add: no late add was injected: the read-back check proved nothing")
		return
	}
	byReadBack := 0
	for _, in := range injected {
		rep.Figures["late_adds_injected@"+in.Account]++
		if in.undoneIn(undone) {
			byReadBack++
			rep.Figures["late_adds_undone_by_read_back@"+in.Account]++
		}
	}
	rep.Figures["late_adds_injected"] = len(injected)
	rep.Figures["late_adds_undone_by_read_back"] = byReadBack
	rep.Figures["late_adds_logged_undone"] = len(undone)
	rep.Figures["stale_adds_repaired_metric"] = int(repaired)
	if byReadBack == 0 {
		rep.fail("late add: none of %d injected late adds was undone by the read-back (all by other convergences): the read-back was not exercised", len(injected))
	}
	if repaired < int64(beforeRead) || repaired > int64(len(undone)) {
		rep.fail("late add: the replicas logged %d late adds undone (%d before their counters were read) but iamjit_stale_adds_repaired_total sums to %d",
			len(undone), beforeRead, repaired)
	}
}

// undoneInLog lists the late adds a replica's log says it undid, as
// "account#user#group", and how many of them were logged before their process's
// metrics were read (the harness marks each read in the log): those the
// counter read must include.
func undoneInLog(path string) (undone []string, beforeRead int) {
	read := false
	_ = eachLogLine(path, func(b []byte) {
		var line struct {
			Chaos   string `json:"chaos"`
			Msg     string `json:"msg"`
			Account string `json:"account_id"`
			User    string `json:"iam_user"`
			Group   string `json:"group"`
		}
		if json.Unmarshal(b, &line) != nil {
			return
		}
		switch {
		case line.Chaos == "start":
			read = false
		case line.Chaos == "scraped":
			read = true
		case strings.HasPrefix(line.Msg, "late add undone"):
			undone = append(undone, line.Account+"#"+line.User+"#"+line.Group)
			if !read {
				beforeRead++
			}
		}
	})
	return undone, beforeRead
}

// revocationPolicy is iamjit-session-revocation as the check reads it.
type revocationPolicy struct {
	perUser  map[string]time.Time // user -> latest cutoff of a statement naming them
	roleWide time.Time            // latest cutoff of a statement naming no user
}

func parseRevocationPolicy(doc string) (revocationPolicy, error) {
	if strings.HasPrefix(doc, "%") {
		if d, err := url.QueryUnescape(doc); err == nil {
			doc = d
		}
	}
	var d struct {
		Statement []struct {
			Effect    string
			Condition map[string]map[string]json.RawMessage
		}
	}
	p := revocationPolicy{perUser: map[string]time.Time{}}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return p, fmt.Errorf("policy document: %w: %s", err, doc)
	}
	for _, st := range d.Statement {
		if st.Effect != "Deny" {
			continue
		}
		var issued string
		if err := json.Unmarshal(st.Condition["DateLessThan"]["aws:TokenIssueTime"], &issued); err != nil {
			return p, fmt.Errorf("statement without a DateLessThan aws:TokenIssueTime: %s", doc)
		}
		cut, err := time.Parse(time.RFC3339, issued)
		if err != nil {
			return p, fmt.Errorf("aws:TokenIssueTime %q: %w", issued, err)
		}
		raw, ok := st.Condition["StringEquals"]["aws:SourceIdentity"]
		if !ok {
			if cut.After(p.roleWide) {
				p.roleWide = cut
			}
			continue
		}
		var users []string
		if json.Unmarshal(raw, &users) != nil {
			var one string
			if err := json.Unmarshal(raw, &one); err != nil {
				return p, fmt.Errorf("aws:SourceIdentity %s: %w", raw, err)
			}
			users = []string{one}
		}
		for _, u := range users {
			if cut.After(p.perUser[u]) {
				p.perUser[u] = cut
			}
		}
	}
	return p, nil
}

// denies reports whether the policy ends the user's sessions issued before
// end: a statement for them, or a role-wide one, whose cutoff is not
// earlier than end.
func (p revocationPolicy) denies(user string, end time.Time) bool {
	return !p.perUser[user].Before(end) || !p.roleWide.Before(end)
}

// roleItem reads the role's item (sessions/dynamo; keyed by the role's
// ARN, so one per account): each user's recorded revocation time and
// whether the item is still dirty.
func (a *awsClients) roleItem(ctx context.Context, roleARN string) (map[string]time.Time, string, error) {
	out, err := a.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: &a.stack.Table, ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "role#" + roleARN}}})
	if err != nil {
		return nil, "", fmt.Errorf("get role item: %w", err)
	}
	users := map[string]time.Time{}
	due := ""
	for k, v := range out.Item {
		s, ok := v.(*ddbtypes.AttributeValueMemberS)
		if !ok {
			continue
		}
		if u, ok := strings.CutPrefix(k, "u#"); ok {
			users[u] = parseTS(s.Value)
		}
		if k == "due_pk" {
			due = s.Value
		}
	}
	return users, due, nil
}

// revocationCheck is invariant 8 in account acct: no session-revocation
// statement lost. For every user whose membership of the group there ended
// in the run (their last granted grant on it ended at end), the role's item
// in DynamoDB records a revocation at or after end, and the policy read
// back from that account's IAM denies their sessions issued before it (a
// statement for them, or a role-wide one, as new). The same-named group's
// memberships in other accounts count for nothing here. It returns the
// violations (empty when none) and how many memberships it checked.
func (a *awsClients) revocationCheck(ctx context.Context, acct, roleARN, group string, final map[string]grants.Grant) ([]string, int, error) {
	if arnAccount(roleARN) != acct {
		return nil, 0, fmt.Errorf("role %s is not in account %s", roleARN, acct)
	}
	ended := map[string]time.Time{}
	for _, g := range final {
		if g.Group != group || a.keyOf(g).Account != acct || g.GrantedAt.IsZero() || g.State == grants.StateActive {
			continue
		}
		if g.RevokedAt.After(ended[g.IAMUser]) {
			ended[g.IAMUser] = g.RevokedAt
		}
	}
	if len(ended) == 0 {
		return []string{fmt.Sprintf("inv8: no membership of %s in account %s ended in the run: the session-revocation check proved nothing", group, acct)}, 0, nil
	}
	item, due, err := a.roleItem(ctx, roleARN)
	if err != nil {
		return nil, 0, err
	}
	name := roleARN[strings.LastIndex(roleARN, "/")+1:]
	out, err := a.iamOf(acct).GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: &name, PolicyName: aws.String(sessions.PolicyName)})
	var missing *iamtypes.NoSuchEntityException
	if errors.As(err, &missing) {
		return []string{fmt.Sprintf("inv8: %d memberships of %s ended but role %s has no %s policy", len(ended), group, name, sessions.PolicyName)}, len(ended), nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get role policy: %w", err)
	}
	pol, err := parseRevocationPolicy(aws.ToString(out.PolicyDocument))
	if err != nil {
		return []string{"inv8: " + err.Error()}, len(ended), nil
	}
	var v []string
	if due == "SESSIONS_DIRTY" {
		v = append(v, fmt.Sprintf("inv8: role item of %s still dirty at rest", name))
	}
	for u, end := range ended {
		if at, ok := item[u]; !ok || at.Before(end) {
			v = append(v, fmt.Sprintf("inv8: %s's membership of %s ended at %s; the role item records %v", u, group, end.Format(time.RFC3339Nano), at))
		}
		if !pol.denies(u, end) {
			v = append(v, fmt.Sprintf("inv8: %s's membership of %s ended at %s; %s on %s denies their sessions only before %s (role-wide %s)",
				u, group, end.Format(time.RFC3339Nano), sessions.PolicyName, name, pol.perUser[u], pol.roleWide))
		}
	}
	// And the policy says what the item says, entry by entry.
	for u, at := range item {
		if !pol.denies(u, sessions.Cutoff(at)) {
			v = append(v, fmt.Sprintf("inv8: the role item records %s revoked at %s; the policy on %s does not deny their older sessions", u, at, name))
		}
	}
	return v, len(ended), nil
}

// waitRevocations runs revocationCheck until it passes or limit passes (a
// role item left dirty by a killed writer is finished by a sweep).
func (a *awsClients) waitRevocations(ctx context.Context, acct, roleARN, group string, final map[string]grants.Grant, limit time.Duration) ([]string, int, error) {
	deadline := time.Now().Add(limit)
	for {
		v, n, err := a.revocationCheck(ctx, acct, roleARN, group, final)
		if err != nil || len(v) == 0 || time.Now().After(deadline) {
			return v, n, err
		}
		sleep(ctx, time.Second)
	}
}
