package awsx

import (
	"context"
	"sort"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts AWS calls (every attempt, retries included) and their
// errors by service and operation. It feeds /metrics and the benchmark.
type Counter struct {
	mu    sync.Mutex
	calls map[Op]int64
	errs  map[Op]int64
}

// Op names one AWS API operation.
type Op struct{ Service, Operation string }

// NewCounter returns an empty Counter.
func NewCounter() *Counter { return &Counter{calls: map[Op]int64{}, errs: map[Op]int64{}} }

// Register adds the counting middleware to a client's stack; pass it in
// aws.Config.APIOptions. It sits after the retry middleware, so every
// attempt that reaches the wire is counted.
func (c *Counter) Register(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("iamjitCallCounter",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := Op{awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)}
			out, md, err := next.HandleFinalize(ctx, in)
			c.mu.Lock()
			c.calls[op]++
			if err != nil {
				c.errs[op]++
			}
			c.mu.Unlock()
			return out, md, err
		}), middleware.After)
}

// Count is one row of a snapshot.
type Count struct {
	Op
	Calls, Errors int64
}

// Snapshot returns the counts so far, sorted by service and operation.
func (c *Counter) Snapshot() []Count {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Count, 0, len(c.calls))
	for op, n := range c.calls {
		out = append(out, Count{Op: op, Calls: n, Errors: c.errs[op]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Operation < out[j].Operation
	})
	return out
}
