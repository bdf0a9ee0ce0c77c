package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A process that exits 1 before it logged "iamjit running" failed its
// start-up for now and is restarted without counting as an exit; one that
// exits after it came up is an exit nobody asked for.
func TestReplicaTellsStartFailuresFromExits(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Each start runs the next line of the plan; the last one stays up.
	plan := filepath.Join(dir, "plan")
	if err := os.WriteFile(plan, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := script("iamjit", `n=$(cat `+plan+`); echo $((n+1)) > `+plan+`
case $n in
0) echo 'iamjit: IAMJIT_SSO_GROUPS: describe group g: connection reset by peer' >&2; exit 1 ;;
1) echo '{"level":"INFO","msg":"iamjit running"}'; exit 1 ;;
*) echo '{"level":"INFO","msg":"iamjit running"}'; exec sleep 30 ;;
esac`)
	r := NewReplica(0, bin, dir, nil, "")
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		starts, _, exits, fails := r.Figures()
		if starts >= 3 {
			if len(fails) != 1 || !strings.Contains(fails[0], "connection reset by peer") {
				t.Errorf("start-up failures %q, want the first start's, with its reason", fails)
			}
			if len(exits) != 1 || !strings.Contains(exits[0], "(start 2) exited on its own") {
				t.Errorf("exits %q, want the second start's", exits)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d starts", starts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := r.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}
