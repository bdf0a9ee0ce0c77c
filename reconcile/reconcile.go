// Package reconcile compares IAM's members of the managed groups with the
// active grants (drift) and, when asked to enforce, converges IAM back to the
// grants through the grants service's own converge (the membership
// protocol): read the membership item, change IAM, mark it synced only if
// nobody wrote the item meanwhile, else read and converge again. So a grant
// that appears or ends while reconcile runs is never undone by it, and a
// removal ends role sessions by the same rule wherever it is made.
package reconcile

import (
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
	// Account is the AWS account of the group (and of Role).
	Account string `json:"account_id,omitempty"`
	IAMUser string `json:"iam_user"`
	Group   string `json:"group,omitempty"`
	Role    string `json:"role,omitempty"` // MissingRevocation: the role ARN
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

// Reconciler compares and, with enforce, repairs: every account iamjit
// serves, each group under the path in each, read through the account's
// own listing (grants.Account.Members) and confirmed with its IAM.
type Reconciler struct {
	Accounts *grants.Accounts
	// SessionChecks, by account id, report (and repair) missing
	// revocations; an account without one has its sessions unchecked.
	SessionChecks map[string]SessionChecker
	Store         Store
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

// Run compares every managed group of every account with the active
// grants. With enforce it removes unexplained members (publishing Access
// Revoked, reason drift) and re-adds users whose active grant lost its
// membership. The report lists every difference; the error joins what could
// not be read or repaired. An account that cannot be read is reported in
// the error and the others are still reconciled.
func (r *Reconciler) Run(ctx context.Context, enforce bool) (Report, error) {
	now := r.Now().UTC()
	rep := Report{At: now, Enforced: enforce, Differences: []Difference{}}
	// Every account's groups are listed before the grants are read: a
	// member the listing shows was added after its grant was written, so
	// the grant is in what is read next (the other way round, a grant and
	// its AddUserToGroup landing in between read as an unexplained member).
	accts := r.Accounts.All()
	listed := map[string]map[string][]string{}
	var errs []error
	for _, acct := range accts {
		groups, err := acct.Members.ManagedGroups(ctx, r.GroupPath)
		if err != nil {
			errs = append(errs, fmt.Errorf("list managed groups%s: %w", acct.In(), err))
			continue
		}
		listed[acct.ID] = groups
	}
	if len(errs) == len(accts) {
		return rep, errors.Join(errs...)
	}
	active, err := r.Store.ActiveGrants(ctx)
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("list active grants: %w", err))...)
	}
	byAcct := map[string][]grants.Grant{}
	for _, g := range active {
		byAcct[g.Account] = append(byAcct[g.Account], g)
	}
	for _, acct := range accts {
		if groups, ok := listed[acct.ID]; ok {
			n, err := r.compare(ctx, &rep, acct, groups, byAcct[acct.ID], now, enforce)
			rep.Groups += n
			if err != nil {
				errs = append(errs, err)
			}
		}
		delete(byAcct, acct.ID)
	}
	for id, gs := range byAcct {
		// Grants of an account no longer configured: nobody can read its
		// IAM, so they are reported, never touched.
		for _, g := range gs {
			rep.Differences = append(rep.Differences, Difference{Kind: MissingGroup, Account: id, IAMUser: g.IAMUser, Group: g.Group, GrantIDs: []string{g.ID},
				Error: "account " + id + " is not in IAMJIT_ACCOUNTS"})
		}
	}
	sort.Slice(rep.Differences, func(i, j int) bool {
		a, b := rep.Differences[i], rep.Differences[j]
		if a.Account != b.Account {
			return a.Account < b.Account
		}
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.IAMUser != b.IAMUser {
			return a.IAMUser < b.IAMUser
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Role < b.Role
	})
	if enforce {
		errs = append(errs, r.enforce(ctx, &rep, now))
	}
	return rep, errors.Join(errs...)
}

// compare adds the differences of one account to rep and returns how many
// managed groups it has.
func (r *Reconciler) compare(ctx context.Context, rep *Report, acct *grants.Account, groups map[string][]string, active []grants.Grant, now time.Time, enforce bool) (int, error) {
	id := acct.ID
	if len(r.AllowedGroups) > 0 {
		for name := range groups {
			if !slices.Contains(r.AllowedGroups, name) && !r.allowedARN(id, name) {
				delete(groups, name) // never granted by iamjit: not ours to judge
			}
		}
	}
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
	inIAM := map[grants.Key]bool{}
	for group, users := range groups {
		for _, u := range users {
			k := grants.Key{Account: id, User: u, Group: group}
			inIAM[k] = true
			if live[k] == nil && overdue[k] == nil {
				diffs = append(diffs, Difference{Kind: UnexplainedMember, Account: id, IAMUser: u, Group: group})
			}
		}
	}
	for k, ids := range live {
		_, managed := groups[k.Group]
		switch {
		case !managed:
			diffs = append(diffs, Difference{Kind: MissingGroup, Account: id, IAMUser: k.User, Group: k.Group, GrantIDs: sorted(ids)})
		case !inIAM[k]:
			diffs = append(diffs, Difference{Kind: MissingMember, Account: id, IAMUser: k.User, Group: k.Group, GrantIDs: sorted(ids)})
		}
	}
	diffs = confirmed(ctx, acct.IAM, diffs)
	for k, ids := range overdue {
		if live[k] == nil {
			diffs = append(diffs, Difference{Kind: Overdue, Account: id, IAMUser: k.User, Group: k.Group, GrantIDs: sorted(ids)})
		}
	}
	var sessErr error
	if check := r.SessionChecks[id]; check != nil {
		var missing []sessions.Missing
		missing, sessErr = check.Check(ctx, enforce)
		for _, m := range missing {
			d := Difference{Kind: MissingRevocation, Account: id, IAMUser: m.User, Role: m.RoleARN}
			if enforce {
				d.Action = ActionFailed
				if m.Restored {
					d.Action = ActionRestored
				}
			}
			diffs = append(diffs, d)
		}
		if sessErr != nil {
			sessErr = fmt.Errorf("check session revocations%s: %w", acct.In(), sessErr)
		}
	}
	rep.Differences = append(rep.Differences, diffs...)
	return len(groups), sessErr
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
// The group listing is a snapshot taken before the grants were read: an
// escalate whose AddUserToGroup lands in between would otherwise be reported
// (and re-added) as a missing member, and a deescalate's removal as an
// unexplained one. A difference that cannot be re-read is kept.
func confirmed(ctx context.Context, members grants.GroupMembership, diffs []Difference) []Difference {
	return slices.DeleteFunc(diffs, func(d Difference) bool {
		if d.Kind != MissingMember && d.Kind != UnexplainedMember {
			return false
		}
		in, err := members.IsMember(ctx, d.IAMUser, d.Group)
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
		k := grants.Key{Account: d.Account, User: d.IAMUser, Group: d.Group}
		m, err := r.Store.Membership(ctx, k)
		if err == nil && m.Dirty {
			d.Action = ActionInFlight
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

// readdNote is the history note of a re-add by reconcile.
const readdNote = "reconcile: re-added after drift"

// DriftKey is what the result id of an Access Revoked (drift) is derived
// from: the membership and the start of the detection window. A membership
// of the home account is named without the account, as before there were
// accounts, so its result ids did not change.
func DriftKey(k grants.Key, home string, detected time.Time, window time.Duration) string {
	who := k.User + "/" + k.Group
	if k.Account != home {
		who = k.Account + "/" + who
	}
	return "drift/" + who + "/" + detected.UTC().Truncate(window).Format(time.RFC3339)
}

func (r *Reconciler) driftResult(k grants.Key, now time.Time) events.Result {
	w := r.Window
	if w <= 0 {
		w = time.Hour
	}
	return events.Result{
		DetailType: events.AccessRevoked,
		ResultID:   events.ResultID(events.AccessRevoked, DriftKey(k, r.Accounts.Home().ID, now, w)),
		AccountID:  k.Account,
		IAMUser:    k.User, Group: k.Group, Reason: events.RevokedDrift, RevokedAt: events.TimePtr(now),
		Message: "member of a managed group with no active grant: removed by reconcile",
	}
}

func sorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
