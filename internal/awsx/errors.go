package awsx

import (
	"context"
	"errors"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// retryableCodes are AWS error codes that say "try again later", whichever
// service returns them. A code that means "a quota is reached" is not one:
// IAM's LimitExceeded (an account or entity limit, such as a role's inline
// policy size) and EventBridge's LimitExceededException (a resource quota)
// stay reached until someone changes something. The one service whose
// LimitExceededException is a rate is DynamoDB (too many control-plane
// operations at once), decided by its type in Retryable.
var retryableCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "ThrottledException": true,
	"RequestLimitExceeded": true, "TooManyRequestsException": true, "RequestThrottled": true,
	"RequestThrottledException": true, "SlowDown": true, "PriorRequestNotComplete": true,
	"ProvisionedThroughputExceededException": true, "TransactionConflictException": true,
	"TransactionInProgressException": true, "ConcurrentModification": true,
	"ServiceUnavailable": true, "ServiceUnavailableException": true, "InternalFailure": true,
	"InternalError": true, "InternalServerError": true, "InternalServerException": true,
	"ServiceFailure": true, "RequestTimeout": true, "RequestTimeoutException": true,
	"ExpiredToken": true, "ExpiredTokenException": true,
}

// Transient marks an error the caller knows to be temporary (for example
// IAM's eventual consistency right after a user is created).
type Transient struct{ Err error }

func (t *Transient) Error() string { return t.Err.Error() }
func (t *Transient) Unwrap() error { return t.Err }

// Retryable reports whether err is worth retrying later: throttling, a 5xx,
// a timeout or a connection failure. It decides on types and codes only.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var tr *Transient
	if errors.As(err, &tr) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		if retryableCodes[api.ErrorCode()] || api.ErrorFault() == smithy.FaultServer {
			return true
		}
	}
	var ddbLimit *ddbtypes.LimitExceededException
	if errors.As(err, &ddbLimit) {
		return true
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) && (resp.HTTPStatusCode() >= 500 || resp.HTTPStatusCode() == 429) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}

// Code is the AWS error code of err, or a short class when it has none.
func Code(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "Timeout"
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return "NetworkError"
	}
	return "InternalError"
}

// IsCode reports whether err carries the AWS error code.
func IsCode(err error, code string) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == code
}

// Denied reports whether err is AWS refusing the caller the action: the
// code AccessDenied (IAM, STS) or AccessDeniedException (JSON services),
// or a bare HTTP 403 whose body the SDK could not read a code from (moto's
// IAM access control answers so).
func Denied(err error) bool {
	if IsCode(err, "AccessDenied") || IsCode(err, "AccessDeniedException") {
		return true
	}
	var resp *awshttp.ResponseError
	return errors.As(err, &resp) && resp.HTTPStatusCode() == 403
}
