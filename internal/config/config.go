// Package config reads iamjit's settings from IAMJIT_* environment variables
// and flags of the same meaning, applies defaults, and validates them all at
// once so an operator sees every problem in one run.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants/identitycenter"
	"github.com/iamjit/iamjit/sessions"
)

// Config is everything `iamjit run` needs. Field comments name the variable.
type Config struct {
	QueueURL          string        // IAMJIT_QUEUE_URL (required)
	DLQURL            string        // IAMJIT_DLQ_URL (default: the queue's RedrivePolicy)
	Table             string        // IAMJIT_TABLE (required)
	EventBus          string        // IAMJIT_EVENT_BUS (required)
	ResultSource      string        // IAMJIT_RESULT_SOURCE
	ConnectorRoleARN  string        // IAMJIT_CONNECTOR_ROLE_ARN
	ExternalID        Secret        // IAMJIT_EXTERNAL_ID
	IAMRoleARN        string        // IAMJIT_IAM_ROLE_ARN
	GroupPath         string        // IAMJIT_GROUP_PATH
	AllowedGroups     []string      // IAMJIT_ALLOWED_GROUPS (empty: every group under the path)
	MaxDuration       time.Duration // IAMJIT_MAX_DURATION
	DurationUnit      time.Duration // IAMJIT_DURATION_UNIT
	Identity          []string      // IAMJIT_IDENTITY
	Sources           []string      // IAMJIT_SOURCES
	AcceptBare        bool          // IAMJIT_ACCEPT_BARE
	AllowSelfApproval bool          // IAMJIT_ALLOW_SELF_APPROVAL
	SweepInterval     time.Duration // IAMJIT_SWEEP_INTERVAL
	ExpiryWarning     time.Duration // IAMJIT_EXPIRY_WARNING: Access Expiring this long before a grant ends (0: none)
	ReadbackDelay     time.Duration // IAMJIT_READBACK_DELAY: how long after a removal IAM is read back for a late add
	RepairGrace       time.Duration // IAMJIT_REPAIR_GRACE: how long a membership stays dirty before the sweeper repairs it (0: max(2×visibility, 30s))
	ReconcileInterval time.Duration // IAMJIT_RECONCILE_INTERVAL (0: off)
	ShutdownTimeout   time.Duration // IAMJIT_SHUTDOWN_TIMEOUT
	Workers           int           // IAMJIT_WORKERS
	WaitTime          time.Duration // IAMJIT_WAIT_TIME: SQS long-poll wait
	Retention         time.Duration // IAMJIT_RETENTION
	LogLevel          slog.Level    // IAMJIT_LOG_LEVEL
	LogFormat         string        // IAMJIT_LOG_FORMAT: json, text or auto
	HTTPAddr          string        // IAMJIT_HTTP_ADDR ("": off)
	RolePath          string        // IAMJIT_ROLE_PATH: only roles under it get session-revocation statements
	SessionRevocation string        // IAMJIT_SESSION_REVOCATION: user, role or off
	// Accounts are the member accounts (IAMJIT_ACCOUNTS), by account id;
	// the chain above is the home account's.
	Accounts map[string]Chain
	SSO      SSO
	Backstop Backstop
}

// Backstop is the AWS-run expiry backstop: off unless RoleARN is set (the
// home account's; a member account's is backstop_role_arn in its
// IAMJIT_ACCOUNTS entry).
type Backstop struct {
	RoleARN string        // IAMJIT_BACKSTOP_ROLE_ARN
	Group   string        // IAMJIT_BACKSTOP_GROUP
	Grace   time.Duration // IAMJIT_BACKSTOP_GRACE
	DLQARN  string        // IAMJIT_BACKSTOP_DLQ_ARN
}

// SSO is Identity Center: off unless InstanceARN is set. The allow-lists
// allow nothing when empty.
type SSO struct {
	InstanceARN        string   // IAMJIT_SSO_INSTANCE_ARN
	Account            string   // IAMJIT_SSO_ACCOUNT ("": the home account)
	Region             string   // IAMJIT_SSO_REGION ("": the region iamjit runs in)
	PermissionSets     []string // IAMJIT_SSO_PERMISSION_SETS
	AssignmentAccounts []string // IAMJIT_SSO_ASSIGNMENT_ACCOUNTS
	Groups             []string // IAMJIT_SSO_GROUPS
}

// On reports whether Identity Center targets are served.
func (s SSO) On() bool { return s.InstanceARN != "" }

// Secret is a string that never prints: it keeps the external id out of logs.
type Secret string

func (Secret) String() string                 { return "[redacted]" }
func (s *Secret) Set(v string) error          { *s = Secret(v); return nil } // a flag.Value: usage never prints it
func (Secret) LogValue() slog.Value           { return slog.StringValue("[redacted]") }
func (s Secret) GoString() string             { return s.String() }
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Defaults returns a Config with every default applied.
func Defaults() Config {
	return Config{
		ResultSource:    "iamjit",
		GroupPath:       "/sym/",
		MaxDuration:     12 * time.Hour,
		DurationUnit:    time.Second,
		Identity:        []string{"username", "tag:email"},
		Sources:         []string{"sym"},
		AcceptBare:      false,
		SweepInterval:   30 * time.Second,
		ExpiryWarning:   10 * time.Minute,
		Backstop:        Backstop{Group: "iamjit", Grace: 2 * time.Minute},
		ReadbackDelay:   5 * time.Second,
		ShutdownTimeout: 25 * time.Second,
		Workers:         16,
		WaitTime:        20 * time.Second,
		Retention:       2160 * time.Hour,
		LogLevel:        slog.LevelInfo,
		LogFormat:       "auto",
		HTTPAddr:        ":8080",
		// The path infra/modules/iam_target_group puts its roles under.
		RolePath:          "/jit/",
		SessionRevocation: sessions.RevokeUser,
	}
}

// Load reads env (a getenv function) and then args as flags; flags win.
// It returns every problem it found, joined, each naming its variable.
func Load(args []string, getenv func(string) string) (Config, error) {
	c := Defaults()
	l := &loader{fs: flag.NewFlagSet("run", flag.ContinueOnError), getenv: getenv}
	var text textSettings
	l.bindOutputs(&c)
	l.bindRequests(&c)
	l.bindTiming(&c)
	l.bindOperation(&c, &text)
	l.bindChains(&c, &text)
	l.bindSSO(&c.SSO)
	l.bindBackstop(&c.Backstop)
	l.problems.report(l.fs.Parse(args))
	text.apply(&c, &l.problems)
	l.problems.report(c.Validate())
	return c, l.problems.err()
}

// problems collects every problem, instead of stopping at the first, so
// an operator sees them all in one run.
type problems []error

// add records a problem of the variable name.
func (p *problems) add(name, format string, args ...any) {
	*p = append(*p, fmt.Errorf(name+": "+format, args...))
}

// report records err, if any.
func (p *problems) report(err error) {
	if err != nil {
		*p = append(*p, err)
	}
}

func (p problems) err() error { return errors.Join(p...) }

// loader binds each setting to its variable and to its flag. A variable
// is read as it is bound and a flag when the set is parsed, so flags win.
type loader struct {
	fs       *flag.FlagSet
	getenv   func(string) string
	problems problems
}

// textSettings are read as text and converted only once both the variable
// and the flag are in: they are not Config's type, and a bad flag value is
// reported as a bad variable is, naming it.
type textSettings struct {
	logLevel, workers string
}

// apply converts the text settings into c.
func (t textSettings) apply(c *Config, p *problems) {
	if t.workers != "" {
		var n int
		if _, err := fmt.Sscanf(t.workers, "%d", &n); err != nil || fmt.Sprint(n) != t.workers {
			p.add("IAMJIT_WORKERS", "%q is not a whole number", t.workers)
		} else {
			c.Workers = n
		}
	}
	if t.logLevel != "" {
		if err := c.LogLevel.UnmarshalText([]byte(t.logLevel)); err != nil {
			p.add("IAMJIT_LOG_LEVEL", "%q is not debug, info, warn or error", t.logLevel)
		}
	}
}

// The settings, bound by what they are about. Variables that can be
// invalid are reported in the order they are bound.

// bindOutputs: where iamjit reads requests and writes grants and results.
func (l *loader) bindOutputs(c *Config) {
	l.str(&c.QueueURL, "IAMJIT_QUEUE_URL", "queue-url", "SQS queue to consume")
	l.str(&c.DLQURL, "IAMJIT_DLQ_URL", "dlq-url", "dead-letter queue")
	l.str(&c.Table, "IAMJIT_TABLE", "table", "DynamoDB table")
	l.str(&c.EventBus, "IAMJIT_EVENT_BUS", "event-bus", "EventBridge bus for results")
	l.str(&c.ResultSource, "IAMJIT_RESULT_SOURCE", "result-source", "source of result events")
}

// bindRequests: which requests are accepted, and for what.
func (l *loader) bindRequests(c *Config) {
	l.str(&c.GroupPath, "IAMJIT_GROUP_PATH", "group-path", "IAM path of managed groups")
	l.list(&c.AllowedGroups, "IAMJIT_ALLOWED_GROUPS", "allowed-groups", "comma-separated group names allowed")
	l.dur(&c.MaxDuration, "IAMJIT_MAX_DURATION", "max-duration", "longest grant")
	l.dur(&c.DurationUnit, "IAMJIT_DURATION_UNIT", "duration-unit", "unit of fields.duration")
	l.list(&c.Identity, "IAMJIT_IDENTITY", "identity", "identity strategies")
	l.list(&c.Sources, "IAMJIT_SOURCES", "sources", "accepted EventBridge sources")
	l.boolean(&c.AcceptBare, "IAMJIT_ACCEPT_BARE", "accept-bare", "accept bare SymLogEntries")
	l.boolean(&c.AllowSelfApproval, "IAMJIT_ALLOW_SELF_APPROVAL", "allow-self-approval", "accept requester = approver")
}

// bindTiming: the periods and delays of the background work and shutdown.
func (l *loader) bindTiming(c *Config) {
	l.dur(&c.SweepInterval, "IAMJIT_SWEEP_INTERVAL", "sweep-interval", "sweeper period")
	l.dur(&c.ExpiryWarning, "IAMJIT_EXPIRY_WARNING", "expiry-warning", "Access Expiring this long before a grant ends (0: none)")
	l.dur(&c.ReadbackDelay, "IAMJIT_READBACK_DELAY", "readback-delay", "how long after a removal IAM is read back to undo a late add")
	l.dur(&c.RepairGrace, "IAMJIT_REPAIR_GRACE", "repair-grace", "age of a dirty membership the sweeper repairs (0: max(2×visibility, 30s))")
	l.dur(&c.ReconcileInterval, "IAMJIT_RECONCILE_INTERVAL", "reconcile-interval", "drift check period (0: off)")
	l.dur(&c.ShutdownTimeout, "IAMJIT_SHUTDOWN_TIMEOUT", "shutdown-timeout", "drain time on SIGTERM")
	l.dur(&c.WaitTime, "IAMJIT_WAIT_TIME", "wait-time", "SQS long-poll wait")
	l.dur(&c.Retention, "IAMJIT_RETENTION", "retention", "history kept after a grant ends")
}

// bindOperation: how the process runs, logs and is observed, and how it
// ends the role sessions of an ended membership.
func (l *loader) bindOperation(c *Config, text *textSettings) {
	l.str(&text.logLevel, "IAMJIT_LOG_LEVEL", "log-level", "debug, info, warn or error")
	l.str(&c.LogFormat, "IAMJIT_LOG_FORMAT", "log-format", "json, text or auto")
	l.str(&c.HTTPAddr, "IAMJIT_HTTP_ADDR", "http-addr", "health and metrics listener")
	l.str(&c.RolePath, "IAMJIT_ROLE_PATH", "role-path", "IAM path of the roles whose sessions end with the membership")
	l.str(&c.SessionRevocation, "IAMJIT_SESSION_REVOCATION", "session-revocation", "user (per user where the role requires source identity), role or off")
	l.str(&text.workers, "IAMJIT_WORKERS", "workers", "concurrent messages")
}

// bindChains: the role chains to the home account and the member accounts.
func (l *loader) bindChains(c *Config, text *textSettings) {
	l.str(&c.ConnectorRoleARN, "IAMJIT_CONNECTOR_ROLE_ARN", "connector-role-arn", "connector role")
	l.secret(&c.ExternalID, "IAMJIT_EXTERNAL_ID", "external-id", "external id for the connector role")
	l.str(&c.IAMRoleARN, "IAMJIT_IAM_ROLE_ARN", "iam-role-arn", "IAM-modifier role")
	l.parsed("IAMJIT_ACCOUNTS", "accounts", "member accounts: JSON or @PATH, {\"<account id>\": {\"connector_role_arn\", \"external_id\", \"iam_role_arn\"}}", func(s string) error {
		var err error
		c.Accounts, err = parseAccounts(s)
		return err
	})
}

// bindSSO: Identity Center, its account and its allow-lists.
func (l *loader) bindSSO(s *SSO) {
	l.str(&s.InstanceARN, "IAMJIT_SSO_INSTANCE_ARN", "sso-instance-arn", "Identity Center instance: turns aws_sso_* targets on")
	l.str(&s.Account, "IAMJIT_SSO_ACCOUNT", "sso-account", "account that holds the instance: the home account (empty) or one of IAMJIT_ACCOUNTS")
	l.str(&s.Region, "IAMJIT_SSO_REGION", "sso-region", "the instance's region (empty: iamjit's)")
	l.list(&s.PermissionSets, "IAMJIT_SSO_PERMISSION_SETS", "sso-permission-sets", "comma-separated permission set ARNs that may be assigned")
	l.list(&s.AssignmentAccounts, "IAMJIT_SSO_ASSIGNMENT_ACCOUNTS", "sso-assignment-accounts", "comma-separated account ids permission sets may be assigned in")
	l.list(&s.Groups, "IAMJIT_SSO_GROUPS", "sso-groups", "comma-separated Identity Store group ids that may be joined")
}

// bindBackstop: the schedules' execution role, group, grace and DLQ.
func (l *loader) bindBackstop(b *Backstop) {
	l.str(&b.RoleARN, "IAMJIT_BACKSTOP_ROLE_ARN", "backstop-role-arn", "execution role of the expiry backstop's schedules (empty: off)")
	l.str(&b.Group, "IAMJIT_BACKSTOP_GROUP", "backstop-group", "EventBridge Scheduler group of the backstop's schedules")
	l.dur(&b.Grace, "IAMJIT_BACKSTOP_GRACE", "backstop-grace", "how long after a membership's latest expiry its schedule removes it")
	l.str(&b.DLQARN, "IAMJIT_BACKSTOP_DLQ_ARN", "backstop-dlq-arn", "SQS queue for removals the schedules could not make (empty: none)")
}

// str binds a string: the variable, if set, is the flag's default.
func (l *loader) str(p *string, name, flagName, usage string) {
	if v := l.getenv(name); v != "" {
		*p = v
	}
	l.fs.StringVar(p, flagName, *p, usage+" ("+name+")")
}

// secret binds a Secret: unlike str, its default (the variable's value)
// is never printed in the usage a bad flag shows.
func (l *loader) secret(p *Secret, name, flagName, usage string) {
	if v := l.getenv(name); v != "" {
		*p = Secret(v)
	}
	l.fs.Var(p, flagName, usage+" ("+name+")")
}

// list binds a comma-separated list.
func (l *loader) list(p *[]string, name, flagName, usage string) {
	l.fs.Func(flagName, usage+" ("+name+")", func(s string) error { *p = splitList(s); return nil })
	if v := l.getenv(name); v != "" {
		*p = splitList(v)
	}
}

// parsed binds a value that set parses, from the flag or the variable; a
// bad variable is reported with the other problems, a bad flag by Parse.
func (l *loader) parsed(name, flagName, usage string, set func(string) error) {
	l.fs.Func(flagName, usage+" ("+name+")", set)
	if v := l.getenv(name); v != "" {
		l.problems.report(set(v))
	}
}

// dur binds a duration.
func (l *loader) dur(p *time.Duration, name, flagName, usage string) {
	l.parsed(name, flagName, usage, func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration like 90s or 12h", name, s)
		}
		*p = d
		return nil
	})
}

// boolean binds a boolean: true, 1 or yes; false, 0 or no.
func (l *loader) boolean(p *bool, name, flagName, usage string) {
	l.parsed(name, flagName, usage, func(s string) error {
		switch strings.ToLower(s) {
		case "true", "1", "yes":
			*p = true
		case "false", "0", "no":
			*p = false
		default:
			return fmt.Errorf("%s: %q is not true or false", name, s)
		}
		return nil
	})
}

// Validate reports every invalid or missing setting, each naming its variable.
func (c Config) Validate() error {
	var p problems
	c.checkOutputs(&p)
	c.checkChain(&p)
	c.checkRequests(&p)
	c.checkRuntime(&p)
	c.checkSessionRevocation(&p)
	c.checkAccounts(&p)
	c.SSO.check(&p)
	c.checkLogFormat(&p)
	return p.err()
}

// check: Identity Center's settings are well formed, and set only with an
// instance. Whether they exist is checked at start-up, through the chain.
func (s SSO) check(p *problems) {
	if !s.On() {
		for _, v := range []struct {
			name string
			set  bool
		}{
			{"IAMJIT_SSO_ACCOUNT", s.Account != ""}, {"IAMJIT_SSO_REGION", s.Region != ""},
			{"IAMJIT_SSO_PERMISSION_SETS", len(s.PermissionSets) > 0},
			{"IAMJIT_SSO_ASSIGNMENT_ACCOUNTS", len(s.AssignmentAccounts) > 0}, {"IAMJIT_SSO_GROUPS", len(s.Groups) > 0},
		} {
			if v.set {
				p.add(v.name, "set, but IAMJIT_SSO_INSTANCE_ARN is not: Identity Center targets are off")
			}
		}
		return
	}
	if !identitycenter.IsInstanceARN(s.InstanceARN) {
		p.add("IAMJIT_SSO_INSTANCE_ARN", "%q is not an Identity Center instance ARN (arn:aws:sso:::instance/ssoins-…)", s.InstanceARN)
	}
	if s.Account != "" && !events.IsAccountID(s.Account) {
		p.add("IAMJIT_SSO_ACCOUNT", "%q is not a 12-digit account id", s.Account)
	}
	if s.Region != "" && !regionRE.MatchString(s.Region) {
		p.add("IAMJIT_SSO_REGION", "%q is not an AWS region", s.Region)
	}
	for _, c := range []struct {
		name  string
		list  []string
		valid func(string) bool
		what  string
	}{
		{"IAMJIT_SSO_PERMISSION_SETS", s.PermissionSets, identitycenter.IsPermissionSetARN, "a permission set ARN"},
		{"IAMJIT_SSO_ASSIGNMENT_ACCOUNTS", s.AssignmentAccounts, events.IsAccountID, "a 12-digit account id"},
		{"IAMJIT_SSO_GROUPS", s.Groups, identitycenter.IsGroupID, "an Identity Store group id"},
	} {
		for _, v := range c.list {
			if !c.valid(v) {
				p.add(c.name, "%q is not %s", v, c.what)
			}
		}
	}
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

func (c Config) checkOutputs(p *problems) {
	if c.QueueURL == "" {
		p.add("IAMJIT_QUEUE_URL", "required")
	}
	if c.Table == "" {
		p.add("IAMJIT_TABLE", "required")
	}
	if c.EventBus == "" {
		p.add("IAMJIT_EVENT_BUS", "required")
	}
	if c.ResultSource == "" {
		p.add("IAMJIT_RESULT_SOURCE", "must not be empty")
	}
}

// checkChain: the home account's role chain is both roles or none, and
// the connector role needs its external id.
func (c Config) checkChain(p *problems) {
	if (c.ConnectorRoleARN == "") != (c.IAMRoleARN == "") {
		p.add("IAMJIT_CONNECTOR_ROLE_ARN", "and IAMJIT_IAM_ROLE_ARN are set together or not at all")
	}
	for _, role := range []struct{ name, arn string }{
		{"IAMJIT_CONNECTOR_ROLE_ARN", c.ConnectorRoleARN}, {"IAMJIT_IAM_ROLE_ARN", c.IAMRoleARN},
	} {
		if role.arn != "" && !strings.HasPrefix(role.arn, "arn:") {
			p.add(role.name, "%q is not an ARN", role.arn)
		}
	}
	if c.ConnectorRoleARN != "" && c.ExternalID == "" {
		p.add("IAMJIT_EXTERNAL_ID", "required with IAMJIT_CONNECTOR_ROLE_ARN")
	}
}

// checkRequests: something can be accepted, and what is granted is bounded.
func (c Config) checkRequests(p *problems) {
	if !isIAMPath(c.GroupPath) {
		p.add("IAMJIT_GROUP_PATH", "%q must start and end with / and not be / itself", c.GroupPath)
	}
	if c.MaxDuration <= 0 {
		p.add("IAMJIT_MAX_DURATION", "must be positive")
	}
	if c.DurationUnit <= 0 {
		p.add("IAMJIT_DURATION_UNIT", "must be positive")
	}
	if len(c.Identity) == 0 {
		p.add("IAMJIT_IDENTITY", "needs at least one strategy")
	}
	for _, s := range c.Identity {
		if !validStrategy(s) {
			p.add("IAMJIT_IDENTITY", "%q is not username, tag:KEY, file:PATH or localpart:DOMAIN", s)
		}
	}
	if len(c.Sources) == 0 && !c.AcceptBare {
		p.add("IAMJIT_SOURCES", "is empty and IAMJIT_ACCEPT_BARE is false: nothing would be accepted")
	}
}

// checkRuntime: the periods, delays and concurrency are in range.
func (c Config) checkRuntime(p *problems) {
	if c.SweepInterval <= 0 {
		p.add("IAMJIT_SWEEP_INTERVAL", "must be positive")
	}
	if c.Backstop.Grace <= 0 {
		p.add("IAMJIT_BACKSTOP_GRACE", "must be positive: a backstop must never fire before the expiry")
	}
	if c.ExpiryWarning < 0 {
		p.add("IAMJIT_EXPIRY_WARNING", "must not be negative (0 sends no warning)")
	}
	if c.ReadbackDelay <= 0 || c.ReadbackDelay > 5*time.Minute {
		p.add("IAMJIT_READBACK_DELAY", "must be above 0 and at most 5m")
	}
	if c.RepairGrace < 0 {
		p.add("IAMJIT_REPAIR_GRACE", "must not be negative")
	}
	if c.ReconcileInterval < 0 {
		p.add("IAMJIT_RECONCILE_INTERVAL", "must not be negative")
	}
	if c.ShutdownTimeout <= 0 {
		p.add("IAMJIT_SHUTDOWN_TIMEOUT", "must be positive")
	}
	if c.Workers < 1 || c.Workers > 256 {
		p.add("IAMJIT_WORKERS", "%d is outside 1..256", c.Workers)
	}
	if c.WaitTime < 0 || c.WaitTime > 20*time.Second {
		p.add("IAMJIT_WAIT_TIME", "must be between 0s and 20s")
	}
	if c.Retention <= 0 {
		p.add("IAMJIT_RETENTION", "must be positive")
	}
}

// checkSessionRevocation: the roles whose sessions iamjit denies are
// never its own, and the mode is one it knows.
func (c Config) checkSessionRevocation(p *problems) {
	if !isIAMPath(c.RolePath) {
		p.add("IAMJIT_ROLE_PATH", "%q must start and end with / and not be / itself", c.RolePath)
	} else if strings.HasPrefix(c.RolePath, "/sym/") || strings.HasPrefix("/sym/", c.RolePath) {
		// iamjit's own roles live under /sym/: it must never deny their sessions.
		p.add("IAMJIT_ROLE_PATH", "%q must not contain or lie under /sym/, where iamjit's own roles are", c.RolePath)
	}
	switch c.SessionRevocation {
	case sessions.RevokeUser, sessions.RevokeRole, sessions.RevokeOff:
	default:
		p.add("IAMJIT_SESSION_REVOCATION", "%q is not user, role or off", c.SessionRevocation)
	}
}

// checkAccounts: the home account is not also a member account.
func (c Config) checkAccounts(p *problems) {
	if home, err := arn.Parse(c.IAMRoleARN); err == nil {
		if _, ok := c.Accounts[home.AccountID]; ok {
			p.add("IAMJIT_ACCOUNTS", "entry %q is the home account (IAMJIT_IAM_ROLE_ARN): its chain is the IAMJIT_CONNECTOR_ROLE_ARN one", home.AccountID)
		}
	}
}

func (c Config) checkLogFormat(p *problems) {
	switch c.LogFormat {
	case "json", "text", "auto":
	default:
		p.add("IAMJIT_LOG_FORMAT", "%q is not json, text or auto", c.LogFormat)
	}
}

// isIAMPath reports whether path is an IAM path other than the root: it
// starts and ends with /.
func isIAMPath(path string) bool {
	return strings.HasPrefix(path, "/") && strings.HasSuffix(path, "/") && path != "/"
}

func validStrategy(s string) bool {
	if s == "username" {
		return true
	}
	for _, p := range []string{"tag:", "file:", "localpart:"} {
		if strings.HasPrefix(s, p) && len(s) > len(p) {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
