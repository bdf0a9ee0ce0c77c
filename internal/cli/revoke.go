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
	fs := flag.NewFlagSet("grants revoke", flag.ContinueOnError)
	fs.SetOutput(logOut)
	reason := fs.String("reason", "", "why the grants are ended (required; kept in their history and the result's message)")
	user := fs.String("user", "", "every active grant of this IAM user or requester email")
	group := fs.String("group", "", "every active grant in this IAM group")
	acct := fs.String("account", "", "only grants in this AWS account (the home account or one of IAMJIT_ACCOUNTS)")
	all := fs.Bool("all", false, "every active grant")
	yes := fs.Bool("yes", false, "revoke without asking for confirmation")
	parallel := fs.Int("parallel", 4, fmt.Sprintf("grants revoked at once (1-%d)", maxParallel))
	id, err := parseOptionalID(fs, args)
	if err != nil {
		return usageErr("grants revoke: %v", err)
	}
	bulk := *all || *user != "" || *group != "" || *acct != ""
	switch {
	case id == "" && !bulk:
		return usageErr("grants revoke: a grant id, --user, --group, --account or --all is required")
	case id != "" && bulk:
		return usageErr("grants revoke: give a grant id or --user/--group/--account/--all, not both")
	case *all && (*user != "" || *group != "" || *acct != ""):
		return usageErr("grants revoke: --all cannot be narrowed by --user, --group or --account")
	case *parallel < 1 || *parallel > maxParallel:
		return usageErr("grants revoke: --parallel must be between 1 and %d", maxParallel)
	}
	*reason = strings.TrimSpace(*reason)
	if *reason == "" {
		return usageErr("grants revoke: --reason is required")
	}
	if len(*reason) > 1024 || events.HasControl(*reason) {
		return usageErr("grants revoke: --reason is too long or has control characters")
	}
	a, err := build(ctx, nil, getenv, logOut)
	if err != nil {
		return err
	}
	if id != "" {
		line, err := revokeOne(ctx, a, id, *reason)
		if err != nil {
			return fmt.Errorf("grants revoke: %w", err)
		}
		fmt.Fprintln(stdout, line)
		return nil
	}

	list, err := a.store.List(ctx, dynamo.Filter{Active: true, User: *user, Group: *group, Account: *acct})
	if err != nil {
		return fmt.Errorf("grants revoke: %w", err)
	}
	what := describeSelection(*user, *group)
	if *acct != "" {
		what += " in account " + *acct
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "no active grant of %s: nothing to revoke\n", what)
		return nil
	}
	if !*yes {
		if err := confirm(in, logOut, list, what); err != nil {
			return err
		}
	}
	var (
		mu     sync.Mutex
		failed int
		wg     sync.WaitGroup
		slots  = make(chan struct{}, *parallel)
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
			line, err := revokeOne(ctx, a, g.ID, *reason)
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
	fmt.Fprintf(stdout, "revoked %d of %d active grants of %s; %d failed\n", len(list)-failed, len(list), what, failed)
	if failed > 0 {
		return fmt.Errorf("grants revoke: %d of %d grants failed; rerun the same command to finish", failed, len(list))
	}
	return nil
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
