package replay

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Group is the letters of one reason code.
type Group struct {
	Code         string
	Count        int
	Match        int // would move (dry run) or moved
	Oldest       time.Time
	ExampleID    string
	ExampleError string
}

// Groups sums the report's letters by reason code, largest first.
func (r Report) Groups() []Group {
	by := map[string]*Group{}
	for _, l := range r.Letters {
		g := by[l.Code]
		if g == nil {
			g = &Group{Code: l.Code, Oldest: l.Sent, ExampleID: l.ID, ExampleError: l.Error}
			by[l.Code] = g
		}
		g.Count++
		if l.Match {
			g.Match++
		}
		if l.Sent.Before(g.Oldest) {
			g.Oldest, g.ExampleID, g.ExampleError = l.Sent, l.ID, l.Error
		}
	}
	out := make([]Group, 0, len(by))
	for _, g := range by {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code))
	})
	return out
}

// WriteTable prints the letters grouped by reason code, and with verbose
// one line per letter. The example is the oldest letter of the code.
func WriteTable(w io.Writer, r Report, verbose bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	move := "MOVED"
	if r.DryRun {
		move = "WOULD MOVE"
	}
	fmt.Fprintf(tw, "CODE\tCOUNT\t%s\tOLDEST\tEXAMPLE\n", move)
	for _, g := range r.Groups() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", g.Code, g.Count, g.Match, Age(now.Sub(g.Oldest)), example(g.Code, g.ExampleID, g.ExampleError))
	}
	if verbose {
		fmt.Fprintf(tw, "\nMESSAGE ID\tCODE\tAGE\tRECEIVES\t%s\tERROR\n", move)
		for _, l := range r.Letters {
			recv := "-"
			if l.ReceiveCount > 0 {
				recv = fmt.Sprint(l.ReceiveCount)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\n", l.ID, l.Code, Age(now.Sub(l.Sent)), recv, l.Match, oneLine(l.Error, 100))
		}
	}
	return tw.Flush()
}

func example(code, id, msg string) string {
	if code == CodeRedrive {
		return id + " (moved by SQS redrive: search the consumer logs for sqs_message_id=" + id + ")"
	}
	return id + " " + oneLine(msg, 80)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-1] + "…"
	}
	return s
}

// Age is a duration rounded for people: 45s, 12m, 5h3m, 3d4h.
func Age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// Bar draws a progress bar on one terminal line.
type Bar struct {
	w     io.Writer
	total int // approximate letters in the DLQ at the start
}

// NewBar returns a bar for about total letters.
func NewBar(w io.Writer, total int) *Bar { return &Bar{w: w, total: total} }

// Update redraws the bar; use it as Mover.Progress.
func (b *Bar) Update(r Report) {
	const width = 30
	total := max(b.total, r.Seen, 1)
	done := min(width*r.Seen/total, width)
	fmt.Fprintf(b.w, "\r[%s%s] %d/%d  moved=%d skipped=%d failed=%d ",
		strings.Repeat("#", done), strings.Repeat(".", width-done), r.Seen, total, r.Moved, r.Skipped, r.Failed)
}

// Done ends the bar's line.
func (b *Bar) Done() { fmt.Fprintln(b.w) }
