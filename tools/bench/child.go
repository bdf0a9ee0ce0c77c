package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/devstack"
)

// The ideal pipeline also runs as a process of its own (this binary, re-run
// with -child ideal), started, measured and stopped exactly like `iamjit
// run`: CPU from /proc/<pid>/stat over the same window, calls counted by the
// proxy, done when the proxy has seen every message deleted. In the bench's
// own process its CPU could not be told apart from the proxy's, which
// serves every request of every pipeline, nor from the bench's polling.
// Both children are Go programs built by the same toolchain with the
// default GOMAXPROCS, both carry an awsx.Counter middleware on every client,
// and neither is traced or profiled, so CPU per event compares the work
// each does per event and nothing else.

// Environment of the child.
const (
	childStackEnv    = "IAMJIT_BENCH_STACK"    // devstack.Stack as JSON
	childEndpointEnv = "IAMJIT_BENCH_ENDPOINT" // the proxy's URL
)

// childMain runs the named in-process pipeline until SIGTERM.
func childMain(name string) error {
	if name != "ideal" {
		return fmt.Errorf("-child %q: only ideal runs as a child", name)
	}
	var st devstack.Stack
	if err := json.Unmarshal([]byte(os.Getenv(childStackEnv)), &st); err != nil {
		return fmt.Errorf("%s: %w", childStackEnv, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := proxyConfig(ctx, os.Getenv(childEndpointEnv), awsx.NewCounter())
	if err != nil {
		return err
	}
	err = ideal(ctx, cfg, st, func() {})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// startIdeal runs the ideal pipeline against e's stack as a child process.
func (b *bench) startIdeal(e *env, extra ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the bench binary: %w", err)
	}
	st, err := json.Marshal(e.stack)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-child", "ideal")
	cmd.Env = append(os.Environ(), childStackEnv+"="+string(st), childEndpointEnv+"="+b.proxy.url)
	cmd.Env = append(cmd.Env, extra...)
	return b.startChild(cmd, "")
}
