package metrics

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iamjit/iamjit/awsx"
)

// parse reads the Prometheus text format into series -> value and checks
// that every series has a HELP and a TYPE line before it.
func parse(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# TYPE ") {
			f := strings.Fields(line)
			if len(f) != 4 {
				t.Fatalf("bad TYPE line %q", line)
			}
			typed[f[2]] = f[3]
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("no value in %q", line)
		}
		series, val := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("value of %q: %v", line, err)
		}
		name := series
		if j := strings.IndexByte(series, '{'); j >= 0 {
			name = series[:j]
			if !strings.HasSuffix(series, "}") {
				t.Fatalf("unclosed labels in %q", line)
			}
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if typed[name] == "" && typed[base] != "histogram" {
			t.Fatalf("series %q has no TYPE line before it", series)
		}
		if _, dup := out[series]; dup {
			t.Fatalf("series %q written twice", series)
		}
		out[series] = v
	}
	return out
}

func TestWriteTo(t *testing.T) {
	// AWS call counts are checked against real SDK calls in the e2e test
	// of `iamjit run` (main package).
	m := New(awsx.NewCounter())
	for range 3 {
		m.Received()
		m.InFlight(1)
	}
	m.Observed("applied", 20*time.Millisecond)
	m.Observed("applied", 300*time.Millisecond)
	m.Observed("poison", 3*time.Second)
	m.InFlight(-3)
	m.InFlight(1)
	m.DLQMoved()
	m.Swept(2, 1, 1500*time.Millisecond)
	m.SetActive(7)
	m.Reconciled(2, 1, false)
	m.Reconciled(1, 0, true)

	var b strings.Builder
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	got := parse(t, b.String())
	want := map[string]float64{
		`iamjit_messages_total{outcome="applied"}`:     2,
		`iamjit_messages_total{outcome="poison"}`:      1,
		`iamjit_messages_received_total`:               3,
		`iamjit_messages_in_flight`:                    1,
		`iamjit_dlq_moves_total`:                       1,
		`iamjit_processing_seconds_bucket{le="0.01"}`:  0,
		`iamjit_processing_seconds_bucket{le="0.025"}`: 1,
		`iamjit_processing_seconds_bucket{le="0.25"}`:  1,
		`iamjit_processing_seconds_bucket{le="0.5"}`:   2,
		`iamjit_processing_seconds_bucket{le="2.5"}`:   2,
		`iamjit_processing_seconds_bucket{le="5"}`:     3,
		`iamjit_processing_seconds_bucket{le="+Inf"}`:  3,
		`iamjit_processing_seconds_count`:              3,
		`iamjit_active_grants`:                         7,
		`iamjit_sweeper_lag_seconds`:                   1.5,
		`iamjit_sweeps_total`:                          1,
		`iamjit_sweeper_revoked_total`:                 2,
		`iamjit_sweeper_repaired_total`:                1,
		`iamjit_reconcile_runs_total`:                  2,
		`iamjit_reconcile_errors_total`:                1,
		`iamjit_drift`:                                 1,
		`iamjit_drift_total`:                           3,
		`iamjit_drift_repaired_total`:                  1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if s := got["iamjit_processing_seconds_sum"]; s < 3.31 || s > 3.33 {
		t.Errorf("processing sum = %v, want 3.32", s)
	}
}

func TestTransactionRetries(t *testing.T) {
	m := New(nil)
	var b strings.Builder
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "iamjit_dynamodb_transaction_retries_total{") {
		t.Errorf("a retry series before any retry:\n%s", b.String())
	}
	m.TransactionRetried("TransactionConflict")
	m.TransactionRetried("TransactionConflict")
	m.TransactionRetried("ThrottlingError")
	b.Reset()
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	got := parse(t, b.String())
	for k, v := range map[string]float64{
		`iamjit_dynamodb_transaction_retries_total{reason="TransactionConflict"}`: 2,
		`iamjit_dynamodb_transaction_retries_total{reason="ThrottlingError"}`:     1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
