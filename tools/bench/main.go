// Command bench measures iamjit the way its users pay for it: AWS calls,
// CPU, memory and latency per approval, side by side with a naive consumer
// and an ideal pipeline on the same moto in the same run. Run it with
// `make bench`; it prints a table with PASS/MISS per target and writes
// tools/bench/results.json.
//
// Latency: every pipeline's AWS traffic goes through a small reverse proxy in
// front of moto, which adds the same delay (20 ms in the latency regime, none
// in the raw one) to every request and counts requests by operation. A proxy
// rather than an SDK middleware because `iamjit run` is a separate binary:
// one mechanism gives all three pipelines the same latency. The bench's own
// set-up calls go straight to moto.
//
// CPU: `iamjit run` and the ideal pipeline each run as a process of their
// own and are measured alike, from /proc/<pid>/stat (child.go). Idle
// latency: one escalate at a time, from SendMessage returning to moto
// answering the AddUserToGroup (idle.go).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/iamjit/iamjit/internal/motoserver"
)

type bench struct {
	bin    string
	moto   *motoserver.Server
	proxy  *proxy
	direct aws.Config // straight to moto, for set-up and checks
	logDir string     // where to keep iamjit's logs, if set
}

// options are the bench's flags.
type options struct {
	bin, out, logDir, only, txnCost string
	events, naiveLat, sweepItems    int
	idleEvents                      int
	latency                         time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/iamjit", "the iamjit binary")
	flag.IntVar(&o.events, "events", 1000, "escalates per drain")
	flag.IntVar(&o.naiveLat, "naive-latency-events", 1000, "escalates for the naive loop with latency (it is sequential: ~0.2 s each)")
	flag.DurationVar(&o.latency, "latency", 20*time.Millisecond, "delay added to every AWS call in the latency regime and the idle scenario")
	flag.StringVar(&o.out, "out", "tools/bench/results.json", "where to write the results")
	flag.StringVar(&o.logDir, "logs", "", "directory to keep each child process's log in, every request the proxy passed (proxy-requests.tsv) and each expiry run's lateness by grant (default: keep only the tail, shown on failure)")
	flag.IntVar(&o.sweepItems, "sweep-items", 20000, "grants in the sweep table (half long revoked, 1 in 200 due)")
	flag.IntVar(&o.idleEvents, "idle-events", 100, "escalates measured one at a time in the idle scenario, per pipeline")
	flag.StringVar(&o.txnCost, "txn-cost", "", "file with the output of go test -bench TransactionCostByTableSize ./internal/motoserver/ (make bench writes it)")
	flag.StringVar(&o.only, "only", "", "comma-separated scenarios to run: startup, raw, latency, idle, sweep, replay, expiry, expiry-sso, or one pipeline as raw/ideal; default all")
	child := flag.String("child", "", "run a pipeline as a child process of the bench (internal)")
	flag.Parse()
	if *child != "" {
		if err := childMain(*child); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	bin, n, latency, only := o.bin, o.events, o.latency, o.only
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("iamjit binary: %w (run make build)", err)
	}
	// want reports whether scenario s ("sweep", "raw/ideal", …) runs: all
	// by default, else those named in -only or under a named group.
	want := func(s string) bool {
		if only == "" {
			return true
		}
		for _, o := range strings.Split(only, ",") {
			if o == s || strings.HasPrefix(s, o+"/") {
				return true
			}
		}
		return false
	}
	started := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	moto, err := motoserver.StartProcess(sctx, nil)
	cancel()
	if err != nil {
		return err
	}
	defer moto.Stop()
	direct, err := moto.LoadAWSConfig(ctx)
	if err != nil {
		return err
	}
	px, err := startProxy(moto.URL())
	if err != nil {
		return err
	}
	defer px.close()
	if o.logDir != "" {
		f, err := os.Create(filepath.Join(o.logDir, "proxy-requests.tsv"))
		if err != nil {
			return err
		}
		defer f.Close()
		px.traceMu.Lock()
		px.trace = bufio.NewWriter(f)
		px.traceMu.Unlock()
		defer func() {
			px.traceMu.Lock()
			_ = px.trace.(*bufio.Writer).Flush()
			px.trace = nil
			px.traceMu.Unlock()
		}()
	}
	b := &bench{bin: bin, moto: moto, proxy: px, direct: direct, logDir: o.logDir}
	res := newResults()
	res.TxnCost = readTxnCost(o.txnCost)
	var errs []error
	step := func(name string, f func() error) {
		t := time.Now()
		fmt.Fprintf(os.Stderr, "bench: %s …\n", name)
		if err := f(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			fmt.Fprintf(os.Stderr, "bench: %s FAILED: %v\n", name, err)
			return
		}
		fmt.Fprintf(os.Stderr, "bench: %s done in %s\n", name, time.Since(t).Round(100*time.Millisecond))
	}
	if want("startup") {
		step("start-up ×5", func() (err error) {
			res.StartupMs, res.StartupSamples, err = b.runStartup(ctx)
			return err
		})
	}
	for _, regime := range []struct {
		name  string
		delay time.Duration
	}{{"raw", 0}, {"latency", latency}} {
		for _, pl := range []string{"iamjit", "ideal"} {
			if want(regime.name + "/" + pl) {
				step(pl+" "+regime.name, func() error {
					d, err := b.runProcess(ctx, pl, regime.delay, n)
					res.add(d)
					return err
				})
			}
		}
		nn := n
		if regime.delay > 0 {
			nn = min(n, o.naiveLat)
		}
		if want(regime.name + "/naive") {
			step("naive "+regime.name, func() error {
				d, err := b.runInProcess(ctx, "naive", naive, regime.delay, nn)
				res.add(d)
				return err
			})
		}
	}
	for _, pl := range []string{"iamjit", "ideal"} {
		if want("idle/" + pl) {
			step(fmt.Sprintf("idle %s, %d escalates one at a time", pl, o.idleEvents), func() error {
				r, err := b.runIdle(ctx, pl, latency, nGroups, o.idleEvents)
				if r != nil {
					res.Idle = append(res.Idle, r)
				}
				return err
			})
		}
	}
	if want("sweep") {
		step(fmt.Sprintf("sweep of %d grants", o.sweepItems), func() (err error) {
			res.Sweep, err = b.runSweep(ctx, o.sweepItems)
			return err
		})
	}
	if want("replay") {
		step(fmt.Sprintf("replay of %d dead letters", replayN), func() (err error) {
			res.Replay, err = b.runReplay(ctx)
			return err
		})
	}
	if want("expiry") {
		step(fmt.Sprintf("expiry of %d grants over %s, %d replicas", expiryGrants, expirySpread, expiryReplicas), func() (err error) {
			if res.Expiry, err = b.runExpiry(ctx, false); err != nil {
				res.Expiry = nil // not measured: no figures, no verdict
			}
			return err
		})
	}
	if want("expiry-sso") {
		step(fmt.Sprintf("expiry of %d Identity Center assignments over %s, %d replicas", expiryGrants, expirySpread, expiryReplicas), func() (err error) {
			if res.ExpirySSO, err = b.runExpiry(ctx, true); err != nil {
				res.ExpirySSO = nil
			}
			return err
		})
	}
	res.finish(latency, n, time.Since(started))
	res.print(os.Stdout, true)
	body, _ := json.MarshalIndent(res, "", "  ")
	if only != "" {
		// A partial run merges into the results of the last full one.
		if old, err := os.ReadFile(o.out); err == nil {
			if merged, err := mergeResults(old, body); err == nil {
				body = merged
			} else {
				errs = append(errs, fmt.Errorf("merge into %s: %w", o.out, err))
			}
		}
	}
	if err := os.WriteFile(o.out, append(body, '\n'), 0o644); err != nil {
		errs = append(errs, fmt.Errorf("write %s: %w", o.out, err))
	} else {
		fmt.Printf("\nwrote %s\n", o.out)
	}
	return errors.Join(errs...)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
