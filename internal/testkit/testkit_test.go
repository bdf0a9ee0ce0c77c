package testkit

import (
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	s := strings.Repeat("x\n", 70) + strings.Repeat("y", 700)
	got := strings.Split(tail(s, 60, 600), "\n")
	if len(got) != 60 || got[0] != "x" || got[59] != strings.Repeat("y", 600)+"…" {
		t.Fatalf("tail: %d lines, first %q, last %d bytes", len(got), got[0], len(got[len(got)-1]))
	}
	if tail("a\nb", 60, 600) != "a\nb" {
		t.Fatal("tail of a short text is not the text")
	}
}

func TestResultsFind(t *testing.T) {
	var rs Results
	rs.all = []Result{
		{DetailType: "Access Granted", Detail: map[string]any{"sym_event_id": "a"}},
		{DetailType: "Access Revoked", Detail: map[string]any{"sym_event_id": "a"}},
		{DetailType: "Access Granted", Detail: map[string]any{"sym_event_id": "b"}},
		{DetailType: "Access Granted", Detail: map[string]any{"sym_event_id": "a", "n": 2}},
	}
	if got := rs.Find("Access Granted", "a"); len(got) != 2 || got[1].Detail["n"] != 2 {
		t.Fatalf("Find = %v, want both grants of a in order", got)
	}
	if got := rs.Find("Access Granted", "c"); len(got) != 0 {
		t.Fatalf("Find of an unknown id = %v", got)
	}
	if len(rs.All()) != 4 {
		t.Fatal("All lost results")
	}
}
