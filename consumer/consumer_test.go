package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/events"
)

// fakeSQS is an in-memory queue: messages are received once each (then held
// in flight) until deleted or made visible again.
type fakeSQS struct {
	mu        sync.Mutex
	queue     []types.Message
	inflight  map[string]types.Message
	deleted   []string
	deleteOps int
	dlq       []*sqs.SendMessageInput
	vis       map[string]int32 // receipt -> last visibility set
	receives  int
	extended  int
	order     []string // "publish:<id>" and "delete:<id>", in order
	failDel   bool
}

func newFakeSQS(n int) *fakeSQS {
	f := &fakeSQS{inflight: map[string]types.Message{}, vis: map[string]int32{}}
	for i := range n {
		id := strconv.Itoa(i)
		f.queue = append(f.queue, types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String("r" + id), Body: aws.String("body " + id),
			Attributes: map[string]string{"ApproximateReceiveCount": "1", "ApproximateFirstReceiveTimestamp": "1700000000000"}})
	}
	return f
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	f.receives++
	n := min(int(in.MaxNumberOfMessages), len(f.queue))
	if in.MaxNumberOfMessages > 10 || in.MaxNumberOfMessages < 1 {
		f.mu.Unlock()
		return nil, fmt.Errorf("MaxNumberOfMessages %d out of range", in.MaxNumberOfMessages)
	}
	msgs := append([]types.Message(nil), f.queue[:n]...)
	f.queue = f.queue[n:]
	for _, m := range msgs {
		f.inflight[*m.ReceiptHandle] = m
	}
	f.mu.Unlock()
	if len(msgs) == 0 {
		select { // a long poll that ends early on shutdown
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return &sqs.ReceiveMessageOutput{Messages: msgs}, nil
}

func (f *fakeSQS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(in.Entries) > 10 {
		return nil, errors.New("too many entries")
	}
	if f.failDel {
		return nil, errors.New("delete unavailable")
	}
	f.deleteOps++
	for _, e := range in.Entries {
		m := f.inflight[*e.ReceiptHandle]
		delete(f.inflight, *e.ReceiptHandle)
		f.deleted = append(f.deleted, aws.ToString(m.MessageId))
		f.order = append(f.order, "delete:"+aws.ToString(m.MessageId))
	}
	return &sqs.DeleteMessageBatchOutput{}, nil
}

func (f *fakeSQS) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vis[*in.ReceiptHandle] = in.VisibilityTimeout
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (f *fakeSQS) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.extended += len(in.Entries)
	return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dlq = append(f.dlq, in)
	return &sqs.SendMessageOutput{}, nil
}

type fakePublisher struct {
	sqs   *fakeSQS
	mu    sync.Mutex
	calls int
	fail  error
}

func (p *fakePublisher) Publish(_ context.Context, rs []events.Result) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if len(rs) > 10 {
		return errors.New("more than 10 entries")
	}
	if p.fail != nil {
		return p.fail
	}
	p.sqs.mu.Lock()
	for _, r := range rs {
		p.sqs.order = append(p.sqs.order, "publish:"+r.SymEventID)
	}
	p.sqs.mu.Unlock()
	return nil
}

// handlerFunc adapts functions to Handler.
type handlerFunc struct {
	handle func(Message) Disposition
	giveUp func(Message, error) Disposition
}

func (h handlerFunc) Handle(_ context.Context, m Message) Disposition { return h.handle(m) }
func (h handlerFunc) GiveUp(_ context.Context, m Message, err error) Disposition {
	return h.giveUp(m, err)
}

func newConsumer(f *fakeSQS, p *fakePublisher, h Handler) *Consumer {
	return &Consumer{SQS: f, QueueURL: "q", DLQURL: "dlq", Handler: h, Publisher: p, Workers: 4,
		WaitTime: time.Second, Visibility: 30 * time.Second, MaxReceive: 3, Backoff: 2 * time.Second, MaxBackoff: time.Minute,
		Version: "test", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
}

// runUntil runs c until cond holds, then stops it like SIGTERM does.
func runUntil(t *testing.T, c *Consumer, cond func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 5*time.Second) }()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	return <-done
}

func granted(m Message) Disposition {
	return Disposition{Outcome: "applied", Results: []events.Result{{DetailType: events.AccessGranted, SymEventID: m.ID}}}
}

func TestEveryMessageIsPublishedThenDeletedInBatches(t *testing.T) {
	f := newFakeSQS(25)
	p := &fakePublisher{sqs: f}
	c := newConsumer(f, p, handlerFunc{handle: granted})
	if err := runUntil(t, c, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.deleted) == 25 }); err != nil {
		t.Fatal(err)
	}
	published := map[string]int{}
	for _, op := range f.order {
		kind, id, _ := cut(op)
		if kind == "publish" {
			published[id]++
		} else if published[id] == 0 {
			t.Fatalf("message %s deleted before its result was published", id)
		}
	}
	if f.deleteOps >= 25 || p.calls >= 25 {
		t.Fatalf("no batching: %d delete calls and %d publish calls for 25 messages", f.deleteOps, p.calls)
	}
}

func cut(op string) (string, string, bool) {
	for i := range op {
		if op[i] == ':' {
			return op[:i], op[i+1:], true
		}
	}
	return op, "", false
}

func TestPublishFailureKeepsTheMessageAndBacksOff(t *testing.T) {
	f := newFakeSQS(1)
	p := &fakePublisher{sqs: f, fail: errors.New("eventbridge down")}
	c := newConsumer(f, p, handlerFunc{handle: granted})
	err := runUntil(t, c, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.vis) == 1 })
	if err != nil {
		t.Fatal(err)
	}
	if len(f.deleted) != 0 {
		t.Fatalf("a message whose result was not durable was deleted")
	}
	if v := f.vis["r0"]; v < 1 || v > 2 {
		t.Fatalf("retry visibility = %ds, want the first backoff (1-2s)", v)
	}
}

func TestPoisonGoesToTheDLQWithItsReasonThenIsDeleted(t *testing.T) {
	f := newFakeSQS(1)
	p := &fakePublisher{sqs: f}
	c := newConsumer(f, p, handlerFunc{handle: func(m Message) Disposition {
		return Disposition{Outcome: "poison", Poison: &Poison{Code: "invalid_json", Msg: "not json"}}
	}})
	if err := runUntil(t, c, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.deleted) == 1 }); err != nil {
		t.Fatal(err)
	}
	if len(f.dlq) != 1 {
		t.Fatalf("%d DLQ sends, want 1", len(f.dlq))
	}
	in := f.dlq[0]
	if aws.ToString(in.MessageBody) != "body 0" {
		t.Fatalf("DLQ body = %q, want the original", aws.ToString(in.MessageBody))
	}
	want := map[string]string{AttrCode: "invalid_json", AttrError: "not json", AttrReceiveCount: "1", AttrVersion: "test", AttrMessageID: "0"}
	for k, v := range want {
		if got := aws.ToString(in.MessageAttributes[k].StringValue); got != v {
			t.Errorf("attribute %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{AttrFirstReceive, AttrLastReceive} {
		if _, err := time.Parse(time.RFC3339Nano, aws.ToString(in.MessageAttributes[k].StringValue)); err != nil {
			t.Errorf("attribute %s is not a time: %v", k, err)
		}
	}
}

func TestLastReceiveGivesUpAndMovesToTheDLQ(t *testing.T) {
	f := newFakeSQS(1)
	f.queue[0].Attributes["ApproximateReceiveCount"] = "3"
	p := &fakePublisher{sqs: f}
	var gaveUp error
	c := newConsumer(f, p, handlerFunc{
		handle: func(m Message) Disposition { return Disposition{Err: errors.New("iam throttled")} },
		giveUp: func(m Message, err error) Disposition {
			gaveUp = err
			return Disposition{Outcome: "failed", Results: []events.Result{{DetailType: events.AccessFailed, SymEventID: m.ID}}, Poison: &Poison{Code: "Throttling", Msg: err.Error()}}
		},
	})
	if err := runUntil(t, c, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.deleted) == 1 }); err != nil {
		t.Fatal(err)
	}
	if gaveUp == nil || len(f.dlq) != 1 || f.order[0] != "publish:0" {
		t.Fatalf("give-up: err=%v dlq=%d order=%v", gaveUp, len(f.dlq), f.order)
	}
}

func TestShutdownFinishesInFlightWork(t *testing.T) {
	f := newFakeSQS(4)
	p := &fakePublisher{sqs: f}
	started := make(chan struct{}, 4)
	release := make(chan struct{})
	c := newConsumer(f, p, handlerFunc{handle: func(m Message) Disposition {
		started <- struct{}{}
		<-release
		return granted(m)
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 5*time.Second) }()
	for range 4 {
		<-started
	}
	cancel() // SIGTERM while four messages are in flight
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want a clean drain", err)
	}
	if len(f.deleted) != 4 {
		t.Fatalf("%d of 4 in-flight messages finished after shutdown began", len(f.deleted))
	}
}

func TestShutdownDeadlineLeavesUnfinishedWorkOnTheQueue(t *testing.T) {
	f := newFakeSQS(1)
	p := &fakePublisher{sqs: f}
	started := make(chan struct{}, 1)
	c := newConsumer(f, p, handlerFunc{handle: func(m Message) Disposition {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return granted(m) // finished, but after the drain deadline
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 50*time.Millisecond) }()
	<-started
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Run returned nil although in-flight work missed the drain deadline")
	}
	if len(f.deleted) != 0 {
		t.Fatal("unfinished work was deleted")
	}
}

func TestSlowWorkHasItsVisibilityExtended(t *testing.T) {
	f := newFakeSQS(1)
	p := &fakePublisher{sqs: f}
	c := newConsumer(f, p, handlerFunc{handle: func(m Message) Disposition {
		time.Sleep(1500 * time.Millisecond)
		return granted(m)
	}})
	c.Visibility = time.Second
	if err := runUntil(t, c, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.deleted) == 1 }); err != nil {
		t.Fatal(err)
	}
	if f.extended == 0 {
		t.Fatal("a message slower than its visibility timeout was never extended")
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	c := &Consumer{Backoff: 2 * time.Second, MaxBackoff: time.Minute}
	for n := 1; n <= 10; n++ {
		d := c.backoff(n)
		upper := min(2*time.Second<<(n-1), time.Minute)
		if d < upper/2 || d > upper {
			t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, upper/2, upper)
		}
	}
}

func TestReceiveRetryPauseStartsAt100msDoublesAndCapsAt10s(t *testing.T) {
	for _, tc := range []struct{ last, want time.Duration }{
		{0, 100 * time.Millisecond},
		{100 * time.Millisecond, 200 * time.Millisecond},
		{6 * time.Second, 10 * time.Second},
		{10 * time.Second, 10 * time.Second},
	} {
		if got := receiveRetryPause(tc.last); got != tc.want {
			t.Errorf("receiveRetryPause(%s) = %s, want %s", tc.last, got, tc.want)
		}
	}
}

// gatedPublisher holds every Publish until gate is closed.
type gatedPublisher struct {
	*fakePublisher
	gate chan struct{}
}

func (g gatedPublisher) Publish(ctx context.Context, rs []events.Result) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.fakePublisher.Publish(ctx, rs)
}

// A worker is freed once its message is decided: with one worker, the next
// messages are handled while the first one's results are still being
// published, and none is deleted before its results are.
func TestAWorkerIsFreedOnceItsMessageIsDecided(t *testing.T) {
	f := newFakeSQS(3)
	p := &fakePublisher{sqs: f}
	gate := make(chan struct{})
	var mu sync.Mutex
	handled := 0
	c := newConsumer(f, p, handlerFunc{handle: func(m Message) Disposition {
		mu.Lock()
		handled++
		mu.Unlock()
		return granted(m)
	}})
	c.Publisher, c.Workers = gatedPublisher{p, gate}, 1
	err := runUntil(t, c, func() bool {
		mu.Lock()
		n := handled
		mu.Unlock()
		select {
		case <-gate:
		default:
			if n == 3 { // every message decided while publishing was held
				f.mu.Lock()
				early := len(f.deleted)
				f.mu.Unlock()
				if early != 0 {
					t.Errorf("%d messages deleted while their results were held", early)
				}
				close(gate)
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.deleted) == 3
	})
	if err != nil {
		t.Fatal(err)
	}
}
