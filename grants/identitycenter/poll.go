package identitycenter

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/iamjit/iamjit/internal/awsx"
)

// status is an asynchronous request's state as one Describe call saw it.
type status struct {
	value  types.StatusValues
	reason string // FailureReason, when FAILED
}

// FailedError is an asynchronous Identity Center request that AWS reports
// FAILED. It is not retryable by itself: the reason is AWS's free text, and
// iamjit does not guess from it.
type FailedError struct {
	Op        string // "create account assignment", ...
	RequestID string
	Reason    string // AWS's FailureReason
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("%s: request %s failed: %s", e.Op, e.RequestID, e.Reason)
}

// await polls describe until the request is no longer IN_PROGRESS, waiting
// between calls from c.backoff.Initial doubling to c.backoff.Max. first is
// the status the starting call returned: a request already done (moto
// answers SUCCEEDED at once) costs no Describe. A retryable error from
// describe is waited out like IN_PROGRESS; a request still running after
// c.backoff.Total is a retryable error, for the caller's retry reads first.
func (c *Client) await(ctx context.Context, op, requestID string, first status, describe func(context.Context) (status, error)) error {
	start := c.now()
	wait := c.backoff.Initial
	st, err := first, error(nil)
	for {
		switch {
		case err != nil && !awsx.Retryable(err):
			return fmt.Errorf("%s: status of request %s: %w", op, requestID, err)
		case err == nil && st.value == types.StatusValuesSucceeded:
			return nil
		case err == nil && st.value == types.StatusValuesFailed:
			return &FailedError{Op: op, RequestID: requestID, Reason: st.reason}
		}
		if c.now().Sub(start)+wait > c.backoff.Total {
			if err == nil {
				err = fmt.Errorf("status %s", st.value)
			}
			return &awsx.Transient{Err: fmt.Errorf("%s: request %s not done after %s: %w", op, requestID, c.now().Sub(start), err)}
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%s: waiting for request %s: %w", op, requestID, serr)
		}
		wait = min(wait*2, c.backoff.Max)
		st, err = describe(ctx)
	}
}

// statusOf reads an AccountAssignmentOperationStatus.
func statusOf(s *types.AccountAssignmentOperationStatus) status {
	if s == nil {
		return status{}
	}
	return status{value: s.Status, reason: aws.ToString(s.FailureReason)}
}
