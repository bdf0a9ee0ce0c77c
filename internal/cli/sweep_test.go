package cli

import (
	"testing"
	"time"
)

// Sweeps after the first: a random phase within one interval, then one
// every interval, skipping those a long sweep overran.
func TestSweepSchedule(t *testing.T) {
	interval := 30 * time.Second
	seen := map[time.Duration]bool{}
	for range 200 {
		p := sweepPhase(interval)
		if p < 0 || p >= interval {
			t.Fatalf("phase %s outside [0, %s)", p, interval)
		}
		seen[p.Truncate(10*time.Second)] = true
	}
	if len(seen) < 2 {
		t.Errorf("200 phases all in one third of the interval: %v", seen)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := nextSweep(t0, t0.Add(time.Second), interval); !got.Equal(t0.Add(interval)) {
		t.Errorf("after a short sweep: next %s, want %s", got.Sub(t0), interval)
	}
	if got := nextSweep(t0, t0.Add(70*time.Second), interval); !got.Equal(t0.Add(90 * time.Second)) {
		t.Errorf("after a sweep of 70 s: next %s, want 1m30s (the phase kept, overrun ticks skipped)", got.Sub(t0))
	}
	if got := nextSweep(t0, t0.Add(interval), interval); !got.Equal(t0.Add(2 * interval)) {
		t.Errorf("at the next tick exactly: next %s, want 1m0s", got.Sub(t0))
	}
}
