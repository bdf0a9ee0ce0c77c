package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/iamjit/iamjit/internal/testkit"
)

// Access ends at its expiry, not at the next sweep: with sweeps ten minutes
// apart (one at start-up, the next long after this test), a grant of three
// seconds still ends, by the timer the replica armed when it granted it.
func TestGrantEndsAtItsExpiryBetweenSweeps(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "ontime")
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	e.startRun(t, "IAMJIT_SWEEP_INTERVAL=10m")
	e.expires(t, request{symID: "ontime-1", run: "ontime-run-1", target: "t-1", user: user, group: group, duration: 3, at: time.Now()})
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
