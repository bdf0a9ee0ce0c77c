package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/iamjit/iamjit/internal/motoserver"
)

// proc is one running `iamjit run`, or the ideal pipeline in its own
// process (addr empty: it has no /metrics).
type proc struct {
	cmd     *exec.Cmd
	addr    string // IAMJIT_HTTP_ADDR
	out     *tailBuffer
	done    chan struct{}
	started time.Time
}

// startChild starts cmd with its output kept in a tail buffer (and a log
// file under -logs) and a goroutine that closes done when it exits.
func (b *bench) startChild(cmd *exec.Cmd, addr string) (*proc, error) {
	p := &proc{cmd: cmd, addr: addr, out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if b.logDir != "" {
		f, err := os.CreateTemp(b.logDir, filepath.Base(cmd.Path)+"-*.log")
		if err != nil {
			return nil, err
		}
		go func() { <-p.done; f.Close() }()
		cmd.Stdout, cmd.Stderr = io.MultiWriter(p.out, f), io.MultiWriter(p.out, f)
	}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// startIamjit runs `bin run` with the stack's exports, the SDK pointed at
// the proxy, a metrics listener on a free port and a 1s long poll.
func (b *bench) startIamjit(e *env, extra ...string) (*proc, error) {
	addr, err := motoserver.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.bin, "run")
	cmd.Env = append(os.Environ(), b.moto.Env()...)
	cmd.Env = append(cmd.Env, e.exportsEnv(b.proxy.url)...)
	cmd.Env = append(cmd.Env, "IAMJIT_HTTP_ADDR="+addr, "IAMJIT_WAIT_TIME=1s", "IAMJIT_LOG_FORMAT=json")
	cmd.Env = append(cmd.Env, extra...)
	return b.startChild(cmd, addr)
}

// startPipeline starts `iamjit run`, or for "ideal" the ideal pipeline,
// against e's stack and waits until it receives.
func (b *bench) startPipeline(ctx context.Context, pipeline string, e *env) (*proc, error) {
	start := b.startIamjit
	if pipeline == "ideal" {
		start = b.startIdeal
	}
	p, err := start(e)
	if err != nil {
		return nil, err
	}
	if err := b.waitReceiving(ctx, p); err != nil {
		_, _ = p.stop()
		return nil, err
	}
	return p, nil
}

// waitReceiving waits until the proxy has seen the process's first
// ReceiveMessage and, for iamjit, its metrics answer.
func (b *bench) waitReceiving(ctx context.Context, p *proc) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b.proxy.firstReceive.Load() != 0 {
			if p.addr == "" {
				return nil
			}
			if _, err := p.scrape(ctx); err == nil {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up: %v\n%s", p.cmd.Path, p.cmd.ProcessState, p.out.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not start receiving within 60s:\n%s", p.cmd.Path, p.out.String())
}

// stop sends SIGTERM and waits; it returns the process's rusage.
func (p *proc) stop() (*syscall.Rusage, error) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("%s did not stop within 40s of SIGTERM", p.cmd.Path)
	}
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return nil, fmt.Errorf("no rusage for %s", p.cmd.Path)
	}
	return ru, nil
}

// cpu is the process's user+system CPU so far, from /proc/<pid>/stat.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read /proc stat: %w", err)
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields overall, in clock ticks (100 per second on Linux).
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc stat: %q", s)
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc stat: %q", s)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// metricsSnap is what the bench reads from /metrics.
type metricsSnap struct {
	calls    calls
	errors   calls
	outcomes map[string]int64
}

// getMetrics GETs the process's /metrics and hands the body to read.
func (p *proc) getMetrics(ctx context.Context, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	return read(resp.Body)
}

func (p *proc) scrape(ctx context.Context) (metricsSnap, error) {
	var m metricsSnap
	err := p.getMetrics(ctx, func(r io.Reader) (err error) {
		m, err = parseMetrics(r)
		return err
	})
	return m, err
}

// parseMetrics reads iamjit_aws_calls_total, iamjit_aws_errors_total and
// iamjit_messages_total, with the Prometheus library's own text parser.
func parseMetrics(r io.Reader) (metricsSnap, error) {
	m := metricsSnap{calls: calls{}, errors: calls{}, outcomes: map[string]int64{}}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return m, fmt.Errorf("parse /metrics: %w", err)
	}
	for _, x := range fams["iamjit_aws_calls_total"].GetMetric() {
		m.calls[label(x, "service")+"."+label(x, "operation")] = int64(x.GetCounter().GetValue())
	}
	for _, x := range fams["iamjit_aws_errors_total"].GetMetric() {
		m.errors[label(x, "service")+"."+label(x, "operation")] = int64(x.GetCounter().GetValue())
	}
	for _, x := range fams["iamjit_messages_total"].GetMetric() {
		m.outcomes[label(x, "outcome")] = int64(x.GetCounter().GetValue())
	}
	return m, nil
}

// scrapeByLabel sums every sample of the counter or gauge name by the
// value of its label (all under "" when the metric has no such label).
func (p *proc) scrapeByLabel(ctx context.Context, name, lbl string) (map[string]int64, error) {
	out := map[string]int64{}
	err := p.getMetrics(ctx, func(r io.Reader) error {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(r)
		if err != nil {
			return fmt.Errorf("parse /metrics: %w", err)
		}
		for _, x := range fams[name].GetMetric() {
			v := x.GetCounter().GetValue() + x.GetGauge().GetValue()
			out[label(x, lbl)] += int64(v)
		}
		return nil
	})
	return out, err
}

// label is the value of the sample's label name ("" without it).
func label(x *dto.Metric, name string) string {
	for _, l := range x.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// tailBuffer keeps the last max bytes a child wrote.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.buf.Len()+len(p) > t.max {
		t.buf.Next(t.buf.Len() + len(p) - t.max)
	}
	return t.buf.Write(p)
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.buf.String()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// scrapeCounter sums every sample of the metric name (any labels).
func (p *proc) scrapeCounter(ctx context.Context, name string) (int64, error) {
	var sum float64
	err := p.getMetrics(ctx, func(r io.Reader) error {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, name) {
				continue
			}
			rest := line[len(name):]
			if !strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "{") {
				continue
			}
			f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
			if len(f) == 0 {
				continue
			}
			if n, err := strconv.ParseFloat(f[0], 64); err == nil {
				sum += n
			}
		}
		return sc.Err()
	})
	return int64(sum), err
}
