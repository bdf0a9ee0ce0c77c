package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iamjit/iamjit/reconcile"
)

// exitDrift is the exit code of `iamjit reconcile` when drift was found and
// is still there (not enforced, or not enforceable).
const exitDrift = 3

// runReconcile compares every managed group's IAM members with the active
// grants. It needs the same environment as `iamjit run` (build checks it
// all): operators run it with the service's settings.
func runReconcile(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return reconcileCmd(ctx, args, getenv, stdout, os.Stderr)
}

func reconcileCmd(ctx context.Context, args []string, getenv func(string) string, stdout, logOut io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(logOut)
	enforce := fs.Bool("enforce", false, "remove members no grant explains (publishing Access Revoked, reason drift) and re-add users whose active grant lost its membership")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return usageErr("reconcile: %v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("reconcile: unexpected argument %q", fs.Arg(0))
	}
	a, err := build(ctx, nil, getenv, logOut)
	if err != nil {
		return err
	}
	rep, runErr := a.reconciler().Run(ctx, *enforce)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("reconcile: write report: %w", err)
		}
	} else if err := writeDifferences(stdout, rep); err != nil {
		return fmt.Errorf("reconcile: write report: %w", err)
	}
	a.log.Info("reconcile done", "groups", rep.Groups, "active_grants", rep.Active, "drift", rep.Drift(), "enforced", *enforce)
	if runErr != nil {
		return fmt.Errorf("reconcile: %w", runErr)
	}
	if left := remaining(rep); left > 0 {
		return &exitError{code: exitDrift, err: fmt.Errorf("reconcile: %d differences between IAM and the grants remain", left)}
	}
	return nil
}

// remaining counts drift that is still there after the run.
func remaining(rep reconcile.Report) int {
	n := 0
	for _, d := range rep.Differences {
		if !d.Drift() {
			continue
		}
		switch d.Action {
		case reconcile.ActionRemoved, reconcile.ActionReadded, reconcile.ActionKept, reconcile.ActionNone, reconcile.ActionRestored:
		default:
			n++
		}
	}
	return n
}

func writeDifferences(w io.Writer, rep reconcile.Report) error {
	if len(rep.Differences) == 0 {
		_, err := fmt.Fprintf(w, "no drift: %d groups, %d active grants\n", rep.Groups, rep.Active)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tUSER\tGROUP/ROLE\tGRANTS\tACTION")
	for _, d := range rep.Differences {
		ids := strings.Join(d.GrantIDs, ",")
		if ids == "" {
			ids = "-"
		}
		action := d.Action
		if action == "" {
			action = "-"
		}
		if d.Error != "" {
			action += ": " + d.Error
		}
		where := d.Group
		if d.Role != "" {
			where = d.Role
		}
		if len(d.SessionsRevoked) > 0 {
			action += " (sessions revoked on " + strings.Join(d.SessionsRevoked, ",") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Kind, d.IAMUser, where, ids, action)
	}
	return tw.Flush()
}

// reconciler wires package reconcile to the app's adapters. The drift
// window (what makes an Access Revoked (drift) result id stable across
// replicas and reruns) is IAMJIT_RECONCILE_INTERVAL, or an hour when it is 0.
func (a *app) reconciler() *reconcile.Reconciler {
	window := a.cfg.ReconcileInterval
	if window <= 0 {
		window = time.Hour
	}
	checks := map[string][]reconcile.SessionChecker{}
	for id, r := range a.revokers {
		checks[id] = append(checks[id], r)
	}
	if a.sets != nil {
		checks[a.ssoAccount] = append(checks[a.ssoAccount], a.sets)
	}
	return &reconcile.Reconciler{
		Accounts: a.accounts, SessionChecks: checks,
		SSO:   reconcile.SSOTargets{PermissionSets: a.cfg.SSO.PermissionSets, Accounts: a.cfg.SSO.AssignmentAccounts, Groups: a.cfg.SSO.Groups},
		Store: a.store, Converger: a.svc, Publisher: a.pub,
		GroupPath: a.cfg.GroupPath, AllowedGroups: a.cfg.AllowedGroups, Window: window,
		Now: func() time.Time { return time.Now().UTC() }, Log: a.log,
	}
}

// reconcileLoop enforces every IAMJIT_RECONCILE_INTERVAL (0: off): `run` is
// the enforcer, so it repairs what it finds. Every replica may run it; the
// membership protocol keeps concurrent repairs safe and the drift result id
// is the same within one window.
func (a *app) reconcileLoop(ctx context.Context) {
	if a.cfg.ReconcileInterval <= 0 {
		return
	}
	r := a.reconciler()
	t := time.NewTicker(a.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		rep, err := r.Run(ctx, true)
		repaired := 0
		for _, d := range rep.Differences {
			if d.Action == reconcile.ActionRemoved || d.Action == reconcile.ActionReadded {
				repaired++
			}
			if d.Drift() {
				a.log.Warn("drift", "kind", d.Kind, "iam_user", d.IAMUser, "group", d.Group,
					"grant_ids", strings.Join(d.GrantIDs, ","), "action", d.Action, "result_id", d.ResultID, "err", d.Error)
			}
		}
		a.metrics.Reconciled(rep.Drift(), repaired, err != nil)
		missing := 0
		for _, d := range rep.Differences {
			if d.Kind == reconcile.MissingRevocation {
				missing++
			}
		}
		a.metrics.SessionsMissing(missing)
		if err != nil && ctx.Err() == nil {
			a.log.Error("reconcile incomplete; the next run retries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
