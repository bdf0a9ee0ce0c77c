// Package metrics keeps iamjit's counters, gauges and histogram in a
// Prometheus registry (client_golang) and serves them with the Go runtime
// and process collectors (go_*, process_*).
package metrics

import (
	"errors"
	"fmt"
	"github.com/iamjit/iamjit/events"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/iamjit/iamjit/internal/awsx"
)

// Metrics implements consumer.Observer and serves /metrics.
type Metrics struct {
	gatherer prometheus.Gatherer

	messages   *prometheus.CounterVec
	received   prometheus.Counter
	inflight   prometheus.Gauge
	dlqMoves   prometheus.Counter
	processing prometheus.Histogram
	active     prometheus.Gauge
	sweepLag   prometheus.Gauge
	sweeps     prometheus.Counter
	revoked    prometheus.Counter
	repaired   prometheus.Counter
	staleAdds  prometheus.Counter
	backstop   *prometheus.CounterVec
	unguarded  prometheus.Gauge
	txRetries  *prometheus.CounterVec
	// reconcile
	reconciles    prometheus.Counter
	reconcileErrs prometheus.Counter
	driftNow      prometheus.Gauge
	drift         prometheus.Counter
	driftFixed    prometheus.Counter
	// sessions
	sessionRevocations *prometheus.CounterVec
	sessionSkipped     prometheus.Counter
	sessionFailures    *prometheus.CounterVec
	sessionRepaired    prometheus.Counter
	sessionMissing     prometheus.Gauge
	// accounts
	accountFailing *prometheus.GaugeVec
}

// New registers iamjit's metrics, AWS call counts read from calls at each
// scrape (when calls is not nil), and the Go runtime and process collectors
// in reg. Pass a fresh prometheus.NewRegistry(); registering twice in one
// registry fails.
func New(reg *prometheus.Registry, calls *awsx.Counter) (*Metrics, error) {
	r := &registrar{reg: reg}
	m := &Metrics{
		gatherer: reg,
		messages: r.counterVec("iamjit_messages_total", "Messages finished, by outcome.", "outcome"),
		received: r.counter("iamjit_messages_received_total", "Messages received from SQS."),
		inflight: r.gauge("iamjit_messages_in_flight", "Messages being processed."),
		dlqMoves: r.counter("iamjit_dlq_moves_total", "Messages iamjit moved to the dead-letter queue."),
		processing: r.histogram("iamjit_processing_seconds", "Time from receive to delete.",
			[]float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
		active:   r.gauge("iamjit_active_grants", "ACTIVE grants in the table, counted at the last sweep."),
		sweepLag: r.gauge("iamjit_sweeper_lag_seconds", "How overdue the oldest due grant was at the last sweep."),
		sweeps:   r.counter("iamjit_sweeps_total", "Sweeps run."),
		revoked:  r.counter("iamjit_sweeper_revoked_total", "Grants the sweeper expired."),
		repaired: r.counter("iamjit_sweeper_repaired_total", "Dirty memberships the sweeper converged."),
		txRetries: r.counterVec("iamjit_dynamodb_transaction_retries_total",
			"TransactWriteItems attempts retried in-process, by reason (TransactionConflict, ThrottlingError, ProvisionedThroughputExceeded, or the error code).", "reason"),
		staleAdds:     r.counter("iamjit_stale_adds_repaired_total", "Late adds undone: IAM had the user in the group after the last removal, read back once IAM settled."),
		reconciles:    r.counter("iamjit_reconcile_runs_total", "Reconcile runs."),
		reconcileErrs: r.counter("iamjit_reconcile_errors_total", "Reconcile runs that could not read or repair everything."),
		driftNow:      r.gauge("iamjit_drift", "Differences between IAM and the grants found by the last reconcile."),
		drift:         r.counter("iamjit_drift_total", "Differences between IAM and the grants found, summed over reconcile runs."),
		driftFixed:    r.counter("iamjit_drift_repaired_total", "Differences reconcile repaired (members removed or re-added)."),
		sessionRevocations: r.counterVec("iamjit_session_revocations_total",
			"Roles whose older sessions were ended when a membership ended, by how (user: by source identity, role: every session of the role).", "mode"),
		sessionSkipped: r.counter("iamjit_session_roles_skipped_total", "Roles an ended membership could assume outside IAMJIT_ROLE_PATH: reported, never touched."),
		sessionFailures: r.counterVec("iamjit_session_revocation_failures_total",
			"Roles under IAMJIT_ROLE_PATH whose sessions could not be revoked, by reason (no_room: no statement fits beside the role's inline policies).", "reason"),
		sessionRepaired: r.counter("iamjit_session_roles_repaired_total", "Role items the sweeper rewrote (left dirty, or statements past MaxSessionDuration pruned)."),
		sessionMissing:  r.gauge("iamjit_session_statements_missing", "Revocations within MaxSessionDuration missing from the role's policy in IAM, at the last reconcile."),
		backstop: r.counterVec("iamjit_backstop_schedules_total",
			"Expiry backstop schedule writes, by op: created, moved, kept, deleted, or failed.", "op"),
		unguarded: r.gauge("iamjit_backstop_memberships_unguarded",
			"Active memberships that had no backstop schedule (or one too early) at the last backstop check; each was armed then."),
		accountFailing: r.gaugeVec("iamjit_account_failing",
			"1 while an account's IAM calls fail fast (its circuit breaker is open: throttled, unreachable or denied), by account.", "account_id"),
	}
	if calls != nil {
		r.register(newAWSCalls(calls))
	}
	r.register(collectors.NewGoCollector())
	r.register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if r.err != nil {
		return nil, fmt.Errorf("metrics: %w", r.err)
	}
	return m, nil
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// Observed counts a finished message by outcome with its processing time.
func (m *Metrics) Observed(outcome events.Outcome, took time.Duration) {
	m.messages.WithLabelValues(string(outcome)).Inc()
	m.processing.Observe(took.Seconds())
}

// InFlight moves the in-flight gauge.
func (m *Metrics) InFlight(d int) { m.inflight.Add(float64(d)) }

// DLQMoved counts a message iamjit moved to the DLQ.
func (m *Metrics) DLQMoved() { m.dlqMoves.Inc() }

// Received counts a received message.
func (m *Metrics) Received() { m.received.Inc() }

// Swept records one sweep.
func (m *Metrics) Swept(revoked, repaired int, lag time.Duration) {
	m.sweeps.Inc()
	add(m.revoked, revoked)
	add(m.repaired, repaired)
	m.sweepLag.Set(lag.Seconds())
}

// TransactionRetried counts one in-process retry of a DynamoDB transaction
// (grants/dynamo.WithRetryer's onRetry) by reason.
func (m *Metrics) TransactionRetried(reason string) { m.txRetries.WithLabelValues(reason).Inc() }

// StaleAddsRepaired counts late adds a read-back undid.
func (m *Metrics) StaleAddsRepaired(n int) { add(m.staleAdds, n) }

// Backstop counts one backstop write: op as the backstop names it, failed
// when err is set.
func (m *Metrics) Backstop(op string, err error) {
	if err != nil {
		op = "failed"
	}
	m.backstop.WithLabelValues(op).Inc()
}

// BackstopUnguarded sets the gauge of memberships found without a schedule.
func (m *Metrics) BackstopUnguarded(n int) { m.unguarded.Set(float64(n)) }

// SetActive sets the active-grants gauge.
func (m *Metrics) SetActive(n int) { m.active.Set(float64(n)) }

// Reconciled records one reconcile: the drift it found, how much of it it
// repaired, and whether it failed.
func (m *Metrics) Reconciled(found, repaired int, failed bool) {
	m.reconciles.Inc()
	if failed {
		m.reconcileErrs.Inc()
	}
	m.driftNow.Set(float64(found))
	add(m.drift, found)
	add(m.driftFixed, repaired)
}

// SessionsRevoked counts one role whose older sessions an ended membership
// ended (sessions.Observer).
func (m *Metrics) SessionsRevoked(mode string) { m.sessionRevocations.WithLabelValues(mode).Inc() }

// SessionRoleSkipped counts a role outside the role path (sessions.Observer).
func (m *Metrics) SessionRoleSkipped() { m.sessionSkipped.Inc() }

// SessionRevocationFailed counts a role that could not be written
// (sessions.Observer).
func (m *Metrics) SessionRevocationFailed(reason string) {
	m.sessionFailures.WithLabelValues(reason).Inc()
}

// SessionsRepaired counts role items the sweeper rewrote.
func (m *Metrics) SessionsRepaired(n int) { add(m.sessionRepaired, n) }

// SessionsMissing sets how many revocations reconcile found missing in IAM.
func (m *Metrics) SessionsMissing(n int) { m.sessionMissing.Set(float64(n)) }

// AccountFailing records an account's circuit breaker opening or closing.
func (m *Metrics) AccountFailing(account string, failing bool) {
	v := 0.0
	if failing {
		v = 1
	}
	m.accountFailing.WithLabelValues(account).Set(v)
}

// add adds n to a counter; a negative n (a caller's bug) is dropped, where
// client_golang would panic.
func add(c prometheus.Counter, n int) {
	if n > 0 {
		c.Add(float64(n))
	}
}

// registrar makes metrics and registers each one as it is made, keeping
// every error for New to return, so New says each metric once.
type registrar struct {
	reg prometheus.Registerer
	err error
}

func (r *registrar) register(c prometheus.Collector) {
	r.err = errors.Join(r.err, r.reg.Register(c))
}

// made registers a metric just made and returns it.
func made[C prometheus.Collector](r *registrar, c C) C {
	r.register(c)
	return c
}

func (r *registrar) counter(name, help string) prometheus.Counter {
	return made(r, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

func (r *registrar) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return made(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

func (r *registrar) gauge(name, help string) prometheus.Gauge {
	return made(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

func (r *registrar) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return made(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

func (r *registrar) histogram(name, help string, buckets []float64) prometheus.Histogram {
	return made(r, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}

// awsCalls exposes an awsx.Counter: the SDK middleware keeps counting as it
// does, and each scrape turns a snapshot into constant metrics.
type awsCalls struct {
	counter       *awsx.Counter
	calls, errors *prometheus.Desc
}

func newAWSCalls(c *awsx.Counter) *awsCalls {
	labels := []string{"service", "operation"}
	return &awsCalls{
		counter: c,
		calls:   prometheus.NewDesc("iamjit_aws_calls_total", "AWS API calls (attempts), by service and operation.", labels, nil),
		errors:  prometheus.NewDesc("iamjit_aws_errors_total", "AWS API calls that failed, by service and operation.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (a *awsCalls) Describe(ch chan<- *prometheus.Desc) {
	ch <- a.calls
	ch <- a.errors
}

// Collect implements prometheus.Collector.
func (a *awsCalls) Collect(ch chan<- prometheus.Metric) {
	for _, c := range a.counter.Snapshot() {
		ch <- constCounter(a.calls, c.Calls, c.Op)
		ch <- constCounter(a.errors, c.Errors, c.Op)
	}
}

func constCounter(d *prometheus.Desc, n int64, op awsx.Op) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(n), op.Service, op.Operation)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err) // the scrape reports it
	}
	return m
}
