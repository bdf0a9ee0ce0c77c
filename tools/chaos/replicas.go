package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Replica is one `iamjit run` process, restarted after every kill.
type Replica struct {
	Index   int
	bin     string
	env     []string
	log     string
	metrics string // the replica's /metrics URL; "" when it serves none

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	expected bool // the current process is being killed or stopped by us
	stopping bool
	starts   int
	kills    int
	exits    []string // exits nobody asked for, of a running process
	// startFails: exit 1 before "iamjit running", a start-up call that
	// failed for now (an injected fault SDK retries did not outlast): the
	// designed outcome, which the orchestrator answers with a restart.
	startFails []string
	logFrom    int64 // the log's size when the current process started
	lastCode   int
	// In-process transaction retries by reason, summed over the processes
	// (each read from /metrics just before it was killed or stopped).
	txRetries map[string]int64
	staleAdds int64 // iamjit_stale_adds_repaired_total, summed over processes
	scrapeErr []string
}

// NewReplica prepares replica i; its output goes to dir/replica-i.log.
// metricsURL is where it serves /metrics (its IAMJIT_HTTP_ADDR).
func NewReplica(i int, bin, dir string, env []string, metricsURL string) *Replica {
	return &Replica{Index: i, bin: bin, env: env, log: filepath.Join(dir, fmt.Sprintf("replica-%d.log", i)),
		metrics: metricsURL, txRetries: map[string]int64{}}
}

// LogPath is where the replica's JSON logs go, across restarts.
func (r *Replica) LogPath() string { return r.log }

// Start runs a new process.
func (r *Replica) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.startLocked()
}

func (r *Replica) startLocked() error {
	f, err := os.OpenFile(r.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("replica %d log: %w", r.Index, err)
	}
	r.starts++
	if fi, err := f.Stat(); err == nil {
		r.logFrom = fi.Size()
	}
	fmt.Fprintf(f, `{"chaos":"start","replica":%d,"start":%d,"time":%q}`+"\n", r.Index, r.starts, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(r.bin, "run")
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start replica %d: %w", r.Index, err)
	}
	done := make(chan struct{})
	r.cmd, r.done, r.expected = cmd, done, false
	go func() {
		err := cmd.Wait()
		f.Close()
		r.exited(cmd, err)
		close(done)
	}()
	return nil
}

// exited records how a process ended; one that nobody stopped is restarted.
func (r *Replica) exited(cmd *exec.Cmd, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	r.lastCode = code
	if r.cmd != cmd || r.expected {
		return
	}
	if code == 1 && !r.cameUp() {
		r.startFails = append(r.startFails, fmt.Sprintf("replica %d (start %d): %s", r.Index, r.starts, r.lastLine()))
	} else {
		r.exits = append(r.exits, fmt.Sprintf("replica %d (start %d) exited on its own: %v", r.Index, r.starts, err))
	}
	if !r.stopping {
		_ = r.startLocked()
	}
}

// Kill SIGKILLs the running process, waits for it and starts a new one.
func (r *Replica) Kill() error {
	r.scrape()
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.expected = true
	r.kills++
	r.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return nil
	}
	return r.startLocked()
}

// Stop sends SIGTERM and returns the exit code, or an error when the
// process did not exit within timeout (it is then killed).
func (r *Replica) Stop(timeout time.Duration) (int, error) {
	r.scrape()
	r.mu.Lock()
	r.stopping, r.expected = true, true
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return -1, fmt.Errorf("replica %d did not exit within %s of SIGTERM", r.Index, timeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastCode, nil
}

// Figures: processes started, kills, exits nobody asked for, and start-ups
// that failed for now.
func (r *Replica) Figures() (starts, kills int, exits, startFails []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts, r.kills, append([]string(nil), r.exits...), append([]string(nil), r.startFails...)
}

// since is what the current process has logged.
func (r *Replica) since() string {
	b, err := os.ReadFile(r.log)
	if err != nil || int64(len(b)) < r.logFrom {
		return ""
	}
	return string(b[r.logFrom:])
}

// cameUp reports whether the current process logged that it runs.
func (r *Replica) cameUp() bool { return strings.Contains(r.since(), `"msg":"iamjit running"`) }

// lastLine is the current process's last line of output (its exit reason).
func (r *Replica) lastLine() string {
	lines := strings.Split(strings.TrimSpace(r.since()), "\n")
	return clipped(lines[len(lines)-1])
}

// TxRetries is what the replica's processes reported in
// iamjit_dynamodb_transaction_retries_total, by reason, and the scrapes
// that failed (a process killed just after it started serves nothing yet).
func (r *Replica) TxRetries() (map[string]int64, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.txRetries))
	for k, v := range r.txRetries {
		out[k] = v
	}
	return out, append([]string(nil), r.scrapeErr...)
}

// scrape adds the running process's retry counters to the replica's.
func (r *Replica) scrape() {
	if r.metrics == "" {
		return
	}
	// A marker in the log before the read: what the process logged before
	// it was counted in what the read returns (iamjit counts a late add
	// before it logs it); what it logs after may be missing from it.
	if f, err := os.OpenFile(r.log, os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintf(f, `{"chaos":"scraped","replica":%d,"time":%q}`+"\n", r.Index, time.Now().UTC().Format(time.RFC3339Nano))
		f.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, err := readRetries(ctx, r.metrics)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.scrapeErr = append(r.scrapeErr, err.Error())
		return
	}
	for k, v := range got {
		if k == staleAddsKey {
			r.staleAdds += v
			continue
		}
		r.txRetries[k] += v
	}
}

// StaleAdds is the sum of iamjit_stale_adds_repaired_total over the
// replica's processes (each read just before it was killed or stopped).
func (r *Replica) StaleAdds() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.staleAdds
}

const (
	retriesMetric = "iamjit_dynamodb_transaction_retries_total"
	staleMetric   = "iamjit_stale_adds_repaired_total"
	// staleAddsKey is where parseRetries puts staleMetric's value.
	staleAddsKey = "(stale adds repaired)"
)

func readRetries(ctx context.Context, url string) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseRetries(resp.Body)
}

// parseRetries reads the retry counter's series
// (iamjit_dynamodb_transaction_retries_total{reason="X"}), and the stale
// adds counter (iamjit_stale_adds_repaired_total) under staleAddsKey, with
// the Prometheus library's own text parser.
func parseRetries(r io.Reader) (map[string]int64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	out := map[string]int64{}
	for _, x := range fams[retriesMetric].GetMetric() {
		for _, l := range x.GetLabel() {
			if l.GetName() == "reason" {
				out[l.GetValue()] += int64(x.GetCounter().GetValue())
			}
		}
	}
	for _, x := range fams[staleMetric].GetMetric() {
		out[staleAddsKey] += int64(x.GetCounter().GetValue())
	}
	return out, nil
}
