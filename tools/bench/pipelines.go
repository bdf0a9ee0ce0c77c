package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/backstop"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
)

// pipeline drains the queue of st through cfg until ctx ends, calling done
// once per message whose grant is written, result published and message
// deleted.
type pipeline func(ctx context.Context, cfg aws.Config, st devstack.Stack, done func()) error

// runInProcess drains n escalates with an in-process comparator (the naive
// loop; the ideal pipeline runs as its own process, see child.go). Its
// calls are counted by an SDK middleware (awsx.Counter) on its own
// aws.Config, which points at the proxy like the iamjit process does.
func (b *bench) runInProcess(ctx context.Context, name string, pl pipeline, delay time.Duration, n int) (*drain, error) {
	prefix := name[:2] + regimeName(delay)[:3]
	e, err := b.fresh(ctx, prefix, delay)
	if err != nil {
		return nil, err
	}
	counter := awsx.NewCounter()
	cfg, err := b.viaProxy(ctx, counter)
	if err != nil {
		return nil, err
	}

	var finished atomic.Int64
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- pl(pctx, cfg, e.stack, func() { finished.Add(1) }) }()
	for b.proxy.firstReceive.Load() == 0 {
		select {
		case err := <-errc:
			return nil, fmt.Errorf("%s stopped before receiving: %w", name, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	before := fromCounter(counter)
	proxyBefore := fromOps(b.proxy.snapshot())
	evs := e.escalates(n, prefix)
	t0 := time.Now()
	if err := enqueue(ctx, sqs.NewFromConfig(b.direct), e.stack.QueueURL, evs, nil); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Minute) // the naive loop with latency: ~0.3 s an event
	for finished.Load() < int64(n) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s drained %d of %d in 10 minutes", name, finished.Load(), n)
		}
		select {
		case err := <-errc:
			return nil, fmt.Errorf("%s stopped while draining: %w", name, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	elapsed := time.Since(t0)
	after := fromCounter(counter)
	proxyAfter := fromOps(b.proxy.snapshot())
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d := &drain{
		Pipeline: name, Regime: regimeName(delay), Events: n, Seconds: elapsed.Seconds(),
		EventsPerS: float64(n) / elapsed.Seconds(), Calls: after.minus(before), ProxyCalls: proxyAfter.minus(proxyBefore), MotoMsPerCall: b.proxy.busyMs(),
	}
	d.CallsPerEvent = float64(d.Calls.total()) / float64(n)
	if err := latencies(ctx, b.direct, e.stack.Table, evs, d); err != nil {
		return nil, err
	}
	return d, nil
}

func fromCounter(c *awsx.Counter) calls {
	out := calls{}
	for _, r := range c.Snapshot() {
		out[r.Service+"."+r.Operation] = r.Calls
	}
	return out
}

// benchGrant is a grant as the comparators write it: the store's item format
// (grants/dynamo grantItem), so the same scan reads granted_at.
type benchGrant struct {
	PK         string `dynamodbav:"pk"`
	Kind       string `dynamodbav:"kind"`
	ID         string `dynamodbav:"id"`
	State      string `dynamodbav:"state"`
	SymEventID string `dynamodbav:"sym_event_id"`
	Requester  string `dynamodbav:"requester"`
	IAMUser    string `dynamodbav:"iam_user"`
	Group      string `dynamodbav:"grp"`
	GrantedAt  string `dynamodbav:"granted_at"`
	ExpiresAt  string `dynamodbav:"expires_at"`
	History    []any  `dynamodbav:"history"`
	DuePK      string `dynamodbav:"due_pk,omitempty"`
	DueAt      string `dynamodbav:"due_at,omitempty"`
	TTL        int64  `dynamodbav:"ttl"`
}

// grantFor decodes a message into the grant and result the comparators
// write: the requester's email is the IAM user name (no lookup).
func grantFor(body string) (map[string]ddbtypes.AttributeValue, events.Result, error) {
	req, err := events.Decode([]byte(body))
	if err != nil {
		return nil, events.Result{}, fmt.Errorf("decode: %w", err)
	}
	now := time.Now().UTC()
	exp := req.Timestamp.Add(time.Duration(req.Duration) * time.Second)
	item, err := attributevalue.MarshalMap(benchGrant{
		PK: "grant#" + req.GrantID(), Kind: "grant", ID: req.GrantID(), State: "ACTIVE", SymEventID: req.SymEventID,
		Requester: req.Requester, IAMUser: req.Requester, Group: req.Group,
		GrantedAt: now.Format(timeFormat), ExpiresAt: exp.UTC().Format(timeFormat), History: []any{},
		DuePK: "EXPIRY", DueAt: exp.UTC().Format(timeFormat), TTL: exp.Add(90 * 24 * time.Hour).Unix(),
	})
	if err != nil {
		return nil, events.Result{}, err
	}
	res := events.Result{
		DetailType: events.AccessGranted, ResultID: events.ResultID(events.AccessGranted, req.GrantID()),
		GrantID: req.GrantID(), SymEventID: req.SymEventID, RunSRN: req.RunSRN, Requester: req.Requester,
		IAMUser: req.Requester, Group: req.Group, Approver: req.Approver, GrantedAt: events.TimePtr(now), ExpiresAt: events.TimePtr(exp),
	}
	return item, res, nil
}

func resultEntry(bus string, r events.Result) ebtypes.PutEventsRequestEntry {
	detail, _ := json.Marshal(r)
	return ebtypes.PutEventsRequestEntry{EventBusName: aws.String(bus), Source: aws.String(devstack.ResultSource),
		DetailType: aws.String(r.DetailType), Detail: aws.String(string(detail))}
}

// naive is a first attempt: one loop, one message per receive, a GetItem
// check and a PutItem, the role chain assumed (and a new IAM client built)
// per message, one PutEvents per result, one DeleteMessage per message.
func naive(ctx context.Context, cfg aws.Config, st devstack.Stack, done func()) error {
	sq, db, eb := sqs.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg), eventbridge.NewFromConfig(cfg)
	for ctx.Err() == nil {
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &st.QueueURL, MaxNumberOfMessages: 1, WaitTimeSeconds: 1})
		if err != nil {
			return err
		}
		for _, m := range out.Messages {
			item, res, err := grantFor(aws.ToString(m.Body))
			if err != nil {
				return err
			}
			got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.Table, Key: map[string]ddbtypes.AttributeValue{"pk": item["pk"]}})
			if err != nil {
				return err
			}
			if len(got.Item) == 0 {
				iamc, err := naiveIAM(ctx, cfg, st)
				if err != nil {
					return err
				}
				if _, err := iamc.AddUserToGroup(ctx, &iam.AddUserToGroupInput{UserName: &res.IAMUser, GroupName: &res.Group}); err != nil {
					return err
				}
				if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.Table, Item: item}); err != nil {
					return err
				}
			}
			if _, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{resultEntry(st.EventBus, res)}}); err != nil {
				return err
			}
			if _, err := sq.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &st.QueueURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
				return err
			}
			done()
		}
	}
	return ctx.Err()
}

func naiveIAM(ctx context.Context, cfg aws.Config, st devstack.Stack) (*iam.Client, error) {
	a, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: &st.ConnectorRoleARN,
		RoleSessionName: aws.String("naive-connector"), ExternalId: &st.ExternalID})
	if err != nil {
		return nil, err
	}
	c1 := cfg.Copy()
	c1.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(a.Credentials.AccessKeyId), aws.ToString(a.Credentials.SecretAccessKey), aws.ToString(a.Credentials.SessionToken))
	m, err := sts.NewFromConfig(c1).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: &st.IAMRoleARN, RoleSessionName: aws.String("naive")})
	if err != nil {
		return nil, err
	}
	c2 := cfg.Copy()
	c2.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(m.Credentials.AccessKeyId), aws.ToString(m.Credentials.SecretAccessKey), aws.ToString(m.Credentials.SessionToken))
	return iam.NewFromConfig(c2), nil
}

// idealWorkers is the ideal pipeline's concurrency (iamjit's default too).
const idealWorkers = 16

// ideal is the least work the job needs: receives of ten, 16 workers, one
// conditional PutItem, one backstop schedule and one IAM call per event
// with the role chain's credentials cached, results published and messages
// deleted in batches of up to ten, flushed concurrently.
func ideal(ctx context.Context, cfg aws.Config, st devstack.Stack, done func()) error {
	sq, db, eb := sqs.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg), eventbridge.NewFromConfig(cfg)
	chain := awsx.Chain(cfg, st.ConnectorRoleARN, st.ExternalID, st.IAMRoleARN)
	iamc := iam.NewFromConfig(chain)
	var sched *scheduler.Client
	if st.Backstop.RoleARN != "" {
		sched = scheduler.NewFromConfig(chain)
	}
	pub := newCollector(ctx, func(ctx context.Context, rs []events.Result) error {
		entries := make([]ebtypes.PutEventsRequestEntry, len(rs))
		for i, r := range rs {
			entries[i] = resultEntry(st.EventBus, r)
		}
		out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err == nil && out.FailedEntryCount > 0 {
			err = fmt.Errorf("%d results not published", out.FailedEntryCount)
		}
		return err
	})
	del := newCollector(ctx, func(ctx context.Context, ms []sqstypes.Message) error {
		entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(ms))
		for i, m := range ms {
			entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
		}
		out, err := sq.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &st.QueueURL, Entries: entries})
		if err == nil && len(out.Failed) > 0 {
			err = fmt.Errorf("%d messages not deleted", len(out.Failed))
		}
		return err
	})
	jobs := make(chan sqstypes.Message)
	errc := make(chan error, idealWorkers+1)
	var wg sync.WaitGroup
	for range idealWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range jobs {
				if err := idealOne(ctx, db, iamc, sched, pub, del, st, m); err != nil {
					errc <- err
					return
				}
				done()
			}
		}()
	}
	var err error
	for ctx.Err() == nil {
		var out *sqs.ReceiveMessageOutput
		out, err = sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &st.QueueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			break
		}
		for _, m := range out.Messages {
			select {
			case jobs <- m:
			case err = <-errc:
			case <-ctx.Done():
			}
		}
		if err != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

func idealOne(ctx context.Context, db *dynamodb.Client, iamc *iam.Client, sched *scheduler.Client, pub *collector[events.Result], del *collector[sqstypes.Message], st devstack.Stack, m sqstypes.Message) error {
	item, res, err := grantFor(aws.ToString(m.Body))
	if err != nil {
		return err
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.Table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return err
	}
	if sched != nil {
		if err := idealSchedule(ctx, sched, st.Backstop, res.IAMUser, res.Group, *res.ExpiresAt); err != nil {
			return err
		}
	}
	if _, err := iamc.AddUserToGroup(ctx, &iam.AddUserToGroupInput{UserName: &res.IAMUser, GroupName: &res.Group}); err != nil {
		return err
	}
	if err := pub.do(ctx, res); err != nil {
		return err
	}
	return del.do(ctx, m)
}

// idealSchedule is the one backstop call an escalate needs, as iamjit
// makes it for a new membership (grants/backstop Arm: create first): a
// one-time schedule at expiry plus the default grace that removes the user
// from the group by itself, through the universal target with the
// removal's exact input, as the execution role, deleted once it has run.
// A schedule that exists already (a message delivered again) is left: the
// ideal pipeline's grants are all new memberships of one hour.
func idealSchedule(ctx context.Context, sched *scheduler.Client, bs devstack.Backstop, user, group string, expires time.Time) error {
	k := grants.Key{Kind: grants.IAMGroup, Account: motoserver.AccountID, User: user, Group: group}
	input, _ := json.Marshal(backstop.RemoveUserFromGroupInput{GroupName: group, UserName: user})
	at := expires.Add(backstop.DefaultGrace).UTC()
	if r := at.Truncate(time.Second); !r.Equal(at) {
		at = r.Add(time.Second)
	}
	target := &schedtypes.Target{
		Arn: aws.String(backstop.TargetRemoveUserFromGroup), RoleArn: aws.String(bs.RoleARN), Input: aws.String(string(input)),
		RetryPolicy: &schedtypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(backstop.MaxRetryAttempts),
			MaximumEventAgeInSeconds: aws.Int32(int32(backstop.MaxEventAge / time.Second))},
	}
	if bs.DLQARN != "" {
		target.DeadLetterConfig = &schedtypes.DeadLetterConfig{Arn: aws.String(bs.DLQARN)}
	}
	_, err := sched.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name: aws.String(backstop.Name(k)), GroupName: aws.String(bs.Group), Description: aws.String("iamjit backstop: " + k.String()),
		ScheduleExpression: aws.String("at(" + at.Format("2006-01-02T15:04:05") + ")"), ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:    &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		ActionAfterCompletion: schedtypes.ActionAfterCompletionDelete,
		State:                 schedtypes.ScheduleStateEnabled,
		Target:                target,
	})
	if awsx.IsCode(err, "ConflictException") {
		return nil
	}
	return err
}

// collector batches items from many goroutines into calls of up to ten,
// waiting at most collectLinger for a batch to fill; batches are flushed
// concurrently.
type collector[T any] struct {
	in    chan collected[T]
	flush func(context.Context, []T) error
}

type collected[T any] struct {
	v   T
	res chan error
}

const collectLinger = 10 * time.Millisecond

func newCollector[T any](ctx context.Context, flush func(context.Context, []T) error) *collector[T] {
	c := &collector[T]{in: make(chan collected[T]), flush: flush}
	go c.run(ctx)
	return c
}

func (c *collector[T]) do(ctx context.Context, v T) error {
	it := collected[T]{v: v, res: make(chan error, 1)}
	select {
	case c.in <- it:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-it.res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *collector[T]) run(ctx context.Context) {
	for {
		var batch []collected[T]
		select {
		case it := <-c.in:
			batch = append(batch, it)
		case <-ctx.Done():
			return
		}
		timer := time.NewTimer(collectLinger)
	fill:
		for len(batch) < 10 {
			select {
			case it := <-c.in:
				batch = append(batch, it)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		timer.Stop()
		go func() {
			vs := make([]T, len(batch))
			for i, it := range batch {
				vs[i] = it.v
			}
			err := c.flush(ctx, vs)
			for _, it := range batch {
				it.res <- err
			}
		}()
	}
}

// viaProxy is an SDK configuration whose every client talks to moto through
// the proxy, with counter installed.
func (b *bench) viaProxy(ctx context.Context, counter *awsx.Counter) (aws.Config, error) {
	return proxyConfig(ctx, b.proxy.url, counter)
}

// proxyConfig is an SDK configuration whose every client talks to endpoint
// with moto's credentials, with counter installed. (Changing BaseEndpoint on
// a copy of a loaded config is not enough: clients re-read the endpoint
// from the config's load options.)
func proxyConfig(ctx context.Context, endpoint string, counter *awsx.Counter) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(motoserver.Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(motoserver.AccessKey, motoserver.SecretKey, "")),
		config.WithBaseEndpoint(endpoint),
		config.WithRetryMaxAttempts(3),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config for the proxy: %w", err)
	}
	cfg.APIOptions = append(cfg.APIOptions, counter.Register)
	return cfg, nil
}
