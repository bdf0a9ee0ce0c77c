package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/iamjit/iamjit/grants/dynamo"
)

// drain is one pipeline draining one batch of escalates.
type drain struct {
	Pipeline      string             `json:"pipeline"`
	Regime        string             `json:"regime"` // raw or latency
	Events        int                `json:"events"`
	Seconds       float64            `json:"seconds"`
	EventsPerS    float64            `json:"events_per_s"`
	Calls         calls              `json:"calls_by_op"`
	CallsPerEvent float64            `json:"calls_per_event"`
	ProxyCalls    calls              `json:"proxy_calls_by_op"`
	MotoMsPerCall map[string]float64 `json:"moto_ms_per_call_by_op"` // mean, as the proxy saw it (long polls included)
	P50Ms         float64            `json:"p50_ms"`
	P99Ms         float64            `json:"p99_ms"`
	CPUMsPerEvent float64            `json:"cpu_ms_per_event,omitempty"`
	CPUTotalS     float64            `json:"cpu_total_s,omitempty"`
	PeakRSSMB     float64            `json:"peak_rss_mb,omitempty"`
	Outcomes      map[string]int64   `json:"outcomes,omitempty"`
	Errors        calls              `json:"errors_by_op,omitempty"` // calls that failed (iamjit\'s /metrics)
}

func regimeName(delay time.Duration) string {
	if delay > 0 {
		return "latency"
	}
	return "raw"
}

// runProcess drains n escalates with one child process: `iamjit run`, or
// the ideal pipeline (child.go). The window is from the first send (the
// process is already polling) to the moment the proxy has seen n messages
// deleted (each after its grant is written and its result published).
// iamjit's calls are read from its /metrics, the ideal pipeline's from the
// proxy's count over the same window; the two agree for iamjit.
func (b *bench) runProcess(ctx context.Context, pipeline string, delay time.Duration, n int) (*drain, error) {
	prefix := pipeline[:2] + regimeName(delay)[:3]
	e, err := b.fresh(ctx, prefix, delay)
	if err != nil {
		return nil, err
	}
	p, err := b.startPipeline(ctx, pipeline, e)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_, _ = p.stop()
		}
	}()
	var before metricsSnap
	if p.addr != "" {
		if before, err = p.scrape(ctx); err != nil {
			return nil, err
		}
	}
	proxyBefore := fromOps(b.proxy.snapshot())
	conns0 := b.proxy.conns.Load()
	cpu0, err := p.cpu()
	if err != nil {
		return nil, err
	}
	evs := e.escalates(n, prefix)
	t0 := time.Now()
	if err := enqueue(ctx, sqs.NewFromConfig(b.direct), e.stack.QueueURL, evs, nil); err != nil {
		return nil, err
	}
	// Done is watched through the proxy (messages deleted), which costs the
	// process nothing; scraping /metrics in a tight loop would add its own
	// CPU to the per-event figure. /metrics is read once at the end.
	if err := b.waitDeleted(ctx, p, int64(n), 5*time.Minute); err != nil {
		return nil, err
	}
	elapsed := time.Since(t0)
	cpu1, err := p.cpu()
	if err != nil {
		return nil, err
	}
	proxyAfter := fromOps(b.proxy.snapshot())
	fmt.Fprintf(os.Stderr, "bench: %s opened %d connections to the proxy over the drain\n", pipeline, b.proxy.conns.Load()-conns0)
	d := &drain{
		Pipeline: pipeline, Regime: regimeName(delay), Events: n, Seconds: elapsed.Seconds(),
		EventsPerS: float64(n) / elapsed.Seconds(), ProxyCalls: proxyAfter.minus(proxyBefore), MotoMsPerCall: b.proxy.busyMs(),
		CPUMsPerEvent: float64((cpu1 - cpu0).Microseconds()) / 1000 / float64(n),
	}
	d.Calls = d.ProxyCalls
	if p.addr != "" {
		after, err := p.scrape(ctx)
		if err != nil {
			return nil, err
		}
		if got := after.outcomes["applied"] - before.outcomes["applied"]; got != int64(n) {
			return nil, fmt.Errorf("iamjit applied %d of %d (outcomes %v):\n%s\nmoto: %s", got, n, after.outcomes, p.out.String(), lastTraceback(b.moto.Output()))
		}
		d.Calls, d.Outcomes, d.Errors = after.calls.minus(before.calls), after.outcomes, after.errors.minus(before.errors)
	}
	stopped = true
	ru, err := p.stop()
	if err != nil {
		return nil, err
	}
	d.CPUTotalS = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	d.PeakRSSMB = float64(ru.Maxrss) / 1024
	d.CallsPerEvent = float64(d.Calls.total()) / float64(n)
	if err := latencies(ctx, b.direct, e.stack.Table, evs, d); err != nil {
		return nil, err
	}
	return d, nil
}

// waitDeleted waits until the proxy has seen n messages deleted.
func (b *bench) waitDeleted(ctx context.Context, p *proc, n int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for b.proxy.deleted.Load() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s deleted %d of %d in %s:\n%s\nmoto: %s", p.cmd.Path, b.proxy.deleted.Load(), n, limit, p.out.String(), lastTraceback(b.moto.Output()))
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while draining:\n%s", p.cmd.Path, p.out.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// latencies reads granted_at of every grant and sets p50/p99 of granted_at
// minus the time its message was accepted by SQS.
func latencies(ctx context.Context, cfg aws.Config, table string, evs []*escalate, d *drain) error {
	granted, err := grantTimes(ctx, cfg, table, "granted_at")
	if err != nil {
		return err
	}
	var lat []float64
	for _, ev := range evs {
		if g, ok := granted[ev.grantID]; ok {
			lat = append(lat, max(0, float64(g.Sub(ev.sent).Microseconds())/1000))
		}
	}
	if len(lat) != len(evs) {
		return fmt.Errorf("%s: found %d of %d grants with granted_at", d.Pipeline, len(lat), len(evs))
	}
	sort.Float64s(lat)
	d.P50Ms, d.P99Ms = percentile(lat, 50), percentile(lat, 99)
	return nil
}

// grantTimes reads attr, a time in the store's format, of every grant that
// has it, by grant id.
func grantTimes(ctx context.Context, cfg aws.Config, table, attr string) (map[string]time.Time, error) {
	p := dynamodb.NewScanPaginator(dynamodb.NewFromConfig(cfg), &dynamodb.ScanInput{
		TableName:                 &table,
		FilterExpression:          aws.String("kind = :g"),
		ProjectionExpression:      aws.String("pk, " + attr),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":g": &ddbtypes.AttributeValueMemberS{Value: "grant"}},
	})
	out := map[string]time.Time{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, it := range page.Items {
			pk, _ := it["pk"].(*ddbtypes.AttributeValueMemberS)
			at, _ := it[attr].(*ddbtypes.AttributeValueMemberS)
			if pk == nil || at == nil {
				continue
			}
			t, err := time.Parse(timeFormat, at.Value)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", attr, at.Value, err)
			}
			out[strings.TrimPrefix(pk.Value, "grant#")] = t
		}
	}
	return out, nil
}

// percentile of sorted values by the nearest-rank method.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// timeFormat is the store's fixed-width time format.
const timeFormat = dynamo.TimeFormat

// lastTraceback is moto's last Python traceback, which explains a 500.
func lastTraceback(out string) string {
	i := strings.LastIndex(out, "Traceback (most recent call last)")
	if i < 0 {
		return "(no traceback)"
	}
	return out[i:min(len(out), i+6000)]
}
