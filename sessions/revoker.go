package sessions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
)

// Modes of IAMJIT_SESSION_REVOCATION.
const (
	RevokeUser = "user" // per user where the role requires source identity, role-wide where not
	RevokeRole = "role" // always role-wide
	RevokeOff  = "off"  // write nothing
)

// ErrRoleGone is returned by Roles when the role does not exist (any more).
var ErrRoleGone = errors.New("role does not exist")

// ErrNoRoom is returned by Roles.PutPolicy when IAM refuses the document
// for its size: retrying cannot help.
var ErrNoRoom = errors.New("inline policies of the role would exceed IAM's limit")

// Roles reads and writes IAM roles through the chained IAM-modifier client
// (sessions/iamroles).
type Roles interface {
	// GroupPolicies returns the group's policy documents: its inline
	// policies and the default versions of its attached managed ones,
	// cached for a while; none when the group is gone.
	GroupPolicies(ctx context.Context, group string) ([]string, error)
	// RolePolicies returns the role's own policy documents (inline but
	// PolicyName, and attached managed), cached for a while; none when the
	// role is gone.
	RolePolicies(ctx context.Context, role string) ([]string, error)
	// AllRoles lists every role of the account, cached for a while.
	AllRoles(ctx context.Context) ([]Role, error)
	// Role reads one role afresh. ErrRoleGone when it does not exist.
	Role(ctx context.Context, name string) (Role, error)
	// OtherInlineSize is the Size of the role's inline policies other than
	// PolicyName, added up.
	OtherInlineSize(ctx context.Context, role string) (int, error)
	// PutPolicy writes PolicyName and returns the request id. ErrRoleGone
	// when the role is gone, ErrNoRoom when IAM refuses it for its size.
	PutPolicy(ctx context.Context, role, doc string) (string, error)
	// DeletePolicy removes PolicyName; a missing policy or role is success.
	DeletePolicy(ctx context.Context, role string) (string, error)
	// Policy reads PolicyName: "" when the role has none. ErrRoleGone.
	Policy(ctx context.Context, role string) (string, error)
}

// RoleState is the store's record of one role: when each user's
// membership that enabled it ended, and the protocol's token.
type RoleState struct {
	ARN   string
	Name  string
	Users map[string]time.Time
	Token string // "" for a role never written
	Dirty bool
}

// Store keeps one item per role (sessions/dynamo).
type Store interface {
	// Add records that user's membership ended at at, keeping a later time
	// already recorded; it replaces the token and marks the item dirty.
	Add(ctx context.Context, role Role, user string, at time.Time, token string) error
	// Get reads the item consistently; a role never written reads as empty.
	Get(ctx context.Context, roleARN string) (RoleState, error)
	// Synced, only if the item's token is still token: removes the drop
	// users, clears the dirty mark and makes the item due again at prune
	// (or deletes it when remaining is 0). False when someone wrote since.
	Synced(ctx context.Context, roleARN, token string, drop []string, remaining int, prune time.Time) (bool, error)
	// Due lists items dirty since before dirtyBefore, or due to be pruned
	// by now (a zero now: none to prune).
	Due(ctx context.Context, dirtyBefore, now time.Time, limit int32) ([]RoleState, error)
	// All lists every role item.
	All(ctx context.Context) ([]RoleState, error)
}

// Observer counts what the revoker did (internal/metrics). May be nil.
type Observer interface {
	SessionsRevoked(mode string)
	SessionRoleSkipped()
	SessionRevocationFailed(reason string)
}

// Result is what one ended membership did to the roles it enabled.
type Result struct {
	Revoked []string // role ARNs whose sessions issued before the end now fail
	Skipped []string // roles the group may assume outside the role path: never touched
	NoRoom  []string // under the path, but no statement fits beside the role's other inline policies
	Gone    []string // deleted before the write: nothing left to revoke
	Writes  []Write  // every IAM call, for the grant's history
}

// Write is one IAM call on a role.
type Write struct {
	RoleARN   string
	Op        string // PutRolePolicy or DeleteRolePolicy
	RequestID string
	Mode      string // ModeUser or ModeRole, for a put
}

// Revoker ends the sessions of ended memberships.
type Revoker struct {
	Roles    Roles
	Store    Store
	Mode     string // RevokeUser, RevokeRole or RevokeOff
	RolePath string // only roles under it are written
	Now      func() time.Time
	NewToken func() string
	Log      *slog.Logger
	Observer Observer
	// Settle moves every cutoff past the removal: IAM applies a removal
	// eventually, so for a few seconds the user may still assume the role,
	// and a session issued then came from the ended membership. The price:
	// a new grant within Settle assumes again once it has passed.
	Settle time.Duration
	// Account, when set, is the AWS account Roles acts in: the table holds
	// every account's role items, and Repair and Check take only this
	// account's (the others have their own Revoker, through their own
	// chain). "" takes every item: one account only.
	Account string
	// Peers are the Revokers of the other accounts iamjit manages, by id.
	// A group's policy may let its members assume a role in another
	// account; when the membership ends, the sessions of that role end too,
	// written through that account's own chain and Revoker (whose Repair
	// and Check then own the role's item).
	Peers map[string]*Revoker
}

// target is a role a membership enabled, with the Revoker of its account.
type target struct {
	rev  *Revoker
	role Role
}

// accounts are r and its peers, r first, the peers by id.
func (r *Revoker) accounts() []*Revoker {
	out := []*Revoker{r}
	for _, id := range slices.Sorted(maps.Keys(r.Peers)) {
		out = append(out, r.Peers[id])
	}
	return out
}

// managed reports whether account id is r's or one of its peers'. With
// r's account unknown (one account, no chain) every account is.
func (r *Revoker) managed(id string) bool {
	_, peer := r.Peers[id]
	return r.Account == "" || id == r.Account || peer
}

// mine reports whether a role item belongs to this Revoker's account.
func (r *Revoker) mine(roleARN string) bool {
	if r.Account == "" {
		return true
	}
	parts := strings.SplitN(roleARN, ":", 6)
	return len(parts) == 6 && parts[4] == r.Account
}

// maxRoleItemChanges bounds how often one writer chases a role (or
// permission set) item others keep changing; past it the caller fails and
// is retried.
const maxRoleItemChanges = 8

// MembershipEnded puts a Deny for user's sessions issued before at on every
// role under the role path that group lets its members assume, directly or
// down a chain of roles. Call it after IAM removed the user and before the
// membership is marked synced: an error (or a crash) leaves the membership
// dirty, so it is called again.
func (r *Revoker) MembershipEnded(ctx context.Context, user, group string, at time.Time) (Result, error) {
	var res Result
	if r.Mode == RevokeOff {
		return res, nil
	}
	docs, err := r.Roles.GroupPolicies(ctx, group)
	if err != nil {
		return res, fmt.Errorf("policies of group %s: %w", group, err)
	}
	if len(docs) == 0 {
		return res, nil
	}
	w := &reach{r: r, user: user, group: group, lists: map[*Revoker][]Role{}, failed: map[*Revoker]bool{}, seen: map[string]bool{}}
	if err := w.visit(ctx, "group "+group, "", docs); err != nil {
		return res, err
	}
	w.chains(ctx)
	res.Skipped = w.skipped
	// Every entry first, then the writes: once Add returned, the sweeper
	// finishes a role even if this process dies before writing it.
	at = at.Add(r.Settle)
	for _, t := range w.roles {
		if err := t.rev.Store.Add(ctx, t.role, user, at, r.NewToken()); err != nil {
			return res, errors.Join(append(w.errs, fmt.Errorf("record revocation of %s on %s: %w", user, t.role.ARN, err))...)
		}
	}
	errs := append(w.errs, r.write(ctx, user, w.roles, &res)...)
	if len(res.Revoked) > 0 {
		r.Log.InfoContext(ctx, "role sessions revoked", "iam_user", user, "group", group, "roles", res.Revoked)
	}
	return res, errors.Join(errs...)
}

// write converges each role's policy with its item and sorts the roles into
// res by what became of them; it returns the errors of the roles that
// failed (the others are written).
func (r *Revoker) write(ctx context.Context, user string, roles []target, res *Result) []error {
	var errs []error
	for _, t := range roles {
		role := t.role
		o, err := t.rev.converge(ctx, role.ARN, role.Name)
		res.Writes = append(res.Writes, o.writes...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case o.gone:
			res.Gone = append(res.Gone, role.ARN)
			r.Log.InfoContext(ctx, "role deleted before its sessions could be revoked: nothing to revoke", "role", role.ARN, "iam_user", user)
		case o.noRoom:
			res.NoRoom = append(res.NoRoom, role.ARN)
		case o.mode != "":
			res.Revoked = append(res.Revoked, role.ARN)
			if r.Observer != nil {
				r.Observer.SessionsRevoked(o.mode)
			}
		}
	}
	return errs
}

// reach finds the roles an ended membership enabled: those the group's
// policies let its members assume, in every managed account the policies
// may name, and the roles those may assume in turn.
type reach struct {
	r           *Revoker
	user, group string
	// Each account's roles are listed once; an account whose roles cannot
	// be listed does not keep the others from being written, and its error
	// leaves the membership to be ended again. An account no policy names
	// is never asked, so it cannot hold up this one.
	lists   map[*Revoker][]Role
	failed  map[*Revoker]bool
	seen    map[string]bool
	roles   []target // under the role path: to revoke
	skipped []string // outside the path or in an unmanaged account
	errs    []error
}

func (w *reach) rolesOf(ctx context.Context, rev *Revoker) ([]Role, bool) {
	if roles, ok := w.lists[rev]; ok || w.failed[rev] {
		return roles, ok
	}
	roles, err := rev.Roles.AllRoles(ctx)
	if err != nil {
		w.errs = append(w.errs, fmt.Errorf("roles of account %s: %w", cmp.Or(rev.Account, "home"), err))
		w.failed[rev] = true
		return nil, false
	}
	w.lists[rev] = roles
	return roles, true
}

// visit adds the roles docs let one assume; from (a role ARN, "" for the
// group) must be trusted by them: a role's own policies allowing
// sts:AssumeRole on "*" reach only the roles that trust it.
func (w *reach) visit(ctx context.Context, who, from string, docs []string) error {
	for _, rev := range w.r.accounts() {
		if !MayName(docs, rev.Account) {
			continue
		}
		existing, ok := w.rolesOf(ctx, rev)
		if !ok {
			continue
		}
		roles, err := FindRoles(docs, existing)
		if err != nil {
			return fmt.Errorf("policies of %s: %w", who, err)
		}
		for _, role := range roles {
			if w.seen[role.ARN] || from != "" && !Trusts(role.Trust, from) {
				continue
			}
			w.seen[role.ARN] = true
			if !role.InPath(w.r.RolePath) {
				w.skip(ctx, role.ARN, who, "role outside IAMJIT_ROLE_PATH: its sessions are not revoked", "role_path", w.r.RolePath)
				continue
			}
			w.roles = append(w.roles, target{rev, role})
		}
	}
	for _, arn := range ForeignRoles(docs, w.r.managed) {
		if !w.seen[arn] {
			w.seen[arn] = true
			w.skip(ctx, arn, who, "role in an account iamjit does not manage (not in IAMJIT_ACCOUNTS): its sessions are not revoked")
		}
	}
	return nil
}

// chains follows the roles found so far: a session of a role the group
// allows can assume (chain into) another role, and that session was
// enabled by the membership too. Only roles under the path are followed;
// iamjit may read their policies, and a role it does not revoke could
// assume the next one again anyway. A role's policy that cannot be read or
// parsed leaves the roles it reaches unwritten this time; its error makes
// the membership be ended again.
func (w *reach) chains(ctx context.Context) {
	for i := 0; i < len(w.roles); i++ {
		t := w.roles[i]
		docs, err := t.rev.Roles.RolePolicies(ctx, t.role.Name)
		if err == nil {
			err = w.visit(ctx, "role "+t.role.ARN, t.role.ARN, docs)
		}
		if err != nil {
			w.errs = append(w.errs, fmt.Errorf("roles that %s may assume: %w", t.role.ARN, err))
		}
	}
}

// skip reports a role whose sessions are not revoked, and why.
func (w *reach) skip(ctx context.Context, arn, via, why string, attrs ...any) {
	w.skipped = append(w.skipped, arn)
	w.r.Log.WarnContext(ctx, why, append([]any{"role", arn, "via", via, "group", w.group, "iam_user", w.user}, attrs...)...)
	if w.r.Observer != nil {
		w.r.Observer.SessionRoleSkipped()
	}
}

// outcome of converging one role.
type outcome struct {
	mode   string // how the written policy denies; "" when nothing was put
	gone   bool
	noRoom bool
	writes []Write
}

// converge makes the role's policy agree with its item, following the
// protocol in the package comment.
func (r *Revoker) converge(ctx context.Context, arn, name string) (outcome, error) {
	var o outcome
	// The role and the room beside its other inline policies are read
	// once: a new round means another writer changed the item, not IAM.
	role, roleErr := r.Roles.Role(ctx, name)
	others := 0
	if roleErr == nil {
		others, roleErr = r.Roles.OtherInlineSize(ctx, name)
	}
	for range maxRoleItemChanges {
		st, err := r.Store.Get(ctx, arn)
		if err != nil {
			return o, fmt.Errorf("read revocations of %s: %w", arn, err)
		}
		if st.Token == "" {
			return o, nil // never written, or deleted by a writer that found nothing left
		}
		err = roleErr
		if errors.Is(err, ErrRoleGone) {
			o = outcome{gone: true, writes: o.writes}
			ok, err := r.Store.Synced(ctx, arn, st.Token, slices.Collect(maps.Keys(st.Users)), 0, time.Time{})
			if err != nil {
				return o, fmt.Errorf("forget revocations of deleted role %s: %w", arn, err)
			}
			if ok {
				return o, nil
			}
			continue
		}
		if err != nil {
			return o, fmt.Errorf("read role %s and its inline policies: %w", arn, err)
		}
		perUser := r.Mode != RevokeRole && RequiresSourceIdentity(role.Trust)
		p := Render(st.Users, perUser, role.MaxSessionDuration, r.Now(), InlineLimit-others)
		o = outcome{writes: o.writes}
		var w Write
		switch {
		case p.NoRoom:
			o.noRoom = true
			r.Log.ErrorContext(ctx, "no room for a session-revocation statement beside the role's other inline policies: sessions not revoked, other policies untouched",
				"role", arn, "other_inline_chars", others, "limit", InlineLimit)
			if r.Observer != nil {
				r.Observer.SessionRevocationFailed("no_room")
			}
		case p.Doc == "":
			w = Write{RoleARN: arn, Op: "DeleteRolePolicy"}
			w.RequestID, err = r.Roles.DeletePolicy(ctx, name)
		default:
			if p.Fallback {
				r.Log.WarnContext(ctx, "per-user statements exceed IAM's inline policy limit: one role-wide statement written, every older session of the role ends",
					"role", arn, "users", len(p.Users), "other_inline_chars", others)
			}
			w = Write{RoleARN: arn, Op: "PutRolePolicy", Mode: p.Mode}
			w.RequestID, err = r.Roles.PutPolicy(ctx, name, p.Doc)
			o.mode = p.Mode
		}
		switch {
		case errors.Is(err, ErrRoleGone):
			o = outcome{gone: true, writes: o.writes}
			p.Drop, p.Users = slices.Collect(maps.Keys(st.Users)), nil
		case errors.Is(err, ErrNoRoom):
			// IAM counts otherwise than Size: the same outcome as NoRoom.
			o = outcome{noRoom: true, writes: o.writes}
			w.Op = ""
			r.Log.ErrorContext(ctx, "IAM refused the session-revocation policy for its size: sessions not revoked, other policies untouched", "role", arn, "err", err)
			if r.Observer != nil {
				r.Observer.SessionRevocationFailed("no_room")
			}
		case err != nil:
			return o, fmt.Errorf("%s %s on %s: %w", w.Op, PolicyName, arn, err)
		}
		if w.Op != "" && !o.gone {
			o.writes = append(o.writes, w)
		}
		ok, err := r.Store.Synced(ctx, arn, st.Token, p.Drop, len(p.Users), p.Prune)
		if err != nil {
			return o, fmt.Errorf("mark revocations of %s written: %w", arn, err)
		}
		if ok {
			return o, nil
		}
		// Someone wrote after we read: what we put may miss their entry.
	}
	return o, fmt.Errorf("revoke sessions on %s: its item changed %d times while writing", arn, maxRoleItemChanges)
}

// Repair finishes role items a writer left dirty for longer than grace and,
// with prune, rewrites those whose oldest statement has stopped denying
// anything (the sweeper; pruning only tidies, so not every sweep). It
// returns how many it wrote.
func (r *Revoker) Repair(ctx context.Context, grace time.Duration, limit int32, prune bool) (int, error) {
	now := r.Now()
	due, err := r.Store.Due(ctx, now.Add(-grace), pruneBy(prune, now), limit)
	if err != nil {
		return 0, fmt.Errorf("read role items due: %w", err)
	}
	n := 0
	var errs []error
	for _, st := range due {
		if !r.mine(st.ARN) {
			continue
		}
		if _, err := r.converge(ctx, st.ARN, st.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// pruneBy is the time Repair prunes statements up to: none without prune.
func pruneBy(prune bool, now time.Time) time.Time {
	if !prune {
		return time.Time{}
	}
	return now
}

// Missing is a user whose membership ended within the role's
// MaxSessionDuration and whose older sessions the role's policy in IAM does
// not deny.
type Missing struct {
	RoleARN  string // or the permission set's ARN (PermissionSets.Check)
	Account  string // PermissionSets.Check: the account of the user's sessions
	User     string
	At       time.Time
	Restored bool // enforce rewrote the role's policy
}

// Check compares every role item with the policy IAM holds (reconcile).
// With enforce it rewrites the roles that miss a statement.
func (r *Revoker) Check(ctx context.Context, enforce bool) ([]Missing, error) {
	items, err := r.Store.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list role items: %w", err)
	}
	now := r.Now()
	var out []Missing
	var errs []error
	for _, st := range items {
		if !r.mine(st.ARN) {
			continue
		}
		role, err := r.Roles.Role(ctx, st.Name)
		if errors.Is(err, ErrRoleGone) {
			continue // no role, no session
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read role %s: %w", st.ARN, err))
			continue
		}
		doc, err := r.Roles.Policy(ctx, st.Name)
		if errors.Is(err, ErrRoleGone) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s of %s: %w", PolicyName, st.ARN, err))
			continue
		}
		var missing []Missing
		for _, u := range slices.Sorted(maps.Keys(st.Users)) {
			at := st.Users[u]
			if Cutoff(at).Add(role.MaxSessionDuration).After(now) && !Denies(doc, u, at) {
				missing = append(missing, Missing{RoleARN: st.ARN, User: u, At: at})
			}
		}
		if enforce && len(missing) > 0 {
			o, err := r.converge(ctx, st.ARN, st.Name)
			if err != nil {
				errs = append(errs, err)
			}
			for i := range missing {
				missing[i].Restored = err == nil && o.mode != ""
			}
		}
		out = append(out, missing...)
	}
	return out, errors.Join(errs...)
}

// Denies reports whether doc denies every action to user's sessions issued
// before at: a Deny of * on * whose only conditions are aws:TokenIssueTime
// before a time at or after at's cutoff and, optionally, aws:SourceIdentity
// naming user.
func Denies(doc, user string, at time.Time) bool {
	return deniesWith(doc, at, map[string]string{"aws:SourceIdentity": user})
}

// deniesWith reports whether doc has a Deny of * on * whose conditions are
// aws:TokenIssueTime (DateLessThan) before a time at or after at's cutoff
// and, optionally, StringEquals on a key of keys whose values include that
// key's value; any other condition makes a statement not count.
func deniesWith(doc string, at time.Time, keys map[string]string) bool {
	if doc == "" {
		return false
	}
	d, err := parse(doc)
	if err != nil {
		return false
	}
	for _, st := range d.Statement {
		if st.Effect != "Deny" || !slices.Equal(st.Action, []string{"*"}) || !slices.Equal(st.Resource, []string{"*"}) {
			continue
		}
		covered, extra := false, false
		for op, conds := range st.Condition {
			for k, vals := range conds {
				want, keyed := keys[k]
				switch {
				case op == "DateLessThan" && k == "aws:TokenIssueTime" && len(vals) == 1:
					t, err := time.Parse(stamp, vals[0])
					covered = err == nil && !t.Before(Cutoff(at))
				case op == "StringEquals" && keyed:
					extra = extra || !slices.Contains(vals, want)
				default:
					extra = true
				}
			}
		}
		if covered && !extra {
			return true
		}
	}
	return false
}
