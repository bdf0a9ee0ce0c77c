package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/term"

	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/replay"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return fmt.Sprint(*l) }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runReplay moves dead letters back to the queue, or with --dry-run lists
// them grouped by reason (the DLQ view). It needs only SQS: the run
// configuration (table, bus, role chain) is not read.
func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "queue to move from (default IAMJIT_DLQ_URL, else the RedrivePolicy of IAMJIT_QUEUE_URL)")
	to := fs.String("to", "", "queue to move to (default IAMJIT_QUEUE_URL)")
	maxN := fs.Int("max", 0, "move at most N messages (0: all)")
	dry := fs.Bool("dry-run", false, "list what would move, grouped by reason; change nothing")
	verbose := fs.Bool("verbose", false, "with --dry-run: one line per message")
	native := fs.Bool("native", false, "real AWS only: start an SQS message move task (no filters)")
	var codes listFlag
	fs.Var(&codes, "code", "move only this reason code (repeatable or comma-separated; \"redrive\": no reason recorded)")
	older := fs.Duration("older-than", 0, "move only messages sent at least this long ago")
	newer := fs.Duration("newer-than", 0, "move only messages sent less than this long ago")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageErr("replay: %v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("replay: unexpected arguments %q", fs.Args())
	}
	if *maxN < 0 || *older < 0 || *newer < 0 {
		return usageErr("replay: --max, --older-than and --newer-than must not be negative")
	}
	if *older > 0 && *newer > 0 && *older >= *newer {
		return usageErr("replay: --older-than %s and --newer-than %s match nothing", *older, *newer)
	}
	filter := replay.Filter{Codes: replay.ParseCodes(codes), OlderThan: *older, NewerThan: *newer}
	if *native {
		if err := replay.CheckNative(filter, *maxN, *dry); err != nil {
			return usageErr("replay: %v", err)
		}
	}
	queueURL := getenv("IAMJIT_QUEUE_URL")
	if *to == "" {
		*to = queueURL
	}
	if *from == "" {
		*from = getenv("IAMJIT_DLQ_URL")
	}
	if *to == "" && !*dry && !*native {
		return usageErr("replay: IAMJIT_QUEUE_URL or --to: required (the queue to move to)")
	}
	if *from == "" && queueURL == "" && *to == "" {
		return usageErr("replay: IAMJIT_DLQ_URL, --from or IAMJIT_QUEUE_URL (with a RedrivePolicy): required")
	}
	base, err := awsx.Load(ctx, nil)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("replay: %w", err)}
	}
	client := sqs.NewFromConfig(base)
	if *from == "" {
		src := queueURL
		if src == "" {
			src = *to
		}
		if *from, err = replay.DLQOf(ctx, client, src); err != nil {
			if errors.Is(err, replay.ErrNoRedrivePolicy) {
				return usageErr("replay: IAMJIT_DLQ_URL or --from: required, %v", err)
			}
			return fmt.Errorf("replay: %w", err)
		}
	}
	if *from == *to {
		return usageErr("replay: --from and --to are the same queue %s", *from)
	}
	if *native {
		handle, err := replay.StartNative(ctx, client, *from, *to)
		if err != nil {
			return fmt.Errorf("replay --native: %w", err)
		}
		fmt.Fprintf(stdout, "started message move task from %s (task handle %s); follow it with aws sqs list-message-move-tasks\n", *from, handle)
		return nil
	}

	m := &replay.Mover{
		SQS: client, From: *from, To: *to, Filter: filter, Max: *maxN, DryRun: *dry,
		Now: time.Now, Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	var bar *replay.Bar
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !*dry {
		total, err := replay.Count(ctx, client, *from)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		bar = replay.NewBar(stderr, total)
		m.Progress = bar.Update
	}
	rep, runErr := m.Run(ctx)
	if bar != nil {
		bar.Done()
	}
	if *dry {
		if err := replay.WriteTable(stdout, rep, *verbose, time.Now()); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, rep.Summary())
	if runErr != nil {
		return fmt.Errorf("replay stopped after %d moved: %w", rep.Moved, runErr)
	}
	if rep.Failed > 0 {
		return fmt.Errorf("replay: %d message(s) failed; see the warnings above (they stay in %s)", rep.Failed, *from)
	}
	return nil
}
