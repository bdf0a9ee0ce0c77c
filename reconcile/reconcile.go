// Package reconcile compares IAM's members of the managed groups with the
// active grants (drift) and, when asked to enforce, converges IAM back to the
// grants through the grants service's own converge (the membership
// protocol): read the membership item, change IAM, mark it synced only if
// nobody wrote the item meanwhile, else read and converge again. So a grant
// that appears or ends while reconcile runs is never undone by it, and a
// removal ends role sessions by the same rule wherever it is made.
package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/sessions"
)

// Store is what reconcile reads in the grants table (grants/dynamo).
type Store interface {
	// ActiveGrants lists every ACTIVE grant, expired or not.
	ActiveGrants(ctx context.Context) ([]grants.Grant, error)
	Membership(ctx context.Context, k grants.Key) (grants.Membership, error)
}

// Converger makes IAM agree with one membership item, in its account,
// through the protocol every writer follows (grants.Service.Converge): a
// re-add is noted with note in the history of the first of prefer the item
// still holds; a removal ends the role sessions the membership enabled. It
// reports whether the user ended up in the group.
type Converger interface {
	Converge(ctx context.Context, k grants.Key, note string, prefer []string) (bool, grants.SessionsEnded, error)
}

// Publisher makes result events durable.
type Publisher interface {
	Publish(ctx context.Context, results []events.Result) error
}

// Kind of a difference.
type Kind string

const (
	// UnexplainedMember: in the IAM group, no active grant explains it.
	UnexplainedMember Kind = "unexplained_member"
	// MissingMember: an active, unexpired grant, and the user is not in the
	// group.
	MissingMember Kind = "missing_member"
	// MissingGroup: an active, unexpired grant for a group that is not
	// (any longer) under the managed path. Not enforceable.
	MissingGroup Kind = "missing_group"
	// MissingRevocation: a user's membership ended within the role's
	// MaxSessionDuration and the role's policy in IAM does not deny their
	// older sessions (someone edited or deleted it, or no room was left).
	// Enforce rewrites the policy from the store.
	MissingRevocation Kind = "session_revocation_missing"
	// Overdue: an ACTIVE grant whose expiry has passed. The sweeper revokes
	// it (its lag is a metric of its own); reconcile neither counts it as
	// drift nor touches it, so the two never fight over one membership.
	Overdue Kind = "overdue_grant"
)

// Actions taken under enforce.
const (
	ActionRemoved  = "removed"   // taken out of IAM, Access Revoked (drift) published
	ActionReadded  = "re-added"  // put back into IAM, noted in the grant's history
	ActionKept     = "kept"      // the store now explains the member: left in
	ActionNone     = "unchanged" // the store no longer wants it: left out
	ActionFailed   = "failed"
	ActionRestored = "restored" // the role's session-revocation policy rewritten
	// ActionInFlight: the membership is marked dirty, so a writer is making
	// IAM agree with it right now (or died, and the sweeper repairs it after
	// IAMJIT_REPAIR_GRACE): left to them, so reconcile never races a writer.
	ActionInFlight = "in_flight"
)

// Difference is one disagreement between IAM and the grants.
type Difference struct {
	Kind Kind `json:"kind"`
	// Account is the AWS account of the group (and of Role), or of an
	// Identity Center membership (as results name it).
	Account string `json:"account_id,omitempty"`
	// TargetType is set for an Identity Center membership only; then
	// IAMUser is the Identity Store user id and Group the permission set ARN
	// or the Identity Store group id.
	TargetType string `json:"target_type,omitempty"`
	IAMUser    string `json:"iam_user"`
	Group      string `json:"group,omitempty"`
	Role       string `json:"role,omitempty"` // MissingRevocation: the role ARN
	// SessionsRevoked: the roles whose older sessions a drift removal ended.
	SessionsRevoked []string `json:"sessions_revoked,omitempty"`
	GrantIDs        []string `json:"grant_ids,omitempty"`
	Action          string   `json:"action,omitempty"`
	ResultID        string   `json:"result_id,omitempty"` // of the Access Revoked (drift)
	Error           string   `json:"error,omitempty"`
}

// Drift reports whether d is drift (as opposed to a note about the sweeper).
func (d Difference) Drift() bool { return d.Kind != Overdue }

// Report is the outcome of one run.
type Report struct {
	At          time.Time    `json:"at"`
	Groups      int          `json:"groups"`
	Active      int          `json:"active_grants"` // ACTIVE and unexpired
	Enforced    bool         `json:"enforced"`
	Differences []Difference `json:"differences"`
}

// Drift counts the differences that are drift.
func (r Report) Drift() int {
	n := 0
	for _, d := range r.Differences {
		if d.Drift() {
			n++
		}
	}
	return n
}

// SessionChecker compares the recorded session revocations with the
// roles' policies in IAM and, with enforce, rewrites them (sessions).
type SessionChecker interface {
	Check(ctx context.Context, enforce bool) ([]sessions.Missing, error)
}

// SSOTargets are the Identity Center targets requests may name
// (IAMJIT_SSO_PERMISSION_SETS, _ASSIGNMENT_ACCOUNTS, _GROUPS).
type SSOTargets struct {
	PermissionSets, Accounts, Groups []string
}

// Reconciler compares and, with enforce, repairs: every account iamjit
// serves, each group under the path in each, read through the account's
// own listing (grants.Account.Members) and confirmed with its IAM.
type Reconciler struct {
	Accounts *grants.Accounts
	// SessionChecks, by account id, report (and repair) missing
	// revocations; an account without one has its sessions unchecked.
	SessionChecks map[string][]SessionChecker
	// SSO are the allow-lists of Identity Center targets: only their
	// memberships are iamjit's to judge.
	SSO   SSOTargets
	Store Store
	// Converger changes IAM under enforce, in every account.
	Converger     Converger
	Publisher     Publisher
	GroupPath     string
	AllowedGroups []string // when set, only these groups under the path are reconciled
	// Window buckets detection times into drift incidents: the Access
	// Revoked (drift) result id is derived from user, group and the start of
	// the window, so replicas and reruns within one window publish the same
	// id. Default one hour.
	Window time.Duration
	Now    func() time.Time
	Log    *slog.Logger
}

// Run compares every managed group of every account, and every allowed
// Identity Center target, with the active grants. With enforce it removes
// unexplained members (publishing Access Revoked, reason drift) and
// re-adds users whose active grant lost its membership. The report lists
// every difference; the error joins what could not be read or repaired. An
// account that cannot be read is reported in the error and the others are
// still reconciled.
func (r *Reconciler) Run(ctx context.Context, enforce bool) (Report, error) {
	now := r.Now().UTC()
	rep := Report{At: now, Enforced: enforce, Differences: []Difference{}}
	// Every listing is read before the grants: a member the listing shows
	// was added after its grant was written, so the grant is in what is
	// read next (the other way round, a grant and its add landing in
	// between read as an unexplained member).
	sets, errs := r.list(ctx)
	if len(sets) == 0 && len(errs) > 0 {
		return rep, errors.Join(errs...)
	}
	active, err := r.Store.ActiveGrants(ctx)
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("list active grants: %w", err))...)
	}
	unowned := r.unowned(active)
	for _, set := range sets {
		var mine []grants.Grant
		for _, g := range active {
			if set.owns(g.Key()) {
				mine = append(mine, g)
			}
		}
		rep.Groups += set.targets
		rep.Differences = append(rep.Differences, r.compare(ctx, &rep, set, mine, now)...)
	}
	for _, g := range unowned {
		// Grants of an account no longer configured: nobody can read its
		// IAM, so they are reported, never touched.
		rep.Differences = append(rep.Differences, Difference{Kind: MissingGroup, Account: g.Account, IAMUser: g.IAMUser, Group: g.Group,
			TargetType: targetType(g.Kind), GrantIDs: []string{g.ID}, Error: "account " + g.Account + " is not in IAMJIT_ACCOUNTS"})
	}
	errs = append(errs, r.checkSessions(ctx, &rep, enforce)...)
	sortDifferences(rep.Differences)
	if enforce {
		errs = append(errs, r.enforce(ctx, &rep, now))
	}
	return rep, errors.Join(errs...)
}

// memberSet is one listing: the memberships of one kind that one account's
// adapter shows, and which memberships it speaks for (managed).
type memberSet struct {
	acct    *grants.Account
	kinds   []grants.Kind
	present map[grants.Key]bool
	managed func(grants.Key) bool // a membership this listing would show
	targets int                   // groups (or Identity Center targets) listed
}

// owns reports whether the listing speaks for membership k.
func (m memberSet) owns(k grants.Key) bool {
	return slices.Contains(m.kinds, k.Kind) && (k.Kind != grants.IAMGroup || k.Account == m.acct.ID)
}

// list reads every listing: each account's groups under the path, and the
// allowed Identity Center targets through the Identity Center account.
func (r *Reconciler) list(ctx context.Context) ([]memberSet, []error) {
	var sets []memberSet
	var errs []error
	for _, acct := range r.Accounts.All() {
		set, err := r.listGroups(ctx, acct)
		if err != nil {
			errs = append(errs, fmt.Errorf("list managed groups%s: %w", acct.In(), err))
			continue
		}
		sets = append(sets, set)
	}
	if sso := r.Accounts.SSO(); sso != nil {
		set, err := r.listSSO(ctx, sso)
		if err != nil {
			errs = append(errs, fmt.Errorf("list Identity Center memberships: %w", err))
		} else {
			sets = append(sets, set)
		}
	}
	return sets, errs
}

// listGroups is one account's groups under the path (and in the
// allow-list, when there is one) with their members.
func (r *Reconciler) listGroups(ctx context.Context, acct *grants.Account) (memberSet, error) {
	groups, err := acct.Members.ManagedGroups(ctx, r.GroupPath)
	if err != nil {
		return memberSet{}, err
	}
	if len(r.AllowedGroups) > 0 {
		for name := range groups {
			if !slices.Contains(r.AllowedGroups, name) && !r.allowedARN(acct.ID, name) {
				delete(groups, name) // never granted by iamjit: not ours to judge
			}
		}
	}
	set := memberSet{acct: acct, kinds: []grants.Kind{grants.IAMGroup}, present: map[grants.Key]bool{}, targets: len(groups),
		managed: func(k grants.Key) bool { _, ok := groups[k.Group]; return ok }}
	for group, users := range groups {
		for _, u := range users {
			set.present[grants.Key{Account: acct.ID, User: u, Group: group}] = true
		}
	}
	return set, nil
}

// listSSO is every USER assignment of the allowed permission sets in the
// allowed accounts, and every member of the allowed groups: a membership
// iamjit could have made.
func (r *Reconciler) listSSO(ctx context.Context, sso *grants.Account) (memberSet, error) {
	t := r.SSO
	assigned, err := sso.SSO.Lister.Assigned(ctx, t.PermissionSets, t.Accounts)
	if err != nil {
		return memberSet{}, err
	}
	members, err := sso.SSO.Lister.GroupMembersOf(ctx, t.Groups, sso.ID)
	if err != nil {
		return memberSet{}, err
	}
	set := memberSet{acct: sso, kinds: []grants.Kind{grants.PermissionSet, grants.SSOGroup}, present: map[grants.Key]bool{},
		targets: len(t.PermissionSets)*len(t.Accounts) + len(t.Groups),
		managed: func(k grants.Key) bool {
			if k.Kind == grants.PermissionSet {
				return slices.Contains(t.PermissionSets, k.Group) && slices.Contains(t.Accounts, k.Account)
			}
			return slices.Contains(t.Groups, k.Group)
		}}
	for _, k := range append(assigned, members...) {
		set.present[k] = true
	}
	return set, nil
}

// unowned are the active grants no configured account can change: of an
// account dropped from IAMJIT_ACCOUNTS. (Identity Center grants while it
// is off are left alone: turning it off is not drift.)
func (r *Reconciler) unowned(active []grants.Grant) []grants.Grant {
	var out []grants.Grant
	for _, g := range active {
		if g.Kind != grants.IAMGroup {
			continue
		}
		if _, err := r.Accounts.Get(g.Account); err != nil {
			out = append(out, g)
		}
	}
	return out
}

// compare is the differences between one listing and the grants it owns.
func (r *Reconciler) compare(ctx context.Context, rep *Report, set memberSet, active []grants.Grant, now time.Time) []Difference {
	live := map[grants.Key][]string{}    // unexpired active grants
	overdue := map[grants.Key][]string{} // expired but not yet swept
	for _, g := range active {
		k := g.Key()
		if g.ExpiresAt.After(now) {
			live[k] = append(live[k], g.ID)
			rep.Active++
		} else {
			overdue[k] = append(overdue[k], g.ID)
		}
	}
	var diffs []Difference
	for k := range set.present {
		if live[k] == nil && overdue[k] == nil {
			diffs = append(diffs, difference(UnexplainedMember, k, nil))
		}
	}
	for k, ids := range live {
		switch {
		case !set.managed(k):
			diffs = append(diffs, difference(MissingGroup, k, ids))
		case !set.present[k]:
			diffs = append(diffs, difference(MissingMember, k, ids))
		}
	}
	diffs = confirmed(ctx, set.acct, diffs)
	for k, ids := range overdue {
		if live[k] == nil {
			diffs = append(diffs, difference(Overdue, k, ids))
		}
	}
	return diffs
}

// difference of kind about membership k and the grants that explain it.
func difference(kind Kind, k grants.Key, ids []string) Difference {
	d := Difference{Kind: kind, Account: k.Account, IAMUser: k.User, Group: k.Group, TargetType: targetType(k.Kind)}
	if ids != nil {
		d.GrantIDs = sorted(ids)
	}
	return d
}

// targetType names an Identity Center kind in a difference; IAM groups, as
// before there were others, name none.
func targetType(k grants.Kind) string {
	if k == grants.IAMGroup {
		return ""
	}
	return k.TargetType()
}

// key is the membership a difference is about.
func (d Difference) key() grants.Key {
	kind := grants.IAMGroup
	if d.TargetType != "" {
		kind = grants.Kind(d.TargetType)
	}
	return grants.Key{Kind: kind, Account: d.Account, User: d.IAMUser, Group: d.Group}
}

// checkSessions reports (and with enforce repairs) the revocations each
// account's roles, and the Identity Center account's permission sets, are
// missing.
func (r *Reconciler) checkSessions(ctx context.Context, rep *Report, enforce bool) []error {
	var errs []error
	for _, acct := range r.Accounts.All() {
		for _, check := range r.SessionChecks[acct.ID] {
			if err := r.checkSessionsOf(ctx, rep, acct, check, enforce); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// checkSessionsOf is one checker's missing revocations (a role's, or a
// permission set's in one account).
func (r *Reconciler) checkSessionsOf(ctx context.Context, rep *Report, acct *grants.Account, check SessionChecker, enforce bool) error {
	missing, err := check.Check(ctx, enforce)
	for _, m := range missing {
		d := Difference{Kind: MissingRevocation, Account: cmp.Or(m.Account, acct.ID), IAMUser: m.User, Role: m.RoleARN}
		if enforce {
			d.Action = ActionFailed
			if m.Restored {
				d.Action = ActionRestored
			}
		}
		rep.Differences = append(rep.Differences, d)
	}
	if err != nil {
		return fmt.Errorf("check session revocations%s: %w", acct.In(), err)
	}
	return nil
}

func sortDifferences(ds []Difference) {
	sort.Slice(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		switch {
		case a.Account != b.Account:
			return a.Account < b.Account
		case a.TargetType != b.TargetType:
			return a.TargetType < b.TargetType
		case a.Group != b.Group:
			return a.Group < b.Group
		case a.IAMUser != b.IAMUser:
			return a.IAMUser < b.IAMUser
		case a.Kind != b.Kind:
			return a.Kind < b.Kind
		}
		return a.Role < b.Role
	})
}

// allowedARN: the allow-list may name a group by its ARN (that account's
// group only).
func (r *Reconciler) allowedARN(acct, name string) bool {
	for _, e := range r.AllowedGroups {
		if strings.HasPrefix(e, "arn:") && strings.HasSuffix(e, "/"+name) && strings.Contains(e, ":"+acct+":") {
			return true
		}
	}
	return false
}

// confirmed keeps the member differences IAM still shows when asked again.
// The listing is a snapshot taken before the grants were read: an escalate
// whose add lands in between would otherwise be reported (and re-added) as
// a missing member, and a deescalate's removal as an unexplained one. A
// difference that cannot be re-read is kept.
func confirmed(ctx context.Context, acct *grants.Account, diffs []Difference) []Difference {
	return slices.DeleteFunc(diffs, func(d Difference) bool {
		if d.Kind != MissingMember && d.Kind != UnexplainedMember {
			return false
		}
		k := d.key()
		in, err := acct.MembersOf(k.Kind).IsMember(ctx, k)
		if err != nil {
			return false
		}
		return in == (d.Kind == MissingMember)
	})
}

func (r *Reconciler) enforce(ctx context.Context, rep *Report, now time.Time) error {
	var errs []error
	var results []events.Result
	for i := range rep.Differences {
		d := &rep.Differences[i]
		if d.Kind != UnexplainedMember && d.Kind != MissingMember {
			continue
		}
		k := d.key()
		m, err := r.Store.Membership(ctx, k)
		if err == nil && m.Dirty {
			d.Action = ActionInFlight
			continue
		}
		if r.settled(ctx, *d) {
			d.Action = actionSettled
			continue
		}
		in, ended, err := r.Converger.Converge(ctx, k, readdNote, d.GrantIDs)
		d.SessionsRevoked = ended.Revoked
		if err != nil {
			d.Action, d.Error = ActionFailed, err.Error()
			errs = append(errs, err)
			continue
		}
		switch {
		case d.Kind == UnexplainedMember && !in:
			d.Action = ActionRemoved
			res := r.driftResult(k, now)
			res.SessionsRevoked, res.SessionsSkipped, res.SessionsNotRevoked = ended.Revoked, ended.Skipped, ended.NotRevoked
			d.ResultID = res.ResultID
			results = append(results, res)
		case d.Kind == UnexplainedMember:
			d.Action = ActionKept
		case in:
			d.Action = ActionReadded
		default:
			d.Action = ActionNone
		}
		r.Log.InfoContext(ctx, "reconcile enforced", "kind", d.Kind, "account_id", d.Account, "iam_user", d.IAMUser, "group", d.Group,
			"grant_ids", strings.Join(d.GrantIDs, ","), "action", d.Action)
	}
	rep.Differences = slices.DeleteFunc(rep.Differences, func(d Difference) bool { return d.Action == actionSettled })
	// Published after the removals: a notice is never sent for a removal
	// that did not happen. If publishing fails the error says so; the
	// removal stands.
	if len(results) > 0 {
		if err := r.Publisher.Publish(ctx, results); err != nil {
			errs = append(errs, fmt.Errorf("publish %d drift revocations: %w", len(results), err))
		}
	}
	return errors.Join(errs...)
}

// actionSettled marks a difference its writer settled between the
// listing and enforce: not drift, dropped from the report.
const actionSettled = "settled"

// settled reports whether IAM now agrees with the store for d, read again
// just before enforce would act: a writer whose membership item was clean
// by the time enforce read it has finished, and its change may have landed
// after the listing and its confirmation (an add, say, made a moment after
// the grant was written). A read that fails settles nothing.
func (r *Reconciler) settled(ctx context.Context, d Difference) bool {
	k := d.key()
	acct, err := r.Accounts.Of(k)
	if err != nil {
		return false
	}
	in, err := acct.MembersOf(k.Kind).IsMember(ctx, k)
	return err == nil && in == (d.Kind == MissingMember)
}

// readdNote is the history note of a re-add by reconcile.
const readdNote = "reconcile: re-added after drift"

// DriftKey is what the result id of an Access Revoked (drift) is derived
// from: the membership and the start of the detection window. A membership
// of the home account is named without the account, as before there were
// accounts, so its result ids did not change.
func DriftKey(k grants.Key, home string, detected time.Time, window time.Duration) string {
	who := k.User + "/" + k.Group
	switch {
	case k.Kind != grants.IAMGroup:
		who = string(k.Kind) + "/" + k.Account + "/" + who
	case k.Account != home:
		who = k.Account + "/" + who
	}
	return "drift/" + who + "/" + detected.UTC().Truncate(window).Format(time.RFC3339)
}

func (r *Reconciler) driftResult(k grants.Key, now time.Time) events.Result {
	w := r.Window
	if w <= 0 {
		w = time.Hour
	}
	res := events.Result{
		DetailType: events.AccessRevoked,
		ResultID:   events.ResultID(events.AccessRevoked, DriftKey(k, r.Accounts.Home().ID, now, w)),
		TargetType: k.Kind.TargetType(), AccountID: k.Account,
		Reason: events.RevokedDrift, RevokedAt: events.TimePtr(now),
		Message: "member of a managed group with no active grant: removed by reconcile",
	}
	grants.SetTarget(&res, k, "")
	return res
}

func sorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
