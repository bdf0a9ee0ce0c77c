// Package testkit drives the iamjit binary as a process, as operators and
// the acceptance tests do: a dev stack made by `iamjit dev` in a fresh
// moto_server, `iamjit run` against it, and the result events its results
// queue carries. The end-to-end and hostile-input tests share it; it is test
// support only, never part of the binary.
package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/internal/testbin"
)

// Stack is a dev stack in a fresh moto, with the exports `iamjit dev`
// printed, and the result events read from its results queue so far.
type Stack struct {
	Bin     string
	Moto    *motoserver.Server
	Vars    map[string]string // the IAMJIT_ and AWS_ exports
	Env     []string          // this process's environment, moto's and the exports: what iamjit's commands run with
	Cfg     aws.Config        // an SDK config for moto
	Results Results
}

// exported is what every dev stack must export.
var exported = []string{"IAMJIT_QUEUE_URL", "IAMJIT_DLQ_URL", "IAMJIT_TABLE", "IAMJIT_EVENT_BUS", "IAMJIT_CONNECTOR_ROLE_ARN",
	"IAMJIT_EXTERNAL_ID", "IAMJIT_IAM_ROLE_ARN", "IAMJIT_DEV_SYM_BUS", "IAMJIT_DEV_RESULTS_QUEUE_URL"}

// DevStack builds iamjit, starts moto and runs `iamjit dev devArgs...`,
// reading its exports exactly as a shell would after eval.
func DevStack(t testing.TB, devArgs ...string) *Stack {
	t.Helper()
	s := &Stack{Bin: testbin.Build(t), Moto: motoserver.Start(t), Vars: map[string]string{}}
	cmd := exec.Command(s.Bin, append([]string{"dev"}, devArgs...)...)
	cmd.Env = append(os.Environ(), s.Moto.Env()...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("iamjit dev: %v\n%s", err, StderrOf(err))
	}
	sh := exec.Command("bash", "-c", `eval "$(cat)"; env -0`)
	sh.Stdin = strings.NewReader(string(out))
	sh.Env = []string{"PATH=" + os.Getenv("PATH")}
	envOut, err := sh.Output()
	if err != nil {
		t.Fatalf("eval exports: %v\n%s", err, out)
	}
	for _, kv := range strings.Split(string(envOut), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && (strings.HasPrefix(k, "IAMJIT_") || strings.HasPrefix(k, "AWS_")) {
			s.Vars[k] = v
		}
	}
	for _, k := range exported {
		if s.Vars[k] == "" {
			t.Fatalf("iamjit dev did not export %s:\n%s", k, out)
		}
	}
	s.Env = append(os.Environ(), s.Moto.Env()...)
	for k, v := range s.Vars {
		s.Env = append(s.Env, k+"="+v)
	}
	s.Cfg = s.Moto.AWSConfig(t)
	return s
}

// StderrOf is what a command that failed with err wrote to stderr, when
// exec kept it (Output does).
func StderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// FreeAddr is a local address nobody listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := motoserver.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Proc is a running child process whose output goes to a log file. The
// test's cleanup kills it and, when the test failed, logs its last lines.
type Proc struct {
	Cmd    *exec.Cmd
	Logs   string // the log file
	Addr   string // IAMJIT_HTTP_ADDR, for `iamjit run` started by StartRun
	exited chan struct{}
	err    error
}

// Start starts cmd with its stdout and stderr in a new log file.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	logs, err := os.CreateTemp(t.TempDir(), "run-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		logs.Close()
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, Logs: logs.Name(), exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logs.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s logs (tail):\n%s", strings.Join(cmd.Args, " "), tail(p.Output(), 60, 600))
		}
	})
	return p
}

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is how the process exited (cmd.Wait's result), once Exited is closed.
func (p *Proc) Err() error {
	<-p.exited
	return p.err
}

// Output is what the process has written so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Logs)
	return string(b)
}

// tail is the last n lines of s, each cut to width bytes.
func tail(s string, n, width int) string {
	lines := strings.Split(s, "\n")
	lines = lines[max(0, len(lines)-n):]
	for i := range lines {
		if len(lines[i]) > width {
			lines[i] = lines[i][:width] + "…"
		}
	}
	return strings.Join(lines, "\n")
}

// StartRun starts `iamjit run` with the stack's environment, a metrics
// listener on a free port (p.Addr), a 1s long poll and JSON debug logs;
// extra ("NAME=value") comes last, and the last of a name wins.
func (s *Stack) StartRun(t testing.TB, extra ...string) *Proc {
	t.Helper()
	addr := FreeAddr(t)
	cmd := exec.Command(s.Bin, "run")
	cmd.Env = append(slices.Clone(s.Env), "IAMJIT_HTTP_ADDR="+addr, "IAMJIT_WAIT_TIME=1s",
		"IAMJIT_LOG_FORMAT=json", "IAMJIT_LOG_LEVEL=debug")
	cmd.Env = append(cmd.Env, extra...)
	p := Start(t, cmd)
	p.Addr = addr
	return p
}

// Eventually polls cond until it holds, failing the test when within
// passes first.
func Eventually(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Result is one result event iamjit published, as the results queue
// carried it.
type Result struct {
	DetailType string         `json:"detail-type"`
	Source     string         `json:"source"`
	Detail     map[string]any `json:"detail"`
	Raw        string         `json:"-"` // the whole event
}

// Results collects result events; it is safe for concurrent use.
type Results struct {
	mu  sync.Mutex
	all []Result
}

// All is every result collected so far.
func (r *Results) All() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// Where is the results, in the order they were read, that match.
func (r *Results) Where(match func(Result) bool) []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Result
	for _, ev := range r.all {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// Find is the results of one detail type for one Sym event.
func (r *Results) Find(detailType, symID string) []Result {
	return r.Where(func(ev Result) bool { return ev.DetailType == detailType && ev.Detail["sym_event_id"] == symID })
}

// DrainResults moves every message on the results queue into s.Results.
func (s *Stack) DrainResults(t testing.TB) {
	t.Helper()
	c := sqs.NewFromConfig(s.Cfg)
	q := aws.String(s.Vars["IAMJIT_DEV_RESULTS_QUEUE_URL"])
	for {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: q, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return
		}
		for _, m := range out.Messages {
			r := Result{Raw: aws.ToString(m.Body)}
			if err := json.Unmarshal([]byte(r.Raw), &r); err != nil {
				t.Fatalf("result is not an EventBridge event: %v: %.2000s", err, r.Raw)
			}
			s.Results.mu.Lock()
			s.Results.all = append(s.Results.all, r)
			s.Results.mu.Unlock()
			_, _ = c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: q, ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// WaitResult waits up to 30s for a result of detailType for symID and
// returns the first.
func (s *Stack) WaitResult(t testing.TB, detailType, symID string) Result {
	t.Helper()
	var got []Result
	Eventually(t, detailType+" for "+symID, 30*time.Second, func() bool {
		s.DrainResults(t)
		got = s.Results.Find(detailType, symID)
		return len(got) > 0
	})
	return got[0]
}

// QueueEmpty reports whether the request queue holds no message, visible
// or in flight.
func (s *Stack) QueueEmpty(t testing.TB) bool {
	t.Helper()
	out, err := sqs.NewFromConfig(s.Cfg).GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.Vars["IAMJIT_QUEUE_URL"]),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes["ApproximateNumberOfMessages"] == "0" && out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
}

// MainParallel runs m with -test.parallel raised to n unless the command
// line sets it, for a package whose parallel tests spend their time waiting
// on moto and on the processes they start, not on the CPU: the default
// (GOMAXPROCS) would run two at a time on two cores, each mostly asleep.
// Use it from TestMain: os.Exit(testkit.MainParallel(m, 6)).
func MainParallel(m *testing.M, n int) int {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set && n > runtime.GOMAXPROCS(0) {
		if err := flag.Set("test.parallel", strconv.Itoa(n)); err != nil {
			fmt.Fprintln(os.Stderr, "testkit:", err)
			return 2
		}
	}
	return m.Run()
}
