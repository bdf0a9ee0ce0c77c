package events_test

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// TestMain caps the fuzzer's minimization of each new input at 1s unless
// -fuzzminimizetime is given: with the default 60s, `make fuzz`'s 10s budget
// is spent minimizing the first input found, not fuzzing.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
	if !set {
		if err := flag.Set("test.fuzzminimizetime", "1s"); err != nil {
			fmt.Fprintln(os.Stderr, "events tests:", err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}
