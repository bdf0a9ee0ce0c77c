package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/backstop"
	"github.com/iamjit/iamjit/grants/iamgroups"
	"github.com/iamjit/iamjit/grants/identitycenter"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/config"
	"github.com/iamjit/iamjit/sessions"
	sdynamo "github.com/iamjit/iamjit/sessions/dynamo"
	"github.com/iamjit/iamjit/sessions/iamroles"
	"github.com/iamjit/iamjit/sessions/idcsets"
)

// connectAccounts builds every account iamjit serves, once: the home
// account (IAMJIT_CONNECTOR_ROLE_ARN's chain) and each of IAMJIT_ACCOUNTS,
// each through its own verified role chain. It fills the registry the
// domain routes by (a.accounts) and the session revokers the process also
// drives (repair, checks), by account id.
func (a *app) connectAccounts(ctx context.Context, now func() time.Time) error {
	cfg := a.cfg
	home, err := a.connect(ctx, "", config.Chain{ConnectorRoleARN: cfg.ConnectorRoleARN, ExternalID: cfg.ExternalID, IAMRoleARN: cfg.IAMRoleARN}, now)
	if err != nil {
		return err
	}
	members := []*grants.Account{}
	for _, id := range slices.Sorted(maps.Keys(cfg.Accounts)) {
		m, err := a.connect(ctx, id, cfg.Accounts[id], now)
		if err != nil {
			return err
		}
		members = append(members, m)
	}
	all := append([]*grants.Account{home}, members...)
	if err := a.connectSSO(ctx, all, now); err != nil {
		return err
	}
	for _, acct := range all {
		if err := a.connectBackstop(ctx, acct, now); err != nil {
			return err
		}
	}
	// NewAccounts refuses an entry that repeats the home account (config
	// catches it earlier when IAMJIT_IAM_ROLE_ARN names the home account).
	if a.accounts, err = grants.NewAccounts(home, members...); err != nil {
		return &exitError{code: 2, err: err}
	}
	// A group may let its members assume roles in another managed account:
	// each account's revoker ends those sessions through the other's chain.
	for id, r := range a.revokers {
		r.Peers = map[string]*sessions.Revoker{}
		for oid, o := range a.revokers {
			if oid != id && oid != "" {
				r.Peers[oid] = o
			}
		}
	}
	return nil
}

// label names an account in start-up errors, with the settings of its
// chain; member is its IAMJIT_ACCOUNTS key, "" for the home account.
func label(member string) string {
	if member == "" {
		return "home account (check IAMJIT_CONNECTOR_ROLE_ARN, IAMJIT_EXTERNAL_ID, IAMJIT_IAM_ROLE_ARN)"
	}
	return "account " + member + " (check its IAMJIT_ACCOUNTS entry)"
}

// connect builds one account: member "" is the home account. The chain is
// verified with GetCallerIdentity; a chain that is denied, or that ends in
// another account than the entry's, is a bad setting (exit 2) named by its
// account.
func (a *app) connect(ctx context.Context, member string, ch config.Chain, now func() time.Time) (*grants.Account, error) {
	iamCfg, id, err := a.chain(ctx, member, ch)
	if err != nil {
		return nil, err
	}
	iamCfg = iamCfg.Copy()
	// One breaker per account, on every IAM call made in it: an account
	// that stops answering fails its own calls fast (see awsx.Breaker).
	iamCfg.APIOptions = append(slices.Clone(iamCfg.APIOptions), awsx.Breaker(breakerName(id), awsx.BreakerSettings{
		Failures: 5, Open: 10 * time.Second,
		OnChange: func(acct string, open bool) {
			a.metrics.AccountFailing(acct, open)
			if open {
				a.log.Warn("account failing: its IAM calls fail fast for a while", "account_id", acct)
			} else {
				a.log.Info("account answering again", "account_id", acct)
			}
		},
	}))
	iamClient := iam.NewFromConfig(iamCfg)
	groups := iamgroups.New(iamClient, 5*time.Minute, now, a.log)
	ident, err := grants.NewIdentity(groups, a.cfg.Identity, 5*time.Minute, now)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	// Same chained IAM client and table as the memberships: the role writes
	// are part of the same revocation.
	rev := &sessions.Revoker{
		Roles: iamroles.New(iamClient, 5*time.Minute, now, a.log), Store: sdynamo.New(a.ddb, a.cfg.Table, now),
		Mode: a.cfg.SessionRevocation, RolePath: a.cfg.RolePath, Now: now, NewToken: newToken, Log: a.log, Observer: a.metrics,
		Settle:  a.cfg.ReadbackDelay, // the same "IAM has settled" as the read-back of a removal
		Account: id,
	}
	if a.revokers == nil {
		a.revokers, a.configs = map[string]*sessions.Revoker{}, map[string]aws.Config{}
	}
	a.revokers[id], a.configs[id] = rev, iamCfg
	if member == "" {
		a.ready = func(ctx context.Context) error { return groups.Ready(ctx, a.cfg.GroupPath) }
	}
	return &grants.Account{ID: id, Home: member == "", IAM: groups, Groups: groups, Members: groups, Identity: ident, Sessions: SessionsHook{rev}}, nil
}

// breakerName names an account's breaker: its id, or "home" when unknown.
func breakerName(id string) string {
	if id == "" {
		return "home"
	}
	return id
}

// chain is the AWS configuration that acts in one account, and the
// account's id: through its verified role chain, or the base credentials
// when no chain is set (the home account only; its id is then the caller's,
// "" if even that cannot be read and no member account needs it).
func (a *app) chain(ctx context.Context, member string, ch config.Chain) (aws.Config, string, error) {
	if ch.ConnectorRoleARN == "" {
		a.log.Warn("no role chain configured: IAM is changed with the base credentials")
		out, err := sts.NewFromConfig(a.base).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		switch {
		case err == nil:
			return a.base, aws.ToString(out.Account), nil
		case len(a.cfg.Accounts) > 0:
			// Group ARNs of the home account must be told from members'.
			return aws.Config{}, "", fmt.Errorf("home account: who are the base credentials: %w", err)
		}
		a.log.Warn("home account id unknown: results carry no account_id", "err", err)
		return a.base, "", nil
	}
	cfg := awsx.Chain(a.base, ch.ConnectorRoleARN, string(ch.ExternalID), ch.IAMRoleARN)
	arn, acct, err := awsx.VerifyChain(ctx, cfg, ch.IAMRoleARN)
	if err != nil {
		err = fmt.Errorf("%s: %w", label(member), err)
		if !awsx.Retryable(err) {
			// A denied chain is a bad setting (role or external id): exit 2.
			return aws.Config{}, "", &exitError{code: 2, err: err}
		}
		return aws.Config{}, "", err
	}
	if member != "" && acct != member {
		return aws.Config{}, "", &exitError{code: 2, err: fmt.Errorf("%s: the role chain ends in account %s", label(member), acct)}
	}
	a.log.Info("role chain verified", "account_id", acct, "caller", arn)
	return cfg, acct, nil
}

// repairSessions runs every account's session repair (and Identity
// Center's) side by side: one that fails does not hold the others back.
func (a *app) repairSessions(ctx context.Context, grace time.Duration, prune bool) (int, error) {
	type repairer struct {
		name   string
		repair func(context.Context, time.Duration, int32, bool) (int, error)
	}
	var all []repairer
	for _, acct := range a.accounts.All() {
		all = append(all, repairer{acct.Name(), a.revokers[acct.ID].Repair})
	}
	if a.sets != nil {
		all = append(all, repairer{"Identity Center permission sets", a.sets.Repair})
	}
	counts := make([]int, len(all))
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, r := range all {
		wg.Go(func() {
			counts[i], errs[i] = r.repair(ctx, grace, 100, prune)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: %w", r.name, errs[i])
			}
		})
	}
	wg.Wait()
	n := 0
	for _, c := range counts {
		n += c
	}
	return n, errors.Join(errs...)
}

// connectSSO sets Identity Center on the account that holds the instance
// (IAMJIT_SSO_ACCOUNT), through that account's chain, and checks at start
// what requests will name: the instance, each permission set and each
// group of the allow-lists. A setting that names what is not there is exit
// 2, naming the variable.
func (a *app) connectSSO(ctx context.Context, accounts []*grants.Account, now func() time.Time) error {
	s := a.cfg.SSO
	if !s.On() {
		a.log.Info("Identity Center targets off (IAMJIT_SSO_INSTANCE_ARN is not set)")
		return nil
	}
	var acct *grants.Account
	for _, c := range accounts {
		if s.Account == "" && c == accounts[0] || s.Account != "" && c.ID == s.Account {
			acct = c
		}
	}
	if acct == nil {
		return usageErr("IAMJIT_SSO_ACCOUNT: %s is neither the home account nor in IAMJIT_ACCOUNTS", s.Account)
	}
	cfg := a.configs[acct.ID].Copy()
	if s.Region != "" {
		cfg.Region = s.Region
	}
	ic := identitycenter.New(cfg, identitycenter.Options{TTL: 5 * time.Minute, Now: now, Log: a.log})
	store, err := ic.Discover(ctx, s.InstanceARN)
	if err != nil {
		return ssoSetting("IAMJIT_SSO_INSTANCE_ARN", err)
	}
	a.ic, a.identityStore = ic, store
	for _, ps := range s.PermissionSets {
		_, err := ic.PermissionSet(ctx, ps)
		if err := ssoSetting("IAMJIT_SSO_PERMISSION_SETS", err); err != nil {
			return err
		}
	}
	for _, g := range s.Groups {
		_, err := ic.Group(ctx, g)
		if err := ssoSetting("IAMJIT_SSO_GROUPS", err); err != nil {
			return err
		}
	}
	a.warnManagementAccount(ctx, cfg)
	// A permission set's sessions end with the assignment, written through
	// the same chain; the table holds its items beside the roles'.
	a.sets = &sessions.PermissionSets{
		API: idcsets.Sets{C: ic}, Store: sdynamo.New(a.ddb, a.cfg.Table, now), Mode: a.cfg.SessionRevocation,
		Now: now, NewToken: newToken, Log: a.log, Observer: a.metrics, Settle: a.cfg.ReadbackDelay,
	}
	a.ssoAccount = acct.ID
	acct.SSO = &grants.IdentityCenter{Members: ic, Users: ic, Lister: ic, Sessions: SetsHook{a.sets}}
	a.log.Info("Identity Center targets on", "instance", s.InstanceARN, "account_id", acct.ID,
		"permission_sets", len(s.PermissionSets), "assignment_accounts", len(s.AssignmentAccounts), "groups", len(s.Groups))
	return nil
}

// ssoSetting names the variable whose value a start-up check refused: a
// refusal (not found, denied, malformed) is exit 2; a failure that may pass
// (throttled, unreachable) is an error to retry the start with.
func ssoSetting(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case awsx.Retryable(err):
		return fmt.Errorf("%s: %w", name, err)
	}
	return &exitError{code: 2, err: fmt.Errorf("%s: %w", name, err)}
}

// warnManagementAccount warns when the organisation's management account is
// one a permission set may be assigned in: a permission set there can
// administer the whole organisation. It is allowed (some teams must), so
// an organisation that cannot be read is only noted.
func (a *app) warnManagementAccount(ctx context.Context, cfg aws.Config) {
	out, err := organizations.NewFromConfig(cfg).DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil {
		a.log.Info("could not tell the organisation's management account; IAMJIT_SSO_ASSIGNMENT_ACCOUNTS not checked for it", "err", err)
		return
	}
	mgmt := aws.ToString(out.Organization.MasterAccountId)
	if slices.Contains(a.cfg.SSO.AssignmentAccounts, mgmt) {
		a.log.Warn("IAMJIT_SSO_ASSIGNMENT_ACCOUNTS lists the organisation's management account: a permission set assigned there can administer the whole organisation",
			"account_id", mgmt)
	}
}

// connectBackstop gives acct its expiry backstop when the account has an
// execution role (IAMJIT_BACKSTOP_ROLE_ARN for the home account, its
// IAMJIT_ACCOUNTS entry's backstop_role_arn for a member), in the region
// iamjit runs in, and checks at start that the group exists and the role may
// be passed: exit 2 naming the setting otherwise. The Identity Center
// account's backstop also removes assignments and group memberships.
func (a *app) connectBackstop(ctx context.Context, acct *grants.Account, now func() time.Time) error {
	b := a.cfg.Backstop
	role, dlq, setting := b.RoleARN, b.DLQARN, backstop.EnvRole
	if !acct.Home {
		ch := a.cfg.Accounts[acct.ID]
		role, dlq, setting = ch.BackstopRoleARN, ch.BackstopDLQARN, fmt.Sprintf("IAMJIT_ACCOUNTS %q backstop_role_arn", acct.ID)
	}
	if role == "" {
		a.log.Info("expiry backstop off: no execution role", "account_id", acct.ID, "setting", setting)
		return nil
	}
	opts := backstop.Options{
		Group: b.Group, RoleARN: role, RoleSetting: setting, DLQARN: dlq, Grace: b.Grace, Now: now, Log: a.log,
		// After every schedule write the store's latest expiry is read
		// again: a concurrent writer's stale time is corrected, never left
		// early (grants/backstop's package comment).
		Latest: func(ctx context.Context, k grants.Key) (time.Time, bool, error) { return a.svc.LatestExpiry(ctx, k) },
	}
	if acct.SSO != nil {
		opts.InstanceARN, opts.IdentityStoreID, opts.MembershipID = a.cfg.SSO.InstanceARN, a.identityStore, a.ic.MembershipID
	}
	bs, err := backstop.New(scheduler.NewFromConfig(a.configs[acct.ID]), opts)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := bs.Check(ctx); err != nil {
		if awsx.Retryable(err) {
			return fmt.Errorf("%s: expiry backstop: %w", acct.Name(), err)
		}
		return &exitError{code: 2, err: fmt.Errorf("%s: expiry backstop: %w", acct.Name(), err)}
	}
	acct.Backstop, a.backstops[acct.ID] = bs, bs
	a.log.Info("expiry backstop on", "account_id", acct.ID, "group", bs.Group(), "grace", b.Grace)
	return nil
}
