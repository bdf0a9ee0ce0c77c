package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// Access ends at its expiry, not at the next sweep: with sweeps ten minutes
// apart (one at start-up, the next long after this test), a grant of three
// seconds still ends, by the timer the replica armed when it granted it.
func TestGrantEndsAtItsExpiryBetweenSweeps(t *testing.T) {
	e := e2eStack(t, "--prefix", "ontime")
	user, group := e.vars["IAMJIT_DEV_USER"], e.vars["IAMJIT_DEV_GROUP"]
	e.startRun(t, "IAMJIT_SWEEP_INTERVAL=10m")
	rs := &results{}
	r := request{symID: "ontime-1", run: "ontime-run-1", target: "t-1", user: user, group: group, duration: 3, at: time.Now()}
	e.putSym(t, symEntry(t, "escalate_iam_group.json", r.apply))
	e.waitResult(t, rs, "Access Granted", r.symID)
	revoked := e.waitResult(t, rs, "Access Revoked", r.symID)
	if revoked.Detail["reason"] != "expired" {
		t.Fatalf("reason = %v, want expired", revoked.Detail["reason"])
	}
	if m := e.members(t, group); slices.Contains(m, user) {
		t.Fatalf("%s still in %s after Access Revoked: %v", user, group, m)
	}
}

// A late add, an AddUserToGroup that lands after the last removal (from a
// replica that died mid-converge), is undone within the read-back delay and
// counted, long before any sweep or reconcile.
func TestLateAddIsUndone(t *testing.T) {
	e := e2eStack(t, "--prefix", "late")
	user, group := e.vars["IAMJIT_DEV_USER"], e.vars["IAMJIT_DEV_GROUP"]
	addr := freeAddr(t)
	e.startRun(t, "IAMJIT_HTTP_ADDR="+addr, "IAMJIT_SWEEP_INTERVAL=10m", "IAMJIT_READBACK_DELAY=15s")
	rs := &results{}
	r := request{symID: "late-1", run: "late-run-1", target: "t-1", user: user, group: group, duration: 600, at: time.Now()}
	e.putSym(t, symEntry(t, "escalate_iam_group.json", r.apply))
	e.waitResult(t, rs, "Access Granted", r.symID)
	de := r
	de.symID = "late-de-1"
	e.putSym(t, symEntry(t, "deescalate_iam_group.json", de.apply))
	e.waitResult(t, rs, "Access Revoked", de.symID)

	// The late add, after the removal and within the read-back delay (15 s:
	// room for a loaded machine between the removal and this call).
	if _, err := iam.NewFromConfig(e.cfg).AddUserToGroup(context.Background(), &iam.AddUserToGroupInput{GroupName: &group, UserName: &user}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the late add undone and counted", 60*time.Second, func() bool {
		return !slices.Contains(e.members(t, group), user) && scrape(t, addr)["iamjit_stale_adds_repaired_total"] == 1
	})
}
