// Package cli is iamjit's commands: main wires the process (signals, exit
// code) and hands the arguments here. Each command parses its own flags and
// configuration and returns an error; none exits.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
)

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

// ExitCode is the process exit code for err: 0 for nil, 2 for bad
// configuration or usage, 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
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

// Run dispatches a command; every command returns an error, never exits.
// version is the binary's, printed by --version and logged by run.
func Run(ctx context.Context, version string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
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
		return runConsumer(ctx, version, rest, getenv, stderr)
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
