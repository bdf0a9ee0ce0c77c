// Package eventbridge publishes result events to an EventBridge bus.
package eventbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/iamjit/iamjit/events"
)

// maxEntries is PutEvents' limit per call.
const maxEntries = 10

// API is the part of the EventBridge client the publisher uses.
type API interface {
	PutEvents(context.Context, *eventbridge.PutEventsInput, ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Publisher puts results on a bus in batches of ten and retries only the
// entries that failed.
type Publisher struct {
	api      API
	bus      string
	source   string
	attempts int
	backoff  time.Duration
}

// New returns a Publisher for bus (a name or an ARN) with the given source.
func New(api API, bus, source string) *Publisher {
	return &Publisher{api: api, bus: bus, source: source, attempts: 5, backoff: 100 * time.Millisecond}
}

// Publish makes every result durable on the bus or returns an error naming
// how many could not be. Each entry's Time is the publish time; the
// result_id inside the detail is what downstream dedupes on.
func (p *Publisher) Publish(ctx context.Context, results []events.Result) error {
	var errs []error
	for start := 0; start < len(results); start += maxEntries {
		end := min(start+maxEntries, len(results))
		if err := p.publishBatch(ctx, results[start:end]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Publisher) publishBatch(ctx context.Context, results []events.Result) error {
	pending := make([]types.PutEventsRequestEntry, 0, len(results))
	for _, r := range results {
		detail, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("marshal result %s: %w", r.ResultID, err)
		}
		pending = append(pending, types.PutEventsRequestEntry{
			EventBusName: aws.String(p.bus), Source: aws.String(p.source),
			DetailType: aws.String(r.DetailType), Detail: aws.String(string(detail)),
		})
	}
	var lastErr error
	for attempt := range p.attempts {
		if attempt > 0 {
			d := p.backoff << (attempt - 1)
			d += time.Duration(rand.Int64N(int64(d)))
			select {
			case <-ctx.Done():
				return fmt.Errorf("publish %d results: %w", len(pending), ctx.Err())
			case <-time.After(d):
			}
		}
		out, err := p.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: pending})
		if err != nil {
			lastErr = err
			continue
		}
		var failed []types.PutEventsRequestEntry
		for i, e := range out.Entries {
			if e.ErrorCode != nil && i < len(pending) {
				failed = append(failed, pending[i])
				lastErr = fmt.Errorf("entry failed: %s: %s", aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage))
			}
		}
		if len(failed) == 0 {
			return nil
		}
		pending = failed
	}
	return fmt.Errorf("publish %d results to %s after %d attempts: %w", len(pending), p.bus, p.attempts, lastErr)
}
