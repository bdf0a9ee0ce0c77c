// Package config reads iamjit's settings from IAMJIT_* environment variables
// and flags of the same meaning, applies defaults, and validates them all at
// once so an operator sees every problem in one run.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
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
	ReadbackDelay     time.Duration // IAMJIT_READBACK_DELAY: how long after a removal IAM is read back for a late add
	RepairGrace       time.Duration // IAMJIT_REPAIR_GRACE: how long a membership stays dirty before the sweeper repairs it (0: max(2×visibility, 30s))
	ReconcileInterval time.Duration // IAMJIT_RECONCILE_INTERVAL (0: off)
	ShutdownTimeout   time.Duration // IAMJIT_SHUTDOWN_TIMEOUT
	Workers           int           // IAMJIT_WORKERS
	WaitTime          time.Duration // IAMJIT_WAIT_TIME: SQS long-poll wait
	Retention         time.Duration // IAMJIT_RETENTION
	LogLevel          slog.Level    // IAMJIT_LOG_LEVEL
	LogFormat         string        // IAMJIT_LOG_FORMAT: json, text or auto
	HTTPAddr          string        // IAMJIT_HTTP_ADDR ("" : off)
	RolePath          string        // IAMJIT_ROLE_PATH: only roles under it get session-revocation statements
	SessionRevocation string        // IAMJIT_SESSION_REVOCATION: user, role or off
	// Accounts are the member accounts (IAMJIT_ACCOUNTS), by account id;
	// the chain above is the home account's.
	Accounts map[string]Chain
}

// Secret is a string that never prints: it keeps the external id out of logs.
type Secret string

func (Secret) String() string                 { return "[redacted]" }
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
		SessionRevocation: "user",
	}
}

// Load reads env (a getenv function) and then args as flags; flags win.
// It returns every problem it found, joined, each naming its variable.
func Load(args []string, getenv func(string) string) (Config, error) {
	c := Defaults()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var errs []error
	str := func(p *string, name, flagName, usage string) {
		if v := getenv(name); v != "" {
			*p = v
		}
		fs.StringVar(p, flagName, *p, usage+" ("+name+")")
	}
	list := func(p *[]string, name, flagName, usage string) {
		fs.Func(flagName, usage+" ("+name+")", func(s string) error { *p = splitList(s); return nil })
		if v, ok := lookup(getenv, name); ok {
			*p = splitList(v)
		}
	}
	// parsed registers a value that set parses, from the flag or the
	// variable; a bad variable is reported with the others.
	parsed := func(name, flagName, usage string, set func(string) error) {
		fs.Func(flagName, usage+" ("+name+")", set)
		if v := getenv(name); v != "" {
			if err := set(v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	dur := func(p *time.Duration, name, flagName, usage string) {
		parsed(name, flagName, usage, func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration like 90s or 12h", name, s)
			}
			*p = d
			return nil
		})
	}
	boolean := func(p *bool, name, flagName, usage string) {
		parsed(name, flagName, usage, func(s string) error {
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
	var ext, level string
	str(&c.QueueURL, "IAMJIT_QUEUE_URL", "queue-url", "SQS queue to consume")
	str(&c.DLQURL, "IAMJIT_DLQ_URL", "dlq-url", "dead-letter queue")
	str(&c.Table, "IAMJIT_TABLE", "table", "DynamoDB table")
	str(&c.EventBus, "IAMJIT_EVENT_BUS", "event-bus", "EventBridge bus for results")
	str(&c.ResultSource, "IAMJIT_RESULT_SOURCE", "result-source", "source of result events")
	str(&c.ConnectorRoleARN, "IAMJIT_CONNECTOR_ROLE_ARN", "connector-role-arn", "connector role")
	str(&ext, "IAMJIT_EXTERNAL_ID", "external-id", "external id for the connector role")
	str(&c.IAMRoleARN, "IAMJIT_IAM_ROLE_ARN", "iam-role-arn", "IAM-modifier role")
	str(&c.GroupPath, "IAMJIT_GROUP_PATH", "group-path", "IAM path of managed groups")
	list(&c.AllowedGroups, "IAMJIT_ALLOWED_GROUPS", "allowed-groups", "comma-separated group names allowed")
	dur(&c.MaxDuration, "IAMJIT_MAX_DURATION", "max-duration", "longest grant")
	dur(&c.DurationUnit, "IAMJIT_DURATION_UNIT", "duration-unit", "unit of fields.duration")
	list(&c.Identity, "IAMJIT_IDENTITY", "identity", "identity strategies")
	list(&c.Sources, "IAMJIT_SOURCES", "sources", "accepted EventBridge sources")
	boolean(&c.AcceptBare, "IAMJIT_ACCEPT_BARE", "accept-bare", "accept bare SymLogEntries")
	boolean(&c.AllowSelfApproval, "IAMJIT_ALLOW_SELF_APPROVAL", "allow-self-approval", "accept requester = approver")
	dur(&c.SweepInterval, "IAMJIT_SWEEP_INTERVAL", "sweep-interval", "sweeper period")
	dur(&c.ReadbackDelay, "IAMJIT_READBACK_DELAY", "readback-delay", "how long after a removal IAM is read back to undo a late add")
	dur(&c.RepairGrace, "IAMJIT_REPAIR_GRACE", "repair-grace", "age of a dirty membership the sweeper repairs (0: max(2×visibility, 30s))")
	dur(&c.ReconcileInterval, "IAMJIT_RECONCILE_INTERVAL", "reconcile-interval", "drift check period (0: off)")
	dur(&c.ShutdownTimeout, "IAMJIT_SHUTDOWN_TIMEOUT", "shutdown-timeout", "drain time on SIGTERM")
	dur(&c.WaitTime, "IAMJIT_WAIT_TIME", "wait-time", "SQS long-poll wait")
	dur(&c.Retention, "IAMJIT_RETENTION", "retention", "history kept after a grant ends")
	str(&level, "IAMJIT_LOG_LEVEL", "log-level", "debug, info, warn or error")
	str(&c.LogFormat, "IAMJIT_LOG_FORMAT", "log-format", "json, text or auto")
	str(&c.HTTPAddr, "IAMJIT_HTTP_ADDR", "http-addr", "health and metrics listener")
	str(&c.RolePath, "IAMJIT_ROLE_PATH", "role-path", "IAM path of the roles whose sessions end with the membership")
	str(&c.SessionRevocation, "IAMJIT_SESSION_REVOCATION", "session-revocation", "user (per user where the role requires source identity), role or off")
	workers := ""
	str(&workers, "IAMJIT_WORKERS", "workers", "concurrent messages")
	parsed("IAMJIT_ACCOUNTS", "accounts", "member accounts: JSON or @PATH, {\"<account id>\": {\"connector_role_arn\", \"external_id\", \"iam_role_arn\"}}", func(s string) error {
		var err error
		c.Accounts, err = parseAccounts(s)
		return err
	})

	if err := fs.Parse(args); err != nil {
		errs = append(errs, err)
	}
	c.ExternalID = Secret(ext)
	if workers != "" {
		var n int
		if _, err := fmt.Sscanf(workers, "%d", &n); err != nil || fmt.Sprint(n) != workers {
			errs = append(errs, fmt.Errorf("IAMJIT_WORKERS: %q is not a whole number", workers))
		} else {
			c.Workers = n
		}
	}
	if level != "" {
		if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
			errs = append(errs, fmt.Errorf("IAMJIT_LOG_LEVEL: %q is not debug, info, warn or error", level))
		}
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// Validate reports every invalid or missing setting, each naming its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf(name+": "+format, args...))
	}
	if c.QueueURL == "" {
		bad("IAMJIT_QUEUE_URL", "required")
	}
	if c.Table == "" {
		bad("IAMJIT_TABLE", "required")
	}
	if c.EventBus == "" {
		bad("IAMJIT_EVENT_BUS", "required")
	}
	if c.ResultSource == "" {
		bad("IAMJIT_RESULT_SOURCE", "must not be empty")
	}
	if (c.ConnectorRoleARN == "") != (c.IAMRoleARN == "") {
		bad("IAMJIT_CONNECTOR_ROLE_ARN", "and IAMJIT_IAM_ROLE_ARN are set together or not at all")
	}
	for name, v := range map[string]string{"IAMJIT_CONNECTOR_ROLE_ARN": c.ConnectorRoleARN, "IAMJIT_IAM_ROLE_ARN": c.IAMRoleARN} {
		if v != "" && !strings.HasPrefix(v, "arn:") {
			bad(name, "%q is not an ARN", v)
		}
	}
	if c.ConnectorRoleARN != "" && c.ExternalID == "" {
		bad("IAMJIT_EXTERNAL_ID", "required with IAMJIT_CONNECTOR_ROLE_ARN")
	}
	if !strings.HasPrefix(c.GroupPath, "/") || !strings.HasSuffix(c.GroupPath, "/") || c.GroupPath == "/" {
		bad("IAMJIT_GROUP_PATH", "%q must start and end with / and not be / itself", c.GroupPath)
	}
	if c.MaxDuration <= 0 {
		bad("IAMJIT_MAX_DURATION", "must be positive")
	}
	if c.DurationUnit <= 0 {
		bad("IAMJIT_DURATION_UNIT", "must be positive")
	}
	if len(c.Identity) == 0 {
		bad("IAMJIT_IDENTITY", "needs at least one strategy")
	}
	for _, s := range c.Identity {
		if !validStrategy(s) {
			bad("IAMJIT_IDENTITY", "%q is not username, tag:KEY, file:PATH or localpart:DOMAIN", s)
		}
	}
	if len(c.Sources) == 0 && !c.AcceptBare {
		bad("IAMJIT_SOURCES", "is empty and IAMJIT_ACCEPT_BARE is false: nothing would be accepted")
	}
	if c.SweepInterval <= 0 {
		bad("IAMJIT_SWEEP_INTERVAL", "must be positive")
	}
	if c.ReadbackDelay <= 0 || c.ReadbackDelay > 5*time.Minute {
		bad("IAMJIT_READBACK_DELAY", "must be above 0 and at most 5m")
	}
	if c.RepairGrace < 0 {
		bad("IAMJIT_REPAIR_GRACE", "must not be negative")
	}
	if c.ReconcileInterval < 0 {
		bad("IAMJIT_RECONCILE_INTERVAL", "must not be negative")
	}
	if c.ShutdownTimeout <= 0 {
		bad("IAMJIT_SHUTDOWN_TIMEOUT", "must be positive")
	}
	if c.Workers < 1 || c.Workers > 256 {
		bad("IAMJIT_WORKERS", "%d is outside 1..256", c.Workers)
	}
	if c.WaitTime < 0 || c.WaitTime > 20*time.Second {
		bad("IAMJIT_WAIT_TIME", "must be between 0s and 20s")
	}
	if c.Retention <= 0 {
		bad("IAMJIT_RETENTION", "must be positive")
	}
	if !strings.HasPrefix(c.RolePath, "/") || !strings.HasSuffix(c.RolePath, "/") || c.RolePath == "/" {
		bad("IAMJIT_ROLE_PATH", "%q must start and end with / and not be / itself", c.RolePath)
	} else if strings.HasPrefix(c.RolePath, "/sym/") || strings.HasPrefix("/sym/", c.RolePath) {
		// iamjit's own roles live under /sym/: it must never deny their sessions.
		bad("IAMJIT_ROLE_PATH", "%q must not contain or lie under /sym/, where iamjit's own roles are", c.RolePath)
	}
	switch c.SessionRevocation {
	case "user", "role", "off":
	default:
		bad("IAMJIT_SESSION_REVOCATION", "%q is not user, role or off", c.SessionRevocation)
	}
	if home, err := arn.Parse(c.IAMRoleARN); err == nil {
		if _, ok := c.Accounts[home.AccountID]; ok {
			bad("IAMJIT_ACCOUNTS", "entry %q is the home account (IAMJIT_IAM_ROLE_ARN): its chain is the IAMJIT_CONNECTOR_ROLE_ARN one", home.AccountID)
		}
	}
	switch c.LogFormat {
	case "json", "text", "auto":
	default:
		bad("IAMJIT_LOG_FORMAT", "%q is not json, text or auto", c.LogFormat)
	}
	return errors.Join(errs...)
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

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}
