package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
)

// Place is a group of one account, or a permission set or Identity Store
// group of one Identity Center space (Account is then its SpaceID).
type Place struct{ Account, Group string }

func (p Place) String() string { return p.Group + " of " + p.Account }

// Key is one membership: an IAM user in a group of an account, or an
// Identity Store user assigned a permission set (in a group) of an
// Identity Center space. Groups (and users) of the same name in two
// accounts are different keys.
type Key struct{ Account, User, Group string }

func (k Key) String() string { return k.User + " in " + k.Group + " of " + k.Account }

// Snapshot is IAM read between two reads of DynamoDB's grants.
type Snapshot struct {
	T0, T1, T2 time.Time               // before the first scan, at the IAM read, after the second scan
	Before     map[string]grants.Grant // grant id -> grant, scanned at T0
	IAM        map[Place][]string      // group -> members, read at T1 in the group's account; a user once per copy AWS holds
	After      map[string]grants.Grant // scanned at T2
	// Expiring holds grants still in the expiry index in either scan: the
	// sweeper has not yet converged and published their revocation.
	Expiring map[string]bool
}

// Sample is one read of a group's members, in the group's account.
type Sample struct {
	Start, End time.Time
	Account    string
	Group      string
	Members    map[string]bool
	Copies     map[string]int // the members read more than once (moto's copies of one assignment or membership), by count
}

// NewSample is a read of p's members, one entry per copy, between start
// and end.
func NewSample(p Place, start, end time.Time, members []string) Sample {
	s := Sample{Start: start, End: end, Account: p.Account, Group: p.Group, Members: map[string]bool{}}
	for u, n := range copies(members) {
		s.Members[u] = true
		if n > 1 {
			if s.Copies == nil {
				s.Copies = map[string]int{}
			}
			s.Copies[u] = n
		}
	}
	return s
}

// copies counts each member's entries in a read.
func copies(members []string) map[string]int {
	out := map[string]int{}
	for _, u := range members {
		out[u]++
	}
	return out
}

func (s Sample) Place() Place { return Place{s.Account, s.Group} }

// DLQMessage is a message found in the dead-letter queue.
type DLQMessage struct {
	Body   string
	SymID  string // "" when the body has none
	Code   string // iamjit.error_code; "" when SQS itself moved it
	Reason string
}

// MemberItem is the store's membership record for one (account, user,
// group).
type MemberItem struct {
	PK             string
	Kind           grants.Kind // its target_type attribute: "" on an IAM group's item
	Account        string      // its account attribute: "" on a home item
	IAMUser, Group string
	GrantIDs       []string
	Dirty          bool
}

// Observed is everything the test read back after the run.
type Observed struct {
	Mid           *Snapshot // after the queue drained, before every expiry
	Final         Snapshot  // at rest, after every expiry
	Members       []MemberItem
	Results       []events.Result // every result event received, duplicates included
	DLQ           []DLQMessage
	Samples       []Sample            // reads of managed groups, in every account, during the run
	OutsideBefore map[string][]string // account -> members of its outside group before the run
	Slack         time.Duration       // how long after a revocation IAM may still lag at the mid-point
}

// Report is the checker's verdict and figures.
type Report struct {
	Violations []string
	Figures    map[string]int
	Notes      []string // what the figures count that a reader may want to see
}

func (r *Report) fail(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// Check verifies invariants 1–5 and 7 of docs/design.md against the plan, each
// per account, and invariant 9: every grant, membership, result and IAM
// change is in the account of the request's group, and the same names in
// two accounts never meet.
func Check(w *Workload, o Observed) Report {
	r := Report{Figures: map[string]int{}}
	planned := plannedAccounts(w)
	seen := indexObserved(o)
	countResults(&r, w, o.Results, planned)
	checkDLQ(&r, o.DLQ, seen)
	checkOneResultIDPerKind(&r, o.Results)
	checkOneRevocationReason(&r, seen)
	checkStoredGrants(&r, w, seen.grants, planned)
	checkResultTargets(&r, w, o.Results, seen.grants)
	for _, e := range w.Events {
		checkEvent(&r, w, e, seen)
	}
	checkAtRest(&r, w, o)
	if o.Mid != nil {
		checkMid(&r, w, *o.Mid, o.Slack)
	}
	checkOverlap(&r, w, o)
	checkSamples(&r, w, o)
	sort.Strings(r.Violations)
	return r
}

// plannedAccounts is the account each planned grant's group lives in, by
// grant id.
func plannedAccounts(w *Workload) map[string]string {
	planned := map[string]string{}
	for _, e := range w.Events {
		if e.GrantID != "" {
			planned[e.GrantID] = e.Account
		}
	}
	return planned
}

// observedIndex is what the run left, indexed for the checks.
type observedIndex struct {
	results   map[string][]events.Result // by Sym event id
	revoked   map[string][]events.Result // the Access Revoked results, by grant id
	dlqBySym  map[string][]DLQMessage
	dlqByBody map[string][]DLQMessage
	grants    map[string]grants.Grant // at rest, by grant id
}

func indexObserved(o Observed) observedIndex {
	s := observedIndex{results: map[string][]events.Result{}, revoked: map[string][]events.Result{},
		dlqBySym: map[string][]DLQMessage{}, dlqByBody: map[string][]DLQMessage{}, grants: o.Final.After}
	for _, res := range o.Results {
		s.results[res.SymEventID] = append(s.results[res.SymEventID], res)
		if res.DetailType == events.AccessRevoked {
			s.revoked[res.GrantID] = append(s.revoked[res.GrantID], res)
		}
	}
	for _, m := range o.DLQ {
		s.dlqBySym[m.SymID] = append(s.dlqBySym[m.SymID], m)
		s.dlqByBody[m.Body] = append(s.dlqByBody[m.Body], m)
	}
	return s
}

// countResults counts the results by kind (revocations also by account),
// the distinct ones and the duplicate deliveries, and checks each is in
// its grant's account (invariant 9).
func countResults(r *Report, w *Workload, results []events.Result, planned map[string]string) {
	distinct := map[string]bool{}
	for _, res := range results {
		distinct[res.ResultID] = true
		r.Figures["results/"+res.DetailType]++
		if res.DetailType == events.AccessRevoked && res.GrantID != "" {
			r.Figures["results/"+res.DetailType+"@"+planned[res.GrantID]]++
		}
		checkResultAccount(r, w, res, planned)
	}
	r.Figures["results"] = len(results)
	r.Figures["results_distinct"] = len(distinct)
	r.Figures["results_duplicate_deliveries"] = len(results) - len(distinct)
}

// checkDLQ is invariant 2 on the dead-letter queue: every message there
// carries iamjit's reason, or was answered before SQS moved it.
func checkDLQ(r *Report, dlq []DLQMessage, s observedIndex) {
	for _, m := range dlq {
		r.Figures["dlq"]++
		switch {
		case m.Code != "":
			r.Figures["dlq/"+m.Code]++
		case m.SymID != "" && len(s.results[m.SymID]) > 0:
			// SQS moved it after maxReceiveCount receives although it had
			// been applied and answered: every receive was a duplicate whose
			// delete did not land (see the report). Not lost, not silent.
			r.Figures["dlq_redriven_after_result"]++
		default:
			r.fail("inv2: message %s %q reached the DLQ without iamjit's reason (moved by SQS redrive) and has no result", m.SymID, clipped(m.Body))
		}
	}
}

// checkOneResultIDPerKind is invariant 3 on results: one result id per
// (Sym event, kind), however often it was delivered.
func checkOneResultIDPerKind(r *Report, results []events.Result) {
	bySymType := map[string]map[string]bool{} // sym id | kind -> result ids
	for _, res := range results {
		k := res.SymEventID + "|" + res.DetailType
		if bySymType[k] == nil {
			bySymType[k] = map[string]bool{}
		}
		bySymType[k][res.ResultID] = true
	}
	for k, ids := range bySymType {
		if len(ids) > 1 {
			r.fail("inv3: Sym event %s has %d different result_ids for one kind: %v", k, len(ids), keys(ids))
		}
	}
}

// checkOneRevocationReason is invariant 3 on revocations: a grant is
// reported revoked for one reason, the one DynamoDB holds.
func checkOneRevocationReason(r *Report, s observedIndex) {
	for id, rs := range s.revoked {
		reasons := map[string]bool{}
		for _, res := range rs {
			reasons[res.Reason] = true
		}
		if len(reasons) > 1 {
			r.fail("inv3: grant %s was reported revoked for different reasons %v", id, keys(reasons))
		}
		if g, ok := s.grants[id]; ok && g.State == grants.StateRevoked && !reasons[g.RevokeReason] {
			r.fail("inv3: grant %s is REVOKED (%s) in DynamoDB but its results say %v", id, g.RevokeReason, keys(reasons))
		}
	}
}

// checkStoredGrants is invariant 3 on each stored grant (it took effect at
// most once: one escalate, one revoke) and invariant 9 (its account).
func checkStoredGrants(r *Report, w *Workload, all map[string]grants.Grant, planned map[string]string) {
	for id, g := range all {
		esc, rev := 0, 0
		for _, t := range g.History {
			switch t.Action {
			case "escalate":
				esc++
			case "revoke":
				rev++
			}
		}
		if esc > 1 || rev > 1 {
			r.fail("inv3: grant %s took effect more than once: %d escalate and %d revoke transitions", id, esc, rev)
		}
		if g.State == grants.StateRevoked && !g.Tombstone && !g.GrantedAt.IsZero() {
			r.Figures[g.RevokeReason+"@"+accountOf(w, g)]++ // expired@, deescalated@
		}
		checkGrantAccount(r, w, g, planned)
	}
}

// checkEvent is invariant 2 (every event accounted for) and invariant 4
// (reordered and stale requests leave nothing behind) on one planned event.
func checkEvent(r *Report, w *Workload, e *Event, s observedIndex) {
	rs := s.results[e.SymID]
	dlq := s.dlqBySym[e.SymID]
	if e.Scenario == ScenPoison {
		dlq = s.dlqByBody[e.Body]
	}
	if len(dlq) > 0 {
		r.Figures["events_dlq"]++
	}
	switch {
	case e.Scenario == ScenPoison:
		if len(dlq) == 0 {
			r.fail("inv2: poison message %s is not in the DLQ", e.SymID)
		}
	case e.Scenario == ScenNoise:
		if len(rs) > 0 || len(dlq) > 0 {
			r.fail("inv2: non-actionable %s event %s produced %d results and %d DLQ messages; want none", e.Type, e.SymID, len(rs), len(dlq))
		}
	case e.Type == TypeDeesc:
		if len(rs) == 0 && len(s.revoked[e.GrantID]) == 0 && len(dlq) == 0 {
			r.fail("inv2: deescalate %s of grant %s has no result and is not in the DLQ", e.SymID, e.GrantID)
		}
	default:
		checkEscalate(r, w, e, rs, len(dlq) > 0, s.grants)
	}
}

// rejectionOf is the rejection code a scenario's escalate must get; ""
// when it may be granted.
func rejectionOf(e *Event) events.Code {
	if e.Scenario == ScenOutside && e.Kind != grants.IAMGroup {
		return events.CodeTargetNotAllowed
	}
	return map[string]events.Code{ScenStale: events.CodeExpired, ScenUnknown: events.CodeUnknownUser, ScenOutside: events.CodeGroupNotAllowed,
		ScenAbsent: events.CodeUnknownGroup, ScenForeign: events.CodeForeignAccount}[e.Scenario]
}

// checkEscalate is invariants 2 and 4 on one escalate: it has a result or
// is in the DLQ, is granted or rejected (not both) as its scenario plans,
// and a rejected one leaves no active grant behind.
func checkEscalate(r *Report, w *Workload, e *Event, rs []events.Result, inDLQ bool, all map[string]grants.Grant) {
	kinds := map[string]events.Result{}
	for _, res := range rs {
		kinds[res.DetailType] = res
	}
	if len(kinds) == 0 {
		if !inDLQ {
			r.fail("inv2: escalate %s (%s) has no result and is not in the DLQ", e.SymID, e.Scenario)
		}
		return
	}
	granted, isGranted := kinds[events.AccessGranted]
	rejected, isRejected := kinds[events.AccessRejected]
	if _, failed := kinds[events.AccessFailed]; failed && !inDLQ {
		r.fail("inv2: escalate %s was reported failed but is not in the DLQ", e.SymID)
	}
	if isGranted && isRejected {
		r.fail("inv3: escalate %s was both granted and rejected (%s)", e.SymID, rejected.Code)
	}
	g, hasGrant := all[e.GrantID]
	switch want := rejectionOf(e); {
	case want != "":
		if !isRejected || rejected.Code != want {
			r.fail("inv4: %s escalate %s (group %s): want Access Request Rejected %s, got %v", e.Scenario, e.SymID, e.Target(), want, kindsOf(kinds))
		}
		if hasGrant {
			r.fail("inv4: %s escalate %s left a grant %s in state %s", e.Scenario, e.SymID, e.GrantID, g.State)
		}
		r.Figures["rejected_as_expected"]++
		r.Figures["rejected_as_expected@"+e.Account]++
	case isGranted:
		checkGranted(r, w, e, granted, g, hasGrant)
	case isRejected:
		checkRejectedLate(r, e, rejected, g, hasGrant)
	}
	if e.Scenario == ScenReorder && hasGrant && g.Tombstone {
		for _, t := range g.History {
			if t.Action == "escalate" || t.Action == "iam_add" {
				r.fail("inv4: tombstoned grant %s has a %s transition", e.GrantID, t.Action)
			}
		}
	}
}

// checkGranted: a granted escalate granted what was planned, DynamoDB has
// the grant from it, and a reordered one was not granted over its
// tombstone.
func checkGranted(r *Report, w *Workload, e *Event, granted events.Result, g grants.Grant, hasGrant bool) {
	if _, user, group, _ := resultTarget(granted); granted.GrantID != e.GrantID || user != e.User || group != e.Group {
		r.fail("inv2: escalate %s granted %s to %s in %s; planned %s to %s in %s", e.SymID, granted.GrantID, user, group, e.GrantID, e.User, e.Group)
	}
	if !hasGrant || g.SymEventID != e.SymID {
		r.fail("inv2: escalate %s was reported granted but DynamoDB has no grant %s from it", e.SymID, e.GrantID)
	}
	if e.Scenario == ScenReorder {
		if g.Tombstone {
			r.fail("inv4: grant %s was granted over its tombstone", e.GrantID)
		}
		r.Figures["reorder_raced"]++ // processed before its deescalate after all
	}
	r.Figures["granted"]++
	r.Figures["granted@"+e.Account]++
	if e.ARN != "" && !w.Cast.IsMember(e.Account) {
		r.Figures["granted_by_home_arn"]++
	}
}

// checkRejectedLate: an escalate its scenario lets be granted may still be
// rejected, only because it expired or was already revoked by the time it
// was processed, and then its grant is not active.
func checkRejectedLate(r *Report, e *Event, rejected events.Result, g grants.Grant, hasGrant bool) {
	switch rejected.Code {
	case events.CodeExpired:
		r.Figures["rejected_expired_late"]++
	case events.CodeAlreadyRevoked:
		if !hasGrant || g.State == grants.StateActive {
			r.fail("inv4: escalate %s rejected already_revoked but grant %s is %v", e.SymID, e.GrantID, g.State)
		}
		if e.Scenario == ScenReorder {
			r.Figures["reorder_tombstoned"]++
			r.Figures["reorder_tombstoned@"+e.Account]++
		} else {
			r.Figures["rejected_already_revoked"]++
		}
	default:
		r.fail("inv2: escalate %s (%s, group %s) rejected with unexpected code %s: %s", e.SymID, e.Scenario, e.Target(), rejected.Code, rejected.Message)
	}
	if hasGrant && g.SymEventID == e.SymID && g.State == grants.StateActive {
		r.fail("inv4: escalate %s was rejected (%s) yet its grant is ACTIVE", e.SymID, rejected.Code)
	}
}

// accountOf is the account a stored grant's group lives in, or the
// Identity Center space of its target: the store writes no account on the
// home account's items.
func accountOf(w *Workload, g grants.Grant) string { return w.Cast.Space(g.Kind, g.Account) }

// keyOf is the membership a stored grant is about.
func keyOf(w *Workload, g grants.Grant) Key { return Key{accountOf(w, g), g.IAMUser, g.Group} }

// arnAccount is the account of an ARN ("" when it is none).
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return ""
	}
	return parts[4]
}

// checkResultAccount is invariant 9 on one result: a grant's or a
// revocation's result names the account of the request's group, the home
// one included, and its group ARN is in that account.
func checkResultAccount(r *Report, w *Workload, res events.Result, planned map[string]string) {
	if res.DetailType != events.AccessGranted && res.DetailType != events.AccessRevoked {
		return
	}
	space, ok := planned[res.GrantID]
	if !ok {
		r.fail("inv2: %s result %s is about grant %s, which the plan never asked for", res.DetailType, res.ResultID, res.GrantID)
		return
	}
	want := space
	if a, ok := w.Cast.Find(space); ok {
		want = a.AWSAccount()
	}
	if res.AccountID != want {
		r.fail("inv9: %s result of grant %s (%s in %s) carries account_id %q; its group is in account %s", res.DetailType, res.GrantID, res.IAMUser, res.Group, res.AccountID, want)
	}
	if res.GroupARN != "" && arnAccount(res.GroupARN) != want {
		r.fail("inv9: %s result of grant %s names group %s; its group is in account %s", res.DetailType, res.GrantID, res.GroupARN, want)
	}
}

// resultTarget is the membership a result names, read from the fields of
// the kind its target_type says (aws_iam_group: iam_user, group;
// aws_sso_permission_set: sso_user_id, permission_set_arn; aws_sso_group:
// sso_user_id, sso_group_id), and the fields of the other kinds it sets.
func resultTarget(res events.Result) (k grants.Kind, user, group string, stray []string) {
	fields := map[string]string{"iam_user": res.IAMUser, "group": res.Group, "group_arn": res.GroupARN,
		"permission_set_arn": res.PermissionSetARN, "sso_group_id": res.SSOGroupID, "sso_user_id": res.SSOUserID}
	own := []string{"iam_user", "group", "group_arn"}
	switch res.TargetType {
	case events.TargetSSOPermissionSet:
		k, user, group, own = grants.PermissionSet, res.SSOUserID, res.PermissionSetARN, []string{"sso_user_id", "permission_set_arn"}
	case events.TargetSSOGroup:
		k, user, group, own = grants.SSOGroup, res.SSOUserID, res.SSOGroupID, []string{"sso_user_id", "sso_group_id"}
	default:
		user, group = res.IAMUser, res.Group
	}
	for name, v := range fields {
		if v != "" && !slices.Contains(own, name) {
			stray = append(stray, name)
		}
	}
	sort.Strings(stray)
	return k, user, group, stray
}

// checkResultTargets: every result of a planned grant (granted or
// revoked) and every rejection of a planned escalate names its target in
// the fields of its kind, and only those: target_type, the user (none for
// a tombstone, which no escalate resolved) and the group, permission set
// or Identity Store group, as planned; a rejection of an Identity Center
// target echoes the permission set or group it asked for.
func checkResultTargets(r *Report, w *Workload, results []events.Result, stored map[string]grants.Grant) {
	esc := map[string]*Event{} // by grant id, and by Sym id
	for _, e := range w.Events {
		if e.Type == TypeEsc && e.GrantID != "" {
			esc[e.GrantID], esc[e.SymID] = e, e
		}
	}
	checked := map[string]bool{} // result ids: each once, however often delivered
	for _, res := range results {
		if checked[res.ResultID] {
			continue
		}
		checked[res.ResultID] = true
		var e *Event
		switch res.DetailType {
		case events.AccessGranted, events.AccessRevoked:
			e = esc[res.GrantID]
		case events.AccessRejected:
			e = esc[res.SymEventID]
		}
		if e == nil || e.Account == ForeignAccount {
			continue
		}
		k, user, group, stray := resultTarget(res)
		what := fmt.Sprintf("%s result %s of grant %s", res.DetailType, res.ResultID, e.GrantID)
		if want := e.Kind.TargetType(); res.TargetType != want {
			r.fail("results: %s carries target_type %q; its request's target is %s", what, res.TargetType, want)
			continue
		}
		if len(stray) > 0 {
			r.fail("results: %s (%s) sets %v, fields of another kind of target", what, res.TargetType, stray)
		}
		if res.DetailType == events.AccessRejected {
			if e.Kind != grants.IAMGroup && group != e.Group {
				r.fail("results: %s names %q; its request asked for %s", what, group, e.Group)
			}
			r.Figures["results_target_checked@"+e.Account]++
			continue
		}
		tomb := stored[e.GrantID].Tombstone
		if k != e.Kind || group != e.Group || user != e.User && !(tomb && user == "") {
			r.fail("results: %s names %s %s for user %q; planned %s for %s", what, k.TargetType(), group, user, e.Group, e.User)
		}
		r.Figures["results_target_checked@"+e.Account]++
	}
}

// checkGrantAccount is invariant 9 on one stored grant: it is in the
// account the request named (a home grant stores none), for a user of that
// account, never another account's user or a decoy.
func checkGrantAccount(r *Report, w *Workload, g grants.Grant, planned map[string]string) {
	acct := accountOf(w, g)
	if g.Account == w.Cast.ID {
		r.fail("inv9: grant %s stores the home account %s; home items carry no account", g.ID, g.Account)
	}
	if want, ok := planned[g.ID]; ok && acct != want {
		r.fail("inv9: grant %s (%s in %s) is stored in account %s; its request named a group of account %s", g.ID, g.IAMUser, g.Group, acct, want)
	}
	r.Figures["grants/"+string(g.State)+"@"+acct]++
	if g.Tombstone {
		return
	}
	a, ok := w.Cast.Find(acct)
	switch {
	case !ok:
		r.fail("inv9: grant %s is stored in account %s, which iamjit does not serve", g.ID, acct)
	case !a.HasUser(g.IAMUser):
		r.fail("inv9: grant %s in account %s is for IAM user %s, who is not a user of that account (an email mapped in another account)", g.ID, acct, g.IAMUser)
	case !slices.Contains(a.Managed(), g.Group):
		r.fail("inv9: grant %s in account %s is for group %s, which that account does not manage", g.ID, acct, g.Group)
	}
}

// checkAtRest is invariant 1 after every expiry, per account: IAM, the
// store's memberships and the grants agree, and every grant has ended.
func checkAtRest(r *Report, w *Workload, o Observed) {
	f := o.Final
	active := map[Key]bool{} // memberships with an active grant
	for id, g := range f.After {
		if g.State == grants.StateActive {
			if !g.ExpiresAt.After(f.T2) {
				r.fail("inv1: at rest grant %s (%s) is still ACTIVE %s after it expired", id, keyOf(w, g), f.T2.Sub(g.ExpiresAt).Round(time.Millisecond))
			}
			active[keyOf(w, g)] = true
		}
		r.Figures["grants/"+string(g.State)]++
	}
	for _, a := range w.Cast.Accounts() {
		for _, grp := range a.Managed() {
			members, ok := f.IAM[Place{a.ID, grp}]
			if !ok {
				r.fail("inv1: at rest %s was not read", a.Describe(grp))
			}
			checkCopies(r, a, grp, members, "at rest", true)
			for u := range copies(members) {
				if !active[Key{a.ID, u, grp}] {
					r.fail("inv1: at rest %s is in %s without an active grant there; its grants: %s", u, a.Describe(grp), describe(w, f.After, Key{a.ID, u, grp}))
				}
			}
			r.Figures["at_rest_read@"+a.ID]++
		}
		outside := slices.Clone(f.IAM[Place{a.ID, a.OutsideGroup}])
		slices.Sort(outside)
		before := slices.Clone(o.OutsideBefore[a.ID])
		slices.Sort(before)
		if !slices.Equal(outside, before) {
			if a.IsSSO() {
				r.fail("inv7: %s, outside IAMJIT_SSO_*, changed: %v -> %v", a.Describe(a.OutsideGroup), before, outside)
			} else {
				r.fail("inv7: group %s of account %s, outside the managed path, changed: %v -> %v", a.OutsideGroup, a.ID, before, outside)
			}
		}
	}
	for k := range active {
		if !slices.Contains(f.IAM[Place{k.Account, k.Group}], k.User) {
			r.fail("inv1: at rest %s has an active grant but is not in the group", k)
		}
	}
	for _, m := range o.Members {
		k, ok := memberKey(r, w, m)
		if !ok {
			continue
		}
		want := []string{}
		for id, g := range f.After {
			if g.State == grants.StateActive && keyOf(w, g) == k {
				want = append(want, id)
			}
		}
		got := slices.Clone(m.GrantIDs)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			r.fail("inv1: membership item %s holds grants %v; active grants are %v", k, got, want)
		}
		if m.Dirty {
			r.Figures["memberships_dirty_at_rest"]++
		}
		r.Figures["memberships@"+k.Account]++
	}
	r.Figures["memberships"] = len(o.Members)
}

// memberKey reads a membership item's key, checking the store's format
// (member#<user>#<group> in the home account, member#<account>#<user>#<group>
// with an account attribute in a member account) and that the user is one
// of that account's (invariant 9).
func memberKey(r *Report, w *Workload, m MemberItem) (Key, bool) {
	k := Key{w.Cast.Space(m.Kind, m.Account), m.IAMUser, m.Group}
	want := "member#" + m.IAMUser + "#" + m.Group
	switch {
	case m.Kind != grants.IAMGroup:
		// Identity Center: member#<kind>#<account id>#<user id>#<target>,
		// the account's id always in the key.
		want = "member#" + string(m.Kind) + "#" + cmp.Or(m.Account, w.Cast.ID) + "#" + m.IAMUser + "#" + m.Group
	case m.Account != "":
		want = "member#" + m.Account + "#" + m.IAMUser + "#" + m.Group
	}
	if m.PK != want || m.Account == w.Cast.ID {
		r.fail("inv9: membership item %s has account %q, user %s, group %s: not the store's key for them", m.PK, m.Account, m.IAMUser, m.Group)
		return k, false
	}
	a, ok := w.Cast.Find(k.Account)
	if !ok || !a.HasUser(k.User) {
		r.fail("inv9: membership item %s: %s is not a user of account %s", m.PK, k.User, k.Account)
	}
	return k, true
}

// checkMid is invariant 1 while grants are still active, per account. IAM
// was read between two scans; a member is explained by a grant of that
// account active in either scan or ended less than slack before the first,
// and a grant active throughout must show in its account's IAM (the queue
// had drained, so every escalate had converged).
func checkMid(r *Report, w *Workload, s Snapshot, slack time.Duration) {
	explained := map[Key]bool{}
	required := map[Key]string{}
	for _, scan := range []map[string]grants.Grant{s.Before, s.After} {
		for _, g := range scan {
			k := keyOf(w, g)
			switch {
			case g.State == grants.StateActive:
				explained[k] = true
			case !g.RevokedAt.IsZero() && g.RevokedAt.After(s.T0.Add(-slack)):
				explained[k] = true
			case s.Expiring[g.ID]:
				// Revoked by a sweep that has not converged it yet. Its
				// RevokedAt is when that sweep started, which can be long
				// before the revocation itself when many grants fall due.
				explained[k] = true
			}
		}
	}
	for id, g := range s.Before {
		a, ok := s.After[id]
		if g.State == grants.StateActive && ok && a.State == grants.StateActive && g.ExpiresAt.After(s.T2) {
			k := keyOf(w, g)
			required[k] = id
			r.Figures["mid_active_grants"]++
			r.Figures["mid_active_grants@"+k.Account]++
		}
	}
	for _, a := range w.Cast.Accounts() {
		for _, grp := range a.Managed() {
			members, ok := s.IAM[Place{a.ID, grp}]
			if !ok {
				r.fail("inv1 (mid-point): %s was not read", a.Describe(grp))
			}
			checkCopies(r, a, grp, members, "mid-point", false)
			for u := range copies(members) {
				k := Key{a.ID, u, grp}
				if !explained[k] {
					r.fail("inv1 (mid-point, IAM read at %s): %s is in %s with no grant there active or just ended; its grants: %s",
						s.T1.Format("15:04:05.000"), u, a.Describe(grp), describe(w, s.After, k))
				}
			}
			r.Figures["mid_members"] += len(members)
			r.Figures["mid_members@"+a.ID] += len(members)
		}
	}
	for k, id := range required {
		if !slices.Contains(s.IAM[Place{k.Account, k.Group}], k.User) {
			a, _ := w.Cast.Find(k.Account)
			r.fail("inv1 (mid-point): grant %s was active throughout the read but %s is not in %s", id, k.User, a.Describe(k.Group))
		}
	}
}

// checkCopies is invariant 1 on copies. AWS holds one assignment or
// membership however often it was made; moto 5.2.1 one copy for each
// create, and a delete removes one. So where moto shows copies, iamjit
// made the membership more than once: without reading first, or two
// writers at once (two replicas converging one membership each read it
// absent; AWS would keep one), and its removal must then take every copy
// out. At rest (strict) a copy is a violation, as is any member at all;
// while grants are active (the mid-point) copies are counted
// (copies@space) and listed, not failed: they are the emulator's, and
// only a copy left behind by a removal changes access. Each member read
// with exactly one copy counts (one_copy_checked).
func checkCopies(r *Report, a Account, grp string, members []string, when string, strict bool) {
	for u, n := range copies(members) {
		switch {
		case n > 1 && strict:
			r.fail("inv1 (%s): %s holds %d copies of %s's membership; want exactly one", when, a.Describe(grp), n, u)
		case n > 1:
			r.Figures["copies@"+a.ID]++
			r.Notes = append(r.Notes, fmt.Sprintf("%s: %s holds %d copies of %s's membership", when, a.Describe(grp), n, u))
		case a.IsSSO():
			r.Figures["one_copy_checked@"+a.ID]++
		}
	}
}

// checkOverlap is invariant 5 on the dedicated overlap pairs: from the
// moment the grants overlapped (see OverlapWindow) until the long grant
// ended, every sample of the group in its account must show the user.
func checkOverlap(r *Report, w *Workload, o Observed) {
	g := o.Final.After
	for _, e := range w.Events {
		if e.Scenario != ScenOverlap || e.Role != "long" || e.Type != TypeEsc {
			continue
		}
		long, ok1 := g[e.GrantID]
		short, ok2 := g[e.Pair]
		if !ok1 || !ok2 || long.Tombstone || short.Tombstone || short.RevokedAt.IsZero() {
			r.Figures["overlap_not_exercised"]++
			continue
		}
		from, end, ok := OverlapWindow(long, short)
		if !ok {
			r.Figures["overlap_sequential"]++
			continue
		}
		in := SamplesWithin(o.Samples, Place{e.Account, e.Group}, from, end)
		var missing []string
		for _, s := range in {
			if !s.Members[e.User] {
				missing = append(missing, s.Start.Format("15:04:05.000"))
			}
		}
		switch {
		case len(in) == 0:
			r.Figures["overlap_not_exercised"]++
		case len(missing) > 0:
			r.fail("inv5: %s left %s of account %s at %v while grant %s was active until %s (the short grant %s was revoked with the long one still in the membership at %s)",
				e.User, e.Group, e.Account, missing, e.GrantID, end.Format("15:04:05.000"), e.Pair, from.Format("15:04:05.000"))
		default:
			r.Figures["overlap_exercised"]++
			r.Figures["overlap_exercised@"+e.Account]++
			r.Figures["overlap_samples_checked"] += len(in)
		}
	}
}

// checkSamples is invariant 9 over the whole run: in every read of a
// managed group, each member is a user of the group's account who had
// been granted that group in that account by the end of the read. A user
// of another account (a decoy of the same name) or a grant of the
// same-named group in another account never explains a member.
func checkSamples(r *Report, w *Workload, o Observed) {
	first := map[Key]time.Time{} // earliest grant of each membership
	for _, g := range o.Final.After {
		if g.GrantedAt.IsZero() {
			continue
		}
		k := keyOf(w, g)
		if t, ok := first[k]; !ok || g.GrantedAt.Before(t) {
			first[k] = g.GrantedAt
		}
	}
	reported := map[Key]bool{}
	for _, s := range o.Samples {
		a, ok := w.Cast.Find(s.Account)
		if !ok || !slices.Contains(a.Managed(), s.Group) {
			continue
		}
		r.Figures["samples@"+s.Account]++
		for u, n := range s.Copies {
			// In flight, as at the mid-point (checkCopies): counted, and
			// each membership's first listed.
			r.Figures["copies@"+s.Account]++
			if !reported[Key{s.Account, u, s.Group + "#copies"}] {
				reported[Key{s.Account, u, s.Group + "#copies"}] = true
				r.Notes = append(r.Notes, fmt.Sprintf("at %s: %s holds %d copies of %s's membership", s.Start.Format("15:04:05.000"), a.Describe(s.Group), n, u))
			}
		}
		if a.IsSSO() {
			r.Figures["one_copy_checked@"+s.Account] += len(s.Members) - len(s.Copies)
		}
		for u := range s.Members {
			k := Key{s.Account, u, s.Group}
			r.Figures["sampled_members@"+s.Account]++
			t, granted := first[k]
			switch {
			case reported[k]:
			case !a.HasUser(u):
				reported[k] = true
				r.fail("inv9: at %s %s is in %s, and is not a user of that account (a decoy: a change made in the wrong account)",
					s.Start.Format("15:04:05.000"), u, a.Describe(s.Group))
			case !granted || t.After(s.End):
				reported[k] = true
				r.fail("inv9: at %s %s is in %s, never granted there by then; its grants: %s",
					s.Start.Format("15:04:05.000"), u, a.Describe(s.Group), describe(w, o.Final.After, k))
			}
		}
	}
}

// PerAccount are the figures (name@account) that must not be 0 in any
// account of the cast: grants applied, revocations reported, grants that
// ended by expiry and by deescalate (checkStoredGrants), grants active
// at the mid-point, reads of its groups (Check counts these), an overlap
// and a tombstoned reorder exercised there (Check), and the replicas' IAM
// calls and faults in it through the proxy (the harness adds those).
var PerAccount = []string{"granted", "results/" + events.AccessRevoked, events.RevokedExpired, events.RevokedDeescalated, "mid_active_grants", "samples",
	"overlap_exercised", "reorder_tombstoned", "results_target_checked", "proxy_calls", "proxy_faults"}

// PerSSOSpace are the figures that must not be 0 in any Identity Center
// space besides PerAccount's: memberships read with exactly one copy
// (checkCopies, checkSamples) and read at rest. The proxy figures of a
// space are its service's (sso for permission sets, identitystore for
// groups; the harness adds them).
var PerSSOSpace = []string{"one_copy_checked", "at_rest_read"}

// RequireExercised fails the report for every account and space of the
// cast in which one of the PerAccount (PerSSOSpace) figures is 0: a check
// per account that saw nothing in one proves nothing about it.
func RequireExercised(r *Report, c Cast) {
	for _, a := range c.Accounts() {
		need := PerAccount
		if a.IsSSO() {
			need = append(slices.Clone(PerAccount), PerSSOSpace...)
		}
		for _, f := range need {
			if r.Figures[f+"@"+a.ID] == 0 {
				r.fail("inv9: account %s was not exercised: %s@%s is 0, so its checks proved nothing there", a.ID, f, a.ID)
			}
		}
	}
}

// OverlapWindow is when two grants of one (user, group) overlapped: from
// the short grant's revocation finding the long one still in the
// membership (its converge then recorded an iam_add in the short grant's
// history) until the long grant ended. ok is false when the short one
// ended first, or alone, so that the membership was empty for a while.
func OverlapWindow(long, short grants.Grant) (from, end time.Time, ok bool) {
	if long.Tombstone || short.Tombstone || short.RevokedAt.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	revoked := false
	for _, t := range short.History {
		switch {
		case t.Action == "revoke":
			revoked = true
		case revoked && t.Action == "iam_add" && from.IsZero():
			from = t.At
		}
	}
	end = long.ExpiresAt
	if !long.RevokedAt.IsZero() && long.RevokedAt.Before(end) {
		end = long.RevokedAt
	}
	return from, end, !from.IsZero() && from.Before(end)
}

// SamplesWithin are the samples of group p taken wholly between from and end.
func SamplesWithin(samples []Sample, p Place, from, end time.Time) []Sample {
	var out []Sample
	for _, s := range samples {
		if s.Place() == p && s.Start.After(from) && s.End.Before(end) {
			out = append(out, s)
		}
	}
	return out
}

// MidActive counts the grants of account acct active in both scans of s
// and not expired by the second: those the mid-point check requires IAM to
// show there.
func MidActive(w *Workload, s Snapshot, acct string) int {
	n := 0
	for id, g := range s.Before {
		a, ok := s.After[id]
		if g.State == grants.StateActive && ok && a.State == grants.StateActive && g.ExpiresAt.After(s.T2) && accountOf(w, g) == acct {
			n++
		}
	}
	return n
}

// describe lists the grants of membership k with their state, end and
// history, for a violation's message.
func describe(w *Workload, all map[string]grants.Grant, k Key) string {
	var out []string
	for id, g := range all {
		if keyOf(w, g) != k {
			continue
		}
		var h []string
		for _, t := range g.History {
			h = append(h, t.At.Format("15:04:05.000")+" "+t.Action)
		}
		out = append(out, fmt.Sprintf("%s %s expires %s revoked %s (%s) [%s]", id, g.State, g.ExpiresAt.Format("15:04:05.000"),
			g.RevokedAt.Format("15:04:05.000"), g.RevokeReason, strings.Join(h, ", ")))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func kindsOf(m map[string]events.Result) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+" "+string(v.Code))
	}
	sort.Strings(out)
	return out
}

func clipped(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
