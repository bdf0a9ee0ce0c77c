package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/iamjit/iamjit/events"
	ebpub "github.com/iamjit/iamjit/events/eventbridge"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/dynamo"
	"github.com/iamjit/iamjit/grants/iamgroups"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/devstack"
)

// sweepResult is one sweep over a large table.
type sweepResult struct {
	Items         int     `json:"items"`
	DueWritten    int     `json:"due_written"`
	Due           int     `json:"due"`
	Revoked       int     `json:"revoked"`
	Queries       int64   `json:"queries"`
	ScannedCount  int64   `json:"scanned_count"`
	Count         int64   `json:"count"`
	ReadsPerDue   float64 `json:"reads_per_due"`
	Calls         calls   `json:"calls_by_op"`
	CallsPerSweep int64   `json:"calls_per_sweep"`
	Seconds       float64 `json:"seconds"`
	LoadSeconds   float64 `json:"load_seconds"`
}

// scanCounter sums what every Query read (ScannedCount) and returned.
type scanCounter struct {
	*dynamodb.Client
	queries, scanned, count atomic.Int64
}

func (s *scanCounter) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := s.Client.Query(ctx, in, opts...)
	s.queries.Add(1)
	if err == nil {
		s.scanned.Add(int64(out.ScannedCount))
		s.count.Add(int64(out.Count))
	}
	return out, err
}

// sweepRetention is how long the sweep's store keeps a grant's history.
const sweepRetention = 90 * 24 * time.Hour

// runSweep loads 20,000 grants (10,000 long revoked, 9,900 active and not
// due, 100 due) and runs one sweep with the product's service, store, IAM
// adapter and publisher, in process, through the proxy (no delay).
// total scales the mix: half long revoked, 1 in 200 due, the rest active.
func (b *bench) runSweep(ctx context.Context, total int) (*sweepResult, error) {
	sweepRevoked, sweepDue := total/2, max(1, total/200)
	sweepActive := total - sweepRevoked - sweepDue
	e, err := b.fresh(ctx, "sw", 0)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	ic := iam.NewFromConfig(b.direct)
	var items []map[string]ddbtypes.AttributeValue
	seed := dynamo.New(nil, e.stack.Table, sweepRetention, time.Now, "")
	for i := range sweepRevoked + sweepActive + sweepDue {
		user, group := e.users[i%nUsers], e.groups[(i/nUsers)%nGroups]
		id := fmt.Sprintf("bench:run:sweep:%06d/t", i)
		g := grants.Grant{ID: id, State: grants.StateActive, SymEventID: fmt.Sprintf("sym-sw-%06d", i), RunSRN: id,
			Requester: user, IAMUser: user, Group: group, GroupARN: "arn:aws:iam::123456789012:group/sym/" + group,
			Approver: "approver@example.com"}
		switch {
		case i < sweepRevoked:
			g.GrantedAt = now.Add(-time.Duration(30+i%300) * 24 * time.Hour)
			g.ExpiresAt = g.GrantedAt.Add(time.Hour)
			g.State, g.RevokedAt, g.RevokeReason = grants.StateRevoked, g.ExpiresAt, events.RevokedExpired
		case i < sweepRevoked+sweepActive:
			g.GrantedAt = now.Add(-time.Duration(i%60) * time.Minute)
			g.ExpiresAt = now.Add(time.Duration(1+i%600) * time.Minute)
		default:
			g.GrantedAt = now.Add(-2 * time.Hour)
			g.ExpiresAt = now.Add(-time.Duration(1+i%90) * time.Minute)
		}
		g.History = []grants.Transition{{At: g.GrantedAt, Action: "escalate", State: grants.StateActive, SymEventID: g.SymEventID}}
		av, err := seed.GrantItem(g)
		if err != nil {
			return nil, err
		}
		items = append(items, av)
	}
	// The due users are members, as iamjit would have made them.
	g := newGroup(ctx, 8)
	for i := sweepRevoked + sweepActive; i < len(items); i++ {
		user, group := e.users[i%nUsers], e.groups[(i/nUsers)%nGroups]
		g.Go(func() error {
			_, err := ic.AddUserToGroup(g.ctx, &iam.AddUserToGroupInput{UserName: &user, GroupName: &group})
			return wrap(err, "add %s to %s", user, group)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	loadStart := time.Now()
	if err := batchWrite(ctx, dynamodb.NewFromConfig(b.direct), e.stack.Table, items); err != nil {
		return nil, err
	}
	loadSecs := time.Since(loadStart).Seconds()

	counter := awsx.NewCounter()
	cfg, err := b.viaProxy(ctx, counter)
	if err != nil {
		return nil, err
	}
	db := &scanCounter{Client: dynamodb.NewFromConfig(cfg)}
	clock := func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
	adapter := iamgroups.New(iam.NewFromConfig(cfg), 5*time.Minute, clock, slog.New(slog.DiscardHandler))
	accts, err := grants.NewAccounts(&grants.Account{IAM: adapter, Groups: adapter, Members: adapter})
	if err != nil {
		return nil, err
	}
	svc := &grants.Service{
		Store: dynamo.New(db, e.stack.Table, sweepRetention, clock, ""), Accounts: accts,
		Now: clock, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), NewToken: token,
	}
	pub := ebpub.New(eventbridge.NewFromConfig(cfg), e.stack.EventBus, devstack.ResultSource)
	start := time.Now()
	st, err := svc.Sweep(ctx, pub, 100, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	r := &sweepResult{
		Items: len(items), DueWritten: sweepDue, Due: st.Due, Revoked: st.Revoked, Queries: db.queries.Load(),
		ScannedCount: db.scanned.Load(), Count: db.count.Load(), Calls: fromCounter(counter),
		Seconds: time.Since(start).Seconds(), LoadSeconds: loadSecs,
	}
	r.CallsPerSweep = r.Calls.total()
	r.ReadsPerDue = float64(r.ScannedCount) / float64(sweepDue)
	if st.Revoked != sweepDue {
		return r, fmt.Errorf("sweep revoked %d of %d due grants (due read %d)", st.Revoked, sweepDue, st.Due)
	}
	return r, nil
}

func token() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// batchWrite puts items 25 at a time from four writers, retrying what the
// service leaves unprocessed.
func batchWrite(ctx context.Context, c *dynamodb.Client, table string, items []map[string]ddbtypes.AttributeValue) error {
	return inBatches(ctx, items, 25, 4, func(ctx context.Context, chunk []map[string]ddbtypes.AttributeValue) error {
		reqs := make([]ddbtypes.WriteRequest, len(chunk))
		for i, it := range chunk {
			reqs[i] = ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: it}}
		}
		pending := map[string][]ddbtypes.WriteRequest{table: reqs}
		for attempt := 0; len(pending[table]) > 0; attempt++ {
			if attempt > 10 {
				return fmt.Errorf("batch write: %d items left unprocessed", len(pending[table]))
			}
			out, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return fmt.Errorf("batch write: %w", err)
			}
			pending = out.UnprocessedItems
		}
		return nil
	})
}
