package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/iamjit/iamjit/internal/testkit"
)

// Access ends at its expiry, not at the next sweep: with sweeps a day
// apart (one at start-up, the next long after this test), a grant of three
// seconds still ends, by the timer the replica armed when it granted it.
func TestGrantEndsAtItsExpiryBetweenSweeps(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "ontime")
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	// A day: after the start-up sweep the next comes at a random point of
	// the interval (never in step with other replicas), so one could fall
	// in this test's seconds once in ~30,000 runs; the check below says so.
	proc := e.startRun(t, "IAMJIT_SWEEP_INTERVAL=24h")
	e.expires(t, request{symID: "ontime-1", run: "ontime-run-1", target: "t-1", user: user, group: group, duration: 3, at: time.Now()})
	if n := scrape(t, proc.Addr)["iamjit_sweeper_revoked_total"]; n != 0 {
		t.Fatalf("the sweeper revoked %v grant(s): the grant did not end by its timer, this run proved nothing", n)
	}
}

// expires grants r, a short grant, and checks that it ends by itself: an
// Access Revoked for its escalate with reason expired, and the user out of
// the group.
func (e *e2eEnv) expires(t *testing.T, r request) {
	t.Helper()
	e.escalate(t, r)
	revoked := e.WaitResult(t, "Access Revoked", r.symID)
	if revoked.Detail["reason"] != "expired" {
		t.Fatalf("reason = %v, want expired", revoked.Detail["reason"])
	}
	if m := e.members(t, r.group); slices.Contains(m, r.user) {
		t.Fatalf("%s still in %s after Access Revoked (expired): %v", r.user, r.group, m)
	}
}

// A late add, an AddUserToGroup that lands after the last removal (from a
// replica that died mid-converge), is undone within the read-back delay and
// counted, long before any sweep or reconcile.
func TestLateAddIsUndone(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "late")
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	proc := e.startRun(t, "IAMJIT_SWEEP_INTERVAL=10m", "IAMJIT_READBACK_DELAY=15s")
	r := request{symID: "late-1", run: "late-run-1", target: "t-1", user: user, group: group, duration: 600, at: time.Now()}
	e.escalate(t, r)
	e.deescalate(t, r, "late-de-1")

	// The late add, after the removal and within the read-back delay (15 s:
	// room for a loaded machine between the removal and this call).
	e.addToGroup(t, user, group)
	testkit.Eventually(t, "the late add undone and counted", 60*time.Second, func() bool {
		return !slices.Contains(e.members(t, group), user) && scrape(t, proc.Addr)["iamjit_stale_adds_repaired_total"] == 1
	})
}

// Access Expiring through the real binary (warning 8 s): published before expires_at,
// once, for a grant at least twice the warning long; none for a shorter
// grant, none for one deescalated before its warning was due. Sequenced by
// state, not by a loaded machine's speed: the ended grant is deescalated
// (its Access Revoked seen) long before its warning would be due, and the
// results are read once that moment has passed.
func TestAccessExpiring(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "warn")
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	const warning = 8 * time.Second
	e.startRun(t, "IAMJIT_EXPIRY_WARNING="+warning.String())
	// Each timestamped as it is sent: a loaded machine must not expire one
	// before it is granted.
	ended := request{symID: "warn-ended", run: "warn-3", target: "t-3", user: user, group: group, duration: 40, at: time.Now()}
	e.escalate(t, ended) // granted
	e.deescalate(t, ended, "warn-ended-de")
	long := request{symID: "warn-long", run: "warn-1", target: "t-1", user: user, group: group, duration: 24}
	short := request{symID: "warn-short", run: "warn-2", target: "t-2", user: user, group: group, duration: 12}
	for _, r := range []*request{&long, &short} {
		r.at = time.Now()
		e.escalate(t, *r)
	}
	e.WaitResult(t, "Access Revoked", long.symID) // its expiry: every warning was due before
	// The ended grant's warning would have been due now.
	time.Sleep(time.Until(ended.at.Add(40*time.Second - warning + 2*time.Second)))
	e.DrainResults(t)
	warnings := e.Results.Where(func(r testkit.Result) bool { return r.DetailType == "Access Expiring" })
	if len(warnings) != 1 || warnings[0].Detail["grant_id"] != grantID(long) {
		t.Fatalf("Access Expiring events %v, want exactly one, for %s", warnings, grantID(long))
	}
	w := warnings[0].Detail
	exp, err := time.Parse(time.RFC3339, fmt.Sprint(w["expires_at"]))
	if err != nil || w["iam_user"] != user || w["group"] != group || w["result_id"] == "" {
		t.Fatalf("Access Expiring %v lacks the grant's fields", w)
	}
	// EventBridge stamps the event when it was put (whole seconds).
	var env struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal([]byte(warnings[0].Raw), &env); err != nil || env.Time.IsZero() || env.Time.After(exp) {
		t.Fatalf("Access Expiring put at %s (%v), not before expires_at %s", env.Time, err, exp)
	}
}
