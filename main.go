// Command iamjit turns approved Sym access requests into temporary IAM group
// membership. See README.md; the contract is DESIGN.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries an exit code: 2 for bad configuration or usage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

const usage = `usage: iamjit <command> [flags]

commands:
  run          consume Sym events, sweep expired grants, serve health and metrics
  dev          create the whole stack in a local emulator and print export lines
  replay       move messages from the dead-letter queue back to the queue
  dlq          show what sits in the dead-letter queue, by reason (replay --dry-run)
  grants       list, show or revoke grants
  reconcile    compare IAM group members with active grants
  healthcheck  probe a running iamjit (for the ECS container health check)
  --version    print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	code := 0
	if err != nil {
		fmt.Fprintln(os.Stderr, "iamjit:", err)
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	os.Exit(code)
}

// run dispatches a command; every command returns an error, never exits.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageErr("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, "iamjit", version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "run":
		return runConsumer(ctx, rest, getenv, stderr)
	case "dev":
		return runDev(ctx, rest, getenv, stdout)
	case "healthcheck":
		return runHealthcheck(ctx, rest, getenv, stdout)
	case "replay":
		return runReplay(ctx, rest, getenv, stdout, stderr)
	case "dlq":
		// What sits in the DLQ, grouped by reason; changes nothing.
		return runReplay(ctx, append([]string{"--dry-run"}, rest...), getenv, stdout, stderr)
	case "grants":
		return runGrants(ctx, rest, getenv, stdout)
	case "reconcile":
		return runReconcile(ctx, rest, getenv, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return usageErr("unknown command %q", cmd)
	}
}
