// Command iamjit turns approved Sym access requests into temporary IAM group
// membership. See README.md; the contract is docs/design.md. main only wires the
// process; the commands are in internal/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/iamjit/iamjit/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, version, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "iamjit:", err)
	}
	os.Exit(cli.ExitCode(err))
}
