package main

import (
	"context"
	"errors"
	"io"
)

func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("replay: not built yet (issue 4)")
}
