package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/dynamo"
)

// prompt is where a bulk revoke asks for confirmation: stdin, and whether
// it is a terminal someone can type at.
type prompt struct {
	in       io.Reader
	terminal bool
}

func stdinPrompt() prompt {
	return prompt{in: os.Stdin, terminal: term.IsTerminal(int(os.Stdin.Fd()))}
}

// maxParallel bounds --parallel: IAM's mutation rate is low, and the SDK's
// retryer absorbs throttling only up to its attempts.
const maxParallel = 16

// grantsRevoke ends active grants early through grants.Service.Revoke (the
// deescalate path: store first, then IAM through the membership protocol)
// and publishes Access Revoked, reason manual: one grant by id, or every
// active grant of a user, a group or all of them (the red button).
// Running it again republishes what is already revoked (one id) or
// finishes what an interrupted run left (bulk: the grants still active).
func grantsRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, logOut io.Writer, in prompt) error {
	req, err := parseRevoke(args, logOut)
	if err != nil {
		return err
	}
	a, err := build(ctx, nil, getenv, logOut)
	if err != nil {
		return err
	}
	if req.id != "" {
		line, err := revokeOne(ctx, a, req.id, req.reason)
		if err != nil {
			return fmt.Errorf("grants revoke: %w", err)
		}
		fmt.Fprintln(stdout, line)
		return nil
	}
	return revokeSelected(ctx, a, req, stdout, logOut, in)
}

// revokeRequest is what `grants revoke` was asked: one grant by id, or the
// active grants a selection matches.
type revokeRequest struct {
	id                   string
	user, group, account string
	all, yes             bool
	parallel             int
	reason               string
}

func (r revokeRequest) bulk() bool {
	return r.all || r.user != "" || r.group != "" || r.account != ""
}

// parseRevoke reads the flags and checks that they ask for one thing: a
// usage error otherwise.
func parseRevoke(args []string, logOut io.Writer) (revokeRequest, error) {
	var r revokeRequest
	fs := flag.NewFlagSet("grants revoke", flag.ContinueOnError)
	fs.SetOutput(logOut)
	fs.StringVar(&r.reason, "reason", "", "why the grants are ended (required; kept in their history and the result's message)")
	fs.StringVar(&r.user, "user", "", "every active grant of this IAM user or requester email")
	fs.StringVar(&r.group, "group", "", "every active grant in this IAM group")
	fs.StringVar(&r.account, "account", "", "only grants in this AWS account (the home account or one of IAMJIT_ACCOUNTS)")
	fs.BoolVar(&r.all, "all", false, "every active grant")
	fs.BoolVar(&r.yes, "yes", false, "revoke without asking for confirmation")
	fs.IntVar(&r.parallel, "parallel", 4, fmt.Sprintf("grants revoked at once (1-%d)", maxParallel))
	var err error
	if r.id, err = parseOptionalID(fs, args); err != nil {
		return r, usageErr("grants revoke: %v", err)
	}
	r.reason = strings.TrimSpace(r.reason)
	return r, r.check()
}

// check reports the first way r does not ask for one thing, as a usage error.
func (r revokeRequest) check() error {
	switch {
	case r.id == "" && !r.bulk():
		return usageErr("grants revoke: a grant id, --user, --group, --account or --all is required")
	case r.id != "" && r.bulk():
		return usageErr("grants revoke: give a grant id or --user/--group/--account/--all, not both")
	case r.all && (r.user != "" || r.group != "" || r.account != ""):
		return usageErr("grants revoke: --all cannot be narrowed by --user, --group or --account")
	case r.parallel < 1 || r.parallel > maxParallel:
		return usageErr("grants revoke: --parallel must be between 1 and %d", maxParallel)
	case r.reason == "":
		return usageErr("grants revoke: --reason is required")
	case len(r.reason) > 1024 || events.HasControl(r.reason):
		return usageErr("grants revoke: --reason is too long or has control characters")
	}
	return nil
}

// selection says which grants a bulk revoke matches, for its messages.
func (r revokeRequest) selection() string {
	what := describeSelection(r.user, r.group)
	if r.account != "" {
		what += " in account " + r.account
	}
	return what
}

// revokeSelected revokes every active grant the request selects, once
// confirmed, and fails when any was not revoked: the same command again
// finishes them.
func revokeSelected(ctx context.Context, a *app, req revokeRequest, stdout, logOut io.Writer, in prompt) error {
	list, err := a.store.List(ctx, dynamo.Filter{Active: true, User: req.user, Group: req.group, Account: req.account})
	if err != nil {
		return fmt.Errorf("grants revoke: %w", err)
	}
	what := req.selection()
	if len(list) == 0 {
		fmt.Fprintf(stdout, "no active grant of %s: nothing to revoke\n", what)
		return nil
	}
	if !req.yes {
		if err := confirm(in, logOut, list, what); err != nil {
			return err
		}
	}
	failed := revokeAll(ctx, a, list, req.reason, req.parallel, stdout)
	fmt.Fprintf(stdout, "revoked %d of %d active grants of %s; %d failed\n", len(list)-failed, len(list), what, failed)
	if failed > 0 {
		return fmt.Errorf("grants revoke: %d of %d grants failed; rerun the same command to finish", failed, len(list))
	}
	return nil
}

// revokeAll revokes list, parallel at a time, printing a line for each,
// and returns how many were not revoked: failed, or not started because
// ctx ended (after Ctrl-C nothing new starts).
func revokeAll(ctx context.Context, a *app, list []grants.Grant, reason string, parallel int, stdout io.Writer) (failed int) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		slots = make(chan struct{}, parallel)
	)
	for _, g := range list {
		// A slot first: after Ctrl-C nothing new starts, and the summary
		// counts what was left for the rerun.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			mu.Lock()
			failed++
			fmt.Fprintf(stdout, "NOT STARTED (interrupted): grant %s (%s in %s)\n", g.ID, g.IAMUser, g.Group)
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			line, err := revokeOne(ctx, a, g.ID, reason)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				fmt.Fprintf(stdout, "FAILED: grant %s (%s in %s): %v\n", g.ID, g.IAMUser, g.Group, err)
				return
			}
			fmt.Fprintln(stdout, line)
		})
	}
	wg.Wait()
	return failed
}

func describeSelection(user, group string) string {
	switch {
	case user != "" && group != "":
		return fmt.Sprintf("user %s in group %s", user, group)
	case user != "":
		return "user " + user
	case group != "":
		return "group " + group
	}
	return "every user and group"
}

// confirm shows what a bulk revoke will end and asks for the count to be
// typed back; without a terminal only --yes may confirm.
func confirm(in prompt, out io.Writer, list []grants.Grant, what string) error {
	if !in.terminal {
		return usageErr("grants revoke: %d active grants of %s match; pass --yes to revoke them (stdin is not a terminal to confirm at)", len(list), what)
	}
	for _, g := range list {
		fmt.Fprintf(out, "  %s  %s in %s, expires %s\n", g.ID, g.IAMUser, g.Group, stamp(g.ExpiresAt))
	}
	want := fmt.Sprintf("revoke %d", len(list))
	fmt.Fprintf(out, "This ends %d active grants of %s, and the role sessions they enabled. Type %q to confirm: ", len(list), what, want)
	line, err := bufio.NewReader(in.in).ReadString('\n')
	if strings.TrimSpace(line) != want {
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("grants revoke: read confirmation: %w", err)
		}
		return errors.New("grants revoke: not confirmed; nothing was revoked")
	}
	return nil
}

// revokeOne revokes one grant and publishes its result, returning the line
// to print. A grant that already ended has its Access Revoked republished
// (same result id), so a failed publish is fixed by running it again.
func revokeOne(ctx context.Context, a *app, id, reason string) (string, error) {
	out, err := a.svc.Revoke(ctx, id, events.RevokedManual)
	if errors.Is(err, grants.ErrNotFound) {
		return "", fmt.Errorf("no grant %q", id)
	}
	if err != nil {
		return "", err
	}
	var note string
	if out.Kind == events.OutcomeDuplicate {
		g, err := a.store.GetGrant(ctx, id)
		if err != nil {
			return "", err
		}
		if g.State != grants.StateRevoked {
			return "", fmt.Errorf("grant %s is %s, not active: nothing to revoke", id, g.State)
		}
		note = fmt.Sprintf("grant %s already ended at %s (%s); republishing its Access Revoked\n", id, stamp(g.RevokedAt), g.RevokeReason)
	} else {
		t := grants.Transition{At: time.Now().UTC(), Action: "note", Note: "manual revoke: " + reason}
		if err := a.store.AppendHistory(ctx, id, t); err != nil {
			a.log.Warn("could not record the revoke reason in the grant's history", "grant_id", id, "err", err)
		}
		for i := range out.Results {
			out.Results[i].Message = "revoked by an operator: " + reason
		}
	}
	if err := a.pub.Publish(ctx, out.Results); err != nil {
		return "", fmt.Errorf("access is revoked but its result was not published (rerun to publish): %w", err)
	}
	lines := make([]string, len(out.Results))
	for i, r := range out.Results {
		lines[i] = fmt.Sprintf("%s: grant %s (%s in %s), reason %s, result_id %s", r.DetailType, r.GrantID, r.IAMUser, r.Group, r.Reason, r.ResultID)
	}
	return note + strings.Join(lines, "\n"), nil
}
