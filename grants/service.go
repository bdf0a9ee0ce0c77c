package grants

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/iamjit/iamjit/events"
)

// Store persists grants, memberships and processed events (grants/dynamo).
type Store interface {
	// Activate writes an ACTIVE grant (new, or replacing a FAILED one), adds
	// it to its membership and records the event, all or nothing. A
	// *ConflictError says what already existed.
	Activate(ctx context.Context, g Grant, ev ProcessedEvent, token string) error
	// Revoke moves an ACTIVE grant to REVOKED and removes it from its
	// membership, recording ev when it is not nil. keepDue leaves the grant in
	// the expiry index until its result is published (sweeper). ErrNotActive
	// when the grant is not ACTIVE.
	Revoke(ctx context.Context, g Grant, ev *ProcessedEvent, token string, keepDue bool) error
	// Fail moves the ACTIVE grant g (created by g.SymEventID) to FAILED,
	// removes it from its membership and forgets its event, so that a replay
	// applies the request again. ErrNotActive when it is not ACTIVE.
	Fail(ctx context.Context, g Grant, token string) error
	// Tombstone writes a REVOKED grant that was never active, with ev.
	Tombstone(ctx context.Context, g Grant, ev ProcessedEvent) error
	// RecordEvent stores ev unless the Sym event was processed before.
	RecordEvent(ctx context.Context, ev ProcessedEvent) error
	GetGrant(ctx context.Context, id string) (Grant, error)
	Membership(ctx context.Context, k Key) (Membership, error)
	// MarkSynced clears the membership's dirty mark if its token is still
	// token, appending t to the grant's history when grantID is set. After a
	// removal (t.Action "iam_remove") the membership waits in the read-back
	// queue (Rechecks) until Rechecked, so the read-back survives this
	// process.
	MarkSynced(ctx context.Context, k Key, token, grantID string, t Transition) (bool, error)
	// Rechecks lists memberships whose removal is due to be read back.
	Rechecks(ctx context.Context, before time.Time, limit int32) ([]Membership, error)
	// Rechecked takes a membership off the read-back queue if its token is
	// still token.
	Rechecked(ctx context.Context, k Key, token string) error
	// Due lists grants in the expiry index due at now, oldest first.
	Due(ctx context.Context, now time.Time, limit int32) ([]Grant, error)
	// Dirty lists memberships left dirty since before.
	Dirty(ctx context.Context, before time.Time, limit int32) ([]Membership, error)
	// Undue removes a grant from the expiry index.
	Undue(ctx context.Context, grantID string) error
	// MarkWarned records that grantID's Access Expiring is being sent, if
	// the grant is still ACTIVE and none was: it reports whether this
	// caller is the one to send it.
	MarkWarned(ctx context.Context, grantID string, at time.Time) (bool, error)
}

// GroupMembership changes IAM (grants/iamgroups, through the role chain).
// Both calls are idempotent: adding a member or removing a non-member is
// success. They return the AWS request id for the grant's history.
type GroupMembership interface {
	AddUser(ctx context.Context, iamUser, group string) (string, error)
	RemoveUser(ctx context.Context, iamUser, group string) (string, error)
	// IsMember reads IAM: is the user in the group now?
	IsMember(ctx context.Context, iamUser, group string) (bool, error)
}

// Scheduler arms in-process timers (Timers): a grant's end at its expiry,
// to the second, and a removal's read-back once IAM has settled. Both are
// also in the store's indexes, so the sweep finishes what a process that
// died could not.
type Scheduler interface {
	Expire(g Grant)
	Recheck(k Key, token string)
}

// GroupInfo is IAM's own record of a group.
type GroupInfo struct {
	Name string
	ARN  string
	Path string
}

// Groups looks a group up in IAM. ErrNotFound when it does not exist.
type Groups interface {
	Group(ctx context.Context, name string) (GroupInfo, error)
}

// Policy is what requests may do.
type Policy struct {
	GroupPath         string
	AllowedGroups     []string // empty: any group under GroupPath
	MaxDuration       time.Duration
	DurationUnit      time.Duration
	Sources           []string
	AcceptBare        bool
	AllowSelfApproval bool
	MaxClockSkew      time.Duration // how far in the future a timestamp may be
	// Identity Center allow-lists: empty allows nothing.
	PermissionSets     []string // IAMJIT_SSO_PERMISSION_SETS
	AssignmentAccounts []string // IAMJIT_SSO_ASSIGNMENT_ACCOUNTS
	SSOGroups          []string // IAMJIT_SSO_GROUPS
}

// Service applies Sym requests.
type Service struct {
	Store    Store
	Accounts *Accounts // every account served: where each target is changed
	Policy   Policy
	Now      func() time.Time
	Log      *slog.Logger
	NewToken func() string
	// Timers, when set, ends grants at their expiry and reads removals back
	// promptly; nil leaves both to the sweep.
	Timers Scheduler
	// OnStaleAdd, when set, counts a late add a read-back undid, before the
	// undo is logged: a process killed between the two never has a log line
	// that its counter lacks.
	OnStaleAdd func()
	// OnBackstop, when set, hears every backstop write: op is what Arm did
	// or BackstopDisarmed, err its failure.
	OnBackstop func(op string, err error)
}

// Outcome of one request.
type Outcome struct {
	Kind    events.Outcome
	Results []events.Result // to publish before the message is deleted
	GrantID string
}

// Handle applies one decoded request. A returned error means nothing final
// happened and the request should be retried; every refusal is an Outcome.
func (s *Service) Handle(ctx context.Context, req events.Request) (Outcome, error) {
	if rej := s.checkOrigin(req); rej != nil {
		// Not recorded: a forged message must not claim a real Sym id.
		return Outcome{Kind: events.OutcomeRejected, Results: []events.Result{rejectedResult(echoable(req), rej)}}, nil
	}
	switch req.Type {
	case events.TypeEscalate:
		return s.escalate(ctx, req)
	case events.TypeDeescalate:
		return s.deescalate(ctx, req)
	default:
		return Outcome{Kind: events.OutcomeIgnored}, nil
	}
}

// Malformed turns a body that names a Sym id but does not decode into a
// recorded rejection.
func (s *Service) Malformed(ctx context.Context, req events.Request, derr *events.DecodeError) (Outcome, error) {
	if rej := s.checkOrigin(req); rej != nil {
		// Not recorded, as in Handle: a forged malformed body must not take a
		// real Sym id and turn the genuine event into a "duplicate".
		return Outcome{Kind: events.OutcomeRejected, Results: []events.Result{rejectedResult(echoable(req), rej)}}, nil
	}
	return s.rejectRecorded(ctx, req, reject(events.CodeMalformed, derr.Msg))
}

func (s *Service) checkOrigin(req events.Request) *Rejection {
	if req.Bare {
		if !s.Policy.AcceptBare {
			return reject(events.CodeBareNotAccepted, "a bare SymLogEntry arrived and IAMJIT_ACCEPT_BARE is false")
		}
		return nil
	}
	if !slices.Contains(s.Policy.Sources, req.Source) {
		return reject(events.CodeSourceNotAllowed, fmt.Sprintf("source %q is not in IAMJIT_SOURCES", clip(req.Source)))
	}
	return nil
}

func (s *Service) escalate(ctx context.Context, req events.Request) (Outcome, error) {
	now := s.Now().UTC()
	g, rej, err := s.validateEscalate(ctx, req, now)
	if err != nil {
		return Outcome{}, err
	}
	if rej != nil {
		return s.rejectRecorded(ctx, req, rej)
	}
	res := grantedResult(g)
	ev := ProcessedEvent{SymEventID: req.SymEventID, GrantID: g.ID, Result: res, At: now}
	token := s.NewToken()
	err = s.Store.Activate(ctx, g, ev, token)
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict) && conflict.Event != nil:
		return s.duplicate(ctx, *conflict.Event)
	case errors.As(err, &conflict) && conflict.Grant != nil:
		return s.escalateExisting(ctx, req, *conflict.Grant, now)
	case err != nil:
		return Outcome{}, fmt.Errorf("activate grant %s: %w", g.ID, err)
	}
	if _, _, err := s.converge(ctx, g.Key(), change{token: token, want: true, grantID: g.ID, symID: req.SymEventID, expires: g.ExpiresAt}); err != nil {
		return Outcome{}, err
	}
	if s.Timers != nil {
		s.Timers.Expire(g)
	}
	s.Log.InfoContext(ctx, "access granted", "grant_id", g.ID, "account_id", g.Account, "iam_user", g.IAMUser, "group", g.Group, "expires_at", g.ExpiresAt)
	return Outcome{Kind: events.OutcomeApplied, Results: []events.Result{res}, GrantID: g.ID}, nil
}

// escalateExisting handles an escalate with a new Sym id for a grant that
// exists: Sym re-emitted it (still active: same result) or it was already
// revoked (a late escalate: refused, so no access is left behind).
func (s *Service) escalateExisting(ctx context.Context, req events.Request, g Grant, now time.Time) (Outcome, error) {
	if g.State != StateActive {
		return s.rejectRecorded(ctx, req, reject(events.CodeAlreadyRevoked, "grant "+g.ID+" already ended ("+string(g.State)+")"))
	}
	res := grantedResult(g)
	if err := s.Store.RecordEvent(ctx, ProcessedEvent{SymEventID: req.SymEventID, GrantID: g.ID, Result: res, At: now}); err != nil {
		var conflict *ConflictError
		if errors.As(err, &conflict) && conflict.Event != nil {
			return s.duplicate(ctx, *conflict.Event)
		}
		return Outcome{}, fmt.Errorf("record event %s: %w", req.SymEventID, err)
	}
	if _, _, err := s.converge(ctx, g.Key(), change{grantID: g.ID, symID: req.SymEventID}); err != nil {
		return Outcome{}, err
	}
	return Outcome{Kind: events.OutcomeDuplicate, Results: []events.Result{res}, GrantID: g.ID}, nil
}

// duplicate republishes the stored result and converges the membership, in
// case the first delivery died between its write and its IAM call.
func (s *Service) duplicate(ctx context.Context, ev ProcessedEvent) (Outcome, error) {
	if k := resultKey(ev.Result, s.Accounts.Home().ID); ev.GrantID != "" && k.User != "" {
		if _, _, err := s.converge(ctx, k, change{grantID: ev.GrantID, symID: ev.SymEventID}); err != nil {
			return Outcome{}, err
		}
	}
	s.Log.InfoContext(ctx, "duplicate delivery", "sym_event_id", ev.SymEventID, "result_id", ev.Result.ResultID)
	return Outcome{Kind: events.OutcomeDuplicate, Results: []events.Result{ev.Result}, GrantID: ev.GrantID}, nil
}

func (s *Service) rejectRecorded(ctx context.Context, req events.Request, rej *Rejection) (Outcome, error) {
	req = echoable(req) // also bounds the grant id that is stored and logged
	res := rejectedResult(req, rej)
	err := s.Store.RecordEvent(ctx, ProcessedEvent{SymEventID: req.SymEventID, GrantID: req.GrantID(), Result: res, At: s.Now().UTC()})
	var conflict *ConflictError
	if errors.As(err, &conflict) && conflict.Event != nil {
		return s.duplicate(ctx, *conflict.Event)
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("record rejection of %s: %w", req.SymEventID, err)
	}
	s.Log.WarnContext(ctx, "request rejected", "sym_event_id", req.SymEventID, "code", rej.Code, "reason", rej.Msg)
	return Outcome{Kind: events.OutcomeRejected, Results: []events.Result{res}, GrantID: req.GrantID()}, nil
}

func (s *Service) deescalate(ctx context.Context, req events.Request) (Outcome, error) {
	if !strings.HasPrefix(req.Template, "sym:template:approval:") {
		// Another template's deescalate could otherwise end (or, before the
		// escalate, tombstone) an approval grant that shares its ids.
		return s.rejectRecorded(ctx, req, reject(events.CodeUnsupportedTemplate, fmt.Sprintf("template %q is not Sym's approval template", clip(req.Template))))
	}
	id := req.GrantID()
	if id == "" {
		return s.rejectRecorded(ctx, req, reject(events.CodeInvalidRequest, "run.srn and fields.target_id are required"))
	}
	if len(id) > 1024 || events.HasControl(id) {
		return s.rejectRecorded(ctx, req, reject(events.CodeInvalidRequest, "grant id is too long or has control characters"))
	}
	now := s.Now().UTC()
	for range 3 {
		g, err := s.Store.GetGrant(ctx, id)
		if errors.Is(err, ErrNotFound) {
			out, err := s.tombstone(ctx, req, now)
			if errors.Is(err, errRaced) {
				continue
			}
			return out, err
		}
		if err != nil {
			return Outcome{}, fmt.Errorf("read grant %s: %w", id, err)
		}
		if g.State != StateActive {
			// Already ended (expired, revoked by hand, a duplicate with a new
			// id): the same revocation, same result id.
			res := revokedResult(g)
			if err := s.Store.RecordEvent(ctx, ProcessedEvent{SymEventID: req.SymEventID, GrantID: id, Result: res, At: now}); err != nil {
				var conflict *ConflictError
				if errors.As(err, &conflict) && conflict.Event != nil {
					return s.duplicate(ctx, *conflict.Event)
				}
				return Outcome{}, fmt.Errorf("record event %s: %w", req.SymEventID, err)
			}
			return Outcome{Kind: events.OutcomeDuplicate, Results: []events.Result{res}, GrantID: id}, nil
		}
		g.State, g.RevokedAt, g.RevokeReason, g.RevokeEventID = StateRevoked, now, events.RevokedDeescalated, req.SymEventID
		res := revokedResult(g)
		out, err := s.revoke(ctx, g, &ProcessedEvent{SymEventID: req.SymEventID, GrantID: id, Result: res, At: now}, false)
		if errors.Is(err, errRaced) {
			continue
		}
		return out, err
	}
	return Outcome{}, fmt.Errorf("deescalate %s: grant kept changing under us", id)
}

var errRaced = errors.New("raced with another writer")

func (s *Service) tombstone(ctx context.Context, req events.Request, now time.Time) (Outcome, error) {
	g := Grant{
		ID: req.GrantID(), State: StateRevoked, RevokeEventID: req.SymEventID, RunSRN: req.RunSRN,
		Requester: req.Requester, Group: groupName(req.Group), Approver: req.Approver,
		RevokedAt: now, RevokeReason: events.RevokedDeescalated, Tombstone: true,
		History: []Transition{{At: now, Action: "tombstone", State: StateRevoked, SymEventID: req.SymEventID, Note: "deescalate arrived before escalate"}},
	}
	// The target and account the request named, configured or not, for the
	// result; a tombstone touches no membership.
	g.Account = s.Accounts.Home().ID
	switch req.TargetType {
	case events.TargetSSOPermissionSet:
		g.Kind, g.Group, g.Account = PermissionSet, req.PermissionSetARN, req.AccountID
	case events.TargetSSOGroup:
		g.Kind, g.Group = SSOGroup, req.SSOGroupID
		if sso := s.Accounts.SSO(); sso != nil {
			g.Account = sso.ID
		}
	default:
		if _, arnAcct, rej := parseGroup(req.Group); rej == nil && arnAcct != "" {
			g.Account = arnAcct
		}
	}
	g = echoableGrant(g)
	res := revokedResult(g)
	err := s.Store.Tombstone(ctx, g, ProcessedEvent{SymEventID: req.SymEventID, GrantID: g.ID, Result: res, At: now})
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict) && conflict.Event != nil:
		return s.duplicate(ctx, *conflict.Event)
	case errors.As(err, &conflict) && conflict.Grant != nil:
		return Outcome{}, errRaced
	case err != nil:
		return Outcome{}, fmt.Errorf("tombstone %s: %w", g.ID, err)
	}
	s.Log.InfoContext(ctx, "deescalate before escalate: tombstone written", "grant_id", g.ID)
	return Outcome{Kind: events.OutcomeApplied, Results: []events.Result{res}, GrantID: g.ID}, nil
}

// revoke ends an ACTIVE grant g (already moved to REVOKED in memory) and
// converges its membership.
func (s *Service) revoke(ctx context.Context, g Grant, ev *ProcessedEvent, keepDue bool) (Outcome, error) {
	token := s.NewToken()
	err := s.Store.Revoke(ctx, g, ev, token, keepDue)
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict) && conflict.Event != nil:
		return s.duplicate(ctx, *conflict.Event)
	case errors.Is(err, ErrNotActive):
		return Outcome{}, errRaced
	case err != nil:
		return Outcome{}, fmt.Errorf("revoke grant %s: %w", g.ID, err)
	}
	symID := ""
	if ev != nil {
		symID = ev.SymEventID
	}
	_, ended, err := s.converge(ctx, g.Key(), change{grantID: g.ID, symID: symID})
	if err != nil {
		return Outcome{}, err
	}
	s.Log.InfoContext(ctx, "access revoked", "grant_id", g.ID, "account_id", g.Account, "iam_user", g.IAMUser, "group", g.Group, "reason", g.RevokeReason)
	res := revokedResult(g)
	res.SessionsRevoked, res.SessionsSkipped, res.SessionsNotRevoked = ended.Revoked, ended.Skipped, ended.NotRevoked
	return Outcome{Kind: events.OutcomeApplied, Results: []events.Result{res}, GrantID: g.ID}, nil
}

// Revoke ends an active grant by hand (iamjit grants revoke) through the
// same path as a deescalate.
func (s *Service) Revoke(ctx context.Context, grantID, reason string) (Outcome, error) {
	g, err := s.Store.GetGrant(ctx, grantID)
	if err != nil {
		return Outcome{}, fmt.Errorf("read grant %s: %w", grantID, err)
	}
	if g.State != StateActive {
		return Outcome{Kind: events.OutcomeDuplicate, Results: []events.Result{revokedResult(g)}, GrantID: g.ID}, nil
	}
	g.State, g.RevokedAt, g.RevokeReason = StateRevoked, s.Now().UTC(), reason
	out, err := s.revoke(ctx, g, nil, false)
	if errors.Is(err, errRaced) {
		return s.Revoke(ctx, grantID, reason)
	}
	return out, err
}

// groupNameRE is IAM's own rule for group names.
var groupNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

// validateEscalate turns a request into the grant it asks for, or says why
// it is refused. Only lookups in AWS can fail with an error.
func (s *Service) validateEscalate(ctx context.Context, req events.Request, now time.Time) (Grant, *Rejection, error) {
	if rej := s.checkRequest(req); rej != nil {
		return Grant{}, rej, nil
	}
	expires, rej := s.expiry(req, now)
	if rej != nil {
		return Grant{}, rej, nil
	}
	k, groupARN, rej, err := s.resolveTarget(ctx, req)
	if rej != nil || err != nil {
		return Grant{}, rej, err
	}
	return Grant{
		ID: req.GrantID(), State: StateActive, Kind: k.Kind, Account: k.Account, SymEventID: req.SymEventID, RunSRN: req.RunSRN,
		Requester: req.Requester, IAMUser: k.User, Group: k.Group, GroupARN: groupARN,
		Approver: req.Approver, Reason: req.Reason, GrantedAt: now, ExpiresAt: expires,
		History: []Transition{{At: now, Action: "escalate", State: StateActive, SymEventID: req.SymEventID}},
	}, nil, nil
}

// resolveTarget is the membership the request asks for, with the
// requester in it, and the group's ARN for an IAM group.
func (s *Service) resolveTarget(ctx context.Context, req events.Request) (Key, string, *Rejection, error) {
	if req.TargetType != events.TargetIAMGroup {
		return s.resolveSSO(ctx, req)
	}
	acct, grp, rej, err := s.resolveGroup(ctx, req.Group)
	if rej != nil || err != nil {
		return Key{}, "", rej, err
	}
	user, rej, err := s.resolveRequester(ctx, acct.ID, acct.Identity, req)
	if rej != nil || err != nil {
		return Key{}, "", rej, err
	}
	return Key{Account: acct.ID, User: user, Group: grp.Name}, grp.ARN, nil, nil
}

// resolveSSO checks an Identity Center target against its allow-lists
// before anything reaches Identity Center, then finds the requester's
// Identity Store user.
func (s *Service) resolveSSO(ctx context.Context, req events.Request) (Key, string, *Rejection, error) {
	p, sso := s.Policy, s.Accounts.SSO()
	var k Key
	switch req.TargetType {
	case events.TargetSSOPermissionSet:
		switch {
		case req.PermissionSetARN == "" || req.AccountID == "":
			return Key{}, "", reject(events.CodeInvalidRequest, "fields.target.settings.permission_set_arn and account_id are required"), nil
		}
		// A refusal names the account the request named, as foreign_account
		// does for an IAM group's.
		reject := func(msg string) *Rejection {
			rej := reject(events.CodeTargetNotAllowed, msg)
			if events.IsAccountID(req.AccountID) {
				rej.Account = req.AccountID
			}
			return rej
		}
		switch {
		case !slices.Contains(p.PermissionSets, req.PermissionSetARN):
			return Key{}, "", reject(fmt.Sprintf("permission set %q is not in IAMJIT_SSO_PERMISSION_SETS", clip(req.PermissionSetARN))), nil
		case !slices.Contains(p.AssignmentAccounts, req.AccountID):
			return Key{}, "", reject(fmt.Sprintf("account %q is not in IAMJIT_SSO_ASSIGNMENT_ACCOUNTS", clip(req.AccountID))), nil
		}
		k = Key{Kind: PermissionSet, Account: req.AccountID, Group: req.PermissionSetARN}
	default: // events.TargetSSOGroup; checkRequest let no other type through
		switch {
		case req.SSOGroupID == "":
			return Key{}, "", reject(events.CodeInvalidRequest, "fields.target.settings.group_id is required"), nil
		case !slices.Contains(p.SSOGroups, req.SSOGroupID):
			return Key{}, "", reject(events.CodeTargetNotAllowed, fmt.Sprintf("group %q is not in IAMJIT_SSO_GROUPS", clip(req.SSOGroupID))), nil
		}
		k = Key{Kind: SSOGroup, Account: sso.ID, Group: req.SSOGroupID}
	}
	user, rej, err := s.resolveRequester(ctx, k.Account, ssoUsers{sso.SSO.Users}, req)
	k.User = user
	return k, "", rej, err
}

// users maps emails to the users of one kind of target: IAM users
// (*Identity) or Identity Store users (ssoUsers).
type users interface {
	Resolve(ctx context.Context, email string) (string, error)
	ResolveApprover(ctx context.Context, email string) (string, error)
}

// ssoUsers maps requester and approver alike.
type ssoUsers struct{ SSOUsers }

func (u ssoUsers) Resolve(ctx context.Context, email string) (string, error) {
	return u.UserID(ctx, email)
}
func (u ssoUsers) ResolveApprover(ctx context.Context, email string) (string, error) {
	return u.UserID(ctx, email)
}

// checkRequest refuses what the request itself gets wrong, before anything
// is looked up: template, target type, ids, free text, actors.
func (s *Service) checkRequest(req events.Request) *Rejection {
	if !strings.HasPrefix(req.Template, "sym:template:approval:") {
		return reject(events.CodeUnsupportedTemplate, fmt.Sprintf("template %q is not Sym's approval template", clip(req.Template)))
	}
	switch req.TargetType {
	case events.TargetIAMGroup:
	case events.TargetSSOPermissionSet, events.TargetSSOGroup:
		if s.Accounts.SSO() == nil {
			return reject(events.CodeUnsupportedTarget, fmt.Sprintf("target type %q needs Identity Center, and IAMJIT_SSO_INSTANCE_ARN is not set", req.TargetType))
		}
	default:
		return reject(events.CodeUnsupportedTarget, fmt.Sprintf("target type %q is not aws_iam_group, aws_sso_permission_set or aws_sso_group", clip(req.TargetType)))
	}
	if req.GrantID() == "" {
		return reject(events.CodeInvalidRequest, "run.srn and fields.target_id are required")
	}
	for _, f := range []string{req.GrantID(), req.Requester, req.Approver, req.Group, req.PermissionSetARN, req.AccountID, req.SSOGroupID} {
		if events.HasControl(f) || len(f) > 1024 {
			return reject(events.CodeInvalidRequest, "a field is too long or has control characters")
		}
	}
	// The requester's reason is free text from a Slack form: line breaks and
	// tabs are normal there; other control characters and length are not.
	if events.HasControl(strings.NewReplacer("\n", "", "\r", "", "\t", "").Replace(req.Reason)) || len(req.Reason) > 4096 {
		return reject(events.CodeInvalidRequest, "fields.reason is too long or has control characters")
	}
	if req.Requester == "" {
		return reject(events.CodeInvalidRequest, "run.actors.request.username is required")
	}
	if req.Approver == "" {
		return reject(events.CodeInvalidRequest, "run.actors.approve.username is required")
	}
	if !s.Policy.AllowSelfApproval && strings.EqualFold(req.Requester, req.Approver) {
		return reject(events.CodeSelfApproval, "the requester approved their own request")
	}
	return nil
}

// expiry is when the grant ends: the event's time plus its duration, which
// must be present, positive, within IAMJIT_MAX_DURATION and still ahead.
func (s *Service) expiry(req events.Request, now time.Time) (time.Time, *Rejection) {
	p := s.Policy
	switch {
	case req.TSErr != "":
		return time.Time{}, reject(events.CodeInvalidTimestamp, req.TSErr)
	case req.Timestamp.After(now.Add(p.MaxClockSkew)):
		return time.Time{}, reject(events.CodeFutureTimestamp, "event.timestamp "+req.Timestamp.Format(time.RFC3339)+" is in the future")
	case !req.HasDur:
		return time.Time{}, reject(events.CodeInvalidDuration, "fields.duration is required")
	case req.DurErr != "":
		return time.Time{}, reject(events.CodeInvalidDuration, req.DurErr)
	case req.Duration <= 0:
		return time.Time{}, reject(events.CodeInvalidDuration, "fields.duration must be positive")
	case req.Duration > int64(p.MaxDuration/p.DurationUnit):
		return time.Time{}, reject(events.CodeDurationTooLong, fmt.Sprintf("fields.duration %d exceeds IAMJIT_MAX_DURATION %s", req.Duration, p.MaxDuration))
	}
	expires := req.Timestamp.Add(time.Duration(req.Duration) * p.DurationUnit).Truncate(time.Millisecond)
	if !expires.After(now) {
		return time.Time{}, reject(events.CodeExpired, "the grant would have ended at "+expires.Format(time.RFC3339))
	}
	return expires, nil
}

// resolveGroup finds the requested group in the account it lives in and
// checks that iamjit may grant it: allow-list, path, and an ARN that is
// IAM's own for the group. From the routing on, a refusal names the
// group's account (account_id).
func (s *Service) resolveGroup(ctx context.Context, group string) (*Account, GroupInfo, *Rejection, error) {
	name, arnAcct, rej := parseGroup(group)
	if rej != nil {
		return nil, GroupInfo{}, rej, nil
	}
	acct, rej := s.Accounts.Route(arnAcct)
	if rej != nil {
		return nil, GroupInfo{}, rej, nil
	}
	reject := func(code events.Code, msg string) *Rejection {
		return &Rejection{Code: code, Msg: msg, Account: acct.ID}
	}
	p := s.Policy
	if !allowed(p.AllowedGroups, name, "") {
		return nil, GroupInfo{}, reject(events.CodeGroupNotAllowed, "group "+name+" is not in IAMJIT_ALLOWED_GROUPS"), nil
	}
	grp, err := acct.Groups.Group(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, GroupInfo{}, reject(events.CodeUnknownGroup, "IAM has no group "+name+acct.In()), nil
	}
	if err != nil {
		return nil, GroupInfo{}, nil, fmt.Errorf("look up group %s%s: %w", name, acct.In(), err)
	}
	switch {
	case !allowed(p.AllowedGroups, name, grp.ARN):
		return nil, GroupInfo{}, reject(events.CodeGroupNotAllowed, "group "+grp.ARN+" is not in IAMJIT_ALLOWED_GROUPS"), nil
	case !strings.HasPrefix(grp.Path, p.GroupPath):
		return nil, GroupInfo{}, reject(events.CodeGroupNotAllowed, "group "+name+" has path "+grp.Path+", outside "+p.GroupPath), nil
	case arnAcct != "" && arnAccount(grp.ARN) != arnAcct:
		rej := reject(events.CodeForeignAccount, "group ARN names account "+arnAcct+", not this one")
		rej.Account = arnAcct
		return nil, GroupInfo{}, rej, nil
	case arnAcct != "" && grp.ARN != group:
		// Same name, other path or partition: the ARN does not name this group.
		return nil, GroupInfo{}, reject(events.CodeInvalidGroup, fmt.Sprintf("%q is not IAM's ARN for group %s", clip(group), name)), nil
	}
	return acct, grp, nil, nil
}

// resolveRequester maps the requester's email to their user, and refuses
// an approver who maps to the same user: two emails of one person (an
// alias, a mapping-file entry) are still a self-approval. Refusals name
// account, the target's.
func (s *Service) resolveRequester(ctx context.Context, account string, dir users, req events.Request) (string, *Rejection, error) {
	reject := func(code events.Code, msg string) *Rejection {
		return &Rejection{Code: code, Msg: msg, Account: account}
	}
	user, err := dir.Resolve(ctx, req.Requester)
	var idErr *IdentityError
	if errors.As(err, &idErr) {
		return "", reject(idErr.Code, idErr.Msg), nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("map %s to a user: %w", req.Requester, err)
	}
	if s.Policy.AllowSelfApproval {
		return user, nil, nil
	}
	approver, err := dir.ResolveApprover(ctx, req.Approver)
	switch {
	case errors.As(err, &idErr):
		// The approver has no (single) IAM user: not the requester's.
	case err != nil:
		return "", nil, fmt.Errorf("map approver %s to a user: %w", req.Approver, err)
	case approver == user:
		return "", reject(events.CodeSelfApproval, "the approver maps to the requester's user "+user), nil
	}
	return user, nil, nil
}

// parseGroup accepts a group name or an IAM group ARN and returns the name
// and, for an ARN, its account.
func parseGroup(s string) (name, account string, rej *Rejection) {
	if s == "" {
		return "", "", reject(events.CodeInvalidGroup, "fields.target.settings.iam_group is required")
	}
	if strings.HasPrefix(s, "arn:") {
		parts := strings.SplitN(s, ":", 6)
		if len(parts) != 6 || parts[2] != "iam" || !strings.HasPrefix(parts[5], "group/") {
			return "", "", reject(events.CodeInvalidGroup, fmt.Sprintf("%q is not an IAM group ARN", clip(s)))
		}
		account = parts[4]
		res := strings.TrimPrefix(parts[5], "group")
		name = res[strings.LastIndex(res, "/")+1:]
		if !groupNameRE.MatchString(name) || strings.Contains(res, "..") || strings.Contains(res, "*") {
			return "", "", reject(events.CodeInvalidGroup, fmt.Sprintf("%q is not an IAM group ARN", clip(s)))
		}
		return name, account, nil
	}
	if !groupNameRE.MatchString(s) {
		return "", "", reject(events.CodeInvalidGroup, fmt.Sprintf("%q is not an IAM group name", clip(s)))
	}
	return s, "", nil
}

// allowed reads the allow-list: it names groups (in every account iamjit
// serves) or group ARNs (that group only). Before the group is looked up
// (arn "") an ARN entry with the same name lets the request through to the
// lookup.
func allowed(list []string, name, arn string) bool {
	if len(list) == 0 {
		return true
	}
	for _, e := range list {
		switch {
		case e == name, arn != "" && e == arn:
			return true
		case arn == "" && strings.HasPrefix(e, "arn:") && groupName(e) == name:
			return true
		}
	}
	return false
}

func groupName(s string) string {
	name, _, rej := parseGroup(s)
	if rej != nil {
		return ""
	}
	return name
}

func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// echoable bounds the request fields a rejection echoes back: a refused
// request may carry a 200 KiB requester, and its result must still fit in
// one PutEvents entry (256 KiB) and one DynamoDB item.
func echoable(req events.Request) events.Request {
	for _, f := range []*string{&req.Requester, &req.Approver, &req.Group, &req.RunSRN, &req.TargetID,
		&req.TargetType, &req.PermissionSetARN, &req.AccountID, &req.SSOGroupID} {
		if len(*f) > 256 {
			*f = strings.ToValidUTF8((*f)[:256], "") + "…"
		}
	}
	return req
}

// echoableGrant bounds what a tombstone echoes of its request, as
// echoable does for a rejection.
func echoableGrant(g Grant) Grant {
	for _, f := range []*string{&g.Group, &g.Account} {
		if len(*f) > 256 {
			*f = strings.ToValidUTF8((*f)[:256], "") + "…"
		}
	}
	return g
}

// clip bounds user-controlled text in messages and logs.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Fail is called when iamjit gives up on a request after its retries. For an
// escalate it takes back whatever this request had put in place (the grant
// goes to FAILED and leaves its membership; its event record is dropped so a
// replay once the cause is fixed applies it afresh). A deescalate that failed
// changes nothing here: the grant still expires through the sweeper.
func (s *Service) Fail(ctx context.Context, req events.Request, code events.Code, msg string) (Outcome, error) {
	res := FailedResult(req, code, msg)
	out := Outcome{Kind: events.OutcomeFailed, Results: []events.Result{res}, GrantID: req.GrantID()}
	if req.Type != events.TypeEscalate || req.GrantID() == "" {
		return out, nil
	}
	g, err := s.Store.GetGrant(ctx, req.GrantID())
	if errors.Is(err, ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read grant %s: %w", req.GrantID(), err)
	}
	if g.State != StateActive || g.SymEventID != req.SymEventID {
		return out, nil // not this request's doing
	}
	g.State, g.RevokedAt, g.RevokeReason = StateFailed, s.Now().UTC(), "failed"
	if err := s.Store.Fail(ctx, g, s.NewToken()); err != nil && !errors.Is(err, ErrNotActive) {
		return out, fmt.Errorf("mark grant %s failed: %w", g.ID, err)
	}
	// Best effort: if IAM is what failed, the sweeper's dirty repair finishes.
	if _, _, err := s.converge(ctx, g.Key(), change{grantID: g.ID, symID: req.SymEventID}); err != nil {
		s.Log.WarnContext(ctx, "membership left for the sweeper to repair", "grant_id", g.ID, "err", err)
	}
	return out, nil
}
