package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/internal/awsx"
)

// SQS is the part of the SQS client the consumer uses.
type SQS interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Publisher makes result events durable.
type Publisher interface {
	Publish(ctx context.Context, results []events.Result) error
}

// Message is one received SQS message.
type Message struct {
	ID            string
	Body          string
	ReceiptHandle string
	ReceiveCount  int
	FirstReceive  time.Time
	Attributes    map[string]types.MessageAttributeValue
}

// Disposition is what a Handler decided for a message.
type Disposition struct {
	// Outcome is for logs and metrics (events.Outcome): applied, rejected,
	// duplicate or ignored (the grants service's), poison or failed (to the
	// DLQ), or error; a message kept for later is counted as retry.
	Outcome events.Outcome
	Results []events.Result // published before the message is deleted
	Poison  *Poison         // move to the DLQ instead of deleting
	Err     error           // keep the message and retry it later
	GrantID string
	SymID   string
}

// Poison says why a message goes to the dead-letter queue.
type Poison struct {
	Code events.Code
	Msg  string
}

// Handler decides what a message does. GiveUp is called instead of Handle's
// retry when a message failed on its last allowed receive.
type Handler interface {
	Handle(ctx context.Context, m Message) Disposition
	GiveUp(ctx context.Context, m Message, cause error) Disposition
}

// Observer hears about messages for the metrics: each one received, in
// flight, moved to the DLQ, and finished with its outcome. May be nil.
type Observer interface {
	Observed(outcome events.Outcome, took time.Duration)
	InFlight(delta int)
	DLQMoved()
	Received()
}

// Consumer drains one queue.
type Consumer struct {
	SQS        SQS
	QueueURL   string
	DLQURL     string
	Handler    Handler
	Publisher  Publisher
	Workers    int
	WaitTime   time.Duration
	Visibility time.Duration // the queue's visibility timeout
	MaxReceive int           // the queue's maxReceiveCount: the last attempt gives up
	Backoff    time.Duration // first retry delay; doubles per receive
	MaxBackoff time.Duration
	Version    string
	Log        *slog.Logger
	Now        func() time.Time
	Observer   Observer
	// Alive is called after every receive, for /healthz.
	Alive func()

	inflight sync.Map // message id -> *tracked
}

// receiveLinger is how long a receive waits for more free workers. It only
// delays a receive while every worker is busy; an idle consumer (the usual
// case) has all its slots free and receives at once.
const receiveLinger = 25 * time.Millisecond

type tracked struct {
	receipt  string
	deadline time.Time
}

// Run receives until ctx is cancelled, then stops receiving and waits up to
// drain for in-flight messages. Messages still running at the deadline are
// left to reappear on the queue: nothing is deleted that did not finish.
func (c *Consumer) Run(ctx context.Context, drain time.Duration) error {
	if c.Workers < 1 {
		return errors.New("consumer: Workers must be at least 1")
	}
	// work outlives ctx by the drain deadline so in-flight messages finish.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	p := c.startPipeline(work)
	var inFlight sync.WaitGroup
	c.receiveUntilCancelled(ctx, work, p, &inFlight)
	drainErr := waitDrained(&inFlight, drain, cancelWork)
	p.stop()
	return drainErr
}

// pipeline is what runs beside the receive loop and outlives it until the
// drain: the batchers that publish results and delete messages, and the
// extender that keeps slow messages invisible.
type pipeline struct {
	deleter      *batcher[Message]
	publisher    *batcher[events.Result]
	stopBatchers chan struct{}
	stopExtender chan struct{}
	extenderDone chan struct{}
}

func (c *Consumer) startPipeline(work context.Context) *pipeline {
	p := &pipeline{
		deleter:      newBatcher(10, 20*time.Millisecond, c.deleteBatch),
		publisher:    newBatcher(10, 20*time.Millisecond, c.publishBatch),
		stopBatchers: make(chan struct{}),
		stopExtender: make(chan struct{}),
		extenderDone: make(chan struct{}),
	}
	go p.deleter.run(work, p.stopBatchers)
	go p.publisher.run(work, p.stopBatchers)
	go func() { defer close(p.extenderDone); c.extendLoop(work, p.stopExtender) }()
	return p
}

// stop ends the extender, then flushes what the batchers still hold.
func (p *pipeline) stop() {
	close(p.stopExtender)
	<-p.extenderDone
	close(p.stopBatchers)
	<-p.deleter.done
	<-p.publisher.done
}

// capacity bounds the messages in hand. A deciding slot bounds messages
// being decided (Handle: DynamoDB and IAM); it is freed as soon as the
// decision is made, so the next message is received while this one's
// results are published and it is deleted in the batchers' next batch. A
// finishing slot bounds those.
type capacity struct {
	deciding  chan struct{}
	finishing chan struct{}
}

func newCapacity(workers int) capacity {
	return capacity{deciding: make(chan struct{}, workers), finishing: make(chan struct{}, 4*workers)}
}

// gather takes a free deciding slot, then lingers up to receiveLinger for
// more, up to want: under load slots free up one at a time, and one receive
// should fill several workers instead of one each. It returns how many
// slots it took: 0 when ctx ended first.
func (k capacity) gather(ctx context.Context, want int) int {
	select {
	case k.deciding <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	free := 1
	linger := time.NewTimer(receiveLinger)
	defer linger.Stop()
	for free < want {
		select {
		case k.deciding <- struct{}{}:
			free++
		case <-linger.C:
			return free
		case <-ctx.Done():
			return free
		}
	}
	return free
}

// release gives back n deciding slots.
func (k capacity) release(n int) {
	for range n {
		<-k.deciding
	}
}

// receiveUntilCancelled receives as many messages as there are free slots
// and starts a worker for each, until ctx is cancelled. A failed receive is
// retried after a growing pause.
func (c *Consumer) receiveUntilCancelled(ctx, work context.Context, p *pipeline, inFlight *sync.WaitGroup) {
	slots := newCapacity(c.Workers)
	var pause time.Duration
	for ctx.Err() == nil {
		free := slots.gather(ctx, min(10, c.Workers))
		if free == 0 {
			continue
		}
		msgs, err := c.receive(ctx, free)
		if c.Alive != nil && err == nil {
			c.Alive()
		}
		slots.release(free - len(msgs))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			pause = receiveRetryPause(pause)
			c.Log.Error("receive failed", "err", err, "retry_in", pause)
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
			continue
		}
		pause = 0
		for _, m := range msgs {
			c.startWorker(work, m, p, slots, inFlight)
		}
	}
}

// receiveRetryPause is how long to wait after a failed receive, given the
// pause before it: 100ms at first, doubling, at most 10s.
func receiveRetryPause(last time.Duration) time.Duration {
	return min(max(2*last, 100*time.Millisecond), 10*time.Second)
}

// startWorker processes m in a goroutine that holds one of the deciding
// slots until m is decided, then one of the finishing slots until m is done.
func (c *Consumer) startWorker(work context.Context, m Message, p *pipeline, slots capacity, inFlight *sync.WaitGroup) {
	c.track(m)
	inFlight.Add(1)
	go func() {
		defer inFlight.Done()
		var once sync.Once
		free := func() { once.Do(func() { slots.release(1) }) }
		defer free()
		c.process(work, m, p.deleter, p.publisher, func() (done func()) {
			slots.finishing <- struct{}{}
			free()
			return func() { <-slots.finishing }
		})
	}()
}

// waitDrained waits up to drain for the in-flight messages. Past it, their
// work is cancelled (they stay on the queue, to be redelivered) and the
// missed deadline is the error.
func waitDrained(inFlight *sync.WaitGroup, drain time.Duration, cancelWork context.CancelFunc) error {
	done := make(chan struct{})
	go func() { inFlight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(drain):
		cancelWork()
		<-done
		return fmt.Errorf("shutdown: in-flight work did not finish within %s; it will be redelivered", drain)
	}
}

func (c *Consumer) receive(ctx context.Context, n int) ([]Message, error) {
	out, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    &c.QueueURL,
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(c.WaitTime / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount, types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp},
	})
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", c.QueueURL, err)
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msg := Message{ID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), ReceiptHandle: aws.ToString(m.ReceiptHandle), Attributes: m.MessageAttributes, ReceiveCount: 1}
		if v, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
			msg.ReceiveCount = v
		}
		if v, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp)], 10, 64); err == nil {
			msg.FirstReceive = time.UnixMilli(v).UTC()
		}
		msgs = append(msgs, msg)
		if c.Observer != nil {
			c.Observer.Received()
		}
	}
	return msgs, nil
}

// process decides m, then (after decided, which frees its worker slot)
// publishes its results and deletes it, or retries it later.
func (c *Consumer) process(ctx context.Context, m Message, deleter *batcher[Message], publisher *batcher[events.Result], decided func() (done func())) {
	start := c.Now()
	ctx = WithLogAttrs(ctx, slog.String("sqs_message_id", m.ID))
	if c.Observer != nil {
		c.Observer.InFlight(1)
		defer c.Observer.InFlight(-1)
	}
	defer c.inflight.Delete(m.ID)
	d := c.Handler.Handle(ctx, m)
	if d.Err != nil && c.MaxReceive > 0 && m.ReceiveCount >= c.MaxReceive {
		cause := d.Err
		d = c.Handler.GiveUp(ctx, m, cause)
		if d.Poison == nil {
			d.Poison = &Poison{Code: events.CodeGaveUp, Msg: cause.Error()}
		}
	}
	defer decided()()
	log := c.Log.With("sqs_message_id", m.ID, "sym_event_id", d.SymID, "grant_id", d.GrantID, "receive_count", m.ReceiveCount)
	if d.Err == nil {
		d.Err = c.publishAll(ctx, publisher, d.Results)
	}
	if d.Err == nil && d.Poison != nil {
		d.Err = c.moveToDLQ(ctx, m, d.Poison)
		if d.Err == nil {
			log.Warn("moved to the dead-letter queue", "code", d.Poison.Code, "reason", d.Poison.Msg)
			if c.Observer != nil {
				c.Observer.DLQMoved()
			}
		}
	}
	if d.Err == nil {
		d.Err = deleter.Do(ctx, m)
	}
	if d.Err != nil {
		delay := c.backoff(m.ReceiveCount)
		// error_code makes the reason of a later SQS redrive (no reason
		// attributes) recoverable from the logs by sqs_message_id.
		log.Warn("message will be retried", "err", d.Err, "error_code", awsx.Code(d.Err), "outcome", d.Outcome, "retry_in", delay)
		c.retryLater(ctx, m, delay)
		d.Outcome = events.OutcomeRetry
	} else {
		log.Debug("message done", "outcome", d.Outcome)
	}
	if c.Observer != nil {
		c.Observer.Observed(d.Outcome, c.Now().Sub(start))
	}
}

func (c *Consumer) publishAll(ctx context.Context, publisher *batcher[events.Result], results []events.Result) error {
	if len(results) == 0 {
		return nil
	}
	errs := make(chan error, len(results))
	for _, r := range results {
		go func() { errs <- publisher.Do(ctx, r) }()
	}
	var all []error
	for range results {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

func (c *Consumer) publishBatch(ctx context.Context, rs []events.Result) []error {
	err := c.Publisher.Publish(ctx, rs)
	out := make([]error, len(rs))
	for i := range out {
		out[i] = err
	}
	return out
}

// deleteBatch deletes up to ten messages. An invalid receipt means the
// message is already gone or held by another receive: either way not ours
// to retry, so it counts as done.
func (c *Consumer) deleteBatch(ctx context.Context, ms []Message) []error {
	entries := make([]types.DeleteMessageBatchRequestEntry, len(ms))
	for i, m := range ms {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.ReceiptHandle)}
	}
	errs := make([]error, len(ms))
	out, err := c.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &c.QueueURL, Entries: entries})
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("delete batch: %w", err)
		}
		return errs
	}
	for _, f := range out.Failed {
		i, _ := strconv.Atoi(aws.ToString(f.Id))
		if i < 0 || i >= len(errs) || aws.ToString(f.Code) == "ReceiptHandleIsInvalid" {
			continue
		}
		errs[i] = fmt.Errorf("delete %s: %s: %s", ms[i].ID, aws.ToString(f.Code), aws.ToString(f.Message))
	}
	return errs
}

// backoff grows with the receive count, with full jitter, so a throttled
// dependency is not hammered by every replica at once.
func (c *Consumer) backoff(receives int) time.Duration {
	d := c.Backoff
	for i := 1; i < receives && d < c.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.MaxBackoff)
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (c *Consumer) retryLater(ctx context.Context, m Message, delay time.Duration) {
	_, err := c.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: &c.QueueURL, ReceiptHandle: &m.ReceiptHandle, VisibilityTimeout: int32(delay.Round(time.Second) / time.Second),
	})
	if err != nil {
		c.Log.Warn("could not set retry delay; the message reappears after its visibility timeout", "sqs_message_id", m.ID, "err", err)
	}
}

// Reason attribute names on messages iamjit moves to the DLQ.
const (
	AttrCode         = "iamjit.error_code"
	AttrError        = "iamjit.error"
	AttrFirstReceive = "iamjit.first_receive"
	AttrLastReceive  = "iamjit.last_receive"
	AttrReceiveCount = "iamjit.receive_count"
	AttrVersion      = "iamjit.version"
	AttrMessageID    = "iamjit.message_id"
)

// moveToDLQ sends the message, with its reason, to the DLQ. The caller
// deletes it from the queue afterwards, so a crash in between duplicates it
// in the DLQ rather than losing it.
func (c *Consumer) moveToDLQ(ctx context.Context, m Message, p *Poison) error {
	if c.DLQURL == "" {
		return fmt.Errorf("no dead-letter queue to move poison message %s to (%s)", m.ID, p.Code)
	}
	attrs := map[string]types.MessageAttributeValue{}
	str := func(k, v string) {
		attrs[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	msg := p.Msg
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	first := m.FirstReceive
	if first.IsZero() {
		first = c.Now()
	}
	str(AttrCode, string(p.Code))
	str(AttrError, msg)
	str(AttrFirstReceive, first.UTC().Format(time.RFC3339Nano))
	str(AttrLastReceive, c.Now().UTC().Format(time.RFC3339Nano))
	attrs[AttrReceiveCount] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(m.ReceiveCount))}
	str(AttrVersion, c.Version)
	str(AttrMessageID, m.ID)
	// SQS allows ten attributes: keep the original ones that fit.
	for k, v := range m.Attributes {
		if _, ours := attrs[k]; !ours && len(attrs) < 10 {
			attrs[k] = v
		}
	}
	_, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &c.DLQURL, MessageBody: &m.Body, MessageAttributes: attrs})
	if err != nil {
		return fmt.Errorf("move %s to the DLQ: %w", m.ID, err)
	}
	return nil
}

func (c *Consumer) track(m Message) {
	c.inflight.Store(m.ID, &tracked{receipt: m.ReceiptHandle, deadline: c.Now().Add(c.Visibility)})
}

// extendLoop keeps slow messages invisible: every third of the visibility
// timeout it extends those that would reappear within half of it.
func (c *Consumer) extendLoop(ctx context.Context, stop <-chan struct{}) {
	if c.Visibility <= 0 {
		return
	}
	t := time.NewTicker(max(c.Visibility/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := c.Now()
		var entries []types.ChangeMessageVisibilityBatchRequestEntry
		var tracks []*tracked
		c.inflight.Range(func(_, v any) bool {
			tr := v.(*tracked)
			if tr.deadline.Sub(now) < c.Visibility/2 {
				entries = append(entries, types.ChangeMessageVisibilityBatchRequestEntry{
					Id: aws.String(strconv.Itoa(len(entries))), ReceiptHandle: aws.String(tr.receipt),
					VisibilityTimeout: int32(c.Visibility / time.Second),
				})
				tracks = append(tracks, tr)
			}
			return true
		})
		for start := 0; start < len(entries); start += 10 {
			end := min(start+10, len(entries))
			_, err := c.SQS.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &c.QueueURL, Entries: entries[start:end]})
			if err != nil {
				c.Log.Warn("could not extend visibility", "err", err)
				continue
			}
			for _, tr := range tracks[start:end] {
				tr.deadline = now.Add(c.Visibility)
			}
		}
	}
}
