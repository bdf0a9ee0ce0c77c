package main

import (
	"strings"
	"testing"
)

func TestPercentileNearestRank(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ p, want float64 }{{50, 5}, {99, 10}, {10, 1}, {100, 10}, {0, 1}} {
		if got := percentile(v, tc.p); got != tc.want {
			t.Errorf("p%g = %g, want %g", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty = %g", got)
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP x
# TYPE iamjit_messages_total counter
iamjit_messages_total{outcome="applied"} 12
# TYPE iamjit_aws_calls_total counter
iamjit_aws_calls_total{service="SQS",operation="ReceiveMessage"} 3
# TYPE iamjit_aws_errors_total counter
iamjit_aws_errors_total{service="IAM",operation="GetUser"} 1
iamjit_messages_received_total 12
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.outcomes["applied"] != 12 || m.calls["SQS.ReceiveMessage"] != 3 || m.errors["IAM.GetUser"] != 1 || len(m.calls) != 1 {
		t.Fatalf("parsed %+v", m)
	}
	if _, err := parseMetrics(strings.NewReader("iamjit_aws_calls_total{service=\"SQS\" 3\n")); err == nil {
		t.Error("a malformed exposition parsed")
	}
	if d := (calls{"a": 5, "b": 2}).minus(calls{"a": 5, "b": 1}); len(d) != 1 || d["b"] != 1 {
		t.Fatalf("minus = %v", d)
	}
}
