package cli

import (
	"cmp"
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
	o, err := parseReplay(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the flag set printed the usage
	}
	if err != nil {
		return err
	}
	queueURL, err := o.defaultQueues(getenv)
	if err != nil {
		return err
	}
	base, err := awsx.Load(ctx, nil)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("replay: %w", err)}
	}
	client := sqs.NewFromConfig(base)
	if err := o.resolveFrom(ctx, client, queueURL); err != nil {
		return err
	}
	if o.native {
		return startNativeMove(ctx, client, o, stdout)
	}
	return moveDeadLetters(ctx, client, o, stdout, stderr)
}

// replayOptions are the flags of `iamjit replay`.
type replayOptions struct {
	from, to             string
	max                  int
	dry, verbose, native bool
	filter               replay.Filter
}

// parseReplay reads the flags and refuses those that cannot work together:
// a usage error, or flag.ErrHelp when -h asked for the usage.
func parseReplay(args []string, stderr io.Writer) (replayOptions, error) {
	var o replayOptions
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.from, "from", "", "queue to move from (default IAMJIT_DLQ_URL, else the RedrivePolicy of IAMJIT_QUEUE_URL)")
	fs.StringVar(&o.to, "to", "", "queue to move to (default IAMJIT_QUEUE_URL)")
	fs.IntVar(&o.max, "max", 0, "move at most N messages (0: all)")
	fs.BoolVar(&o.dry, "dry-run", false, "list what would move, grouped by reason; change nothing")
	fs.BoolVar(&o.verbose, "verbose", false, "with --dry-run: one line per message")
	fs.BoolVar(&o.native, "native", false, "real AWS only: start an SQS message move task (no filters)")
	var codes listFlag
	fs.Var(&codes, "code", "move only this reason code (repeatable or comma-separated; \"redrive\": no reason recorded)")
	older := fs.Duration("older-than", 0, "move only messages sent at least this long ago")
	newer := fs.Duration("newer-than", 0, "move only messages sent less than this long ago")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageErr("replay: %v", err)
	}
	if fs.NArg() > 0 {
		return o, usageErr("replay: unexpected arguments %q", fs.Args())
	}
	if o.max < 0 || *older < 0 || *newer < 0 {
		return o, usageErr("replay: --max, --older-than and --newer-than must not be negative")
	}
	if *older > 0 && *newer > 0 && *older >= *newer {
		return o, usageErr("replay: --older-than %s and --newer-than %s match nothing", *older, *newer)
	}
	o.filter = replay.Filter{Codes: replay.ParseCodes(codes), OlderThan: *older, NewerThan: *newer}
	if o.native {
		if err := replay.CheckNative(o.filter, o.max, o.dry); err != nil {
			return o, usageErr("replay: %v", err)
		}
	}
	return o, nil
}

// defaultQueues fills in the queues the flags left out from the variables
// and returns IAMJIT_QUEUE_URL. from may stay "": the queue's
// RedrivePolicy names it (resolveFrom). A dry or native run needs no queue
// to move to.
func (o *replayOptions) defaultQueues(getenv func(string) string) (queueURL string, err error) {
	queueURL = getenv("IAMJIT_QUEUE_URL")
	if o.to == "" {
		o.to = queueURL
	}
	if o.from == "" {
		o.from = getenv("IAMJIT_DLQ_URL")
	}
	if o.to == "" && !o.dry && !o.native {
		return "", usageErr("replay: IAMJIT_QUEUE_URL or --to: required (the queue to move to)")
	}
	if o.from == "" && queueURL == "" && o.to == "" {
		return "", usageErr("replay: IAMJIT_DLQ_URL, --from or IAMJIT_QUEUE_URL (with a RedrivePolicy): required")
	}
	return queueURL, nil
}

// resolveFrom reads the queue to move from out of the RedrivePolicy of
// IAMJIT_QUEUE_URL (else of --to) when neither --from nor IAMJIT_DLQ_URL
// named it, and refuses a move from a queue onto itself.
func (o *replayOptions) resolveFrom(ctx context.Context, client *sqs.Client, queueURL string) error {
	if o.from == "" {
		from, err := replay.DLQOf(ctx, client, cmp.Or(queueURL, o.to))
		if errors.Is(err, replay.ErrNoRedrivePolicy) {
			return usageErr("replay: IAMJIT_DLQ_URL or --from: required, %v", err)
		}
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		o.from = from
	}
	if o.from == o.to {
		return usageErr("replay: --from and --to are the same queue %s", o.from)
	}
	return nil
}

// startNativeMove hands the move to SQS (a message move task) and returns
// without waiting for it.
func startNativeMove(ctx context.Context, client *sqs.Client, o replayOptions, stdout io.Writer) error {
	handle, err := replay.StartNative(ctx, client, o.from, o.to)
	if err != nil {
		return fmt.Errorf("replay --native: %w", err)
	}
	fmt.Fprintf(stdout, "started message move task from %s (task handle %s); follow it with aws sqs list-message-move-tasks\n", o.from, handle)
	return nil
}

// moveDeadLetters moves (or, dry, lists) the messages the filter matches,
// with a progress bar on a terminal, and prints the summary. It fails when
// the move stopped or a message could not be moved.
func moveDeadLetters(ctx context.Context, client *sqs.Client, o replayOptions, stdout, stderr io.Writer) error {
	m := &replay.Mover{
		SQS: client, From: o.from, To: o.to, Filter: o.filter, Max: o.max, DryRun: o.dry,
		Now: time.Now, Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	var bar *replay.Bar
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !o.dry {
		total, err := replay.Count(ctx, client, o.from)
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
	if o.dry {
		if err := replay.WriteTable(stdout, rep, o.verbose, time.Now()); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, rep.Summary())
	if runErr != nil {
		return fmt.Errorf("replay stopped after %d moved: %w", rep.Moved, runErr)
	}
	if rep.Failed > 0 {
		return fmt.Errorf("replay: %d message(s) failed; see the warnings above (they stay in %s)", rep.Failed, o.from)
	}
	return nil
}
