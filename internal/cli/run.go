package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/term"

	"github.com/iamjit/iamjit/consumer"
	ebpub "github.com/iamjit/iamjit/events/eventbridge"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/backstop"
	"github.com/iamjit/iamjit/grants/dynamo"
	"github.com/iamjit/iamjit/grants/identitycenter"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/config"
	"github.com/iamjit/iamjit/internal/metrics"
	"github.com/iamjit/iamjit/sessions"
)

// app is everything built once from the configuration.
type app struct {
	cfg           config.Config
	log           *slog.Logger
	base          aws.Config
	sqs           *sqs.Client
	ddb           *dynamodb.Client
	accounts      *grants.Accounts              // every account served, each through its own chain
	revokers      map[string]*sessions.Revoker  // each account's session revocation, by account id
	configs       map[string]aws.Config         // each account's chained AWS configuration, by account id
	ready         func(context.Context) error   // the home chain's readiness probe
	sets          *sessions.PermissionSets      // Identity Center's session revocation; nil when it is off
	ssoAccount    string                        // the account that holds the Identity Center instance
	ic            *identitycenter.Client        // the Identity Center adapter; nil when it is off
	identityStore string                        // the instance's Identity Store id
	backstops     map[string]*backstop.Backstop // each account's expiry backstop, by account id (absent: off)
	store         *dynamo.Store
	svc           *grants.Service
	timers        *grants.Timers // iamjit run only: the one-shot commands leave expiry and read-back to the sweep
	pub           *ebpub.Publisher
	calls         *awsx.Counter
	metrics       *metrics.Metrics
	dlqURL        string
	maxRecv       int
	visibility    time.Duration // the queue's visibility timeout
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	text := cfg.LogFormat == "text"
	if cfg.LogFormat == "auto" {
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			text = true
		}
	}
	// The wrapper adds the ids the consumer puts in the context
	// (sqs_message_id, sym_event_id, grant_id) to every line about a message.
	if text {
		return slog.New(consumer.NewLogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(consumer.NewLogHandler(slog.NewJSONHandler(w, opts)))
}

func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// build loads the configuration and the AWS clients, and checks that the
// role chain, the table and the queue are reachable before anything runs.
func build(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer) (*app, error) {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("configuration:\n%w", err)}
	}
	a := &app{cfg: cfg, log: newLogger(cfg, logOut), calls: awsx.NewCounter(), backstops: map[string]*backstop.Backstop{}}
	if a.metrics, err = metrics.New(prometheus.NewRegistry(), a.calls); err != nil {
		return nil, err
	}
	a.base, err = awsx.Load(ctx, a.calls)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	a.sqs = sqs.NewFromConfig(a.base)
	// Conflicted and throttled transactions are retried here, at once,
	// not after an SQS visibility back-off; the retries are counted.
	a.ddb = dynamodb.NewFromConfig(a.base, dynamo.WithRetryer(a.metrics.TransactionRetried))
	now := func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
	a.pub = ebpub.New(eventbridge.NewFromConfig(a.base), cfg.EventBus, cfg.ResultSource)
	// Every account's chain is built once and verified here; one that is
	// denied stops start-up naming it.
	if err := a.connectAccounts(ctx, now); err != nil {
		return nil, err
	}
	a.store = dynamo.New(a.ddb, cfg.Table, cfg.Retention, now, a.accounts.Home().ID)
	a.store.RecheckAfter = cfg.ReadbackDelay
	a.svc = &grants.Service{
		Store: a.store, Accounts: a.accounts, Now: now, Log: a.log, NewToken: newToken,
		OnStaleAdd: func() { a.metrics.StaleAddsRepaired(1) },
		OnBackstop: a.metrics.Backstop,
		Policy: grants.Policy{
			GroupPath: cfg.GroupPath, AllowedGroups: cfg.AllowedGroups, MaxDuration: cfg.MaxDuration,
			DurationUnit: cfg.DurationUnit, Sources: cfg.Sources, AcceptBare: cfg.AcceptBare,
			AllowSelfApproval: cfg.AllowSelfApproval, MaxClockSkew: 5 * time.Minute,
			PermissionSets: cfg.SSO.PermissionSets, AssignmentAccounts: cfg.SSO.AssignmentAccounts, SSOGroups: cfg.SSO.Groups,
		},
	}
	if _, err := a.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &cfg.Table}); err != nil {
		return nil, fmt.Errorf("IAMJIT_TABLE %s is not reachable: %w", cfg.Table, err)
	}
	return a, nil
}

// queueSettings reads the queue's visibility timeout and redrive policy; the
// DLQ comes from IAMJIT_DLQ_URL or the policy.
func (a *app) queueSettings(ctx context.Context) error {
	out, err := a.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       &a.cfg.QueueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameVisibilityTimeout, sqstypes.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return fmt.Errorf("IAMJIT_QUEUE_URL %s is not reachable: %w", a.cfg.QueueURL, err)
	}
	vis, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameVisibilityTimeout)])
	a.visibility = time.Duration(vis) * time.Second
	a.maxRecv = 5
	a.dlqURL = a.cfg.DLQURL
	if rp := out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)]; rp != "" {
		var p struct {
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     any    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(rp), &p); err != nil {
			return fmt.Errorf("queue RedrivePolicy is not JSON: %w", err)
		}
		if n, err := strconv.Atoi(fmt.Sprint(p.MaxReceiveCount)); err == nil && n > 0 {
			a.maxRecv = n
		}
		if a.dlqURL == "" {
			a.dlqURL, err = queueURLFromARN(ctx, a.sqs, p.DeadLetterTargetArn)
			if err != nil {
				return err
			}
		}
	}
	if a.dlqURL == "" {
		return &exitError{code: 2, err: errors.New("IAMJIT_DLQ_URL: required when the queue has no RedrivePolicy")}
	}
	return nil
}

func queueURLFromARN(ctx context.Context, c *sqs.Client, arn string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 {
		return "", fmt.Errorf("RedrivePolicy deadLetterTargetArn %q is not an SQS ARN", arn)
	}
	out, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: &parts[5], QueueOwnerAWSAccountId: &parts[4]})
	if err != nil {
		return "", fmt.Errorf("find the DLQ %s: %w", arn, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

func runConsumer(ctx context.Context, version string, args []string, getenv func(string) string, stderr io.Writer) error {
	a, err := build(ctx, args, getenv, stderr)
	if err != nil {
		return err
	}
	if err := a.queueSettings(ctx); err != nil {
		return err
	}
	var alive atomic.Int64
	alive.Store(time.Now().UnixNano())
	c := &consumer.Consumer{
		SQS: a.sqs, QueueURL: a.cfg.QueueURL, DLQURL: a.dlqURL,
		Handler:   &consumer.SymHandler{Grants: a.svc, Log: a.log},
		Publisher: a.pub, Workers: a.cfg.Workers, WaitTime: a.cfg.WaitTime,
		Visibility: a.visibility, MaxReceive: a.maxRecv,
		Backoff: 2 * time.Second, MaxBackoff: 5 * time.Minute,
		Version: version, Log: a.log, Now: time.Now, Observer: a.metrics,
		Alive: func() { alive.Store(time.Now().UnixNano()) },
	}
	stopHTTP, err := a.serveHTTP(ctx, &alive)
	if err != nil {
		return err
	}
	defer stopHTTP()
	// Grants end at their expiry to the second and removals are read back
	// after IAMJIT_READBACK_DELAY; the sweep stays the safety net. The
	// horizon of two sweeps lets every sweep arm what expires before the
	// next one.
	timers := grants.NewTimers(a.svc, a.pub, 2*a.cfg.SweepInterval, a.cfg.ReadbackDelay, a.log)
	timers.Warning = a.cfg.ExpiryWarning
	a.svc.Timers, a.timers = timers, timers
	timersDone := timers.Start(ctx)
	defer timersDone()
	sweepDone := make(chan struct{})
	go func() { defer close(sweepDone); a.sweepLoop(ctx) }()
	reconcileDone := make(chan struct{})
	go func() { defer close(reconcileDone); a.reconcileLoop(ctx) }()
	a.log.Info("iamjit running", "version", version, "queue", a.cfg.QueueURL, "dlq", a.dlqURL,
		"workers", a.cfg.Workers, "max_receive", a.maxRecv, "visibility", a.visibility)
	err = c.Run(ctx, a.cfg.ShutdownTimeout)
	<-sweepDone
	<-reconcileDone
	a.log.Info("iamjit stopped")
	return err
}

// adoptPerSweep is how many of the next grants due a sweep's look-ahead
// reads to adopt (Timers.Adopt). The replica that granted one has its timer
// already: adoption is the backup for a replica that died, and the page is
// read by every replica every sweep, so it is kept small (on the emulator a
// page of 100 grants stalled every other call for 200-570 ms). Grants past
// it that a dead replica granted end at the sweep that finds them due.
const adoptPerSweep = 25

// activeCountEvery is how many sweeps pass between two counts of the
// active grants for the gauge.
const activeCountEvery = 10

// sweepLoop expires due grants and repairs dirty memberships every
// IAMJIT_SWEEP_INTERVAL; every replica sweeps, the store's conditions keep
// that safe.
func (a *app) sweepLoop(ctx context.Context) {
	grace := max(2*a.visibility, 30*time.Second)
	if a.cfg.RepairGrace > 0 {
		grace = a.cfg.RepairGrace // IAMJIT_REPAIR_GRACE: tests repair while writers are still converging
	}
	// The first sweep runs at once; the next ones every interval from a
	// random phase. Replicas started together (a deploy, a test's three)
	// would otherwise sweep in step, and each sweep is a burst of queries:
	// in step, the bursts add up where the timers' revocations are (on one
	// shared emulator, three sweeps in step made every call wait ~1.5 s).
	next := time.Now().Add(sweepPhase(a.cfg.SweepInterval))
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for sweeps := 0; ; sweeps++ {
		st, err := a.svc.Sweep(ctx, a.pub, 100, grace)
		a.metrics.Swept(st.Revoked, st.Repaired, st.Lag)
		if a.timers != nil {
			// As far ahead as a warning is due: Expire arms a grant's
			// warning, and only a wake-up for an expiry beyond the horizon.
			up, uerr := a.svc.Upcoming(ctx, a.timers.Horizon()+a.timers.Warning, adoptPerSweep)
			for _, g := range up {
				a.timers.Adopt(g)
			}
			if uerr != nil && ctx.Err() == nil {
				a.log.Warn("could not arm expiry timers; grants end at the sweep", "err", uerr)
			}
		}
		// Role items a writer left dirty, rewritten like dirty memberships;
		// statements past their role's MaxSessionDuration deny nothing, so
		// pruning them waits for the sweeps that count (two queries fewer
		// on the others).
		roles, rerr := a.repairSessions(ctx, grace, sweeps%activeCountEvery == 0)
		a.metrics.SessionsRepaired(roles)
		if rerr != nil && ctx.Err() == nil {
			a.log.Error("session revocation repair incomplete; the next sweep retries", "err", rerr, "roles", roles)
		} else if roles > 0 {
			a.log.Info("sweep: role session policies rewritten", "roles", roles)
		}
		// Counting reads every active grant in the index: keep it off most
		// sweeps (every tenth: 5 minutes at the default interval).
		if sweeps%activeCountEvery == 0 {
			if n, err := a.store.CountActive(ctx); err == nil {
				a.metrics.SetActive(n)
			}
			a.checkBackstops(ctx)
		}
		if err != nil && ctx.Err() == nil {
			a.log.Error("sweep incomplete; the next sweep retries", "err", err, "revoked", st.Revoked)
		} else if st.Revoked+st.Repaired > 0 {
			a.log.Info("sweep", "revoked", st.Revoked, "repaired", st.Repaired, "lag", st.Lag)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next = nextSweep(next, time.Now(), a.cfg.SweepInterval)
		t.Reset(time.Until(next))
	}
}

// sweepPhase is when, after the first sweep, the second one runs: a random
// point of the first interval, so that replicas do not sweep in step.
func sweepPhase(interval time.Duration) time.Duration {
	return mrand.N(interval)
}

// nextSweep is the sweep after the one due at prev: an interval later,
// skipping those a long sweep overran (now is past them).
func nextSweep(prev, now time.Time, interval time.Duration) time.Time {
	next := prev.Add(interval)
	for !next.After(now) {
		next = next.Add(interval)
	}
	return next
}

// serveHTTP serves /healthz, /readyz and /metrics on IAMJIT_HTTP_ADDR.
func (a *app) serveHTTP(ctx context.Context, alive *atomic.Int64) (func(), error) {
	if a.cfg.HTTPAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("IAMJIT_HTTP_ADDR %s: %w", a.cfg.HTTPAddr, err)}
	}
	stale := 2*a.cfg.WaitTime + 60*time.Second
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		since := time.Since(time.Unix(0, alive.Load()))
		if since > stale {
			http.Error(w, fmt.Sprintf("receive loop silent for %s", since.Round(time.Second)), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		rctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if _, err := a.ddb.DescribeTable(rctx, &dynamodb.DescribeTableInput{TableName: &a.cfg.Table}); err != nil {
			http.Error(w, "table: "+awsx.Code(err), http.StatusServiceUnavailable)
			return
		}
		if err := a.ready(rctx); err != nil {
			http.Error(w, "role chain: "+awsx.Code(err), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", a.metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// checkBackstops arms the backstop of every active membership that lacks
// one (or has one too early), on the same few sweeps that count the active
// grants: it reads them all.
func (a *app) checkBackstops(ctx context.Context) {
	if len(a.backstops) == 0 {
		return
	}
	active, err := a.store.ActiveGrants(ctx)
	if err != nil {
		a.log.Warn("backstop check skipped: active grants unreadable", "err", err)
		return
	}
	n, err := a.svc.CheckBackstops(ctx, active)
	a.metrics.BackstopUnguarded(n)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("backstop check incomplete; the next one retries", "unguarded", n, "err", err)
	} else if n > 0 {
		a.log.Warn("memberships found without their backstop schedule: armed", "unguarded", n)
	}
}
