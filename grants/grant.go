package grants

import (
	"cmp"
	"errors"
	"time"

	"github.com/iamjit/iamjit/events"
)

// State of a grant.
type State string

const (
	StateActive   State = "ACTIVE"
	StateRevoked  State = "REVOKED"
	StateRejected State = "REJECTED"
	StateFailed   State = "FAILED"
)

// Grant is one approved request for one (user, group).
type Grant struct {
	ID            string
	State         State
	Kind          Kind   // what the grant gives: an IAM group (zero) or an Identity Center target
	Account       string // the target's AWS account id (Accounts; Key says which for each kind)
	SymEventID    string // the escalate's Sym id
	RevokeEventID string // the deescalate's Sym id, if any
	RunSRN        string
	Requester     string // email
	IAMUser       string // the IAM user; the Identity Store user id for Identity Center kinds
	Group         string // the group name; the permission set ARN or Identity Store group id
	GroupARN      string // IAM groups only
	Approver      string
	Reason        string // requester's reason
	GrantedAt     time.Time
	ExpiresAt     time.Time
	RevokedAt     time.Time
	RevokeReason  string // deescalated, expired, manual, drift, or failed
	Tombstone     bool   // revoked before any escalate was seen
	History       []Transition
}

// Transition is one entry of a grant's history. IAMRequestID joins it to
// CloudTrail.
type Transition struct {
	At           time.Time `json:"at" dynamodbav:"at"`
	Action       string    `json:"action" dynamodbav:"action"`
	State        State     `json:"state,omitempty" dynamodbav:"state,omitempty"`
	SymEventID   string    `json:"sym_event_id,omitempty" dynamodbav:"sym_event_id,omitempty"`
	IAMRequestID string    `json:"iam_request_id,omitempty" dynamodbav:"iam_request_id,omitempty"`
	Note         string    `json:"note,omitempty" dynamodbav:"note,omitempty"`
}

// Kind of membership a grant gives. The zero value is an IAM user in an IAM
// group, the only kind before Identity Center: items and keys written then
// read as it.
type Kind string

const (
	IAMGroup Kind = ""
	// PermissionSet is an Identity Center account assignment of a
	// permission set to a user (principal type USER) in one account.
	PermissionSet Kind = "aws_sso_permission_set"
	// SSOGroup is a user's membership of an Identity Store group.
	SSOGroup Kind = "aws_sso_group"
)

// TargetType is Sym's name of the kind, as results carry it (target_type).
func (k Kind) TargetType() string {
	if k == IAMGroup {
		return "aws_iam_group"
	}
	return string(k)
}

// Key names one membership. The same names in two accounts are two
// memberships.
//   - IAMGroup: Account is the group's account, User the IAM user name,
//     Group the group name.
//   - PermissionSet: Account is the account assigned, User the Identity
//     Store user id, Group the permission set ARN.
//   - SSOGroup: Account is the account that holds the Identity Center
//     instance, User the Identity Store user id, Group the group id.
type Key struct {
	Kind    Kind
	Account string // an account id (Accounts)
	User    string
	Group   string
}

// String names the membership in messages.
func (k Key) String() string {
	s := k.User + " in " + k.Group
	switch {
	case k.Kind == PermissionSet:
		s = k.User + " assigned " + k.Group
	case k.Kind != IAMGroup:
		s = k.User + " in " + string(k.Kind) + " " + k.Group
	}
	if k.Account == "" {
		return s
	}
	return s + " (account " + k.Account + ")"
}

// Key of the grant's membership.
func (g Grant) Key() Key {
	return Key{Kind: g.Kind, Account: g.Account, User: g.IAMUser, Group: g.Group}
}

// Membership is the store's view of one (account, IAM user, group): the
// active grants that explain it. IAM membership must equal len(GrantIDs) > 0.
type Membership struct {
	Kind     Kind
	Account  string // the account id (Accounts)
	IAMUser  string
	Group    string
	GrantIDs []string
	Token    string // replaced by every write; see the package comment
	Dirty    bool
}

// Key of the membership.
func (m Membership) Key() Key {
	return Key{Kind: m.Kind, Account: m.Account, User: m.IAMUser, Group: m.Group}
}

// ProcessedEvent records the result of a Sym event so a duplicate delivery
// republishes the same result instead of acting again.
type ProcessedEvent struct {
	SymEventID string
	GrantID    string
	Result     events.Result
	At         time.Time
}

// ConflictError is returned by Store writes whose condition failed because
// the event was already processed or the grant already exists.
type ConflictError struct {
	Event *ProcessedEvent // set when the Sym event was processed before
	Grant *Grant          // set when the grant exists
}

func (e *ConflictError) Error() string {
	switch {
	case e.Event != nil:
		return "sym event " + e.Event.SymEventID + " already processed"
	case e.Grant != nil:
		return "grant " + e.Grant.ID + " already exists in state " + string(e.Grant.State)
	}
	return "conflict"
}

// ErrNotFound is returned when an item does not exist.
var ErrNotFound = errors.New("not found")

// ErrNotActive is returned by Store.Revoke when the grant is not ACTIVE.
var ErrNotActive = errors.New("grant is not active")

// result builders: ResultIDs depend on the grant or event, never the attempt.

func grantedResult(g Grant) events.Result {
	r := events.Result{
		DetailType: events.AccessGranted,
		ResultID:   events.ResultID(events.AccessGranted, g.ID),
		GrantID:    g.ID, SymEventID: g.SymEventID, RunSRN: g.RunSRN, TargetType: g.Kind.TargetType(),
		Requester: g.Requester, AccountID: g.Account,
		Approver: g.Approver, GrantedAt: events.TimePtr(g.GrantedAt), ExpiresAt: events.TimePtr(g.ExpiresAt),
	}
	SetTarget(&r, g.Key(), g.GroupARN)
	return r
}

// SetTarget names the membership k in a result, in the fields of its kind.
func SetTarget(r *events.Result, k Key, groupARN string) {
	switch k.Kind {
	case PermissionSet:
		r.PermissionSetARN, r.SSOUserID = k.Group, k.User
	case SSOGroup:
		r.SSOGroupID, r.SSOUserID = k.Group, k.User
	default:
		r.IAMUser, r.Group, r.GroupARN = k.User, k.Group, groupARN
	}
}

// resultKey is the membership a stored result is about. A result from
// before there were accounts names none: the home account's.
func resultKey(r events.Result, home string) Key {
	k := Key{Account: cmp.Or(r.AccountID, home), User: r.IAMUser, Group: r.Group}
	switch r.TargetType {
	case events.TargetSSOPermissionSet:
		k.Kind, k.User, k.Group = PermissionSet, r.SSOUserID, r.PermissionSetARN
	case events.TargetSSOGroup:
		k.Kind, k.User, k.Group = SSOGroup, r.SSOUserID, r.SSOGroupID
	}
	return k
}

func revokedResult(g Grant) events.Result {
	r := grantedResult(g)
	r.DetailType = events.AccessRevoked
	r.ResultID = events.ResultID(events.AccessRevoked, g.ID)
	r.Reason = g.RevokeReason
	r.RevokedAt = events.TimePtr(g.RevokedAt)
	if g.RevokeEventID != "" {
		r.SymEventID = g.RevokeEventID
	}
	if g.Tombstone {
		r.Message = "revoked before it was granted: a later escalate will be refused"
	}
	return r
}

// Rejection is a request refused for what it asks, not for a failure.
type Rejection struct {
	Code events.Code
	Msg  string
	// Account is the AWS account of the requested group, once the group
	// named one ("" before that): results carry it as account_id.
	Account string
}

func (r *Rejection) Error() string { return string(r.Code) + ": " + r.Msg }

func reject(code events.Code, msg string) *Rejection { return &Rejection{Code: code, Msg: msg} }

func rejectedResult(req events.Request, rej *Rejection) events.Result {
	r := requestResult(req, events.AccessRejected)
	r.Code, r.Message, r.AccountID = rej.Code, rej.Msg, rej.Account
	return r
}

// requestResult is a result about a request that holds no grant: it echoes
// what the request asked for.
func requestResult(req events.Request, detailType string) events.Result {
	r := events.Result{
		DetailType: detailType,
		ResultID:   events.ResultID(detailType, req.SymEventID),
		GrantID:    req.GrantID(), SymEventID: req.SymEventID, RunSRN: req.RunSRN, TargetType: req.TargetType,
		Requester: req.Requester, Group: req.Group, Approver: req.Approver,
		PermissionSetARN: req.PermissionSetARN, SSOGroupID: req.SSOGroupID,
	}
	// A result names only its target's kind: a stray setting of another
	// kind in the body (an iam_group beside a group_id) is not echoed.
	switch req.TargetType {
	case events.TargetSSOPermissionSet, events.TargetSSOGroup:
		r.Group = ""
	case events.TargetIAMGroup:
		r.PermissionSetARN, r.SSOGroupID = "", ""
	}
	return r
}

// FailedResult is published when iamjit gives up on a request after retries.
func FailedResult(req events.Request, code events.Code, msg string) events.Result {
	r := requestResult(echoable(req), events.AccessFailed)
	r.Code, r.Message = code, msg
	return r
}
