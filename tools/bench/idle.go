package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// idleResult is one pipeline's latency when idle: one escalate at a time,
// each sent only when the one before it is finished and deleted.
type idleResult struct {
	Pipeline      string  `json:"pipeline"`
	Warmup        int     `json:"warmup"`  // escalates sent first and not measured
	Samples       int     `json:"samples"` // escalates measured
	P50Ms         float64 `json:"p50_ms"`
	P90Ms         float64 `json:"p90_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	Calls         calls   `json:"calls_by_op"` // the proxy's count over the measured escalates
	CallsPerEvent float64 `json:"calls_per_event_but_receives"`
}

// runIdle measures, for `iamjit run` or the ideal pipeline (each its own
// process), the time from SendMessage returning to moto answering the
// AddUserToGroup that puts the requester in the group, as the proxy sees
// it. Every call is delayed by delay. The first warm escalates (one per
// group: iamjit then has its group paths and the approver's tag index
// cached, as a long-running replica has) are not measured; the measured ones
// mostly name users not seen before, as rare requests at idle do, so
// iamjit's look-up of the requester is in the figure.
func (b *bench) runIdle(ctx context.Context, pipeline string, delay time.Duration, warm, n int) (*idleResult, error) {
	prefix := pipeline[:2] + "idl"
	e, err := b.fresh(ctx, prefix, delay)
	if err != nil {
		return nil, err
	}
	p, err := b.startPipeline(ctx, pipeline, e)
	if err != nil {
		return nil, err
	}
	defer func() { _, _ = p.stop() }()
	sq := sqs.NewFromConfig(b.direct)
	evs := e.escalates(warm+n, prefix)
	lat := make([]float64, 0, n)
	var before calls
	for i, ev := range evs {
		if i == warm {
			before = fromOps(b.proxy.snapshot())
		}
		added := b.proxy.expectAdd(ev.user, ev.group)
		if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &e.stack.QueueURL, MessageBody: &ev.body}); err != nil {
			return nil, fmt.Errorf("send escalate %d: %w", i, err)
		}
		sent := time.Now()
		select {
		case at := <-added:
			if i >= warm {
				lat = append(lat, max(0, float64(at.Sub(sent).Microseconds())/1000))
			}
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("%s: %s was not added to %s within 30s:\n%s", pipeline, ev.user, ev.group, p.out.String())
		case <-p.done:
			return nil, fmt.Errorf("%s exited:\n%s", pipeline, p.out.String())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// Idle again: the result published, the message deleted and the
		// pipeline back in its long poll.
		if err := b.waitDeleted(ctx, p, int64(i+1), 30*time.Second); err != nil {
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := &idleResult{Pipeline: pipeline, Warmup: warm, Samples: n, Calls: fromOps(b.proxy.snapshot()).minus(before)}
	// The last long poll may be counted or not, by timing: leave receives
	// out of calls per event rather than count a poll of no message.
	r.CallsPerEvent = float64(r.Calls.total()-r.Calls["SQS.ReceiveMessage"]) / float64(n)
	sort.Float64s(lat)
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99), lat[len(lat)-1]
	return r, nil
}
