package cli

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/reconcile"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"24h":                  now.Add(-24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"2026-04-30T08:00:00Z": time.Date(2026, 4, 30, 8, 0, 0, 0, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-1h", "2026-04-30"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}

func TestParseWithID(t *testing.T) {
	for _, args := range [][]string{{"G1", "--reason", "x"}, {"--reason", "x", "G1"}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		reason := fs.String("reason", "", "")
		id, err := parseWithID(fs, args)
		if err != nil || id != "G1" || *reason != "x" {
			t.Errorf("parseWithID(%q) = %q, reason %q, %v", args, id, *reason, err)
		}
	}
	for _, args := range [][]string{{}, {"--reason", "x"}, {"G1", "G2"}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.String("reason", "", "")
		if id, err := parseWithID(fs, args); err == nil {
			t.Errorf("parseWithID(%q) = %q, want an error", args, id)
		}
	}
}

func TestReconcileExitCodeCountsWhatRemains(t *testing.T) {
	rep := reconcile.Report{Differences: []reconcile.Difference{
		{Kind: reconcile.UnexplainedMember, Action: reconcile.ActionRemoved},
		{Kind: reconcile.MissingMember, Action: reconcile.ActionReadded},
		{Kind: reconcile.Overdue},
	}}
	if n := remaining(rep); n != 0 {
		t.Fatalf("remaining = %d, want 0: repaired drift and an overdue grant leave nothing", n)
	}
	rep.Differences = append(rep.Differences, reconcile.Difference{Kind: reconcile.MissingGroup}, reconcile.Difference{Kind: reconcile.UnexplainedMember})
	if n := remaining(rep); n != 2 {
		t.Fatalf("remaining = %d, want 2", n)
	}
}

func TestGrantsUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"revoke", "G1"}, {"show"}, {"list", "extra"}, {"list", "--since", "soon"}} {
		err := grantsCmd(t.Context(), args, func(string) string { return "" }, io.Discard, io.Discard, prompt{})
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("grants %q: err = %v, want a usage error (exit 2)", args, err)
		}
	}
}

func TestBulkRevokeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"revoke", "--reason", "x"},                             // no selector
		{"revoke", "G1", "--user", "u", "--reason", "x"},        // id and a selector
		{"revoke", "--all", "--group", "g", "--reason", "x"},    // --all narrowed
		{"revoke", "--all", "--parallel", "0", "--reason", "x"}, // parallel out of range
		{"revoke", "--user", "u"},                               // no reason
	} {
		err := grantsCmd(t.Context(), args, func(string) string { return "" }, io.Discard, io.Discard, prompt{})
		if ExitCode(err) != 2 {
			t.Errorf("grants %q: err = %v, want a usage error (exit 2)", args, err)
		}
	}
}

func TestRevokeRequestAsksForOneThing(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  revokeRequest
		ok   bool
	}{
		{"one id", revokeRequest{id: "G1", parallel: 1, reason: "x"}, true},
		{"a user in an account", revokeRequest{user: "u", account: "111111111111", parallel: maxParallel, reason: "x"}, true},
		{"all", revokeRequest{all: true, parallel: 4, reason: "x"}, true},
		{"all in an account", revokeRequest{all: true, account: "111111111111", parallel: 4, reason: "x"}, false},
		{"too parallel", revokeRequest{all: true, parallel: maxParallel + 1, reason: "x"}, false},
		{"a control character in the reason", revokeRequest{id: "G1", parallel: 4, reason: "a\x1bb"}, false},
		{"a reason too long", revokeRequest{id: "G1", parallel: 4, reason: strings.Repeat("x", 1025)}, false},
	} {
		err := tc.req.check()
		if tc.ok && err != nil || !tc.ok && ExitCode(err) != 2 {
			t.Errorf("%s: err = %v, want ok=%v (else a usage error)", tc.name, err, tc.ok)
		}
	}
}

func TestConfirm(t *testing.T) {
	list := []grants.Grant{{ID: "G1", IAMUser: "alice", Group: "g"}, {ID: "G2", IAMUser: "alice", Group: "h"}}
	if err := confirm(prompt{in: strings.NewReader("revoke 2\n")}, io.Discard, list, "user alice"); ExitCode(err) != 2 || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("no terminal: err = %v, want a usage error naming --yes", err)
	}
	var shown strings.Builder
	if err := confirm(prompt{in: strings.NewReader("revoke 2\n"), terminal: true}, &shown, list, "user alice"); err != nil {
		t.Errorf("typed %q: err = %v, want confirmed", "revoke 2", err)
	}
	if !strings.Contains(shown.String(), "G1") || !strings.Contains(shown.String(), "G2") {
		t.Errorf("the prompt does not list the grants it will end:\n%s", shown.String())
	}
	for _, typed := range []string{"yes\n", "revoke 3\n", ""} {
		if err := confirm(prompt{in: strings.NewReader(typed), terminal: true}, io.Discard, list, "user alice"); err == nil || ExitCode(err) != 1 {
			t.Errorf("typed %q: err = %v, want not confirmed (exit 1)", typed, err)
		}
	}
}
