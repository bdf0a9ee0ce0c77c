// Package metrics keeps iamjit's counters and writes them in the Prometheus
// text format. It is hand-written to stay small: a few counters, gauges and
// one histogram need no client library.
package metrics

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/iamjit/iamjit/awsx"
)

// latencyBuckets are upper bounds in seconds.
var latencyBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics implements consumer.Observer and serves /metrics.
type Metrics struct {
	Calls *awsx.Counter

	mu       sync.Mutex
	outcomes map[string]int64
	received int64
	inflight int64
	dlqMoves int64
	buckets  []int64
	sum      float64
	count    int64
	active   int64
	sweepLag float64
	sweeps   int64
	revoked  int64
	repaired int64
	// reconcile
	reconciles    int64
	reconcileErrs int64
	driftNow      int64
	drift         int64
	driftFixed    int64
	txRetries     map[string]int64 // in-process TransactWriteItems retries by reason
}

// New returns empty metrics reading AWS call counts from calls.
func New(calls *awsx.Counter) *Metrics {
	return &Metrics{Calls: calls, outcomes: map[string]int64{}, txRetries: map[string]int64{}, buckets: make([]int64, len(latencyBuckets))}
}

// Observed counts a finished message by outcome with its processing time.
func (m *Metrics) Observed(outcome string, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes[outcome]++
	s := took.Seconds()
	for i, b := range latencyBuckets {
		if s <= b {
			m.buckets[i]++
		}
	}
	m.sum += s
	m.count++
}

// InFlight moves the in-flight gauge.
func (m *Metrics) InFlight(d int) { m.mu.Lock(); m.inflight += int64(d); m.mu.Unlock() }

// DLQMoved counts a message iamjit moved to the DLQ.
func (m *Metrics) DLQMoved() { m.mu.Lock(); m.dlqMoves++; m.mu.Unlock() }

// Received counts a received message.
func (m *Metrics) Received() { m.mu.Lock(); m.received++; m.mu.Unlock() }

// Swept records one sweep.
func (m *Metrics) Swept(revoked, repaired int, lag time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweeps++
	m.revoked += int64(revoked)
	m.repaired += int64(repaired)
	m.sweepLag = lag.Seconds()
}

// SetActive sets the active-grants gauge.
func (m *Metrics) SetActive(n int) { m.mu.Lock(); m.active = int64(n); m.mu.Unlock() }

// Reconciled records one reconcile: the drift it found, how much of it it
// repaired, and whether it failed.
func (m *Metrics) Reconciled(found, repaired int, failed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reconciles++
	if failed {
		m.reconcileErrs++
	}
	m.driftNow = int64(found)
	m.drift += int64(found)
	m.driftFixed += int64(repaired)
}

// TransactionRetried counts one in-process retry of a DynamoDB transaction
// (grants/dynamo.NewRetryer's onRetry) by reason: "TransactionConflict",
// "ThrottlingError", "ProvisionedThroughputExceeded", or the error code.
func (m *Metrics) TransactionRetried(reason string) {
	m.mu.Lock()
	m.txRetries[reason]++
	m.mu.Unlock()
}

// Outcome returns the count of messages that ended with outcome.
func (m *Metrics) Outcome(outcome string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.outcomes[outcome]
}

// WriteTo writes every metric in the Prometheus text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	m.mu.Lock()
	head := func(name, typ, help string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ) }
	head("iamjit_messages_total", "counter", "Messages finished, by outcome.")
	keys := make([]string, 0, len(m.outcomes))
	for k := range m.outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "iamjit_messages_total{outcome=%q} %d\n", k, m.outcomes[k])
	}
	head("iamjit_messages_received_total", "counter", "Messages received from SQS.")
	fmt.Fprintf(&b, "iamjit_messages_received_total %d\n", m.received)
	head("iamjit_messages_in_flight", "gauge", "Messages being processed.")
	fmt.Fprintf(&b, "iamjit_messages_in_flight %d\n", m.inflight)
	head("iamjit_dlq_moves_total", "counter", "Messages iamjit moved to the dead-letter queue.")
	fmt.Fprintf(&b, "iamjit_dlq_moves_total %d\n", m.dlqMoves)
	head("iamjit_processing_seconds", "histogram", "Time from receive to delete.")
	for i, ub := range latencyBuckets {
		fmt.Fprintf(&b, "iamjit_processing_seconds_bucket{le=\"%g\"} %d\n", ub, m.buckets[i])
	}
	fmt.Fprintf(&b, "iamjit_processing_seconds_bucket{le=\"+Inf\"} %d\n", m.count)
	fmt.Fprintf(&b, "iamjit_processing_seconds_sum %g\niamjit_processing_seconds_count %d\n", m.sum, m.count)
	head("iamjit_active_grants", "gauge", "ACTIVE grants in the table, counted at the last sweep.")
	fmt.Fprintf(&b, "iamjit_active_grants %d\n", m.active)
	head("iamjit_sweeper_lag_seconds", "gauge", "How overdue the oldest due grant was at the last sweep.")
	fmt.Fprintf(&b, "iamjit_sweeper_lag_seconds %g\n", m.sweepLag)
	head("iamjit_sweeps_total", "counter", "Sweeps run.")
	fmt.Fprintf(&b, "iamjit_sweeps_total %d\n", m.sweeps)
	head("iamjit_sweeper_revoked_total", "counter", "Grants the sweeper expired.")
	fmt.Fprintf(&b, "iamjit_sweeper_revoked_total %d\n", m.revoked)
	head("iamjit_sweeper_repaired_total", "counter", "Dirty memberships the sweeper converged.")
	fmt.Fprintf(&b, "iamjit_sweeper_repaired_total %d\n", m.repaired)
	head("iamjit_reconcile_runs_total", "counter", "Reconcile runs.")
	fmt.Fprintf(&b, "iamjit_reconcile_runs_total %d\n", m.reconciles)
	head("iamjit_reconcile_errors_total", "counter", "Reconcile runs that could not read or repair everything.")
	fmt.Fprintf(&b, "iamjit_reconcile_errors_total %d\n", m.reconcileErrs)
	head("iamjit_drift", "gauge", "Differences between IAM and the grants found by the last reconcile.")
	fmt.Fprintf(&b, "iamjit_drift %d\n", m.driftNow)
	head("iamjit_drift_total", "counter", "Differences between IAM and the grants found, summed over reconcile runs.")
	fmt.Fprintf(&b, "iamjit_drift_total %d\n", m.drift)
	head("iamjit_drift_repaired_total", "counter", "Differences reconcile repaired (members removed or re-added).")
	fmt.Fprintf(&b, "iamjit_drift_repaired_total %d\n", m.driftFixed)
	head("iamjit_dynamodb_transaction_retries_total", "counter", "TransactWriteItems attempts retried in-process, by reason.")
	reasons := make([]string, 0, len(m.txRetries))
	for k := range m.txRetries {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(&b, "iamjit_dynamodb_transaction_retries_total{reason=%q} %d\n", k, m.txRetries[k])
	}
	m.mu.Unlock()
	if m.Calls != nil {
		head("iamjit_aws_calls_total", "counter", "AWS API calls (attempts), by service and operation.")
		snap := m.Calls.Snapshot()
		for _, c := range snap {
			fmt.Fprintf(&b, "iamjit_aws_calls_total{service=%q,operation=%q} %d\n", c.Service, c.Operation, c.Calls)
		}
		head("iamjit_aws_errors_total", "counter", "AWS API calls that failed, by service and operation.")
		for _, c := range snap {
			fmt.Fprintf(&b, "iamjit_aws_errors_total{service=%q,operation=%q} %d\n", c.Service, c.Operation, c.Errors)
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
