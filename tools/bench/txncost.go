package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// txnCost is BenchmarkTransactionCostByTableSize (internal/motoserver), run
// by `make bench` before the bench itself: the same 3-item transaction on a
// table of 100 items and of 20,000, in one moto.
type txnCost struct {
	Measured      bool    `json:"measured"`
	Reason        string  `json:"reason,omitempty"`
	Ratio         float64 `json:"ratio"` // µs per transaction at 20,000 items / at 100
	MicrosAt100   float64 `json:"us_per_txn_at_100"`
	MicrosAt20000 float64 `json:"us_per_txn_at_20000"`
}

// readTxnCost reads the benchmark's output from path ("" when not run).
func readTxnCost(path string) *txnCost {
	if path == "" {
		return &txnCost{Reason: "not run: pass -txn-cost with the output of go test -bench TransactionCostByTableSize (make bench does)"}
	}
	f, err := os.Open(path)
	if err != nil {
		return &txnCost{Reason: err.Error()}
	}
	defer f.Close()
	t, err := parseTxnCost(f)
	if err != nil {
		return &txnCost{Reason: fmt.Sprintf("%s: %v", path, err)}
	}
	return t
}

// parseTxnCost finds the benchmark's result line, e.g.
//
//	BenchmarkTransactionCostByTableSize-2   1   4472823024 ns/op   0.9712 ratio   4814 us/txn@100   4675 us/txn@20000
func parseTxnCost(r io.Reader) (*txnCost, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "BenchmarkTransactionCostByTableSize") {
			continue
		}
		t := &txnCost{}
		got := map[string]*float64{"ratio": &t.Ratio, "us/txn@100": &t.MicrosAt100, "us/txn@20000": &t.MicrosAt20000}
		for i := 1; i+1 < len(f); i++ {
			if p, ok := got[f[i+1]]; ok {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					return nil, fmt.Errorf("%s %q: %w", f[i+1], f[i], err)
				}
				*p = v
				delete(got, f[i+1])
			}
		}
		if len(got) > 0 {
			return nil, fmt.Errorf("result line lacks %d of its metrics: %q", len(got), sc.Text())
		}
		t.Measured = true
		return t, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no BenchmarkTransactionCostByTableSize result line")
}
