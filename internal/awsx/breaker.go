package awsx

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/smithy-go/middleware"
	"github.com/sony/gobreaker/v2"
)

// BreakerSettings shape an account's circuit breaker.
type BreakerSettings struct {
	// Failures in a row (each a call that failed with a retryable error
	// after the SDK's own retries) that open the breaker.
	Failures uint32
	// Open is how long calls fail at once before one is let through to see
	// whether the account answers again.
	Open time.Duration
	// OnChange, when set, hears every change of state.
	OnChange func(account string, open bool)
}

// Breaker returns an API option that puts one circuit breaker
// (sony/gobreaker) in front of every call of the clients built with it: an
// account whose IAM or chain keeps failing slowly (throttled through the
// SDK's retries, unreachable, timing out) fails its calls at once, as
// retryable errors, instead of holding a worker through the retries and
// timeouts each time. A refusal (STS denying the chain after start,
// AccessDenied) already fails fast and is an answer, not an outage: it does
// not trip it. So one member account that fails delays only its own
// requests. Build one per account and share it by all of its clients.
func Breaker(account string, s BreakerSettings) func(*middleware.Stack) error {
	cb := gobreaker.NewCircuitBreaker[middleware.InitializeOutput](gobreaker.Settings{
		Name:        account,
		MaxRequests: 1,
		Timeout:     s.Open,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.Failures },
		// Only an account that does not answer trips it: a refusal that
		// will not change with time (NoSuchEntity, AccessDenied on one
		// group) is an answer.
		IsSuccessful: func(err error) bool { return !Retryable(err) },
		OnStateChange: func(name string, _, to gobreaker.State) {
			if s.OnChange != nil {
				s.OnChange(name, to == gobreaker.StateOpen)
			}
		},
	})
	mw := middleware.InitializeMiddlewareFunc("iamjitAccountBreaker", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		var md middleware.Metadata
		out, err := cb.Execute(func() (middleware.InitializeOutput, error) {
			var (
				o   middleware.InitializeOutput
				err error
			)
			o, md, err = next.HandleInitialize(ctx, in)
			return o, err
		})
		if err == gobreaker.ErrOpenState || err == gobreaker.ErrTooManyRequests {
			return out, md, &Transient{Err: fmt.Errorf("account %s is failing; its calls wait %s: %w", account, s.Open, err)}
		}
		return out, md, err
	})
	return func(st *middleware.Stack) error { return st.Initialize.Add(mw, middleware.Before) }
}
