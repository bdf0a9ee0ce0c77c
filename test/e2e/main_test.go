package e2e

import (
	"os"
	"testing"

	"github.com/iamjit/iamjit/internal/testkit"
)

// Every test here has its own moto and dev stack and runs in parallel with
// the others: they spend most of their time waiting (on iamjit's long
// polls, sweeps and read-backs, on moto's deliveries), so four at a time;
// more would crowd the package go test runs beside this one.
func TestMain(m *testing.M) { os.Exit(testkit.MainParallel(m, 4)) }
