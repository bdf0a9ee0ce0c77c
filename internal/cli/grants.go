package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/dynamo"
)

const grantsUsage = `usage:
  iamjit grants list [--active] [--user USER] [--group GROUP] [--since DURATION|RFC3339] [--json]
  iamjit grants show ID [--json]
  iamjit grants revoke ID --reason TEXT
  iamjit grants revoke (--user USER | --group GROUP | --all) --reason TEXT [--yes] [--parallel N]

The grants commands read the same IAMJIT_* environment as iamjit run.
`

// runGrants lists, shows or revokes grants. It builds the whole app (table,
// role chain, bus) from the same environment as `iamjit run`: a revoke goes
// through grants.Service exactly like a deescalate.
func runGrants(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return grantsCmd(ctx, args, getenv, stdout, os.Stderr, stdinPrompt())
}

func grantsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, logOut io.Writer, in prompt) error {
	if len(args) == 0 {
		fmt.Fprint(logOut, grantsUsage)
		return usageErr("grants: no subcommand given")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list":
		return grantsList(ctx, rest, getenv, stdout, logOut)
	case "show":
		return grantsShow(ctx, rest, getenv, stdout, logOut)
	case "revoke":
		return grantsRevoke(ctx, rest, getenv, stdout, logOut, in)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, grantsUsage)
		return nil
	default:
		fmt.Fprint(logOut, grantsUsage)
		return usageErr("grants: unknown subcommand %q", sub)
	}
}

// parseWithID parses flags around one positional grant id, which may come
// before or after them (`show ID --json` and `show --json ID`).
func parseWithID(fs *flag.FlagSet, args []string) (string, error) {
	id, err := parseOptionalID(fs, args)
	if err == nil && id == "" {
		return "", errors.New("a grant id is required")
	}
	return id, err
}

// parseOptionalID is parseWithID where the id may be absent.
func parseOptionalID(fs *flag.FlagSet, args []string) (string, error) {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return "", err
		}
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return id, nil
}

// parseSince reads a duration back from now (24h) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: a duration back from now must be positive", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q is neither a duration (24h) nor an RFC 3339 time", s)
	}
	return t, nil
}

func grantsList(ctx context.Context, args []string, getenv func(string) string, stdout, logOut io.Writer) error {
	fs := flag.NewFlagSet("grants list", flag.ContinueOnError)
	fs.SetOutput(logOut)
	var f dynamo.Filter
	fs.BoolVar(&f.Active, "active", false, "only ACTIVE grants")
	fs.StringVar(&f.User, "user", "", "IAM user or requester email")
	fs.StringVar(&f.Group, "group", "", "IAM group name")
	fs.StringVar(&f.Account, "account", "", "AWS account id of the group (the home account or one of IAMJIT_ACCOUNTS)")
	since := fs.String("since", "", "granted or ended since: a duration back from now (24h) or an RFC 3339 time")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return usageErr("grants list: %v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("grants list: unexpected argument %q", fs.Arg(0))
	}
	if *since != "" {
		t, err := parseSince(*since, time.Now().UTC())
		if err != nil {
			return usageErr("grants list: %v", err)
		}
		f.Since = t
	}
	a, err := build(ctx, nil, getenv, logOut)
	if err != nil {
		return err
	}
	list, err := a.store.List(ctx, f)
	if err != nil {
		return fmt.Errorf("grants list: %w", err)
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].GrantedAt.Equal(list[j].GrantedAt) {
			return list[i].GrantedAt.After(list[j].GrantedAt)
		}
		return list[i].ID < list[j].ID
	})
	if *asJSON {
		out := make([]grantJSON, len(list))
		for i, g := range list {
			out[i] = a.toJSON(g)
		}
		return writeJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	// The account column only where there is more than one account: a
	// single-account deployment's listing is as it always was.
	many := len(a.accounts.All()) > 1
	head := "ID\tSTATE\tIAM USER\tGROUP\tGRANTED\tEXPIRES\tENDED"
	if many {
		head = "ID\tSTATE\tACCOUNT\tIAM USER\tGROUP\tGRANTED\tEXPIRES\tENDED"
	}
	fmt.Fprintln(tw, head)
	for _, g := range list {
		ended := "-"
		if !g.RevokedAt.IsZero() {
			ended = stamp(g.RevokedAt) + " (" + g.RevokeReason + ")"
		}
		state := string(g.State)
		if many {
			state += "\t" + dash(g.Account)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, state, dash(g.IAMUser), dash(g.Group), stamp(g.GrantedAt), stamp(g.ExpiresAt), ended)
	}
	return tw.Flush()
}

func grantsShow(ctx context.Context, args []string, getenv func(string) string, stdout, logOut io.Writer) error {
	fs := flag.NewFlagSet("grants show", flag.ContinueOnError)
	fs.SetOutput(logOut)
	asJSON := fs.Bool("json", false, "print JSON")
	id, err := parseWithID(fs, args)
	if err != nil {
		return usageErr("grants show: %v", err)
	}
	a, err := build(ctx, nil, getenv, logOut)
	if err != nil {
		return err
	}
	g, err := a.store.GetGrant(ctx, id)
	if errors.Is(err, grants.ErrNotFound) {
		return fmt.Errorf("grants show: no grant %q", id)
	}
	if err != nil {
		return fmt.Errorf("grants show: %w", err)
	}
	if *asJSON {
		return writeJSON(stdout, a.toJSON(g))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	target := [][2]string{{"iam user", g.IAMUser}, {"account", g.Account}, {"group", g.Group}, {"group arn", g.GroupARN}}
	switch g.Kind {
	case grants.PermissionSet:
		target = [][2]string{{"target type", g.Kind.TargetType()}, {"sso user id", g.IAMUser}, {"account", g.Account}, {"permission set", g.Group}}
	case grants.SSOGroup:
		target = [][2]string{{"target type", g.Kind.TargetType()}, {"sso user id", g.IAMUser}, {"account", g.Account}, {"sso group", g.Group}}
	}
	rows := append(append([][2]string{{"id", g.ID}, {"state", string(g.State)}, {"requester", g.Requester}}, target...),
		[][2]string{{"approver", g.Approver}, {"reason", g.Reason},
			{"granted at", stamp(g.GrantedAt)}, {"expires at", stamp(g.ExpiresAt)}, {"revoked at", stamp(g.RevokedAt)},
			{"revoke reason", g.RevokeReason}, {"run srn", g.RunSRN}, {"sym event id", g.SymEventID},
			{"revoke event id", g.RevokeEventID}, {"tombstone", fmt.Sprint(g.Tombstone)}}...)
	for _, kv := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], dash(kv[1]))
	}
	fmt.Fprintln(tw, "\nhistory:")
	fmt.Fprintln(tw, "AT\tACTION\tSTATE\tSYM EVENT\tAWS REQUEST ID\tNOTE")
	for _, h := range g.History {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", stamp(h.At), h.Action, dash(string(h.State)), dash(h.SymEventID), dash(h.IAMRequestID), dash(h.Note))
	}
	return tw.Flush()
}

// grantJSON is a grant as `grants list --json` and `grants show --json`
// print it.
type grantJSON struct {
	ID         string       `json:"id"`
	State      grants.State `json:"state"`
	Requester  string       `json:"requester,omitempty"`
	TargetType string       `json:"target_type,omitempty"`
	AccountID  string       `json:"account_id,omitempty"`
	IAMUser    string       `json:"iam_user,omitempty"`
	Group      string       `json:"group,omitempty"`
	GroupARN   string       `json:"group_arn,omitempty"`
	// Identity Center grants, named as their results name them.
	PermissionSetARN string              `json:"permission_set_arn,omitempty"`
	SSOGroupID       string              `json:"sso_group_id,omitempty"`
	SSOUserID        string              `json:"sso_user_id,omitempty"`
	Approver         string              `json:"approver,omitempty"`
	Reason           string              `json:"reason,omitempty"`
	GrantedAt        *time.Time          `json:"granted_at,omitempty"`
	ExpiresAt        *time.Time          `json:"expires_at,omitempty"`
	RevokedAt        *time.Time          `json:"revoked_at,omitempty"`
	RevokeReason     string              `json:"revoke_reason,omitempty"`
	RunSRN           string              `json:"run_srn,omitempty"`
	SymEventID       string              `json:"sym_event_id,omitempty"`
	RevokeEventID    string              `json:"revoke_event_id,omitempty"`
	Tombstone        bool                `json:"tombstone,omitempty"`
	History          []grants.Transition `json:"history"`
}

func (a *app) toJSON(g grants.Grant) grantJSON {
	h := g.History
	if h == nil {
		h = []grants.Transition{}
	}
	var target events.Result
	grants.SetTarget(&target, g.Key(), g.GroupARN)
	return grantJSON{
		ID: g.ID, State: g.State, Requester: g.Requester, AccountID: g.Account, TargetType: g.Kind.TargetType(),
		IAMUser: target.IAMUser, Group: target.Group, GroupARN: target.GroupARN,
		PermissionSetARN: target.PermissionSetARN, SSOGroupID: target.SSOGroupID, SSOUserID: target.SSOUserID,
		Approver: g.Approver, Reason: g.Reason, GrantedAt: events.TimePtr(g.GrantedAt), ExpiresAt: events.TimePtr(g.ExpiresAt),
		RevokedAt: events.TimePtr(g.RevokedAt), RevokeReason: g.RevokeReason, RunSRN: g.RunSRN, SymEventID: g.SymEventID,
		RevokeEventID: g.RevokeEventID, Tombstone: g.Tombstone, History: h,
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
