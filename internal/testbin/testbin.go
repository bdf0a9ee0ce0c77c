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
// the binary's path. The directory is left for the OS to clean: tests in one
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
		out, err := exec.Command("go", "build", "-o", build.path, "github.com/iamjit/iamjit").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build iamjit: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		tb.Fatal(build.err)
	}
	return build.path
}
