package events

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Detail types of the result events iamjit publishes.
const (
	AccessGranted  = "Access Granted"
	AccessRevoked  = "Access Revoked"
	AccessRejected = "Access Request Rejected"
	AccessFailed   = "Access Grant Failed"
	// AccessExpiring warns, IAMJIT_EXPIRY_WARNING before a grant's expiry,
	// that it is about to end.
	AccessExpiring = "Access Expiring"
)

// Reasons an Access Revoked carries.
const (
	RevokedDeescalated = "deescalated"
	RevokedExpired     = "expired"
	RevokedManual      = "manual"
	RevokedDrift       = "drift"
)

// Result is the detail of a result event. ResultID is derived from what the
// result is about, never from the attempt, so every retry and duplicate
// publishes the same id and downstream can dedupe on it.
type Result struct {
	DetailType string `json:"detail_type"`
	ResultID   string `json:"result_id"`
	GrantID    string `json:"grant_id,omitempty"`
	SymEventID string `json:"sym_event_id,omitempty"`
	RunSRN     string `json:"run_srn,omitempty"`
	Requester  string `json:"requester,omitempty"`
	IAMUser    string `json:"iam_user,omitempty"`
	Group      string `json:"group,omitempty"`
	GroupARN   string `json:"group_arn,omitempty"`
	// TargetType is the request's target type (aws_iam_group,
	// aws_sso_permission_set, aws_sso_group), on every result that knows it.
	TargetType string `json:"target_type,omitempty"`
	// AccountID is the target's AWS account: the IAM group's, the account
	// a permission set is assigned in, or the Identity Center account that
	// holds an Identity Store group.
	AccountID string `json:"account_id,omitempty"`
	// Identity Center targets: the permission set, or the Identity Store
	// group, and the requester's Identity Store user id.
	PermissionSetARN string     `json:"permission_set_arn,omitempty"`
	SSOGroupID       string     `json:"sso_group_id,omitempty"`
	SSOUserID        string     `json:"sso_user_id,omitempty"`
	Approver         string     `json:"approver,omitempty"`
	Reason           string     `json:"reason,omitempty"`
	GrantedAt        *time.Time `json:"granted_at,omitempty"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	Code             Code       `json:"code,omitempty"`
	Message          string     `json:"message,omitempty"`
	// Access Revoked: the roles whose sessions issued before the revocation
	// now fail, the roles the group could assume outside IAMJIT_ROLE_PATH
	// (never touched), and roles under it where nothing fit.
	SessionsRevoked    []string `json:"sessions_revoked,omitempty"`
	SessionsSkipped    []string `json:"sessions_skipped,omitempty"`
	SessionsNotRevoked []string `json:"sessions_not_revoked,omitempty"`
}

// ResultID is a stable id for the result of kind about key (a grant id for
// grants and revocations, the Sym event id for rejections and failures).
func ResultID(detailType, key string) string {
	sum := sha256.Sum256([]byte(detailType + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

// TimePtr returns a pointer to t in UTC, or nil for the zero time.
func TimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
