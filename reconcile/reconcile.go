// Package reconcile compares IAM's members of the managed groups with the
// active grants (drift) and, when asked to enforce, converges IAM back to the
// grants through the same membership protocol the grants service uses: read
// the membership item, change IAM, mark it synced only if nobody wrote the
// item meanwhile, else read and converge again. So a grant that appears or
// ends while reconcile runs is never undone by it.
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

// Members lists the groups under an IAM path with their members
// (grants/iamgroups).
type Members interface {
	ManagedGroups(ctx context.Context, path string) (map[string][]string, error)
	// IsMember reads one membership now: differences found in the listing
	// are confirmed with it before they are reported.
	IsMember(ctx context.Context, iamUser, group string) (bool, error)
}

// Store is what reconcile reads and writes in the grants table
// (grants/dynamo).
type Store interface {
	// ActiveGrants lists every ACTIVE grant, expired or not.
	ActiveGrants(ctx context.Context) ([]grants.Grant, error)
	Membership(ctx context.Context, iamUser, group string) (grants.Membership, error)
	MarkSynced(ctx context.Context, iamUser, group, token, grantID string, t grants.Transition) (bool, error)
}

// GroupMembership changes IAM; both calls are idempotent and return the AWS
// request id.
type GroupMembership interface {
	AddUser(ctx context.Context, iamUser, group string) (string, error)
	RemoveUser(ctx context.Context, iamUser, group string) (string, error)
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
	Kind    Kind   `json:"kind"`
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

// Reconciler compares and, with enforce, repairs.
type Reconciler struct {
	// Sessions, when set, ends the role sessions of a member a drift
	// removal took out of a group.
	Sessions grants.Sessions
	// SessionCheck, when set, reports (and repairs) missing revocations.
	SessionCheck  SessionChecker
	Members       Members
	Store         Store
	IAM           GroupMembership
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

// maxConverge bounds how often one membership is chased while others keep
// writing it.
const maxConverge = 8

type pair struct{ user, group string }

// Run compares every managed group with the active grants. With enforce it
// removes unexplained members (publishing Access Revoked, reason drift) and
// re-adds users whose active grant lost its membership. The report lists
// every difference; the error joins what could not be read or repaired.
func (r *Reconciler) Run(ctx context.Context, enforce bool) (Report, error) {
	now := r.Now().UTC()
	rep := Report{At: now, Enforced: enforce, Differences: []Difference{}}
	groups, err := r.Members.ManagedGroups(ctx, r.GroupPath)
	if err != nil {
		return rep, fmt.Errorf("list managed groups: %w", err)
	}
	if len(r.AllowedGroups) > 0 {
		for name := range groups {
			if !slices.Contains(r.AllowedGroups, name) {
				delete(groups, name) // never granted by iamjit: not ours to judge
			}
		}
	}
	rep.Groups = len(groups)
	active, err := r.Store.ActiveGrants(ctx)
	if err != nil {
		return rep, fmt.Errorf("list active grants: %w", err)
	}
	live := map[pair][]string{}    // unexpired active grants
	overdue := map[pair][]string{} // expired but not yet swept
	for _, g := range active {
		p := pair{g.IAMUser, g.Group}
		if g.ExpiresAt.After(now) {
			live[p] = append(live[p], g.ID)
			rep.Active++
		} else {
			overdue[p] = append(overdue[p], g.ID)
		}
	}
	inIAM := map[pair]bool{}
	for group, users := range groups {
		for _, u := range users {
			p := pair{u, group}
			inIAM[p] = true
			if live[p] == nil && overdue[p] == nil {
				rep.Differences = append(rep.Differences, Difference{Kind: UnexplainedMember, IAMUser: u, Group: group})
			}
		}
	}
	for p, ids := range live {
		_, managed := groups[p.group]
		switch {
		case !managed:
			rep.Differences = append(rep.Differences, Difference{Kind: MissingGroup, IAMUser: p.user, Group: p.group, GrantIDs: sorted(ids)})
		case !inIAM[p]:
			rep.Differences = append(rep.Differences, Difference{Kind: MissingMember, IAMUser: p.user, Group: p.group, GrantIDs: sorted(ids)})
		}
	}
	rep.Differences = r.confirmed(ctx, rep.Differences)
	for p, ids := range overdue {
		if live[p] == nil {
			rep.Differences = append(rep.Differences, Difference{Kind: Overdue, IAMUser: p.user, Group: p.group, GrantIDs: sorted(ids)})
		}
	}
	var sessErr error
	if r.SessionCheck != nil {
		var missing []sessions.Missing
		missing, sessErr = r.SessionCheck.Check(ctx, enforce)
		for _, m := range missing {
			d := Difference{Kind: MissingRevocation, IAMUser: m.User, Role: m.RoleARN}
			if enforce {
				d.Action = ActionFailed
				if m.Restored {
					d.Action = ActionRestored
				}
			}
			rep.Differences = append(rep.Differences, d)
		}
		if sessErr != nil {
			sessErr = fmt.Errorf("check session revocations: %w", sessErr)
		}
	}
	sort.Slice(rep.Differences, func(i, j int) bool {
		a, b := rep.Differences[i], rep.Differences[j]
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
	if !enforce {
		return rep, sessErr
	}
	return rep, errors.Join(sessErr, r.enforce(ctx, &rep, now))
}

// confirmed keeps the member differences IAM still shows when asked again.
// The group listing is a snapshot taken before the grants were read: an
// escalate whose AddUserToGroup lands in between would otherwise be reported
// (and re-added) as a missing member, and a deescalate's removal as an
// unexplained one. A difference that cannot be re-read is kept.
func (r *Reconciler) confirmed(ctx context.Context, diffs []Difference) []Difference {
	return slices.DeleteFunc(diffs, func(d Difference) bool {
		if d.Kind != MissingMember && d.Kind != UnexplainedMember {
			return false
		}
		in, err := r.Members.IsMember(ctx, d.IAMUser, d.Group)
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
		m, err := r.Store.Membership(ctx, d.IAMUser, d.Group)
		if err == nil && m.Dirty {
			d.Action = ActionInFlight
			continue
		}
		in, ended, err := r.converge(ctx, d.IAMUser, d.Group, d.GrantIDs, now)
		d.SessionsRevoked = ended.Revoked
		if err != nil {
			d.Action, d.Error = ActionFailed, err.Error()
			errs = append(errs, err)
			continue
		}
		switch {
		case d.Kind == UnexplainedMember && !in:
			d.Action = ActionRemoved
			res := r.driftResult(d.IAMUser, d.Group, now)
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
		r.Log.InfoContext(ctx, "reconcile enforced", "kind", d.Kind, "iam_user", d.IAMUser, "group", d.Group,
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

// converge makes IAM agree with the membership item of (user, group) and
// says whether the user ended up in the group. A re-add is noted in the
// history of the grant that explains it; a removal ends the sessions the
// membership enabled.
func (r *Reconciler) converge(ctx context.Context, user, group string, hint []string, now time.Time) (bool, grants.SessionsEnded, error) {
	var ended grants.SessionsEnded
	for range maxConverge {
		m, err := r.Store.Membership(ctx, user, group)
		if err != nil {
			return false, ended, fmt.Errorf("read membership %s in %s: %w", user, group, err)
		}
		want := len(m.GrantIDs) > 0
		t := grants.Transition{At: now}
		grantID := ""
		var reqID string
		if want {
			reqID, err = r.IAM.AddUser(ctx, user, group)
			t.Action, t.Note = "iam_add", "reconcile: re-added after drift"
			grantID = explaining(m.GrantIDs, hint)
		} else {
			reqID, err = r.IAM.RemoveUser(ctx, user, group)
			t.Action = "iam_remove"
			// IAM had the user (a request id, not NoSuchEntity) or a write
			// emptied the set since IAM last agreed: a membership ends now.
			// Before MarkSynced, as in grants: a failure is retried.
			if err == nil && r.Sessions != nil && (reqID != "" || m.Dirty) {
				ended, err = r.Sessions.MembershipEnded(ctx, user, group, r.Now().UTC())
				if err != nil {
					err = fmt.Errorf("end role sessions: %w", err)
				}
			}
		}
		if err != nil {
			return false, ended, fmt.Errorf("converge %s in %s: %w", user, group, err)
		}
		t.IAMRequestID = reqID
		ok, err := r.Store.MarkSynced(ctx, user, group, m.Token, grantID, t)
		if err != nil {
			return false, ended, fmt.Errorf("mark %s in %s synced: %w", user, group, err)
		}
		if ok {
			return want, ended, nil
		}
	}
	return false, ended, fmt.Errorf("converge %s in %s: membership changed %d times while converging", user, group, maxConverge)
}

// explaining picks the grant whose history records the re-add: one the
// report named if the store still has it, else the store's first.
func explaining(stored, hint []string) string {
	for _, id := range hint {
		if slices.Contains(stored, id) {
			return id
		}
	}
	return slices.Min(stored)
}

// DriftKey is what the result id of an Access Revoked (drift) is derived
// from: user, group and the start of the detection window.
func DriftKey(user, group string, detected time.Time, window time.Duration) string {
	return "drift/" + user + "/" + group + "/" + detected.UTC().Truncate(window).Format(time.RFC3339)
}

func (r *Reconciler) driftResult(user, group string, now time.Time) events.Result {
	w := r.Window
	if w <= 0 {
		w = time.Hour
	}
	return events.Result{
		DetailType: events.AccessRevoked,
		ResultID:   events.ResultID(events.AccessRevoked, DriftKey(user, group, now, w)),
		IAMUser:    user, Group: group, Reason: events.RevokedDrift, RevokedAt: events.TimePtr(now),
		Message: "member of a managed group with no active grant: removed by reconcile",
	}
}

func sorted(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
