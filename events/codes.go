package events

// Code is the machine-readable reason a result or a dead letter carries.
// Every code iamjit itself produces is named here, once: the service, the
// CLI, the tests and docs/design.md use these names. Access Grant Failed
// also carries AWS's own error code (AccessDenied, Throttling, …) as a Code.
type Code string

// Rejection codes: why an Access Request Rejected refused the request.
const (
	CodeBareNotAccepted     Code = "bare_not_accepted"    // a bare SymLogEntry and IAMJIT_ACCEPT_BARE is false
	CodeSourceNotAllowed    Code = "source_not_allowed"   // the envelope's source is not in IAMJIT_SOURCES
	CodeMalformed           Code = "malformed"            // the body names a Sym id but does not decode
	CodeUnsupportedTemplate Code = "unsupported_template" // not Sym's approval template
	CodeUnsupportedTarget   Code = "unsupported_target"   // a target type iamjit does not serve
	CodeInvalidRequest      Code = "invalid_request"      // a required field is missing, too long or has control characters
	CodeSelfApproval        Code = "self_approval"        // the requester approved their own request
	CodeInvalidTimestamp    Code = "invalid_timestamp"    // event.timestamp does not parse
	CodeFutureTimestamp     Code = "future_timestamp"     // event.timestamp is too far in the future
	CodeInvalidDuration     Code = "invalid_duration"     // fields.duration is missing, not a number or not positive
	CodeDurationTooLong     Code = "duration_too_long"    // longer than IAMJIT_MAX_DURATION
	CodeExpired             Code = "expired"              // the grant would already have ended
	CodeInvalidGroup        Code = "invalid_group"        // not an IAM group name or ARN, or not IAM's ARN for it
	CodeForeignAccount      Code = "foreign_account"      // the group ARN names an account iamjit does not serve
	CodeGroupNotAllowed     Code = "group_not_allowed"    // outside IAMJIT_ALLOWED_GROUPS or IAMJIT_GROUP_PATH
	CodeUnknownGroup        Code = "unknown_group"        // IAM has no such group
	CodeUnknownUser         Code = "unknown_user"         // no (IAM or Identity Store) user for the requester's email
	CodeAmbiguousUser       Code = "ambiguous_user"       // more than one user for the email
	CodeAlreadyRevoked      Code = "already_revoked"      // the grant already ended: a late escalate
	CodeTargetNotAllowed    Code = "target_not_allowed"   // an Identity Center target outside IAMJIT_SSO_* allow-lists
)

// Dead-letter codes iamjit sets itself (the message attribute
// iamjit_error_code); a message given up after its retries carries AWS's
// error code, or CodeGaveUp.
const (
	CodeInvalidBody     Code = "invalid_body"     // not a Sym event at all
	CodeGaveUp          Code = "gave_up"          // retries exhausted without an AWS error code
	CodeBodyTooLarge    Code = "body_too_large"   // over MaxBodyBytes
	CodeInvalidUTF8     Code = "invalid_utf8"     // the body is not UTF-8
	CodeInvalidJSON     Code = "invalid_json"     // the body is not JSON
	CodeInvalidEnvelope Code = "invalid_envelope" // an EventBridge envelope that does not decode
	CodeInvalidEntry    Code = "invalid_entry"    // a detail that is not a SymLogEntry
	CodeMissingID       Code = "missing_id"       // a SymLogEntry without an id
	CodeInvalidID       Code = "invalid_id"       // an id too long or with control characters
	CodeDuplicateKey    Code = "duplicate_key"    // a JSON object with a key twice
	CodeTooDeep         Code = "too_deep"         // JSON nested deeper than the decoder allows
)

// Outcome is what became of one message: the label of
// iamjit_messages_total{outcome} and what the grants commands report.
type Outcome string

const (
	OutcomeApplied   Outcome = "applied"   // the request changed a grant
	OutcomeRejected  Outcome = "rejected"  // refused: Access Request Rejected
	OutcomeDuplicate Outcome = "duplicate" // seen before: the same result again
	OutcomeIgnored   Outcome = "ignored"   // not an escalate or deescalate
	OutcomeFailed    Outcome = "failed"    // given up: Access Grant Failed, then the DLQ
	OutcomePoison    Outcome = "poison"    // no Sym id to answer: straight to the DLQ
	OutcomeRetry     Outcome = "retry"     // a failure that is tried again later
	OutcomeError     Outcome = "error"     // a failure the consumer decides on (retry or give up)
)
