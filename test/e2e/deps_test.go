package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// Dependencies point one way: the binary never depends on a harness, the
// bench, the demo, a test package or the emulator launcher.
func TestBinaryDependsOnNoHarness(t *testing.T) {
	t.Parallel()
	const module = "github.com/iamjit/iamjit"
	out, err := exec.Command("go", "list", "-deps", module).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{module + "/tools/", module + "/test/", module + "/internal/motoserver", module + "/internal/testbin", module + "/internal/testclock", module + "/internal/testkit"}
	var own int
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, module) {
			own++
		}
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("the iamjit binary depends on %s", pkg)
			}
		}
	}
	// The list must hold the product, or the check above proved nothing.
	for _, want := range []string{module, module + "/internal/cli", module + "/grants"} {
		if !strings.Contains("\n"+string(out), "\n"+want+"\n") {
			t.Fatalf("go list -deps does not name %s; got %d of the module's packages", want, own)
		}
	}
}
