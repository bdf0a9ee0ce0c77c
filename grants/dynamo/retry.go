package dynamo

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// Retry bounds of the DynamoDB client. A conflicted transaction is retried
// after 25, 50, 100, 200, 400 ms (full jitter); a throttle waits up to 1 s
// each time. Both end well inside any visibility timeout.
const (
	RetryMaxAttempts = 6
	RetryMaxBackoff  = time.Second
	retryBaseDelay   = 25 * time.Millisecond // the SDK's own base for DynamoDB
)

// Cancellation reason codes DynamoDB puts in TransactionCanceledException.
const (
	reasonNone        = "None"
	reasonConflict    = "TransactionConflict"
	reasonThrottling  = "ThrottlingError"
	reasonProvisioned = "ProvisionedThroughputExceeded"
)

// TransientCancellation reports why a cancelled transaction is worth sending
// again at once: "TransactionConflict" when another request held one of its
// items, "ThrottlingError" or "ProvisionedThroughputExceeded" when DynamoDB
// had no capacity. It is "" for any other error, for a cancellation with no
// reason given, and whenever a reason is anything else — above all
// ConditionalCheckFailed, which is the store's protocol answering, not a
// failure.
func TransientCancellation(err error) string {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return ""
	}
	var conflict, throttle string
	for _, r := range tce.CancellationReasons {
		switch code := aws.ToString(r.Code); code {
		case reasonNone:
		case reasonConflict:
			conflict = code
		case reasonThrottling, reasonProvisioned:
			if throttle == "" {
				throttle = code
			}
		default:
			return ""
		}
	}
	if conflict != "" {
		return conflict
	}
	return throttle
}

// retryReason labels a failed attempt of TransactWriteItems for the retry
// counter: the cancellation reason, else the AWS error code, else
// "transport" (connection reset, timeout).
func retryReason(err error) string {
	if r := TransientCancellation(err); r != "" {
		return r
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return "transport"
}

// NewRetryer is the DynamoDB client's retryer: the SDK's standard one
// (jittered exponential backoff, retry quota) that also retries a
// transaction cancelled only by conflicts or throttling, so that such a
// message is not handed back to SQS for a visibility back-off of seconds.
// Conflicts draw nothing from the retry quota: they say another writer was
// busy on the same item, not that DynamoDB is failing, and under load they
// would otherwise drain the bucket and stop the retries of real failures.
// onRetry, when set, is told the reason of every retry of TransactWriteItems.
func NewRetryer(onRetry func(reason string)) aws.RetryerV2 {
	std := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = RetryMaxAttempts
		o.MaxBackoff = RetryMaxBackoff
		o.BaseDelay = retryBaseDelay
		// First, so that a ConditionalCheckFailed is a firm no whatever a
		// later check would say.
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(cancellationRetryable)}, o.Retryables...)
		o.Throttles = append(o.Throttles, retry.IsErrorThrottleFunc(cancellationThrottle))
	})
	return &retryer{RetryerV2: std, onRetry: onRetry}
}

// WithRetryer sets NewRetryer(onRetry) on a DynamoDB client:
// dynamodb.NewFromConfig(cfg, dynamo.WithRetryer(m.TransactionRetried)).
// AWS_MAX_ATTEMPTS, when set, still overrides the number of attempts.
func WithRetryer(onRetry func(reason string)) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) { o.Retryer = NewRetryer(onRetry) }
}

func cancellationRetryable(err error) aws.Ternary {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return aws.UnknownTernary
	}
	return aws.BoolTernary(TransientCancellation(err) != "")
}

func cancellationThrottle(err error) aws.Ternary {
	switch TransientCancellation(err) {
	case reasonThrottling, reasonProvisioned:
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}

type retryer struct {
	aws.RetryerV2
	onRetry func(string)
}

// GetRetryToken is asked only once the error is retryable and attempts
// remain; with a token granted, the attempt is made again.
func (r *retryer) GetRetryToken(ctx context.Context, err error) (func(error) error, error) {
	release := func(error) error { return nil }
	if TransientCancellation(err) != reasonConflict {
		var terr error
		if release, terr = r.RetryerV2.GetRetryToken(ctx, err); terr != nil {
			return nil, terr
		}
	}
	if r.onRetry != nil && awsmiddleware.GetOperationName(ctx) == "TransactWriteItems" {
		r.onRetry(retryReason(err))
	}
	return release, nil
}
