package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iamjit/iamjit/internal/motoserver"
)

// results is tools/bench/results.json. The headline keys the issue names come
// first; raw-regime values unless the key says latency.
type results struct {
	CallsPerEscalate              float64  `json:"calls_per_escalate"`
	NaiveCallsPerEscalate         float64  `json:"naive_calls_per_escalate"`
	IdealCallsPerEscalate         float64  `json:"ideal_calls_per_escalate"`
	ThroughputRatioVsIdeal        float64  `json:"throughput_ratio_vs_ideal"`
	ThroughputRatioVsIdealLatency float64  `json:"throughput_ratio_vs_ideal_latency"`
	ThroughputRatioVsNaive        float64  `json:"throughput_ratio_vs_naive"`
	ThroughputRatioVsNaiveLatency float64  `json:"throughput_ratio_vs_naive_latency"`
	CPUMsPerEvent                 float64  `json:"cpu_ms_per_event"`
	SweepReadsPerDue              float64  `json:"sweep_reads_per_due"`
	PeakRSSMB                     float64  `json:"peak_rss_mb"`
	StartupMs                     float64  `json:"startup_ms"`
	P50Ms                         float64  `json:"p50_ms"`
	P99Ms                         float64  `json:"p99_ms"`
	P50MsLatency                  float64  `json:"p50_ms_latency"`
	P99MsLatency                  float64  `json:"p99_ms_latency"`
	ReplayMsgsPerS                *float64 `json:"replay_msgs_per_s"` // null: not measured (see replay.reason)
	ExpiryP50LateMs               float64  `json:"expiry_p50_late_ms"`
	ExpiryP99LateMs               float64  `json:"expiry_p99_late_ms"`
	ExpiryRemovesPerGrant         float64  `json:"expiry_removes_per_grant"`
	ExpirySSOP50LateMs            float64  `json:"expiry_sso_p50_late_ms,omitempty"`
	ExpirySSOP99LateMs            float64  `json:"expiry_sso_p99_late_ms,omitempty"`
	ExpirySSORemovesPerGrant      float64  `json:"expiry_sso_removes_per_grant,omitempty"`

	EscalatesPerDrain   int     `json:"escalates_per_drain"`
	SweepTableItems     int     `json:"sweep_table_items"`
	ReplayMessages      int     `json:"replay_messages"`
	CPUMsPerEventIdeal  float64 `json:"cpu_ms_per_event_ideal"` // raw regime, measured as iamjit's is (child.go)
	CPURatioVsIdeal     float64 `json:"cpu_ratio_vs_ideal"`
	IdleP50Ms           float64 `json:"idle_p50_ms"`
	IdleP99Ms           float64 `json:"idle_p99_ms"`
	IdleP50MsIdeal      float64 `json:"idle_p50_ms_ideal"`
	IdleP99MsIdeal      float64 `json:"idle_p99_ms_ideal"`
	IdleP50RatioVsIdeal float64 `json:"idle_p50_ratio_vs_ideal"`
	TxnCostRatio        float64 `json:"txn_cost_ratio_20000_vs_100"` // BenchmarkTransactionCostByTableSize
	MotoVersion         string  `json:"moto_version"`

	EventsPerS     map[string]float64 `json:"events_per_s"` // "pipeline/regime"
	StartupSamples []float64          `json:"startup_samples_ms"`
	Drains         []*drain           `json:"drains"`
	Sweep          *sweepResult       `json:"sweep"`
	Replay         *replayResult      `json:"replay"`
	Expiry         *expiryResult      `json:"expiry"`
	ExpirySSO      *expiryResult      `json:"expiry_sso,omitempty"` // the same for Identity Center assignments
	Idle           []*idleResult      `json:"idle"`
	TxnCost        *txnCost           `json:"txn_cost"`
	Targets        []target           `json:"targets"`
	Date           string             `json:"date"`
	Machine        machine            `json:"machine"`
	LatencyMs      float64            `json:"added_latency_ms"`
	WallSeconds    float64            `json:"wall_seconds"`
}

type machine struct {
	NProc     int    `json:"nproc"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	CPU       string `json:"cpu"`
}

type target struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Limit  string  `json:"limit"`
	Pass   bool    `json:"pass"`
	Result string  `json:"result"` // PASS, MISS or NOT MEASURED
}

func newResults() *results {
	return &results{EventsPerS: map[string]float64{}}
}

func (r *results) add(d *drain) {
	if d != nil {
		r.Drains = append(r.Drains, d)
	}
}

func (r *results) drain(pipeline, regime string) *drain {
	for _, d := range r.Drains {
		if d.Pipeline == pipeline && d.Regime == regime {
			return d
		}
	}
	return nil
}

func ratio(a, b *drain) float64 {
	if a == nil || b == nil || b.EventsPerS == 0 {
		return 0
	}
	return a.EventsPerS / b.EventsPerS
}

func (r *results) idle(pipeline string) *idleResult {
	for _, i := range r.Idle {
		if i.Pipeline == pipeline {
			return i
		}
	}
	return nil
}

func (r *results) finish(latency time.Duration, events int, wall time.Duration) {
	r.Date = time.Now().UTC().Format(time.RFC3339)
	r.MotoVersion = motoserver.MotoVersion
	r.EscalatesPerDrain = events
	r.Machine = machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPU: cpuModel()}
	r.LatencyMs = float64(latency.Microseconds()) / 1000
	r.WallSeconds = wall.Seconds()
	for _, d := range r.Drains {
		r.EventsPerS[d.Pipeline+"/"+d.Regime] = d.EventsPerS
	}
	itRaw, itLat := r.drain("iamjit", "raw"), r.drain("iamjit", "latency")
	if itRaw != nil {
		r.CallsPerEscalate, r.CPUMsPerEvent, r.P50Ms, r.P99Ms = itRaw.CallsPerEvent, itRaw.CPUMsPerEvent, itRaw.P50Ms, itRaw.P99Ms
		r.PeakRSSMB = itRaw.PeakRSSMB
	}
	if itLat != nil {
		r.P50MsLatency, r.P99MsLatency = itLat.P50Ms, itLat.P99Ms
		r.PeakRSSMB = max(r.PeakRSSMB, itLat.PeakRSSMB)
		if itRaw == nil {
			r.CallsPerEscalate = itLat.CallsPerEvent
		}
	}
	if d := r.drain("naive", "raw"); d != nil {
		r.NaiveCallsPerEscalate = d.CallsPerEvent
	}
	if d := r.drain("ideal", "raw"); d != nil {
		r.IdealCallsPerEscalate = d.CallsPerEvent
	}
	r.ThroughputRatioVsIdeal = ratio(itRaw, r.drain("ideal", "raw"))
	r.ThroughputRatioVsIdealLatency = ratio(itLat, r.drain("ideal", "latency"))
	r.ThroughputRatioVsNaive = ratio(itRaw, r.drain("naive", "raw"))
	r.ThroughputRatioVsNaiveLatency = ratio(itLat, r.drain("naive", "latency"))
	if d := r.drain("ideal", "raw"); d != nil && itRaw != nil && d.CPUMsPerEvent > 0 {
		r.CPUMsPerEventIdeal = d.CPUMsPerEvent
		r.CPURatioVsIdeal = itRaw.CPUMsPerEvent / d.CPUMsPerEvent
	}
	itIdle, idIdle := r.idle("iamjit"), r.idle("ideal")
	if itIdle != nil {
		r.IdleP50Ms, r.IdleP99Ms = itIdle.P50Ms, itIdle.P99Ms
	}
	if idIdle != nil {
		r.IdleP50MsIdeal, r.IdleP99MsIdeal = idIdle.P50Ms, idIdle.P99Ms
	}
	if itIdle != nil && idIdle != nil && idIdle.P50Ms > 0 {
		r.IdleP50RatioVsIdeal = itIdle.P50Ms / idIdle.P50Ms
	}
	if r.TxnCost != nil && r.TxnCost.Measured {
		r.TxnCostRatio = r.TxnCost.Ratio
	}
	if r.Sweep != nil {
		r.SweepReadsPerDue = r.Sweep.ReadsPerDue
		r.SweepTableItems = r.Sweep.Items
	}
	if r.Replay != nil {
		r.ReplayMessages = r.Replay.Messages
	}
	if r.Replay != nil && r.Replay.Measured {
		v := r.Replay.MsgsPerS
		r.ReplayMsgsPerS = &v
	}
	if x := r.Expiry; x != nil {
		r.ExpiryP50LateMs, r.ExpiryP99LateMs, r.ExpiryRemovesPerGrant = x.P50LateMs, x.P99LateMs, x.RemovesPerGrnt
	}
	if x := r.ExpirySSO; x != nil {
		r.ExpirySSOP50LateMs, r.ExpirySSOP99LateMs, r.ExpirySSORemovesPerGrant = x.P50LateMs, x.P99LateMs, x.RemovesPerGrnt
	}

	le := func(name string, v, limit float64, measured bool, unit string) {
		t := target{Name: name, Value: v, Limit: fmt.Sprintf("≤ %g%s", limit, unit), Pass: measured && v <= limit}
		r.Targets = append(r.Targets, t.verdict(measured))
	}
	lt := func(name string, v, limit float64, measured bool, unit string) {
		t := target{Name: name, Value: v, Limit: fmt.Sprintf("< %g%s", limit, unit), Pass: measured && v < limit}
		r.Targets = append(r.Targets, t.verdict(measured))
	}
	ge := func(name string, v, limit float64, measured bool) {
		t := target{Name: name, Value: v, Limit: fmt.Sprintf("≥ %g×", limit), Pass: measured && v >= limit}
		r.Targets = append(r.Targets, t.verdict(measured))
	}
	le("AWS calls per escalate", r.CallsPerEscalate, maxCallsPerEscalate, itRaw != nil || itLat != nil, "")
	ge("throughput vs ideal, raw moto", r.ThroughputRatioVsIdeal, 0.6, r.ThroughputRatioVsIdeal > 0)
	ge("throughput vs ideal, +latency", r.ThroughputRatioVsIdealLatency, 0.6, r.ThroughputRatioVsIdealLatency > 0)
	ge("throughput vs naive, +latency", r.ThroughputRatioVsNaiveLatency, 4, r.ThroughputRatioVsNaiveLatency > 0)
	le("CPU per event vs ideal, raw moto", r.CPURatioVsIdeal, maxCPURatioVsIdeal, r.CPURatioVsIdeal > 0, "×")
	le("peak RSS", r.PeakRSSMB, 64, r.PeakRSSMB > 0, " MB")
	le("sweep reads per due grant", r.SweepReadsPerDue, 2, r.Sweep != nil, "×")
	le("start-up to first receive", r.StartupMs, 200, r.StartupMs > 0, " ms")
	le("idle p50 latency vs ideal, +latency", r.IdleP50RatioVsIdeal, 2, r.IdleP50RatioVsIdeal > 0, "×")
	le("expiry: removal seen in IAM after expires_at, p99", r.ExpiryP99LateMs, maxExpiryP99LateMs, r.Expiry != nil, " ms")
	le("expiry: RemoveUserFromGroup per expired grant, 3 replicas", r.ExpiryRemovesPerGrant, 1.5, r.Expiry != nil, "")
	le("expiry (Identity Center): assignment deleted after expires_at, p99", r.ExpirySSOP99LateMs, maxExpiryP99LateMs, r.ExpirySSO != nil, " ms")
	le("expiry (Identity Center): DeleteAccountAssignment per expired grant, 3 replicas", r.ExpirySSORemovesPerGrant, 1.5, r.ExpirySSO != nil, "")
	lt("3-item transaction at 20,000 items vs 100", r.TxnCostRatio, 2, r.TxnCostRatio > 0, "×")
}

// The bars issue 23 set: the backstop's schedule is one more call per
// escalate (the ideal pipeline makes it too); CPU per event and the expiry
// tail were raised. Identity Center's expiry is held to the same bar as
// IAM's: the same timers end both.
const (
	maxCallsPerEscalate = 5
	maxCPURatioVsIdeal  = 1.3
	maxExpiryP99LateMs  = 250
)

func (t target) verdict(measured bool) target {
	switch {
	case !measured:
		t.Result = "NOT MEASURED"
	case t.Pass:
		t.Result = "PASS"
	default:
		t.Result = "MISS"
	}
	return t
}

func (r *results) print(w io.Writer, verbose bool) {
	fmt.Fprintf(w, "\niamjit bench — %s — %d CPUs (%s), %s, moto %s, added latency %g ms\n\n", r.Date, r.Machine.NProc, r.Machine.CPU, r.Machine.GoVersion, r.MotoVersion, r.LatencyMs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pipeline\tregime\tevents\tseconds\tevents/s\tcalls/event\tp50 ms\tp99 ms\tCPU ms/event\tpeak RSS MB\t")
	for _, d := range r.Drains {
		cpu, rss := "-", "-"
		if d.CPUMsPerEvent > 0 {
			cpu, rss = fmt.Sprintf("%.3f", d.CPUMsPerEvent), fmt.Sprintf("%.1f", d.PeakRSSMB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.1f\t%.2f\t%.0f\t%.0f\t%s\t%s\t\n",
			d.Pipeline, d.Regime, d.Events, d.Seconds, d.EventsPerS, d.CallsPerEvent, d.P50Ms, d.P99Ms, cpu, rss)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\ncalls per event by operation:")
	for _, d := range r.Drains {
		var parts []string
		for _, k := range d.Calls.keys() {
			parts = append(parts, fmt.Sprintf("%s %.3f", k, float64(d.Calls[k])/float64(d.Events)))
		}
		fmt.Fprintf(w, "  %s/%s: %s\n", d.Pipeline, d.Regime, strings.Join(parts, ", "))
		if verbose {
			parts = parts[:0]
			for _, k := range d.Calls.keys() {
				parts = append(parts, fmt.Sprintf("%s %.1f", k, d.MotoMsPerCall[k]))
			}
			fmt.Fprintf(w, "    moto ms per call: %s\n", strings.Join(parts, ", "))
			if len(d.Errors) > 0 {
				fmt.Fprintf(w, "    failed calls: %s\n", callsText(d.Errors))
			}
		}
	}
	if s := r.Sweep; s != nil {
		fmt.Fprintf(w, "\nsweep: %d grants (%d due): %d queries read %d items (returned %d) = %.2f per due grant; %d calls in the sweep (%s); %.2f s\n",
			s.Items, s.DueWritten, s.Queries, s.ScannedCount, s.Count, s.ReadsPerDue, s.CallsPerSweep, callsText(s.Calls), s.Seconds)
	}
	if rp := r.Replay; rp != nil {
		if rp.Measured {
			fmt.Fprintf(w, "replay: %d messages in %.2f s = %.0f msgs/s, %.2f calls/message (%s)\n", rp.Messages, rp.Seconds, rp.MsgsPerS, rp.CallsPerMsg, callsText(rp.Calls))
		} else {
			fmt.Fprintf(w, "replay: not measured: %s\n", rp.Reason)
		}
	}
	for _, i := range r.Idle {
		fmt.Fprintf(w, "idle %s: %d escalates one at a time (after %d unmeasured): SendMessage to in the group p50 %.0f ms, p90 %.0f, p99 %.0f, max %.0f; %.2f calls per escalate besides receives (%s)\n",
			i.Pipeline, i.Samples, i.Warmup, i.P50Ms, i.P90Ms, i.P99Ms, i.MaxMs, i.CallsPerEvent, callsText(i.Calls))
	}
	if x := r.Expiry; x != nil {
		fmt.Fprintf(w, "expiry: %d grants, expiries over %.0f s, %d replicas at default settings (granted in %.1f s): removal seen in IAM − expires_at p50 %.0f ms, p90 %.0f, p99 %.0f, max %.0f (%d over 1 s, earliest %.0f); %d RemoveUserFromGroup = %.2f per grant; %d stale adds repaired\n",
			x.Grants, x.SpreadSeconds, x.Replicas, x.GrantSeconds, x.P50LateMs, x.P90LateMs, x.P99LateMs, x.MaxLateMs, x.LateOver1s, x.EarlyMs, x.Removes, x.RemovesPerGrnt, x.StaleAdds)
	}
	if x := r.ExpirySSO; x != nil {
		fmt.Fprintf(w, "expiry, Identity Center: %d permission-set assignments, expiries over %.0f s, %d replicas at default settings (granted in %.1f s): assignment deleted − expires_at p50 %.0f ms, p90 %.0f, p99 %.0f, max %.0f (%d over 1 s, earliest %.0f); %d DeleteAccountAssignment = %.2f per grant; %d stale adds repaired\n",
			x.Grants, x.SpreadSeconds, x.Replicas, x.GrantSeconds, x.P50LateMs, x.P90LateMs, x.P99LateMs, x.MaxLateMs, x.LateOver1s, x.EarlyMs, x.Removes, x.RemovesPerGrnt, x.StaleAdds)
	}
	for _, x := range []*expiryResult{r.Expiry, r.ExpirySSO} {
		if x != nil && verbose {
			fmt.Fprintf(w, "  %s: %d ended by a sweep (the rest on timers); transaction retries %v; backstop schedules %v; calls %s\n",
				x.Target, x.SweeperRevoked, x.TxnRetries, x.Backstop, callsText(x.Calls))
		}
	}
	if t := r.TxnCost; t != nil {
		if t.Measured {
			fmt.Fprintf(w, "3-item transaction: %.0f µs at 100 items, %.0f µs at 20,000: ratio %.2f\n", t.MicrosAt100, t.MicrosAt20000, t.Ratio)
		} else {
			fmt.Fprintf(w, "3-item transaction cost: not measured: %s\n", t.Reason)
		}
	}
	if len(r.StartupSamples) > 0 {
		fmt.Fprintf(w, "start-up to first ReceiveMessage: median %.0f ms of %v\n", r.StartupMs, r.StartupSamples)
	}
	fmt.Fprintln(w, "\ntargets:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "  %s\t%.3g\t%s\t%s\n", t.Name, t.Value, t.Limit, t.Result)
	}
	_ = tw.Flush()
}

func callsText(c calls) string {
	var parts []string
	for _, k := range c.keys() {
		parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
	}
	return strings.Join(parts, ", ")
}

// mergeResults lays a partial run's results (-only) over the last full
// one's: what the partial run measured replaces, what it did not measure
// (zero, null, empty) is kept, targets are merged by name, and the full
// run's date, wall time and drain size stay.
func mergeResults(old, partial []byte) ([]byte, error) {
	var o, p map[string]any
	if err := json.Unmarshal(old, &o); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(partial, &p); err != nil {
		return nil, err
	}
	keep := map[string]bool{"date": true, "wall_seconds": true, "escalates_per_drain": true}
	for k, v := range p {
		if keep[k] && o[k] != nil {
			continue
		}
		if k == "targets" {
			o[k] = mergeTargets(o[k], v)
			continue
		}
		if k == "drains" || k == "idle" {
			o[k] = mergeByKey(o[k], v, "pipeline", "regime")
			continue
		}
		if m, ok := v.(map[string]any); ok && m["measured"] == false && o[k] != nil {
			continue // txn_cost, replay: not run this time
		}
		if !emptyJSON(v) || o[k] == nil {
			o[k] = v
		}
	}
	// Through the struct again, for its key order.
	body, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var r results
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	return json.MarshalIndent(&r, "", "  ")
}

func emptyJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// mergeByKey lays the partial run's entries (drains, idle runs) over the
// old ones with the same values of keys, in place, and appends the others:
// -only raw keeps the latency drains.
func mergeByKey(old, partial any, keys ...string) any {
	ol, _ := old.([]any)
	pl, _ := partial.([]any)
	id := func(e any) string {
		m, _ := e.(map[string]any)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprint(m[k]))
		}
		return strings.Join(parts, "/")
	}
	out := append([]any(nil), ol...)
	for _, e := range pl {
		found := false
		for i, u := range out {
			if id(u) == id(e) {
				out[i], found = e, true
			}
		}
		if !found {
			out = append(out, e)
		}
	}
	return out
}

// mergeTargets replaces the old targets the new run measured, in place,
// and appends new names.
func mergeTargets(old, partial any) any {
	ol, _ := old.([]any)
	pl, _ := partial.([]any)
	name := func(t any) string { m, _ := t.(map[string]any); s, _ := m["name"].(string); return s }
	measured := func(t any) bool { m, _ := t.(map[string]any); return m["result"] != "NOT MEASURED" }
	out := append([]any(nil), ol...)
	for _, t := range pl {
		found := false
		for i, u := range out {
			if name(u) == name(t) {
				found = true
				if measured(t) {
					out[i] = t
				}
			}
		}
		if !found {
			out = append(out, t)
		}
	}
	return out
}
