package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

const (
	expiryGrants   = 500
	expiryReplicas = 3
	// expiryLead is how long after the first send the first grant expires:
	// time for three replicas to grant all 500 first (checked; 17.7 s on a
	// quiet machine, 40 to 77 s on a loaded one for IAM groups, 43 s for
	// Identity Center assignments, which cost a read, the create and its
	// status). The same for both kinds. Not more: at 120 s a loaded run
	// was seconds late for both (see README).
	expiryLead    = 60 * time.Second
	expiryLeadSSO = expiryLead
	expirySpread  = 60 * time.Second
	// ssoPermissionSets are the permission sets the Identity Center run
	// assigns: 100 users × 5 = 500 distinct assignments, as the IAM run's
	// 100 users over 10 groups give 500 distinct memberships.
	ssoPermissionSets = 5
)

// expiryResult is the expiry scenario: grants ending on time with several
// replicas at default settings.
type expiryResult struct {
	// Target is what the grants give: aws_iam_group (IAM group
	// memberships) or aws_sso_permission_set (Identity Center account
	// assignments of a permission set to a user).
	Target         string  `json:"target,omitempty"`
	Grants         int     `json:"grants"`
	Replicas       int     `json:"replicas"`
	SpreadSeconds  float64 `json:"spread_seconds"`
	GrantSeconds   float64 `json:"grant_seconds"` // first send to the last grant in IAM
	P50LateMs      float64 `json:"p50_late_ms"`
	P90LateMs      float64 `json:"p90_late_ms"`
	P99LateMs      float64 `json:"p99_late_ms"`
	MaxLateMs      float64 `json:"max_late_ms"`
	EarlyMs        float64 `json:"earliest_ms"` // most negative (removal before expires_at), if any
	LateOver1s     int     `json:"late_over_1s"`
	Removes        int64   `json:"remove_user_from_group_calls"` // DeleteAccountAssignment calls for Identity Center
	RemovesPerGrnt float64 `json:"removes_per_grant"`
	Calls          calls   `json:"calls_by_op"` // the proxy's count from the first send to the end
	StaleAdds      int64   `json:"stale_adds_repaired"`
	// Where the removals came from and what they cost, summed over the
	// replicas' /metrics: grants the sweeper ended (the rest ended on
	// their timers), transactions retried in-process by reason, backstop
	// schedule writes by op.
	SweeperRevoked int64            `json:"sweeper_revoked"`
	TxnRetries     map[string]int64 `json:"transaction_retries_by_reason,omitempty"`
	Backstop       map[string]int64 `json:"backstop_schedules_by_op,omitempty"`
}

// runExpiry grants expiryGrants distinct (user, group) pairs through the
// queue with three `iamjit run` replicas at default settings (sweep every
// 30 s), their expiries spread evenly over 60 s starting 30 s after the
// first send, and measures for each grant the moment moto answered its
// RemoveUserFromGroup minus its expires_at (read from the table), and the
// RemoveUserFromGroup calls per grant, counted by the proxy.
//
// With sso, the same for Identity Center: the grants are assignments of
// ssoPermissionSets permission sets to Identity Store users (the same 100
// emails) in the home account, their expiries over the same 60 s from 60 s
// after the first send, and the removal is the moment moto answered the
// DeleteAccountAssignment (moto deletes at once; AWS would then report
// the deletion's status).
func (b *bench) runExpiry(ctx context.Context, sso bool) (*expiryResult, error) {
	prefix, lead, removeOp, target := "ex", expiryLead, "IAM.RemoveUserFromGroup", "aws_iam_group"
	if sso {
		prefix, lead, removeOp, target = "exs", expiryLeadSSO, "SSO Admin.DeleteAccountAssignment", "aws_sso_permission_set"
	}
	e, err := b.fresh(ctx, prefix, 0)
	if err != nil {
		return nil, err
	}
	var extra []string
	if sso {
		if extra, err = e.identityCenter(ctx); err != nil {
			return nil, err
		}
	}
	var ps []*proc
	defer func() {
		for _, p := range ps {
			_, _ = p.stop()
		}
	}()
	for range expiryReplicas {
		p, err := b.startIamjit(e, extra...)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := b.waitReceiving(ctx, p); err != nil {
			return nil, err
		}
	}
	evs := e.escalates(expiryGrants, prefix)
	if sso {
		evs = e.ssoEscalates(expiryGrants, prefix)
	}
	t0 := time.Now().UTC()
	for i, ev := range evs {
		// Expiry = event.timestamp + duration (whole seconds): a timestamp
		// up to a second before t0 places each expiry to the millisecond.
		at := t0.Add(lead + time.Duration(i)*expirySpread/expiryGrants)
		dur := int64(math.Ceil(at.Sub(t0).Seconds()))
		ts := at.Add(-time.Duration(dur) * time.Second)
		if ev.body, err = withExpiry(ev.body, ts, dur); err != nil {
			return nil, err
		}
	}
	before := fromOps(b.proxy.snapshot())
	if err := enqueue(ctx, sqs.NewFromConfig(b.direct), e.stack.QueueURL, evs, nil); err != nil {
		return nil, err
	}
	if err := b.waitDeleted(ctx, ps[0], expiryGrants, 3*time.Minute); err != nil {
		return nil, err
	}
	r := &expiryResult{Target: target, Grants: expiryGrants, Replicas: expiryReplicas, SpreadSeconds: expirySpread.Seconds(),
		GrantSeconds: time.Since(t0).Seconds()}
	if d := time.Since(t0); d >= lead {
		return r, fmt.Errorf("granting %d took %s, past the first expiry (%s after the first send)", expiryGrants, d, lead)
	}
	// Every removal seen, then a read-back delay (5 s) and a little more, so
	// the count includes whatever the read-backs did.
	last := t0.Add(lead + expirySpread)
	deadline := last.Add(3 * time.Minute)
	for len(b.proxy.removals()) < expiryGrants {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("%d of %d removals seen 3 minutes after the last expiry:\n%s", len(b.proxy.removals()), expiryGrants, ps[0].out.String())
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	time.Sleep(7 * time.Second)
	r.Calls = fromOps(b.proxy.snapshot()).minus(before)
	r.Removes = r.Calls[removeOp]
	r.RemovesPerGrnt = float64(r.Removes) / expiryGrants
	r.TxnRetries, r.Backstop = map[string]int64{}, map[string]int64{}
	for _, p := range ps {
		if n, err := p.scrapeCounter(ctx, "iamjit_stale_adds_repaired_total"); err == nil {
			r.StaleAdds += n
		}
		if n, err := p.scrapeCounter(ctx, "iamjit_sweeper_revoked_total"); err == nil {
			r.SweeperRevoked += n
		}
		for name, into := range map[string]map[string]int64{"iamjit_dynamodb_transaction_retries_total": r.TxnRetries, "iamjit_backstop_schedules_total": r.Backstop} {
			lbl := "reason"
			if name == "iamjit_backstop_schedules_total" {
				lbl = "op"
			}
			if m, err := p.scrapeByLabel(ctx, name, lbl); err == nil {
				for k, v := range m {
					into[k] += v
				}
			}
		}
	}
	expires, err := grantTimes(ctx, b.direct, e.stack.Table, "expires_at")
	if err != nil {
		return r, err
	}
	removed := b.proxy.removals()
	var late []float64
	var dump strings.Builder // under -logs: each grant's expiry, removal and lateness
	for _, ev := range evs {
		exp, ok := expires[ev.grantID]
		if !ok {
			return r, fmt.Errorf("grant %s: no expires_at in the table", ev.grantID)
		}
		at, ok := removed[ev.user+"/"+ev.group]
		if !ok {
			return r, fmt.Errorf("grant %s: no removal of %s from %s seen", ev.grantID, ev.user, ev.group)
		}
		ms := float64(at.Sub(exp).Microseconds()) / 1000
		late = append(late, ms)
		fmt.Fprintf(&dump, "%s\t%s\t%s\t%s\t%.1f\n", ev.grantID, ev.user+"/"+ev.group, exp.Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339Nano), ms)
		if ms > 1000 {
			r.LateOver1s++
		}
	}
	if b.logDir != "" {
		name := filepath.Join(b.logDir, "expiry-"+target+".tsv")
		if err := os.WriteFile(name, []byte("grant\tmembership\texpires_at\tremoved\tlate_ms\n"+dump.String()), 0o644); err != nil {
			return r, err
		}
	}
	sort.Float64s(late)
	r.P50LateMs, r.P90LateMs, r.P99LateMs = percentile(late, 50), percentile(late, 90), percentile(late, 99)
	r.MaxLateMs, r.EarlyMs = late[len(late)-1], min(0, late[0])
	return r, nil
}

// withExpiry sets an escalate's event.timestamp and fields.duration.
func withExpiry(body string, ts time.Time, dur int64) (string, error) {
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		return "", err
	}
	d, _ := env["detail"].(map[string]any)
	ev, _ := d["event"].(map[string]any)
	f, _ := d["fields"].(map[string]any)
	if ev == nil || f == nil {
		return "", fmt.Errorf("escalate without event or fields: %s", body)
	}
	ev["timestamp"] = ts.UTC().Format("2006-01-02T15:04:05.000000")
	f["duration"] = dur
	out, err := json.Marshal(env)
	return string(out), err
}
