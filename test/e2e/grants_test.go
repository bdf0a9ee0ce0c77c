package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/internal/testkit"
)

// The grants commands as processes against moto: list shows an active
// grant, show has its history with AWS request ids, revoke ends it early.
func TestGrantsCLI(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "gr")
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	e.startRun(t)
	r := request{symID: "gr-esc-1", run: "gr-run-1", target: "t-1", user: user, group: group, duration: 600, at: time.Now()}
	e.escalate(t, r)
	id := grantID(r)

	list := func(args ...string) []grantJSON {
		t.Helper()
		out, code := e.cli(t, append([]string{"grants", "list", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("grants list exit %d", code)
		}
		var gs []grantJSON
		if err := json.Unmarshal([]byte(out), &gs); err != nil {
			t.Fatalf("grants list --json: %v\n%s", err, out)
		}
		return gs
	}
	gs := list()
	if len(gs) != 1 || gs[0].ID != id || gs[0].State != "ACTIVE" || gs[0].IAMUser != user || gs[0].Group != group || gs[0].ExpiresAt == nil {
		t.Fatalf("grants list --json = %+v, want the active grant %s", gs, id)
	}
	if gs := list("--active", "--user", user, "--group", group, "--since", "1h"); len(gs) != 1 {
		t.Fatalf("filters matching the grant returned %d grants", len(gs))
	}
	for _, f := range [][]string{{"--user", "nobody@example.com"}, {"--group", "other"}, {"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}} {
		if gs := list(f...); len(gs) != 0 {
			t.Fatalf("filter %v matched %+v", f, gs)
		}
	}
	if out, code := e.cli(t, "grants", "list"); code != 0 || !strings.Contains(out, "STATE") || !strings.Contains(lineWith(out, id), "ACTIVE") {
		t.Fatalf("grants list table (exit %d):\n%s", code, out)
	}

	out, code := e.cli(t, "grants", "show", id, "--json")
	if code != 0 {
		t.Fatalf("grants show exit %d", code)
	}
	var g grantJSON
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatal(err)
	}
	if g.ID != id || g.Approver == "" || g.SymEventID != r.symID || len(g.History) < 2 {
		t.Fatalf("grants show = %+v", g)
	}
	if h := g.History[len(g.History)-1]; h.Action != "iam_add" || h.IAMRequestID == "" {
		t.Fatalf("last history entry = %+v, want iam_add with its AWS request id", h)
	}
	if out, code := e.cli(t, "grants", "show", id); code != 0 || !strings.Contains(out, "AWS REQUEST ID") || !strings.Contains(out, g.History[len(g.History)-1].IAMRequestID) {
		t.Fatalf("grants show text (exit %d) lacks the history's request id:\n%s", code, out)
	}

	if _, code := e.cli(t, "grants", "revoke", id); code != 2 {
		t.Fatalf("revoke without --reason: exit %d, want 2", code)
	}
	out, code = e.cli(t, "grants", "revoke", id, "--reason", "incident 42")
	if code != 0 || !strings.Contains(out, "Access Revoked") {
		t.Fatalf("grants revoke exit %d:\n%s", code, out)
	}
	if slices.Contains(e.members(t, group), user) {
		t.Fatalf("%s is still in %s after grants revoke", user, group)
	}
	revoked := e.WaitResult(t, "Access Revoked", r.symID)
	if revoked.Detail["reason"] != "manual" || revoked.Detail["grant_id"] != id || !strings.Contains(fmt.Sprint(revoked.Detail["message"]), "incident 42") {
		t.Fatalf("Access Revoked = %v, want reason manual for %s with the operator's reason", revoked.Detail, id)
	}
	out, _ = e.cli(t, "grants", "show", id, "--json")
	g = grantJSON{}
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatal(err)
	}
	var noted, removed bool
	for _, h := range g.History {
		noted = noted || strings.Contains(h.Note, "incident 42")
		removed = removed || (h.Action == "iam_remove" && h.IAMRequestID != "")
	}
	if g.State != "REVOKED" || g.RevokeReason != "manual" || !noted || !removed {
		t.Fatalf("after revoke: %+v, want REVOKED (manual), the reason noted and the removal's request id", g)
	}
	if gs := list("--active"); len(gs) != 0 {
		t.Fatalf("--active lists a revoked grant: %+v", gs)
	}
	// Again: nothing changes, the same result is republished.
	if out, code := e.cli(t, "grants", "revoke", id, "--reason", "again"); code != 0 || !strings.Contains(out, "already ended") {
		t.Fatalf("second revoke exit %d:\n%s", code, out)
	}
	testkit.Eventually(t, "the republished Access Revoked", 20*time.Second, func() bool {
		e.DrainResults(t)
		return len(e.Results.Find("Access Revoked", r.symID)) == 2
	})
	if all := e.Results.Find("Access Revoked", r.symID); all[0].Detail["result_id"] != all[1].Detail["result_id"] {
		t.Fatalf("republished result id changed: %v vs %v", all[0].Detail["result_id"], all[1].Detail["result_id"])
	}
	if _, code := e.cli(t, "grants", "revoke", "no-such-grant", "--reason", "x"); code != 1 {
		t.Fatalf("revoke of an unknown grant: exit %d, want 1", code)
	}
}

// grantJSON is what the test reads of a grant from `grants list --json` and
// `grants show --json`: the public fields, decoded independently of the
// command's own type.
type grantJSON struct {
	ID           string              `json:"id"`
	State        string              `json:"state"`
	IAMUser      string              `json:"iam_user"`
	Group        string              `json:"group"`
	Approver     string              `json:"approver"`
	ExpiresAt    *time.Time          `json:"expires_at"`
	RevokeReason string              `json:"revoke_reason"`
	SymEventID   string              `json:"sym_event_id"`
	History      []grants.Transition `json:"history"`
}

// The red button: `grants revoke --user` ends every active grant of one
// user and nobody else's, asks for --yes when it cannot ask a terminal, and
// a rerun finds nothing left; `--all` ends the rest.
func TestGrantsRevokeBulk(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "rb")
	alice, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	const bob, group2 = "bob@example.com", "rb-second"
	e.createUser(t, bob)
	e.createGroup(t, group2, "/sym/")
	e.startRun(t)
	now := time.Now()
	reqs := []request{
		{symID: "rb-1", run: "rb-run-1", target: "t-1", user: alice, group: group, duration: 600, at: now},
		{symID: "rb-2", run: "rb-run-2", target: "t-2", user: alice, group: group2, duration: 600, at: now},
		{symID: "rb-3", run: "rb-run-3", target: "t-3", user: bob, group: group, duration: 600, at: now},
	}
	for _, r := range reqs {
		e.putSym(t, symEntry(t, "escalate_iam_group.json", r.apply))
	}
	for _, r := range reqs {
		e.WaitResult(t, "Access Granted", r.symID)
	}

	// No terminal and no --yes: refused before anything changes.
	if _, code := e.cli(t, "grants", "revoke", "--user", alice, "--reason", "incident"); code != 2 {
		t.Fatalf("bulk revoke without --yes: exit %d, want 2", code)
	}
	if m := e.members(t, group2); !slices.Contains(m, alice) {
		t.Fatalf("an unconfirmed bulk revoke removed %s from %s: %v", alice, group2, m)
	}

	out, code := e.cli(t, "grants", "revoke", "--user", alice, "--reason", "incident 42", "--yes")
	if code != 0 {
		t.Fatalf("grants revoke --user: exit %d", code)
	}
	if n := strings.Count(out, "Access Revoked: grant "); n != 2 || !strings.Contains(out, "revoked 2 of 2 active grants of user "+alice) {
		t.Fatalf("output has %d revocation lines, want 2 and the summary:\n%s", n, out)
	}
	for _, g := range []string{group, group2} {
		if m := e.members(t, g); slices.Contains(m, alice) {
			t.Errorf("%s still in %s after revoke --user: %v", alice, g, m)
		}
	}
	if m := e.members(t, group); !slices.Contains(m, bob) {
		t.Fatalf("revoke --user %s removed %s too: %v", alice, bob, m)
	}
	testkit.Eventually(t, "two manual Access Revoked for "+alice, 30*time.Second, func() bool {
		e.DrainResults(t)
		return len(e.revokedFor(alice, "manual")) == 2
	})

	if out, code := e.cli(t, "grants", "revoke", "--user", alice, "--reason", "again", "--yes"); code != 0 || !strings.Contains(out, "nothing to revoke") {
		t.Fatalf("rerun: exit %d, output %q; want nothing left to revoke", code, out)
	}
	if out, code := e.cli(t, "grants", "revoke", "--all", "--reason", "drill", "--yes"); code != 0 || !strings.Contains(out, "revoked 1 of 1") {
		t.Fatalf("revoke --all: exit %d, output %q", code, out)
	}
	if m := e.members(t, group); len(m) != 0 {
		t.Fatalf("members of %s after revoke --all: %v", group, m)
	}
}
