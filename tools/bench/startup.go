package main

import (
	"context"
	"sort"
	"time"
)

// runStartup starts `iamjit run` five times on one stack (no added latency)
// and returns the median time from process start to the first
// ReceiveMessage the proxy sees, with every sample.
func (b *bench) runStartup(ctx context.Context) (float64, []float64, error) {
	e, err := b.fresh(ctx, "st", 0)
	if err != nil {
		return 0, nil, err
	}
	var samples []float64
	for range 5 {
		b.proxy.reset()
		p, err := b.startPipeline(ctx, "iamjit", e)
		if err != nil {
			return 0, nil, err
		}
		ms := float64(time.Unix(0, b.proxy.firstReceive.Load()).Sub(p.started).Microseconds()) / 1000
		samples = append(samples, ms)
		if _, err := p.stop(); err != nil {
			return 0, nil, err
		}
	}
	sorted := append([]float64(nil), samples...)
	sort.Float64s(sorted)
	return sorted[len(sorted)/2], samples, nil
}
