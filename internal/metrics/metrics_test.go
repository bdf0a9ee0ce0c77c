package metrics

import (
	"context"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/iamjit/iamjit/internal/awsx"
)

// scrape GETs /metrics from m's handler and parses the text format into
// series -> value. A series is its name and its labels sorted by name, as
// client_golang writes them; a histogram gives _bucket{le}, _sum and _count.
// It returns the text as well.
func scrape(t *testing.T, m *Metrics) (map[string]float64, string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want the text format", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	put := func(name string, m *dto.Metric, v float64, extra ...string) {
		labels := extra
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
		}
		sort.Strings(labels)
		if len(labels) > 0 {
			name += "{" + strings.Join(labels, ",") + "}"
		}
		if _, dup := out[name]; dup {
			t.Fatalf("series %s written twice", name)
		}
		out[name] = v
	}
	for name, f := range families {
		if f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				put(name, m, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				put(name, m, m.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					put(name+"_bucket", m, float64(b.GetCumulativeCount()), `le="`+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)+`"`)
				}
				put(name+"_sum", m, h.GetSampleSum())
				put(name+"_count", m, float64(h.GetSampleCount()))
			default: // go_* summaries: present is enough
				put(name, m, 0)
			}
		}
	}
	return out, string(body)
}

// dynamoStub answers DescribeTable and fails every other DynamoDB call with
// a non-retryable error, so each call is one attempt.
func dynamoStub(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	status, body := http.StatusOK, `{"Table":{"TableName":"t"}}`
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".DescribeTable") {
		status, body = http.StatusBadRequest, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no"}`
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// countedCalls makes real SDK calls through awsx.Load's configuration (the
// counting middleware iamjit runs with) against a stub: 2 DescribeTable,
// 1 failed ListTables.
func countedCalls(t *testing.T) *awsx.Counter {
	stub := httptest.NewServer(http.HandlerFunc(dynamoStub))
	t.Cleanup(stub.Close)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": stub.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_PROFILE": "", "AWS_MAX_ATTEMPTS": "",
	} {
		t.Setenv(k, v)
	}
	calls := awsx.NewCounter()
	ctx := context.Background()
	cfg, err := awsx.Load(ctx, calls)
	if err != nil {
		t.Fatal(err)
	}
	ddb := dynamodb.NewFromConfig(cfg)
	for range 2 {
		if _, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("t")}); err != nil {
			t.Fatalf("DescribeTable: %v", err)
		}
	}
	if _, err := ddb.ListTables(ctx, &dynamodb.ListTablesInput{}); err == nil {
		t.Fatal("ListTables: the stub's error was not returned")
	}
	return calls
}

func TestExposition(t *testing.T) {
	m, err := New(prometheus.NewRegistry(), countedCalls(t))
	if err != nil {
		t.Fatal(err)
	}
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
	m.SessionsRevoked("user")
	m.SessionsRevoked("user")
	m.SessionsRevoked("role")
	m.SessionRoleSkipped()
	m.SessionRevocationFailed("no_room")
	m.SessionsRepaired(2)
	m.SessionsMissing(4)
	m.TransactionRetried("TransactionConflict")
	m.TransactionRetried("TransactionConflict")
	m.TransactionRetried("ThrottlingError")
	m.StaleAddsRepaired(2)
	m.StaleAddsRepaired(0)
	m.AccountFailing("210987654321", true)
	m.AccountFailing("111111111111", true)
	m.AccountFailing("111111111111", false)

	got, text := scrape(t, m)
	want := map[string]float64{
		`iamjit_messages_total{outcome="applied"}`:          2,
		`iamjit_messages_total{outcome="poison"}`:           1,
		`iamjit_messages_received_total`:                    3,
		`iamjit_messages_in_flight`:                         1,
		`iamjit_dlq_moves_total`:                            1,
		`iamjit_processing_seconds_bucket{le="0.01"}`:       0,
		`iamjit_processing_seconds_bucket{le="0.025"}`:      1,
		`iamjit_processing_seconds_bucket{le="0.05"}`:       1,
		`iamjit_processing_seconds_bucket{le="0.1"}`:        1,
		`iamjit_processing_seconds_bucket{le="0.25"}`:       1,
		`iamjit_processing_seconds_bucket{le="0.5"}`:        2,
		`iamjit_processing_seconds_bucket{le="1"}`:          2,
		`iamjit_processing_seconds_bucket{le="2.5"}`:        2,
		`iamjit_processing_seconds_bucket{le="5"}`:          3,
		`iamjit_processing_seconds_bucket{le="10"}`:         3,
		`iamjit_processing_seconds_bucket{le="30"}`:         3,
		`iamjit_processing_seconds_bucket{le="+Inf"}`:       3,
		`iamjit_processing_seconds_count`:                   3,
		`iamjit_active_grants`:                              7,
		`iamjit_sweeper_lag_seconds`:                        1.5,
		`iamjit_sweeps_total`:                               1,
		`iamjit_sweeper_revoked_total`:                      2,
		`iamjit_sweeper_repaired_total`:                     1,
		`iamjit_reconcile_runs_total`:                       2,
		`iamjit_reconcile_errors_total`:                     1,
		`iamjit_drift`:                                      1,
		`iamjit_drift_total`:                                3,
		`iamjit_drift_repaired_total`:                       1,
		`iamjit_account_failing{account_id="210987654321"}`: 1,
		`iamjit_account_failing{account_id="111111111111"}`: 0,

		`iamjit_session_revocations_total{mode="user"}`:                           2,
		`iamjit_session_revocations_total{mode="role"}`:                           1,
		`iamjit_session_roles_skipped_total`:                                      1,
		`iamjit_session_revocation_failures_total{reason="no_room"}`:              1,
		`iamjit_session_roles_repaired_total`:                                     2,
		`iamjit_dynamodb_transaction_retries_total{reason="TransactionConflict"}`: 2,
		`iamjit_dynamodb_transaction_retries_total{reason="ThrottlingError"}`:     1,
		`iamjit_stale_adds_repaired_total`:                                        2,
		`iamjit_session_statements_missing`:                                       4,

		`iamjit_aws_calls_total{operation="DescribeTable",service="DynamoDB"}`:  2,
		`iamjit_aws_errors_total{operation="DescribeTable",service="DynamoDB"}`: 0,
		`iamjit_aws_calls_total{operation="ListTables",service="DynamoDB"}`:     1,
		`iamjit_aws_errors_total{operation="ListTables",service="DynamoDB"}`:    1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if s := got["iamjit_processing_seconds_sum"]; s < 3.31 || s > 3.33 {
		t.Errorf("processing sum = %v, want 3.32", s)
	}
	// The bucket bounds are exactly the ones above, no more.
	buckets := 0
	for k := range got {
		if strings.HasPrefix(k, "iamjit_processing_seconds_bucket") {
			buckets++
		}
	}
	if buckets != 12 {
		t.Errorf("%d processing buckets, want 12", buckets)
	}
	// What bench/process.go reads: name{labels} value on one line.
	for _, line := range []string{
		`iamjit_aws_calls_total{operation="DescribeTable",service="DynamoDB"} 2`,
		`iamjit_messages_total{outcome="applied"} 2`,
	} {
		if !strings.Contains(text, "\n"+line+"\n") {
			t.Errorf("no line %q in\n%s", line, text)
		}
	}
	// The Go runtime and process collectors.
	if g := got["go_goroutines"]; g < 1 {
		t.Errorf("go_goroutines = %v, want at least 1", g)
	}
	for _, k := range []string{"process_resident_memory_bytes", "process_open_fds", "go_memstats_heap_alloc_bytes"} {
		if got[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, got[k])
		}
	}
}

// A counter without calls and a registry used twice.
func TestNew(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := scrape(t, m)
	for k := range got {
		if strings.HasPrefix(k, "iamjit_aws_") {
			t.Errorf("%s without a counter", k)
		}
	}
	if _, err := New(reg, nil); err == nil {
		t.Error("registering twice in one registry: no error")
	}
}
