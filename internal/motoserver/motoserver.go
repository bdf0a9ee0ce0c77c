// Package motoserver runs a real moto server (the AWS emulator, Python
// package moto[server]) as a child process on a free port, for integration
// tests, benchmarks and demos. It starts moto through moto_iamjit.py, which
// makes moto's DynamoDB atomic, isolated and flat-cost (the file says what
// it changes and why) and refuses any moto but the pinned version. It never
// fakes AWS itself: if moto is missing, tests fail with the command that
// installs it.
package motoserver

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Fixed identity of the emulator: moto accepts any credentials unless IAM
// access control is on, and its default account is 123456789012.
const (
	Region    = "us-east-1"
	AccessKey = "test"
	SecretKey = "test"
	AccountID = "123456789012"
)

// MotoVersion is the moto release the launcher was checked against; it
// refuses any other.
const MotoVersion = "5.2.1"

// NotFound is the failure message when the Python that runs moto is not on
// PATH.
const NotFound = `python3 not found: install Python 3 and moto with pip install "moto[server]==` + MotoVersion + `"`

// Launcher is moto_iamjit.py: moto's server with its DynamoDB fixed.
//
//go:embed moto_iamjit.py
var Launcher []byte

// pythonEnv names the interpreter that has moto installed; default python3.
const pythonEnv = "MOTO_PYTHON"

func python() string {
	if p := os.Getenv(pythonEnv); p != "" {
		return p
	}
	return "python3"
}

const startTimeout = 20 * time.Second

// Options change how moto_server starts.
type Options struct {
	// Env is added to the child's environment, e.g.
	// "INITIAL_NO_AUTH_ACTION_COUNT=20" to turn IAM access control on after
	// the first 20 requests.
	Env []string
}

// Server is one running moto_server.
type Server struct {
	url  string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the process has exited
	stop sync.Once
	// launcher is the script's temporary file, removed on Stop.
	launcher string
}

// Start starts a moto_server for the test and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith is Start with options.
func StartWith(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if _, err := exec.LookPath(python()); err != nil {
		// Fail, never skip: a skipped integration test reads as a pass.
		tb.Fatalf("%s", NotFound)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s, err := StartProcess(ctx, opts.Env)
	if err != nil {
		tb.Fatalf("start moto_server: %v", err)
	}
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("moto_server at %s, last output:\n%s", s.url, tail(s.Output(), 40))
		}
	})
	return s
}

// StartProcess starts moto_server outside a test. ctx bounds only the
// start-up wait; the process runs until Stop. extraEnv is added to the
// child's environment.
func StartProcess(ctx context.Context, extraEnv []string) (*Server, error) {
	if _, err := exec.LookPath(python()); err != nil {
		return nil, errors.New(NotFound)
	}
	launcher, err := writeLauncher()
	if err != nil {
		return nil, err
	}
	// The port is free when we probe it but another process may take it
	// before moto binds; moto then exits early and we try a new port.
	var errs []error
	for range 3 {
		s, err := startOnce(ctx, launcher, extraEnv)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// writeLauncher puts the embedded launcher in a file Python can run: one
// per process, so callers need not know where the source tree is.
func writeLauncher() (string, error) {
	dir, err := os.MkdirTemp("", "iamjit-moto-")
	if err != nil {
		return "", fmt.Errorf("moto launcher: %w", err)
	}
	path := filepath.Join(dir, "moto_iamjit.py")
	if err := os.WriteFile(path, Launcher, 0o600); err != nil {
		return "", fmt.Errorf("moto launcher: %w", err)
	}
	return path, nil
}

func startOnce(ctx context.Context, launcher string, extraEnv []string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		url:      "http://127.0.0.1:" + strconv.Itoa(port),
		out:      &lockedBuffer{},
		done:     make(chan struct{}),
		launcher: launcher,
	}
	s.cmd = exec.Command(python(), launcher, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s.cmd.Env = append(os.Environ(), extraEnv...)
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	// Own process group: moto_server may be a shim (pyenv) that forks the
	// real interpreter, and Stop must kill both.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", launcher, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w; output:\n%s", err, s.Output())
	}
	return s, nil
}

func freePort() (int, error) {
	addr, err := FreeAddr()
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}

// FreeAddr is a local address ("127.0.0.1:port") nobody listens on now, as
// moto's own port is chosen; for the listeners of the processes tests start
// beside it. Another process may take it before the child binds.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls the moto dashboard API until it answers at all.
func (s *Server) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/moto-api/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("moto_server on %s exited during start-up", s.url)
		case <-ctx.Done():
			return fmt.Errorf("moto_server on %s did not answer: %w", s.url, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop kills moto_server and its process group and waits for it to exit.
// It is safe to call more than once.
func (s *Server) Stop() {
	s.stop.Do(func() {
		if s.cmd.Process != nil {
			// Negative pid: the whole group. Moto keeps state in memory only,
			// so there is nothing to flush and SIGKILL is fine.
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
		<-s.done
		_ = os.RemoveAll(filepath.Dir(s.launcher))
	})
}

// URL is the endpoint, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.url }

// Output is everything moto_server has printed so far.
func (s *Server) Output() string { return s.out.String() }

// Reset wipes every service's state (POST /moto-api/reset).
func (s *Server) Reset(tb testing.TB) {
	tb.Helper()
	if err := s.ResetContext(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

// ResetContext is Reset outside a test.
func (s *Server) ResetContext(ctx context.Context) error {
	return s.post(ctx, "/moto-api/reset", "")
}

func (s *Server) post(ctx context.Context, path, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", path, resp.Status)
	}
	return nil
}

// ResetAuth turns IAM access control on at run time (POST
// /moto-api/reset-auth): after freeCalls more requests, every request must be
// signed with credentials moto issued (CreateAccessKey, AssumeRole) and is
// checked against identity and trust policies. freeCalls 0 enforces at once.
// Set up the stack first, then call this; see Options.Env for the
// start-up equivalent.
func (s *Server) ResetAuth(tb testing.TB, freeCalls int) {
	tb.Helper()
	if err := s.post(context.Background(), "/moto-api/reset-auth", strconv.Itoa(freeCalls)); err != nil {
		tb.Fatal(err)
	}
}

// AWSConfig is an SDK config pointing every client at this server.
func (s *Server) AWSConfig(tb testing.TB) aws.Config {
	tb.Helper()
	cfg, err := s.LoadAWSConfig(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// LoadAWSConfig is AWSConfig outside a test.
func (s *Server) LoadAWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")),
		config.WithBaseEndpoint(s.url),
		// A local emulator either answers or is broken; long back-off
		// only slows a failing test down.
		config.WithRetryMaxAttempts(3),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config for moto: %w", err)
	}
	return cfg, nil
}

// Env is the environment a child process (e.g. the iamjit binary) needs to
// talk to this server with the SDK's default chain.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.url,
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// tail is the last n lines of s: moto logs one line per request, and the
// end is where a failure shows.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// lockedBuffer collects the child's output; exec copies into it from its
// own goroutine while tests may read it. moto logs every request, so a long
// benchmark keeps only the most recent output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxOutput = 1 << 20

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxOutput {
		b.buf.Next(b.buf.Len() / 2)
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
