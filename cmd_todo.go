package main

import (
	"context"
	"errors"
	"io"
)

func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("replay: not built yet (issue 4)")
}

func runGrants(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return errors.New("grants: not built yet (issue 7)")
}

func runReconcile(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return errors.New("reconcile: not built yet (issue 7)")
}
