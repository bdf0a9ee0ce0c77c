// Package testbin builds the iamjit binary for tests that drive it as a
// process, as operators and the acceptance tests do.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// Build compiles github.com/iamjit/iamjit once per test process and returns
// the binary's path. With TESTBIN_RACE set (make soak) it is built with the
// race detector: a race in a replica then prints "DATA RACE" to its log and
// makes it exit 66. The directory is left for the OS to clean: tests in one
// process share it.
func Build(tb testing.TB) string {
	tb.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "iamjit-test-bin")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "iamjit")
		args := []string{"build", "-o", build.path}
		if os.Getenv("TESTBIN_RACE") != "" {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/iamjit/iamjit")...).CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build iamjit: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		tb.Fatal(build.err)
	}
	return build.path
}
