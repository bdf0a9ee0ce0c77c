package replay

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/consumer"
	"github.com/iamjit/iamjit/internal/awsx"
)

// SQS is the part of the SQS client a replay uses.
type SQS interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

const (
	// CodeRedrive is the reason of a letter without iamjit.error_code: SQS
	// moved it after maxReceiveCount receives (the consumer crashed or timed
	// out on it). Its cause is in the consumer's logs under its
	// sqs_message_id (SQS keeps the id across a redrive).
	CodeRedrive = "redrive"
	// AttrReplayedFrom is set on a replayed message to the reason it had in
	// the DLQ, so its history stays visible if it fails again.
	AttrReplayedFrom = "iamjit.replayed_from"

	maxAttributes = 10 // SQS's limit of message attributes
)

// reasonAttrs are the attributes the consumer adds when it moves a letter;
// they describe the failure, not the message, and are dropped on replay.
var reasonAttrs = map[string]bool{
	consumer.AttrCode: true, consumer.AttrError: true, consumer.AttrFirstReceive: true,
	consumer.AttrLastReceive: true, consumer.AttrReceiveCount: true, consumer.AttrVersion: true,
	consumer.AttrMessageID: true, AttrReplayedFrom: true,
}

// Letter is one message in the DLQ.
type Letter struct {
	ID           string
	Code         string // iamjit.error_code, or CodeRedrive
	Error        string // iamjit.error, if any
	Sent         time.Time
	ReceiveCount int  // receives before it was dead-lettered, when iamjit recorded it
	Match        bool // matched the filter and fits --max: moved, or would be
}

// Filter chooses letters. Zero values match everything.
type Filter struct {
	Codes     []string      // reason codes; CodeRedrive matches letters without one
	OlderThan time.Duration // sent at least this long ago
	NewerThan time.Duration // sent less than this long ago
}

// Match reports whether l passes the filter at now.
func (f Filter) Match(l Letter, now time.Time) bool {
	if len(f.Codes) > 0 && !slices.Contains(f.Codes, l.Code) {
		return false
	}
	age := now.Sub(l.Sent)
	if f.OlderThan > 0 && age < f.OlderThan {
		return false
	}
	if f.NewerThan > 0 && age >= f.NewerThan {
		return false
	}
	return true
}

// Report is what a run did.
type Report struct {
	DryRun  bool
	Seen    int
	Moved   int // sent to the target and deleted from the DLQ (dry run: would be)
	Skipped int // did not match the filter, beyond --max, or came back (below)
	Failed  int // not sent, or sent but not deleted (then it is in both queues)
	Letters []Letter
}

// Summary is the one-line result for scripts.
func (r Report) Summary() string {
	if r.DryRun {
		return fmt.Sprintf("dry-run would_move=%d skipped=%d seen=%d", r.Moved, r.Skipped, r.Seen)
	}
	return fmt.Sprintf("moved=%d skipped=%d failed=%d", r.Moved, r.Skipped, r.Failed)
}

// Mover moves letters from one queue to another.
type Mover struct {
	SQS      SQS
	From, To string
	Filter   Filter
	Max      int  // stop after this many moved (0: no limit)
	DryRun   bool // list only: nothing is sent or deleted
	// Hold is how long letters that are not moved stay invisible while the
	// scan goes on (extended as needed); default 30s.
	Hold time.Duration
	// Wait is the long poll of each receive; default 1s.
	Wait     time.Duration
	Now      func() time.Time
	Log      *slog.Logger
	Progress func(Report) // after every batch; may be nil
}

type held struct {
	receipt string
	until   time.Time
}

// received is a letter as ReceiveMessage returned it.
type received struct {
	Letter
	receipt string
	body    string
	attrs   map[string]types.MessageAttributeValue
	system  map[string]string
}

// Run scans the DLQ once. It returns the report so far with an error when
// ctx ends or a call fails; letters not moved are made visible again either
// way.
func (m *Mover) Run(ctx context.Context) (Report, error) {
	if m.Hold <= 0 {
		m.Hold = 30 * time.Second
	}
	if m.Wait <= 0 {
		m.Wait = time.Second
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	if m.Log == nil {
		m.Log = slog.New(slog.DiscardHandler)
	}
	rep := Report{DryRun: m.DryRun}
	seen := map[string]bool{}
	// The bodies this run moved: a letter that arrives with one of them
	// came back (iamjit dead-lettered it again while the scan went on, as a
	// new message); moving it again would loop until --max.
	moved := map[[sha256.Size]byte]bool{}
	hold := map[string]*held{} // message id -> letter kept invisible until the end
	var runErr error
	for empties := 0; empties < 2; {
		if m.Max > 0 && !m.DryRun && rep.Moved+rep.Failed >= m.Max {
			break
		}
		if ctx.Err() != nil {
			runErr = ctx.Err()
			break
		}
		got, err := m.receive(ctx)
		if awsx.IsCode(err, "OverLimit") || awsx.IsCode(err, "AWS.SimpleQueueService.OverLimit") {
			// Too many letters in flight (120,000 on a standard queue): this
			// scan is partial, a later run sees the rest.
			m.Log.Warn("DLQ in-flight limit reached; run again for the rest", "seen", rep.Seen)
			break
		}
		if err != nil {
			runErr = err
			break
		}
		fresh := 0
		var batch []*received
		for _, r := range got {
			if seen[r.ID] {
				// Its hold ran out (or SQS delivered it twice): keep the
				// newest receipt, which is the one that still works.
				if h := hold[r.ID]; h != nil {
					h.receipt, h.until = r.receipt, m.Now().Add(m.Hold)
				}
				continue
			}
			seen[r.ID] = true
			fresh++
			rep.Seen++
			budget := m.Max == 0 || rep.Moved+rep.Failed+len(batch) < m.Max
			back := moved[sha256.Sum256([]byte(r.body))]
			r.Match = budget && !back && m.Filter.Match(r.Letter, m.Now())
			rep.Letters = append(rep.Letters, r.Letter)
			switch {
			case !r.Match:
				rep.Skipped++
			case m.DryRun:
				rep.Moved++
			default:
				batch = append(batch, r)
				continue
			}
			hold[r.ID] = &held{receipt: r.receipt, until: m.Now().Add(m.Hold)}
		}
		if fresh == 0 {
			empties++
		} else {
			empties = 0
		}
		if len(batch) > 0 {
			for _, r := range batch {
				moved[sha256.Sum256([]byte(r.body))] = true
			}
			failed, err := m.move(ctx, batch)
			rep.Moved += len(batch) - len(failed)
			rep.Failed += len(failed)
			for _, r := range failed {
				hold[r.ID] = &held{receipt: r.receipt, until: m.Now().Add(m.Hold)}
			}
			if err != nil {
				runErr = err
				break
			}
		}
		if err := m.extend(ctx, hold); err != nil {
			runErr = err
			break
		}
		if m.Progress != nil {
			m.Progress(rep)
		}
	}
	// Release even when ctx has ended, under a short deadline of its own.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := m.release(rctx, hold); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if m.Progress != nil {
		m.Progress(rep)
	}
	return rep, runErr
}

func (m *Mover) receive(ctx context.Context) ([]*received, error) {
	out, err := m.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    &m.From,
		MaxNumberOfMessages:         10,
		WaitTimeSeconds:             int32(m.Wait / time.Second),
		VisibilityTimeout:           int32(m.Hold / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", m.From, err)
	}
	got := make([]*received, 0, len(out.Messages))
	for _, msg := range out.Messages {
		r := &received{
			Letter:  Letter{ID: aws.ToString(msg.MessageId), Code: CodeRedrive},
			receipt: aws.ToString(msg.ReceiptHandle), body: aws.ToString(msg.Body),
			attrs: msg.MessageAttributes, system: msg.Attributes,
		}
		if a, ok := msg.MessageAttributes[consumer.AttrCode]; ok && aws.ToString(a.StringValue) != "" {
			r.Code = aws.ToString(a.StringValue)
		}
		if a, ok := msg.MessageAttributes[consumer.AttrError]; ok {
			r.Error = aws.ToString(a.StringValue)
		}
		if a, ok := msg.MessageAttributes[consumer.AttrReceiveCount]; ok {
			r.ReceiveCount, _ = strconv.Atoi(aws.ToString(a.StringValue))
		}
		if ms, err := strconv.ParseInt(msg.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
			r.Sent = time.UnixMilli(ms).UTC()
		}
		got = append(got, r)
	}
	return got, nil
}

// move sends batch to the target and deletes from the DLQ what was sent. It
// returns the letters that stay in the DLQ, and an error when a whole call
// failed (the run stops: the next batch would fail the same way).
func (m *Mover) move(ctx context.Context, batch []*received) ([]*received, error) {
	sent, failed, err := m.send(ctx, batch)
	if len(sent) == 0 {
		return failed, err
	}
	// The delete must follow a successful send even if ctx ended meanwhile,
	// or the letter would be in both queues.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	notDeleted, derr := m.delete(dctx, sent)
	for _, r := range notDeleted {
		m.Log.Warn("sent but not deleted from the DLQ: it is in both queues; the duplicate is harmless and a later replay sends it again",
			"sqs_message_id", r.ID)
	}
	return append(failed, notDeleted...), errors.Join(err, derr)
}

func (m *Mover) send(ctx context.Context, batch []*received) (sent, failed []*received, err error) {
	entries := make([]types.SendMessageBatchRequestEntry, len(batch))
	for i, r := range batch {
		entries[i] = sendEntry(strconv.Itoa(i), r)
	}
	out, err := m.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &m.To, Entries: entries})
	if err != nil && len(batch) > 1 && (awsx.IsCode(err, "AWS.SimpleQueueService.BatchRequestTooLong") || awsx.IsCode(err, "BatchRequestTooLong")) {
		// Ten large bodies can exceed the batch size limit: one at a time.
		for _, r := range batch {
			s, f, err := m.send(ctx, []*received{r})
			if err != nil {
				return sent, append(failed, f...), err
			}
			sent, failed = append(sent, s...), append(failed, f...)
		}
		return sent, failed, nil
	}
	if err != nil {
		return nil, batch, fmt.Errorf("send to %s: %w", m.To, err)
	}
	bad := map[int]bool{}
	for _, f := range out.Failed {
		i, convErr := strconv.Atoi(aws.ToString(f.Id))
		if convErr != nil || i < 0 || i >= len(batch) {
			continue
		}
		bad[i] = true
		m.Log.Warn("send failed; the letter stays in the DLQ", "sqs_message_id", batch[i].ID,
			"code", aws.ToString(f.Code), "err", aws.ToString(f.Message))
	}
	for i, r := range batch {
		if bad[i] {
			failed = append(failed, r)
		} else {
			sent = append(sent, r)
		}
	}
	return sent, failed, nil
}

// sendEntry keeps body and attributes; the reason attributes give way to
// iamjit.replayed_from (if it fits SQS's ten).
func sendEntry(id string, r *received) types.SendMessageBatchRequestEntry {
	e := types.SendMessageBatchRequestEntry{Id: &id, MessageBody: aws.String(r.body), MessageAttributes: ReplayAttributes(r.attrs, r.Code)}
	if th := r.system[string(types.MessageSystemAttributeNameForSendsAWSTraceHeader)]; th != "" {
		e.MessageSystemAttributes = map[string]types.MessageSystemAttributeValue{
			string(types.MessageSystemAttributeNameForSendsAWSTraceHeader): {DataType: aws.String("String"), StringValue: &th},
		}
	}
	if g := r.system[string(types.MessageSystemAttributeNameMessageGroupId)]; g != "" {
		// FIFO: same group; the DLQ message id deduplicates a re-run's send.
		e.MessageGroupId, e.MessageDeduplicationId = &g, aws.String(r.ID)
	}
	return e
}

// ReplayAttributes is attrs without the reason attributes and with
// AttrReplayedFrom = code, when SQS's limit of ten leaves room.
func ReplayAttributes(attrs map[string]types.MessageAttributeValue, code string) map[string]types.MessageAttributeValue {
	out := make(map[string]types.MessageAttributeValue, len(attrs)+1)
	for k, v := range attrs {
		if !reasonAttrs[k] {
			out[k] = v
		}
	}
	if len(out) < maxAttributes {
		out[AttrReplayedFrom] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(code)}
	}
	return out
}

func (m *Mover) delete(ctx context.Context, sent []*received) (notDeleted []*received, err error) {
	entries := make([]types.DeleteMessageBatchRequestEntry, len(sent))
	for i, r := range sent {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r.receipt)}
	}
	out, err := m.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &m.From, Entries: entries})
	if err != nil {
		return sent, fmt.Errorf("delete from %s: %w", m.From, err)
	}
	for _, f := range out.Failed {
		i, convErr := strconv.Atoi(aws.ToString(f.Id))
		if convErr != nil || i < 0 || i >= len(sent) {
			continue
		}
		notDeleted = append(notDeleted, sent[i])
	}
	return notDeleted, nil
}

// extend pushes out the hold of letters whose hold is a third from ending.
func (m *Mover) extend(ctx context.Context, hold map[string]*held) error {
	now := m.Now()
	var due []*held
	for _, h := range hold {
		if h.until.Sub(now) < m.Hold/3 {
			due = append(due, h)
		}
	}
	if err := m.setVisibility(ctx, due, m.Hold); err != nil {
		return fmt.Errorf("keep letters invisible during the scan: %w", err)
	}
	for _, h := range due {
		h.until = now.Add(m.Hold)
	}
	return nil
}

// release makes every held letter visible again at once.
func (m *Mover) release(ctx context.Context, hold map[string]*held) error {
	all := make([]*held, 0, len(hold))
	for _, h := range hold {
		all = append(all, h)
	}
	if err := m.setVisibility(ctx, all, 0); err != nil {
		return fmt.Errorf("make skipped letters visible again (they reappear within %s anyway): %w", m.Hold, err)
	}
	return nil
}

func (m *Mover) setVisibility(ctx context.Context, hs []*held, d time.Duration) error {
	var errs []error
	for start := 0; start < len(hs); start += 10 {
		chunk := hs[start:min(start+10, len(hs))]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, h := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h.receipt), VisibilityTimeout: int32(d / time.Second),
			}
		}
		out, err := m.SQS.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &m.From, Entries: entries})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

// ParseCodes splits repeated or comma-separated --code values.
func ParseCodes(values []string) []string {
	var out []string
	for _, v := range values {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}
