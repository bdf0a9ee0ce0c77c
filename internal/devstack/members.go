package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/iamjit/iamjit/events"
)

// MemberAccessRole is the role Create assumes in a member account to build
// that account's stack: the name AWS Organizations gives the admin role it
// creates in every member account. moto does not need it to exist: it
// issues credentials of the account named in the role ARN (docs: "Multi-
// Account support", "Configure an account using STS").
const MemberAccessRole = "OrganizationAccountAccessRole"

// ErrMemberAccount is wrapped by every error about a member account id
// itself (not 12 digits, given twice, the home account): a usage error.
var ErrMemberAccount = errors.New("bad member account")

// Member is one member account's stack: what IAMJIT_ACCOUNTS needs for it
// (ConnectorRoleARN, ExternalID, IAMRoleARN) and the dev resources in it.
// Its group has the home group's name and path; its user is tagged with the
// home user's email but named otherwise (MemberUserName), so the email maps
// to a different IAM user in each account (by tag:email, not by username).
type Member struct {
	AccountID        string
	ConnectorRoleARN string // trusted like the home connector, own external id
	ExternalID       string
	IAMRoleARN       string // the IAM-modifier role, trusted by ConnectorRoleARN
	GroupName        string // = Stack.GroupName
	GroupARN         string
	UserName         string // MemberUserName(Options.User, AccountID), tagged email=Options.User
	JITRoleARN       string // under JITRolePath, assumable by the group
	// Backstop is the member's own backstop: schedule group, execution role
	// (IAMJIT_ACCOUNTS' backstop_role_arn) and dead-letter queue, made in
	// that account with the home stack's names.
	Backstop Backstop
}

// CheckAccountID accepts an AWS account id: exactly 12 digits.
func CheckAccountID(id string) error {
	if !events.IsAccountID(id) {
		return fmt.Errorf("%w %q: an AWS account id is 12 digits", ErrMemberAccount, id)
	}
	return nil
}

// checkMembers refuses bad, repeated and home account ids and returns the
// ids sorted, so the output does not depend on the flags' order.
func checkMembers(ids []string, home string) ([]string, error) {
	var errs []error
	seen := map[string]bool{}
	for _, id := range ids {
		switch err := CheckAccountID(id); {
		case err != nil:
			errs = append(errs, err)
		case seen[id]:
			errs = append(errs, fmt.Errorf("%w %q: given twice", ErrMemberAccount, id))
		case id == home:
			errs = append(errs, fmt.Errorf("%w %q: that is the home account (the stack's queues, table and home connector are in it)", ErrMemberAccount, id))
		}
		seen[id] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	return slices.Compact(sorted), nil
}

// MemberUserName is the dev user's name in member account id: the part of
// the email before @, a dash, the account id (alice@example.com →
// alice-111111111111). It differs from the home user's name on purpose.
func MemberUserName(user, id string) string {
	local := user
	if i := strings.LastIndex(user, "@"); i > 0 {
		local = user[:i]
	}
	// IAM user names are at most 64 characters.
	if limit := 64 - 1 - len(id); len(local) > limit {
		local = local[:limit]
	}
	return local + "-" + id
}

// AccountConfig is cfg acting in account id: its credentials come from
// assuming MemberAccessRole there with cfg's, cached and refreshed. In moto
// the role need not exist; moto derives the account of every later call
// from the access key it issued.
func AccountConfig(cfg aws.Config, id string) aws.Config {
	out := cfg.Copy()
	out.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg),
		"arn:aws:iam::"+id+":role/"+MemberAccessRole,
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "iamjit-dev" }))
	return out
}

// homeAccount is the account the caller's credentials act in.
func homeAccount(ctx context.Context, cfg aws.Config) (string, error) {
	who, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("find the home account (sts GetCallerIdentity): %w", err)
	}
	return aws.ToString(who.Account), nil
}

// member makes account id's stack: group, user, connector and modifier
// roles, JIT role, backstop, with the home stack's names, trust rule and rights.
func (b *builder) member(ctx context.Context, id string) (Member, error) {
	cfg := AccountConfig(b.cfg, id)
	// Never build a member stack in the wrong account: an emulator that
	// ignores the role ARN's account would put it in the home account.
	got, err := homeAccount(ctx, cfg)
	if err != nil {
		return Member{}, fmt.Errorf("member account %s: assume %s there: %w", id, MemberAccessRole, err)
	}
	if got != id {
		return Member{}, fmt.Errorf("member account %s: credentials from AssumeRole into %s act in account %s: the emulator must issue per-account credentials, as moto does", id, MemberAccessRole, got)
	}
	a := iamAccount{o: b.o, iam: iam.NewFromConfig(cfg)}
	m := Member{AccountID: id, GroupName: b.o.Group, UserName: MemberUserName(b.o.User, id)}
	if m.GroupARN, err = a.group(ctx); err != nil {
		return Member{}, fmt.Errorf("member account %s: %w", id, err)
	}
	if acct, err := accountOf(m.GroupARN); err != nil || acct != id {
		return Member{}, fmt.Errorf("member account %s: group made as %s (%v)", id, m.GroupARN, err)
	}
	if err := a.user(ctx, m.UserName); err != nil {
		return Member{}, fmt.Errorf("member account %s: %w", id, err)
	}
	if m.ConnectorRoleARN, m.ExternalID, m.IAMRoleARN, err = a.roles(ctx, b.trusted); err != nil {
		return Member{}, fmt.Errorf("member account %s: %w", id, err)
	}
	if m.JITRoleARN, err = a.jitRole(ctx, id); err != nil {
		return Member{}, fmt.Errorf("member account %s: %w", id, err)
	}
	if m.Backstop, err = newBackstopAccount(b.o, cfg, id).build(ctx); err != nil {
		return Member{}, fmt.Errorf("member account %s: %w", id, err)
	}
	return m, nil
}

// accountSettings is one IAMJIT_ACCOUNTS entry (docs/design.md, Configuration).
type accountSettings struct {
	ConnectorRoleARN string `json:"connector_role_arn"`
	ExternalID       string `json:"external_id"`
	IAMRoleARN       string `json:"iam_role_arn"`
	BackstopRoleARN  string `json:"backstop_role_arn,omitempty"`
	BackstopDLQARN   string `json:"backstop_dlq_arn,omitempty"`
}

// AccountsJSON is IAMJIT_ACCOUNTS for the member accounts:
// {"<id>": {"connector_role_arn", "external_id", "iam_role_arn",
// "backstop_role_arn", "backstop_dlq_arn"}}, keys sorted; "" without members.
func (s Stack) AccountsJSON() string {
	if len(s.Members) == 0 {
		return ""
	}
	accounts := make(map[string]accountSettings, len(s.Members))
	for _, m := range s.Members {
		accounts[m.AccountID] = accountSettings{ConnectorRoleARN: m.ConnectorRoleARN, ExternalID: m.ExternalID,
			IAMRoleARN: m.IAMRoleARN, BackstopRoleARN: m.Backstop.RoleARN, BackstopDLQARN: m.Backstop.DLQARN}
	}
	out, _ := json.Marshal(accounts)
	return string(out)
}
