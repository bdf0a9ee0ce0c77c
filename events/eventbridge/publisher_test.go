package eventbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/iamjit/iamjit/events"
)

// fakeBus fails the entries whose result id is in failOnce, the first time.
type fakeBus struct {
	calls    [][]types.PutEventsRequestEntry
	failOnce map[string]bool
	down     bool
}

func (f *fakeBus) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	if len(in.Entries) > 10 {
		return nil, errors.New("ValidationException: more than 10 entries")
	}
	f.calls = append(f.calls, in.Entries)
	if f.down {
		return nil, errors.New("service unavailable")
	}
	out := &eventbridge.PutEventsOutput{}
	for _, e := range in.Entries {
		var r events.Result
		if err := json.Unmarshal([]byte(aws.ToString(e.Detail)), &r); err != nil {
			return nil, err
		}
		if f.failOnce[r.ResultID] {
			delete(f.failOnce, r.ResultID)
			out.FailedEntryCount++
			out.Entries = append(out.Entries, types.PutEventsResultEntry{ErrorCode: aws.String("ThrottlingException"), ErrorMessage: aws.String("slow down")})
			continue
		}
		out.Entries = append(out.Entries, types.PutEventsResultEntry{EventId: aws.String("ev-" + r.ResultID)})
	}
	return out, nil
}

func results(n int) []events.Result {
	out := make([]events.Result, n)
	for i := range out {
		out[i] = events.Result{DetailType: events.AccessGranted, ResultID: fmt.Sprint("r", i)}
	}
	return out
}

func TestPublishBatchesOfTenAndRetriesOnlyFailedEntries(t *testing.T) {
	bus := &fakeBus{failOnce: map[string]bool{"r3": true, "r12": true}}
	p := New(bus, "results", "iamjit")
	p.backoff = time.Millisecond
	if err := p.Publish(context.Background(), results(23)); err != nil {
		t.Fatal(err)
	}
	// 3 batches (10, 10, 3) plus one retry per batch with a failure.
	if len(bus.calls) != 5 {
		t.Fatalf("%d PutEvents calls, want 5", len(bus.calls))
	}
	for _, call := range bus.calls {
		if len(call) == 1 {
			var r events.Result
			_ = json.Unmarshal([]byte(aws.ToString(call[0].Detail)), &r)
			if r.ResultID != "r3" && r.ResultID != "r12" {
				t.Fatalf("a retry resent %s, which had not failed", r.ResultID)
			}
		}
	}
	e := bus.calls[0][0]
	if aws.ToString(e.Source) != "iamjit" || aws.ToString(e.DetailType) != events.AccessGranted || aws.ToString(e.EventBusName) != "results" {
		t.Fatalf("entry = %+v", e)
	}
}

func TestPublishGivesUpWithAnError(t *testing.T) {
	bus := &fakeBus{down: true}
	p := New(bus, "results", "iamjit")
	p.backoff = time.Millisecond
	if err := p.Publish(context.Background(), results(2)); err == nil {
		t.Fatal("Publish reported success while the bus was down")
	}
	if len(bus.calls) != p.attempts {
		t.Fatalf("%d attempts, want %d", len(bus.calls), p.attempts)
	}
}
