package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
)

const (
	nUsers  = 100
	nGroups = 10
)

// env is one scenario's fresh resources.
type env struct {
	stack  devstack.Stack
	users  []string // IAM user names; each is also the user's email (tag email)
	groups []string // under /sym/
	direct aws.Config
	// Identity Center (identityCenter): the user id of each email, and the
	// permission sets that may be assigned.
	ssoUsers       map[string]string
	permissionSets []string
}

// fresh wipes moto and creates a stack with its own prefix, nUsers users
// tagged with their email and nGroups groups under /sym/, then sets the
// proxy's delay and zeroes its counts. The bench's own set-up calls go
// straight to moto: neither delayed nor counted.
func (b *bench) fresh(ctx context.Context, prefix string, delay time.Duration) (*env, error) {
	if err := b.moto.ResetContext(ctx); err != nil {
		return nil, fmt.Errorf("reset moto: %w", err)
	}
	st, err := devstack.Create(ctx, b.direct, devstack.Options{Prefix: prefix, VisibilityTimeout: 30})
	if err != nil {
		return nil, fmt.Errorf("create stack %s: %w", prefix, err)
	}
	// moto 5.2 spends 0.5–1 s of CPU per event a rule delivers (it rebuilds a
	// jsonpath parser, yacc tables included, for every input path), which
	// would swamp every pipeline alike. The bench reads outcomes from the
	// table, not the results queue, so the results rule gets no target:
	// PutEvents is still called and counted, moto just delivers nowhere.
	rule := st.EventBus + "-to-queue"
	if _, err := eventbridge.NewFromConfig(b.direct).RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{
		Rule: &rule, EventBusName: &st.EventBus, Ids: []string{"queue"}}); err != nil {
		return nil, fmt.Errorf("detach the results queue: %w", err)
	}
	e := &env{stack: st, direct: b.direct}
	ic := iam.NewFromConfig(b.direct)
	g := newGroup(ctx, 8)
	gctx := g.ctx
	for i := range nGroups {
		name := fmt.Sprintf("%s-g%02d", prefix, i)
		e.groups = append(e.groups, name)
		g.Go(func() error {
			_, err := ic.CreateGroup(gctx, &iam.CreateGroupInput{GroupName: &name, Path: aws.String("/sym/")})
			return wrap(err, "create group %s", name)
		})
	}
	for i := range nUsers {
		name := fmt.Sprintf("u%03d-%s@example.com", i, prefix)
		e.users = append(e.users, name)
		g.Go(func() error {
			_, err := ic.CreateUser(gctx, &iam.CreateUserInput{UserName: &name,
				Tags: []iamtypes.Tag{{Key: aws.String("email"), Value: aws.String(name)}}})
			return wrap(err, "create user %s", name)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	b.proxy.setDelay(delay)
	b.proxy.reset()
	return e, nil
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// exportsEnv renders the stack as `iamjit dev` does and turns the export
// lines into environment entries, pointing the SDK at endpoint.
func (e *env) exportsEnv(endpoint string) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(e.stack.Exports(endpoint, motoserver.Region, false)), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		v = strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'"), `'\''`, "'")
		out = append(out, k+"="+v)
	}
	return out
}

// escalate is one Sym escalate the bench enqueued.
type escalate struct {
	grantID string
	user    string
	group   string
	body    string
	sent    time.Time // when SendMessageBatch for it returned
}

// escalates builds n escalates spread over every (user, group) pair, each
// with its own run and Sym id, a valid timestamp and a one-hour duration.
func (e *env) escalates(n int, tag string) []*escalate {
	out := make([]*escalate, n)
	now := time.Now().UTC()
	for i := range n {
		user := e.users[i%len(e.users)]
		group := e.groups[(i/len(e.users)+i)%len(e.groups)]
		run := fmt.Sprintf("bench:run:approval:1.0.0:%s-%06d", tag, i)
		target := fmt.Sprintf("target-%s", group)
		detail := map[string]any{
			"id":    fmt.Sprintf("sym-%s-%06d", tag, i),
			"meta":  map[string]any{"schema_version": 6},
			"state": map[string]any{"status": "processing", "errors": []any{}},
			"run": map[string]any{
				"srn": run, "flow": "bench:flow:approval:1.0.0",
				"actors": map[string]any{
					"request": map[string]any{"user": "bench:user:" + user, "name": "", "username": user},
					"approve": map[string]any{"user": "bench:user:approver", "name": "", "username": "approver@example.com"},
				},
			},
			"event": map[string]any{
				"srn": "sym:event-spec:approval:1.0.0:escalate", "type": "escalate",
				"template": "sym:template:approval:1.0.0", "channel": "slack",
				"timestamp": now.Format("2006-01-02T15:04:05.000000"),
			},
			"actor": map[string]any{"user": "bench:user:approver", "name": "", "username": "approver@example.com"},
			"fields": map[string]any{
				"reason": "bench", "duration": 3600, "target_id": target,
				"target": map[string]any{"name": group, "srn": "bench:access_target:aws_iam_group:" + group, "type": "aws_iam_group",
					"label": group, "settings": map[string]string{"iam_group": group}},
			},
			"type": "event",
		}
		d, _ := json.Marshal(detail)
		env := map[string]any{
			"version": "0", "id": fmt.Sprintf("eb-%s-%06d", tag, i), "detail-type": "SymLogEntry", "source": "sym",
			"account": motoserver.AccountID, "time": now.Format(time.RFC3339), "region": motoserver.Region,
			"resources": []string{}, "detail": json.RawMessage(d),
		}
		body, _ := json.Marshal(env)
		out[i] = &escalate{grantID: run + "/" + target, user: user, group: group, body: string(body)}
	}
	return out
}

// enqueue sends the escalates to queueURL, each with attrs (nil: none), in
// batches of ten from four senders, straight to moto, and stamps each with
// the time its batch was accepted.
func enqueue(ctx context.Context, c *sqs.Client, queueURL string, evs []*escalate, attrs map[string]sqstypes.MessageAttributeValue) error {
	var mu sync.Mutex
	return inBatches(ctx, evs, 10, 4, func(ctx context.Context, batch []*escalate) error {
		entries := make([]sqstypes.SendMessageBatchRequestEntry, len(batch))
		for i, ev := range batch {
			entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(ev.body), MessageAttributes: attrs}
		}
		out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &queueURL, Entries: entries})
		if err != nil {
			return fmt.Errorf("send batch: %w", err)
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("send batch: %d failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
		now := time.Now()
		mu.Lock()
		for _, ev := range batch {
			ev.sent = now
		}
		mu.Unlock()
		return nil
	})
}
