package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/iamjit/iamjit/internal/awsx"
)

// Permission sets: an Identity Center session is a session of the role the
// permission set became in the account, and it outlives the assignment by
// up to the permission set's session duration. When an assignment (or a
// group membership that carried assignments) ends, the permission set's
// inline policy gets a Deny for the user's sessions in that account issued
// before the end (RenderSet), and the permission set is provisioned to the
// account again, which is what carries the policy to the account's role.
//
// The item protocol is the roles' (one item per permission set, a token
// every Add replaces, Synced only if the token held), with two additions
// that provisioning needs:
//
//   - pending accounts: Add marks the entry's account, and Synced clears
//     the marks the writer read, so a clean item means every account whose
//     entry is in the policy was provisioned after that policy was put;
//   - a lease: provisioning carries whatever the permission set holds when
//     it runs, so a writer's stale put landing between another's put and
//     provisioning would reach the account. Only the lease holder puts and
//     provisions; another writer, its entry recorded, waits for the lease,
//     and finds the item clean (the holder's next round took its entry) or
//     takes the lease and finishes it.

// ErrSetGone is returned by PermissionSetAPI when the permission set does
// not exist (any more).
var ErrSetGone = errors.New("permission set does not exist")

// PermissionSetAPI reads and writes permission sets through Identity
// Center (sessions/idcsets over grants/identitycenter).
type PermissionSetAPI interface {
	// SessionDuration is how long a session of the permission set lasts
	// (cached for a while). ErrSetGone.
	SessionDuration(ctx context.Context, permissionSetARN string) (time.Duration, error)
	// InlinePolicy reads the inline policy afresh, "" for none. ErrSetGone.
	InlinePolicy(ctx context.Context, permissionSetARN string) (string, error)
	// PutInlinePolicy replaces it and returns the request id. ErrSetGone,
	// ErrNoRoom when refused for its size.
	PutInlinePolicy(ctx context.Context, permissionSetARN, doc string) (string, error)
	// DeleteInlinePolicy removes it. ErrSetGone.
	DeleteInlinePolicy(ctx context.Context, permissionSetARN string) (string, error)
	// Provision pushes the permission set to the account and returns once
	// AWS reports it done, with the request id. ErrSetGone.
	Provision(ctx context.Context, permissionSetARN, accountID string) (string, error)
	// GroupAssignments lists the permission sets assigned to the Identity
	// Store group, with their accounts.
	GroupAssignments(ctx context.Context, groupID string) ([]SetAccount, error)
}

// SetAccount is a permission set in one account.
type SetAccount struct {
	PermissionSetARN string
	AccountID        string
}

// SetState is the store's record of one permission set.
type SetState struct {
	ARN     string
	Entries map[Entry]time.Time
	// Pending are the accounts an Add marked and no Synced cleared since:
	// their provisioning may lag the policy.
	Pending []string
	Token   string // "" for a permission set never written
	Dirty   bool
	// LeasedUntil is when the lease of the writer holding it ends (zero:
	// none holds it).
	LeasedUntil time.Time
}

// SetStore keeps one item per permission set (sessions/dynamo), apart
// from the role items.
type SetStore interface {
	// AddEntry records that e ended at at (keeping a later time already
	// recorded), marks e.Account pending, replaces the token and marks the
	// item dirty.
	AddEntry(ctx context.Context, permissionSetARN string, e Entry, at time.Time, token string) error
	// GetSet reads the item consistently; one never written reads empty.
	GetSet(ctx context.Context, permissionSetARN string) (SetState, error)
	// Lease makes owner the item's only writer until until, if no one
	// else holds it at now (an expired lease is free). False when another
	// does, or the item is gone.
	Lease(ctx context.Context, permissionSetARN, owner string, until, now time.Time) (bool, error)
	// Release ends owner's lease, if it still holds it.
	Release(ctx context.Context, permissionSetARN, owner string) error
	// SyncedSet, only if the token is still token and owner holds the
	// lease: removes the drop entries and the provisioned pending marks,
	// clears the dirty mark and the lease and makes the item due again at
	// prune (deletes it when remaining is 0). False otherwise.
	SyncedSet(ctx context.Context, permissionSetARN, token, owner string, drop []Entry, provisioned []string, remaining int, prune time.Time) (bool, error)
	// DueSets lists items dirty since before dirtyBefore or due to be
	// pruned by now (a zero now: none to prune).
	DueSets(ctx context.Context, dirtyBefore, now time.Time, limit int32) ([]SetState, error)
	// AllSets lists every permission set item.
	AllSets(ctx context.Context) ([]SetState, error)
}

// PermissionSets ends the Identity Center sessions of ended assignments.
type PermissionSets struct {
	API      PermissionSetAPI
	Store    SetStore
	Mode     string // RevokeUser, RevokeRole (per account at least) or RevokeOff
	Now      func() time.Time
	NewToken func() string
	Log      *slog.Logger
	Observer Observer // may be nil
	// Settle moves every cutoff past the end, as Revoker.Settle: Identity
	// Center applies a removed assignment eventually.
	Settle time.Duration
	// Lease bounds how long one writer holds a permission set (0: 1
	// minute: a put and a provisioning per account, which AWS confirms in
	// seconds): a writer that dies holding it delays the others that long.
	// A holder slower than its lease may interleave with the next one; the
	// statement that loses is restored by the sweep's Repair (the item stays
	// dirty) or reconcile's Check.
	Lease time.Duration
	// Wait bounds how long a writer waits for another's lease before
	// failing retryably, its item left dirty for the sweep (0: 5 seconds):
	// a membership's end, and the sweep behind it, never stall on it.
	Wait  time.Duration
	Sleep func(context.Context, time.Duration) error // nil: a timer that stops with ctx
}

func (p *PermissionSets) lease() time.Duration {
	if p.Lease > 0 {
		return p.Lease
	}
	return time.Minute
}

func (p *PermissionSets) wait() time.Duration {
	if p.Wait > 0 {
		return p.Wait
	}
	return 5 * time.Second
}

func (p *PermissionSets) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	return awsx.Sleep(ctx, d)
}

// AssignmentEnded denies the user's sessions of the permission set in the
// account issued before at. Call it after the assignment is removed and
// before the grant is marked synced: an error leaves it to be called again.
// Result.Revoked (or NoRoom, or Gone) names SetTarget(permissionSetARN,
// accountID).
func (p *PermissionSets) AssignmentEnded(ctx context.Context, userID, permissionSetARN, accountID string, at time.Time) (Result, error) {
	return p.ended(ctx, userID, []SetAccount{{PermissionSetARN: permissionSetARN, AccountID: accountID}}, at)
}

// GroupMembershipEnded does what AssignmentEnded does for every permission
// set assigned to the Identity Store group, in each of its accounts. The
// user may hold some of them otherwise (assigned directly, or through
// another group): those sessions end too, and a new sign-in works at once.
func (p *PermissionSets) GroupMembershipEnded(ctx context.Context, userID, groupID string, at time.Time) (Result, error) {
	if p.Mode == RevokeOff {
		return Result{}, nil
	}
	assigned, err := p.API.GroupAssignments(ctx, groupID)
	if err != nil {
		return Result{}, fmt.Errorf("permission sets of group %s: %w", groupID, err)
	}
	return p.ended(ctx, userID, assigned, at)
}

func (p *PermissionSets) ended(ctx context.Context, userID string, targets []SetAccount, at time.Time) (Result, error) {
	var res Result
	if p.Mode == RevokeOff || len(targets) == 0 {
		return res, nil
	}
	at = at.Add(p.Settle)
	bySet := map[string][]string{}
	// Every entry first: once AddEntry returned, the sweeper finishes the
	// permission set even if this process dies before writing it.
	for _, t := range targets {
		if err := p.Store.AddEntry(ctx, t.PermissionSetARN, Entry{User: userID, Account: t.AccountID}, at, p.NewToken()); err != nil {
			return res, fmt.Errorf("record revocation of %s on %s: %w", userID, SetTarget(t.PermissionSetARN, t.AccountID), err)
		}
		bySet[t.PermissionSetARN] = append(bySet[t.PermissionSetARN], t.AccountID)
	}
	var errs []error
	for _, ps := range slices.Sorted(maps.Keys(bySet)) {
		o, err := p.converge(ctx, ps, nil, false)
		res.Writes = append(res.Writes, o.writes...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, acct := range bySet[ps] {
			target := SetTarget(ps, acct)
			switch {
			case o.gone:
				res.Gone = append(res.Gone, target)
			case DeniesIn(o.doc, userID, acct, at):
				res.Revoked = append(res.Revoked, target)
			default:
				// No room, or the customer replaced the policy meanwhile
				// (reconcile's Check finds that one).
				res.NoRoom = append(res.NoRoom, target)
			}
		}
	}
	if len(res.Revoked) > 0 {
		p.Log.InfoContext(ctx, "permission set sessions revoked", "identitystore_user_id", userID, "permission_sets", res.Revoked)
	}
	return res, errors.Join(errs...)
}

// setOutcome of converging one permission set.
type setOutcome struct {
	doc    string // the inline policy as put, or as read when another writer had finished
	gone   bool
	writes []Write
}

// converge makes the permission set's inline policy, and the accounts
// pending on it, agree with its item; see the comment at the top. force
// are accounts to provision besides the pending ones (reconcile's
// enforce); rewrite puts the policy even when the item is clean (pruning).
func (p *PermissionSets) converge(ctx context.Context, ps string, force []string, rewrite bool) (setOutcome, error) {
	var o setOutcome
	owner := p.NewToken()
	held := false
	defer func() {
		if held {
			// Best effort, past the caller's cancel: a lease left behind
			// only delays the next writer until it expires.
			if err := p.Store.Release(context.WithoutCancel(ctx), ps, owner); err != nil {
				p.Log.WarnContext(ctx, "permission set lease not released", "permission_set", ps, "err", err)
			}
		}
	}()
	// Waiting is bounded by the pauses slept, not the clock: a clock that
	// stands still (or jumps) neither stalls nor ends it.
	waited, pause := time.Duration(0), 200*time.Millisecond
	for round := 0; round < maxRoleItemChanges; {
		st, err := p.Store.GetSet(ctx, ps)
		if err != nil {
			return o, fmt.Errorf("read revocations of %s: %w", ps, err)
		}
		if st.Token == "" {
			// Only a gone permission set's item is deleted while an entry
			// is live.
			o.gone = true
			return o, nil
		}
		if !st.Dirty && !rewrite && len(force) == 0 && !held {
			// Another writer's round took every entry, ours too.
			o.doc, err = p.API.InlinePolicy(ctx, ps)
			if errors.Is(err, ErrSetGone) {
				o.gone = true
				return o, nil
			}
			if err != nil {
				return o, fmt.Errorf("read the inline policy of %s: %w", ps, err)
			}
			return o, nil
		}
		now := p.Now()
		ok := false
		// While another writer holds the lease, asking for it is a refused
		// write per pause: only the item is read again until it is clean
		// or the lease has run out. With many ends of one permission set at
		// once, those refused writes were most of the store's load.
		if held || !st.LeasedUntil.After(now) {
			ok, err = p.Store.Lease(ctx, ps, owner, now.Add(p.lease()), now)
			if err != nil {
				return o, fmt.Errorf("lease %s: %w", ps, err)
			}
		}
		if !ok {
			held = false
			if waited+pause > p.wait() {
				return o, &awsx.Transient{Err: fmt.Errorf("revoke sessions on %s: another writer held it for over %s", ps, waited)}
			}
			if err := p.sleep(ctx, pause); err != nil {
				return o, fmt.Errorf("waiting for the lease on %s: %w", ps, err)
			}
			waited += pause
			pause = min(2*pause, 5*time.Second)
			continue
		}
		held = true
		round++
		r, err := p.write(ctx, ps, st, force, o.writes)
		o = r.setOutcome
		if err != nil {
			return o, err
		}
		drop, remaining := r.plan.Drop, len(r.plan.Entries)
		if o.gone {
			drop, remaining = slices.Collect(maps.Keys(st.Entries)), 0
		}
		ok, err = p.Store.SyncedSet(ctx, ps, st.Token, owner, drop, st.Pending, remaining, r.plan.Prune)
		if err != nil {
			return o, fmt.Errorf("mark revocations of %s written: %w", ps, err)
		}
		if ok {
			held = false // SyncedSet ended the lease
			return o, nil
		}
		// Someone added after we read: another round, still holding the
		// lease, takes their entry and their account.
	}
	return o, fmt.Errorf("revoke sessions on %s: its item changed %d times while writing", ps, maxRoleItemChanges)
}

// setRound is one write of a permission set.
type setRound struct {
	setOutcome
	plan SetPlan
}

// write renders the item onto the permission set's current inline policy,
// puts it if it changed, and provisions the pending accounts that have a
// live entry, and force.
func (p *PermissionSets) write(ctx context.Context, ps string, st SetState, force []string, writes []Write) (setRound, error) {
	r := setRound{setOutcome: setOutcome{writes: writes}}
	gone := func(err error) bool {
		if errors.Is(err, ErrSetGone) {
			r.gone = true
			p.Log.InfoContext(ctx, "permission set deleted before its sessions could be revoked: nothing to revoke", "permission_set", ps)
			return true
		}
		return false
	}
	dur, err := p.API.SessionDuration(ctx, ps)
	if gone(err) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("session duration of %s: %w", ps, err)
	}
	// Read right before the put: a customer's change between the two is
	// lost (Identity Center has no conditional put).
	cur, err := p.API.InlinePolicy(ctx, ps)
	if gone(err) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read the inline policy of %s: %w", ps, err)
	}
	r.plan, err = RenderSet(cur, st.Entries, dur, p.Now(), p.Mode)
	if err != nil {
		return r, fmt.Errorf("permission set %s: %w", ps, err)
	}
	r.doc = cur
	noRoom := func(why string, attrs ...any) {
		p.Log.ErrorContext(ctx, why, append([]any{"permission_set", ps, "limit", SetInlineLimit}, attrs...)...)
		if p.Observer != nil {
			p.Observer.SessionRevocationFailed("no_room")
		}
	}
	w := Write{RoleARN: ps}
	switch {
	case r.plan.NoRoom:
		noRoom("no room for a session-revocation statement beside the permission set's own inline statements: sessions not revoked, its statements untouched",
			"inline_chars", len(cur))
		return r, nil // nothing written, nothing to provision
	case r.plan.Doc == cur:
		// Already there (another round, or a rewrite that prunes nothing).
	case r.plan.Doc == "":
		w.Op = "DeleteInlinePolicyFromPermissionSet"
		w.RequestID, err = p.API.DeleteInlinePolicy(ctx, ps)
	default:
		w.Op, w.Mode = "PutInlinePolicyToPermissionSet", r.plan.Level
		w.RequestID, err = p.API.PutInlinePolicy(ctx, ps, r.plan.Doc)
	}
	switch {
	case gone(err):
		return r, nil
	case errors.Is(err, ErrNoRoom):
		// Identity Center counts otherwise than RenderSet: the same
		// outcome as NoRoom.
		r.plan.NoRoom = true
		noRoom("Identity Center refused the session-revocation policy for its size: sessions not revoked, its statements untouched", "err", err)
		return r, nil
	case err != nil:
		return r, fmt.Errorf("%s on %s: %w", w.Op, ps, err)
	}
	if w.Op != "" {
		r.writes = append(r.writes, w)
		r.doc = r.plan.Doc
		if w.Mode != "" && p.Observer != nil {
			p.Observer.SessionsRevoked(w.Mode)
		}
	}
	liveAccounts := map[string]bool{}
	for e := range r.plan.Entries {
		liveAccounts[e.Account] = true
	}
	var accounts []string
	for _, a := range st.Pending {
		if liveAccounts[a] {
			accounts = append(accounts, a)
		}
	}
	accounts = append(accounts, force...)
	slices.Sort(accounts)
	for _, a := range slices.Compact(accounts) {
		id, err := p.API.Provision(ctx, ps, a)
		if gone(err) {
			return r, nil
		}
		if err != nil {
			return r, fmt.Errorf("provision %s after its session revocations: %w", SetTarget(ps, a), err)
		}
		r.writes = append(r.writes, Write{RoleARN: SetTarget(ps, a), Op: "ProvisionPermissionSet", RequestID: id})
	}
	return r, nil
}

// Repair finishes permission set items a writer left dirty for longer
// than grace (pending provisioning included: it keeps an item dirty) and,
// with prune, rewrites those whose oldest statement has stopped denying
// anything (the sweeper). It returns how many it wrote.
func (p *PermissionSets) Repair(ctx context.Context, grace time.Duration, limit int32, prune bool) (int, error) {
	now := p.Now()
	due, err := p.Store.DueSets(ctx, now.Add(-grace), pruneBy(prune, now), limit)
	if err != nil {
		return 0, fmt.Errorf("read permission set items due: %w", err)
	}
	n := 0
	var errs []error
	for _, st := range due {
		if _, err := p.converge(ctx, st.ARN, nil, true); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Check compares every permission set item with the inline policy
// Identity Center holds (reconcile): Missing names the permission set in
// RoleARN and the account in Account. With enforce it rewrites the policy
// and provisions the accounts that miss a statement. What an account's
// role holds is not read: only what the permission set would provision.
func (p *PermissionSets) Check(ctx context.Context, enforce bool) ([]Missing, error) {
	items, err := p.Store.AllSets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list permission set items: %w", err)
	}
	now := p.Now()
	var out []Missing
	var errs []error
	for _, st := range items {
		dur, err := p.API.SessionDuration(ctx, st.ARN)
		if errors.Is(err, ErrSetGone) {
			continue // no permission set, no session
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("session duration of %s: %w", st.ARN, err))
			continue
		}
		doc, err := p.API.InlinePolicy(ctx, st.ARN)
		if errors.Is(err, ErrSetGone) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read the inline policy of %s: %w", st.ARN, err))
			continue
		}
		var missing []Missing
		var accounts []string
		for _, e := range slices.SortedFunc(maps.Keys(st.Entries), compareEntries) {
			at := st.Entries[e]
			if Cutoff(at).Add(dur).After(now) && !DeniesIn(doc, e.User, e.Account, at) {
				missing = append(missing, Missing{RoleARN: st.ARN, Account: e.Account, User: e.User, At: at})
				accounts = append(accounts, e.Account)
			}
		}
		if enforce && len(missing) > 0 {
			o, err := p.converge(ctx, st.ARN, accounts, true)
			if err != nil {
				errs = append(errs, err)
			}
			for i := range missing {
				missing[i].Restored = err == nil && DeniesIn(o.doc, missing[i].User, missing[i].Account, missing[i].At)
			}
		}
		out = append(out, missing...)
	}
	return out, errors.Join(errs...)
}
