package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
)

// Snapshot is IAM read between two reads of DynamoDB's grants.
type Snapshot struct {
	T0, T1, T2 time.Time               // before the first scan, at the IAM read, after the second scan
	Before     map[string]grants.Grant // grant id -> grant, scanned at T0
	IAM        map[string][]string     // group -> members, read at T1
	After      map[string]grants.Grant // scanned at T2
	// Expiring holds grants still in the expiry index in either scan: the
	// sweeper has not yet converged and published their revocation.
	Expiring map[string]bool
}

// Sample is one read of a group's members.
type Sample struct {
	Start, End time.Time
	Group      string
	Members    map[string]bool
}

// DLQMessage is a message found in the dead-letter queue.
type DLQMessage struct {
	Body   string
	SymID  string // "" when the body has none
	Code   string // iamjit.error_code; "" when SQS itself moved it
	Reason string
}

// MemberItem is the store's membership record for one (user, group).
type MemberItem struct {
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
	Samples       []Sample
	OutsideBefore []string
	Slack         time.Duration // how long after a revocation IAM may still lag at the mid-point
}

// Report is the checker's verdict and figures.
type Report struct {
	Violations []string
	Figures    map[string]int
}

func (r *Report) fail(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// Check verifies invariants 1–5 of DESIGN.md against the plan.
func Check(w *Workload, o Observed) Report {
	r := Report{Figures: map[string]int{}}
	byID := map[string][]events.Result{}
	bySymType := map[string]map[string]bool{} // sym id + type -> result ids
	revokedByGrant := map[string][]events.Result{}
	distinct := map[string]bool{}
	for _, res := range o.Results {
		byID[res.SymEventID] = append(byID[res.SymEventID], res)
		k := res.SymEventID + "|" + res.DetailType
		if bySymType[k] == nil {
			bySymType[k] = map[string]bool{}
		}
		bySymType[k][res.ResultID] = true
		if res.DetailType == events.AccessRevoked {
			revokedByGrant[res.GrantID] = append(revokedByGrant[res.GrantID], res)
		}
		distinct[res.ResultID] = true
		r.Figures["results/"+res.DetailType]++
	}
	r.Figures["results"] = len(o.Results)
	r.Figures["results_distinct"] = len(distinct)
	r.Figures["results_duplicate_deliveries"] = len(o.Results) - len(distinct)

	dlqBySym := map[string][]DLQMessage{}
	dlqByBody := map[string][]DLQMessage{}
	for _, m := range o.DLQ {
		dlqBySym[m.SymID] = append(dlqBySym[m.SymID], m)
		dlqByBody[m.Body] = append(dlqByBody[m.Body], m)
		r.Figures["dlq"]++
		switch {
		case m.Code != "":
			r.Figures["dlq/"+m.Code]++
		case m.SymID != "" && len(byID[m.SymID]) > 0:
			// SQS moved it after maxReceiveCount receives although it had
			// been applied and answered: every receive was a duplicate whose
			// delete did not land (see the report). Not lost, not silent.
			r.Figures["dlq_redriven_after_result"]++
		default:
			r.fail("inv2: message %s %q reached the DLQ without iamjit's reason (moved by SQS redrive) and has no result", m.SymID, clipped(m.Body))
		}
	}
	grantsNow := o.Final.After

	// Invariant 3: one result id per (Sym event, kind); one revocation per grant.
	for k, ids := range bySymType {
		if len(ids) > 1 {
			r.fail("inv3: Sym event %s has %d different result_ids for one kind: %v", k, len(ids), keys(ids))
		}
	}
	for id, rs := range revokedByGrant {
		reasons := map[string]bool{}
		for _, res := range rs {
			reasons[res.Reason] = true
		}
		if len(reasons) > 1 {
			r.fail("inv3: grant %s was reported revoked for different reasons %v", id, keys(reasons))
		}
		if g, ok := grantsNow[id]; ok && g.State == grants.StateRevoked && !reasons[g.RevokeReason] {
			r.fail("inv3: grant %s is REVOKED (%s) in DynamoDB but its results say %v", id, g.RevokeReason, keys(reasons))
		}
	}
	for id, g := range grantsNow {
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
	}

	// Invariant 2 (every event accounted for) and invariant 4 (reordered and
	// stale requests leave nothing behind), event by event.
	for _, e := range w.Events {
		rs := byID[e.SymID]
		dlq := dlqBySym[e.SymID]
		if e.Scenario == ScenPoison {
			dlq = dlqByBody[e.Body]
		}
		if len(dlq) > 0 {
			r.Figures["events_dlq"]++
		}
		switch {
		case e.Scenario == ScenPoison:
			if len(dlq) == 0 {
				r.fail("inv2: poison message %s is not in the DLQ", e.SymID)
			}
			continue
		case e.Scenario == ScenNoise:
			if len(rs) > 0 || len(dlq) > 0 {
				r.fail("inv2: non-actionable %s event %s produced %d results and %d DLQ messages; want none", e.Type, e.SymID, len(rs), len(dlq))
			}
			continue
		case e.Type == TypeDeesc:
			if len(rs) == 0 && len(revokedByGrant[e.GrantID]) == 0 && len(dlq) == 0 {
				r.fail("inv2: deescalate %s of grant %s has no result and is not in the DLQ", e.SymID, e.GrantID)
			}
			continue
		}
		// An escalate.
		kinds := map[string]events.Result{}
		for _, res := range rs {
			kinds[res.DetailType] = res
		}
		if len(kinds) == 0 {
			if len(dlq) == 0 {
				r.fail("inv2: escalate %s (%s) has no result and is not in the DLQ", e.SymID, e.Scenario)
			}
			continue
		}
		granted, isGranted := kinds[events.AccessGranted]
		rejected, isRejected := kinds[events.AccessRejected]
		if _, failed := kinds[events.AccessFailed]; failed && len(dlq) == 0 {
			r.fail("inv2: escalate %s was reported failed but is not in the DLQ", e.SymID)
		}
		if isGranted && isRejected {
			r.fail("inv3: escalate %s was both granted and rejected (%s)", e.SymID, rejected.Code)
		}
		g, hasGrant := grantsNow[e.GrantID]
		want := map[string]string{ScenStale: "expired", ScenUnknown: "unknown_user", ScenOutside: "group_not_allowed"}[e.Scenario]
		switch {
		case want != "":
			if !isRejected || rejected.Code != want {
				r.fail("inv4: %s escalate %s: want Access Request Rejected %s, got %v", e.Scenario, e.SymID, want, kindsOf(kinds))
			}
			if hasGrant {
				r.fail("inv4: %s escalate %s left a grant %s in state %s", e.Scenario, e.SymID, e.GrantID, g.State)
			}
			r.Figures["rejected_as_expected"]++
		case isGranted:
			if granted.GrantID != e.GrantID || granted.IAMUser != e.User || granted.Group != e.Group {
				r.fail("inv2: escalate %s granted %s to %s in %s; planned %s to %s in %s", e.SymID, granted.GrantID, granted.IAMUser, granted.Group, e.GrantID, e.User, e.Group)
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
		case isRejected:
			switch rejected.Code {
			case "expired":
				r.Figures["rejected_expired_late"]++
			case "already_revoked":
				if !hasGrant || g.State == grants.StateActive {
					r.fail("inv4: escalate %s rejected already_revoked but grant %s is %v", e.SymID, e.GrantID, g.State)
				}
				if e.Scenario == ScenReorder {
					r.Figures["reorder_tombstoned"]++
				} else {
					r.Figures["rejected_already_revoked"]++
				}
			default:
				r.fail("inv2: escalate %s (%s) rejected with unexpected code %s: %s", e.SymID, e.Scenario, rejected.Code, rejected.Message)
			}
			if hasGrant && g.SymEventID == e.SymID && g.State == grants.StateActive {
				r.fail("inv4: escalate %s was rejected (%s) yet its grant is ACTIVE", e.SymID, rejected.Code)
			}
		}
		if e.Scenario == ScenReorder && hasGrant && g.Tombstone {
			for _, t := range g.History {
				if t.Action == "escalate" || t.Action == "iam_add" {
					r.fail("inv4: tombstoned grant %s has a %s transition", e.GrantID, t.Action)
				}
			}
		}
	}

	checkAtRest(&r, w, o)
	if o.Mid != nil {
		checkMid(&r, w, *o.Mid, o.Slack)
	}
	checkOverlap(&r, w, o)
	sort.Strings(r.Violations)
	return r
}

// managed lists the groups iamjit may change.
func managed(w *Workload) []string {
	return append(slices.Clone(w.Cast.Groups), w.Cast.OverlapGroups...)
}

// checkAtRest is invariant 1 after every expiry: IAM, the store's
// memberships and the grants agree, and every grant has ended.
func checkAtRest(r *Report, w *Workload, o Observed) {
	f := o.Final
	active := map[string]map[string]bool{} // group -> users with an active grant
	for id, g := range f.After {
		if g.State == grants.StateActive {
			if !g.ExpiresAt.After(f.T2) {
				r.fail("inv1: at rest grant %s (%s in %s) is still ACTIVE %s after it expired", id, g.IAMUser, g.Group, f.T2.Sub(g.ExpiresAt).Round(time.Millisecond))
			}
			if active[g.Group] == nil {
				active[g.Group] = map[string]bool{}
			}
			active[g.Group][g.IAMUser] = true
		}
		r.Figures["grants/"+string(g.State)]++
	}
	for _, grp := range managed(w) {
		members := f.IAM[grp]
		for _, u := range members {
			if !active[grp][u] {
				r.fail("inv1: at rest %s is in IAM group %s without an active grant; its grants: %s", u, grp, describe(f.After, u, grp))
			}
		}
		for u := range active[grp] {
			if !slices.Contains(members, u) {
				r.fail("inv1: at rest %s has an active grant in %s but is not in the IAM group", u, grp)
			}
		}
	}
	outside := slices.Clone(f.IAM[w.Cast.OutsideGroup])
	slices.Sort(outside)
	before := slices.Clone(o.OutsideBefore)
	slices.Sort(before)
	if !slices.Equal(outside, before) {
		r.fail("inv7: group %s outside the managed path changed: %v -> %v", w.Cast.OutsideGroup, before, outside)
	}
	for _, m := range o.Members {
		want := []string{}
		for id, g := range f.After {
			if g.State == grants.StateActive && g.IAMUser == m.IAMUser && g.Group == m.Group {
				want = append(want, id)
			}
		}
		got := slices.Clone(m.GrantIDs)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			r.fail("inv1: membership item %s in %s holds grants %v; active grants are %v", m.IAMUser, m.Group, got, want)
		}
		if m.Dirty {
			r.Figures["memberships_dirty_at_rest"]++
		}
	}
	r.Figures["memberships"] = len(o.Members)
}

// checkMid is invariant 1 while grants are still active. IAM was read
// between two scans; a member is explained by a grant active in either scan
// or ended less than slack before the first, and a grant active throughout
// must show in IAM (the queue had drained, so every escalate had converged).
func checkMid(r *Report, w *Workload, s Snapshot, slack time.Duration) {
	type pair struct{ user, group string }
	explained := map[pair]bool{}
	required := map[pair]string{}
	for _, scan := range []map[string]grants.Grant{s.Before, s.After} {
		for _, g := range scan {
			p := pair{g.IAMUser, g.Group}
			switch {
			case g.State == grants.StateActive:
				explained[p] = true
			case !g.RevokedAt.IsZero() && g.RevokedAt.After(s.T0.Add(-slack)):
				explained[p] = true
			case s.Expiring[g.ID]:
				// Revoked by a sweep that has not converged it yet. Its
				// RevokedAt is when that sweep started, which can be long
				// before the revocation itself when many grants fall due.
				explained[p] = true
			}
		}
	}
	for id, g := range s.Before {
		a, ok := s.After[id]
		if g.State == grants.StateActive && ok && a.State == grants.StateActive && g.ExpiresAt.After(s.T2) {
			required[pair{g.IAMUser, g.Group}] = id
			r.Figures["mid_active_grants"]++
		}
	}
	for _, grp := range managed(w) {
		members := s.IAM[grp]
		for _, u := range members {
			if !explained[pair{u, grp}] {
				r.fail("inv1 (mid-point, IAM read at %s): %s is in IAM group %s with no grant active or just ended; its grants: %s",
					s.T1.Format("15:04:05.000"), u, grp, describe(s.After, u, grp))
			}
		}
		r.Figures["mid_members"] += len(members)
	}
	for p, id := range required {
		if !slices.Contains(s.IAM[p.group], p.user) {
			r.fail("inv1 (mid-point): grant %s was active throughout the read but %s is not in IAM group %s", id, p.user, p.group)
		}
	}
}

// checkOverlap is invariant 5 on the dedicated overlap pairs: from the
// moment the grants overlapped (see OverlapWindow) until the long grant
// ended, every sample must show the user in the group.
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
		in := SamplesWithin(o.Samples, e.Group, from, end)
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
			r.fail("inv5: %s left %s at %v while grant %s was active until %s (the short grant %s was revoked with the long one still in the membership at %s)",
				e.User, e.Group, missing, e.GrantID, end.Format("15:04:05.000"), e.Pair, from.Format("15:04:05.000"))
		default:
			r.Figures["overlap_exercised"]++
			r.Figures["overlap_samples_checked"] += len(in)
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

// SamplesWithin are the samples of group taken wholly between from and end.
func SamplesWithin(samples []Sample, group string, from, end time.Time) []Sample {
	var out []Sample
	for _, s := range samples {
		if s.Group == group && s.Start.After(from) && s.End.Before(end) {
			out = append(out, s)
		}
	}
	return out
}

// MidActive counts the grants active in both scans of s and not expired by
// the second: those the mid-point check requires IAM to show.
func MidActive(s Snapshot) int {
	n := 0
	for id, g := range s.Before {
		a, ok := s.After[id]
		if g.State == grants.StateActive && ok && a.State == grants.StateActive && g.ExpiresAt.After(s.T2) {
			n++
		}
	}
	return n
}

// describe lists the grants of (user, group) with their state, end and
// history, for a violation's message.
func describe(all map[string]grants.Grant, user, group string) string {
	var out []string
	for id, g := range all {
		if g.IAMUser != user || g.Group != group {
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
		out = append(out, k+" "+v.Code)
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
