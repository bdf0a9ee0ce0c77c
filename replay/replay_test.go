package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/iamjit/iamjit/consumer"
)

// fakeQueue is an in-memory SQS with visibility: enough for the mover's
// receive / hold / release / delete bookkeeping under a fixed clock.
type fakeQueue struct {
	now      time.Time
	queues   map[string][]*fakeMsg
	seq      int
	sendFail func(body string) bool // per-entry failure
	sendErr  error                  // whole-call failure
	changes  int                    // ChangeMessageVisibilityBatch entries
}

type fakeMsg struct {
	id, body, receipt string
	attrs             map[string]types.MessageAttributeValue
	sent, visibleAt   time.Time
}

func newFake(now time.Time) *fakeQueue {
	return &fakeQueue{now: now, queues: map[string][]*fakeMsg{}}
}

func (f *fakeQueue) put(q, body string, sent time.Time, attrs map[string]types.MessageAttributeValue) string {
	f.seq++
	id := fmt.Sprintf("m-%04d", f.seq)
	f.queues[q] = append(f.queues[q], &fakeMsg{id: id, body: body, attrs: attrs, sent: sent})
	return id
}

func (f *fakeQueue) visible(q string) int {
	n := 0
	for _, m := range f.queues[q] {
		if !m.visibleAt.After(f.now) {
			n++
		}
	}
	return n
}

func (f *fakeQueue) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out := &sqs.ReceiveMessageOutput{}
	for _, m := range f.queues[*in.QueueUrl] {
		if len(out.Messages) == int(in.MaxNumberOfMessages) {
			break
		}
		if m.visibleAt.After(f.now) {
			continue
		}
		f.seq++
		m.receipt = fmt.Sprintf("%s#%d", m.id, f.seq)
		m.visibleAt = f.now.Add(time.Duration(in.VisibilityTimeout) * time.Second)
		out.Messages = append(out.Messages, types.Message{
			MessageId: aws.String(m.id), Body: aws.String(m.body), ReceiptHandle: aws.String(m.receipt),
			MessageAttributes: m.attrs,
			Attributes:        map[string]string{"SentTimestamp": strconv.FormatInt(m.sent.UnixMilli(), 10)},
		})
	}
	return out, nil
}

func (f *fakeQueue) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if f.sendErr != nil {
		return nil, f.sendErr
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if f.sendFail != nil && f.sendFail(*e.MessageBody) {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("injected")})
			continue
		}
		f.put(*in.QueueUrl, *e.MessageBody, f.now, e.MessageAttributes)
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (f *fakeQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		q := f.queues[*in.QueueUrl]
		i := slices.IndexFunc(q, func(m *fakeMsg) bool { return m.receipt == *e.ReceiptHandle })
		if i < 0 {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid")})
			continue
		}
		f.queues[*in.QueueUrl] = slices.Delete(q, i, i+1)
	}
	return out, nil
}

func (f *fakeQueue) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		f.changes++
		i := slices.IndexFunc(f.queues[*in.QueueUrl], func(m *fakeMsg) bool { return m.receipt == *e.ReceiptHandle })
		if i < 0 {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid")})
			continue
		}
		f.queues[*in.QueueUrl][i].visibleAt = f.now.Add(time.Duration(e.VisibilityTimeout) * time.Second)
	}
	return out, nil
}

func str(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

func reasons(code string) map[string]types.MessageAttributeValue {
	return map[string]types.MessageAttributeValue{
		consumer.AttrCode: str(code), consumer.AttrError: str(code + " happened"), consumer.AttrVersion: str("test"),
		consumer.AttrMessageID: str("orig"), "trace": str("t"),
	}
}

// dlqOf is a fake whose DLQ holds n letters, b-0 to b-(n-1), letter i sent
// i×age before t0 with reason codes[i mod len(codes)].
func dlqOf(n int, age time.Duration, codes ...string) *fakeQueue {
	f := newFake(t0)
	for i := range n {
		f.put("dlq", fmt.Sprintf("b-%d", i), t0.Add(-time.Duration(i)*age), reasons(codes[i%len(codes)]))
	}
	return f
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestFilterMatch(t *testing.T) {
	now := t0
	old := Letter{Code: "AccessDenied", Sent: now.Add(-3 * time.Hour)}
	young := Letter{Code: CodeRedrive, Sent: now.Add(-time.Minute)}
	cases := []struct {
		name       string
		f          Filter
		old, young bool
	}{
		{"empty matches all", Filter{}, true, true},
		{"code", Filter{Codes: []string{"AccessDenied"}}, true, false},
		{"redrive matches no reason", Filter{Codes: []string{CodeRedrive}}, false, true},
		{"older than", Filter{OlderThan: time.Hour}, true, false},
		{"newer than", Filter{NewerThan: time.Hour}, false, true},
		{"window", Filter{OlderThan: 2 * time.Hour, NewerThan: 4 * time.Hour}, true, false},
		{"code and age", Filter{Codes: []string{"AccessDenied"}, NewerThan: time.Hour}, false, false},
	}
	for _, c := range cases {
		if got := c.f.Match(old, now); got != c.old {
			t.Errorf("%s: old letter matched = %v, want %v", c.name, got, c.old)
		}
		if got := c.f.Match(young, now); got != c.young {
			t.Errorf("%s: young letter matched = %v, want %v", c.name, got, c.young)
		}
	}
}

func TestParseCodes(t *testing.T) {
	got := ParseCodes([]string{"a,b", " c ", "a", ""})
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("ParseCodes = %v", got)
	}
}

func TestReplayAttributes(t *testing.T) {
	got := ReplayAttributes(reasons("Throttling"), "Throttling")
	if len(got) != 2 || aws.ToString(got["trace"].StringValue) != "t" || aws.ToString(got[AttrReplayedFrom].StringValue) != "Throttling" {
		t.Fatalf("attributes = %v, want trace and %s only", keys(got), AttrReplayedFrom)
	}
	// A letter with ten attributes of its own keeps them all: no room left.
	full := map[string]types.MessageAttributeValue{}
	for i := range 10 {
		full[fmt.Sprintf("a%d", i)] = str("x")
	}
	got = ReplayAttributes(full, CodeRedrive)
	if len(got) != 10 {
		t.Fatalf("got %d attributes, want the 10 originals", len(got))
	}
	if _, ok := got[AttrReplayedFrom]; ok {
		t.Fatalf("%s added beyond SQS's limit of ten", AttrReplayedFrom)
	}
	// A second replay records the newest reason, once.
	again := ReplayAttributes(map[string]types.MessageAttributeValue{AttrReplayedFrom: str("old"), consumer.AttrCode: str("new")}, "new")
	if len(again) != 1 || aws.ToString(again[AttrReplayedFrom].StringValue) != "new" {
		t.Fatalf("second replay attributes = %v", again)
	}
}

func keys(m map[string]types.MessageAttributeValue) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func newMover(f *fakeQueue) *Mover {
	return &Mover{SQS: f, From: "dlq", To: "q", Now: func() time.Time { return f.now }}
}

func TestMoveFiltersAndReleases(t *testing.T) {
	f := dlqOf(25, time.Minute, "AccessDenied", "Throttling")
	for i := range 5 {
		f.put("dlq", fmt.Sprintf("redrive-%d", i), t0, map[string]types.MessageAttributeValue{"trace": str("r")})
	}
	m := newMover(f)
	m.Filter = Filter{Codes: []string{"Throttling", CodeRedrive}}
	rep, err := m.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seen != 30 || rep.Moved != 17 || rep.Skipped != 13 || rep.Failed != 0 {
		t.Fatalf("report = %s seen=%d, want moved=17 skipped=13 of 30", rep.Summary(), rep.Seen)
	}
	if n := len(f.queues["q"]); n != 17 {
		t.Fatalf("target holds %d, want 17", n)
	}
	for _, m := range f.queues["q"] {
		from := aws.ToString(m.attrs[AttrReplayedFrom].StringValue)
		if (strings.HasPrefix(m.body, "redrive") && from != CodeRedrive) || (!strings.HasPrefix(m.body, "redrive") && from != "Throttling") {
			t.Errorf("%s replayed_from = %q", m.body, from)
		}
		if _, ok := m.attrs[consumer.AttrCode]; ok {
			t.Errorf("%s still carries %s", m.body, consumer.AttrCode)
		}
	}
	if len(f.queues["dlq"]) != 13 || f.visible("dlq") != 13 {
		t.Fatalf("DLQ holds %d (%d visible), want the 13 skipped, all visible again", len(f.queues["dlq"]), f.visible("dlq"))
	}
}

func TestMoveAgeFilterAndMax(t *testing.T) {
	f := dlqOf(40, time.Hour, "X")
	m := newMover(f)
	m.Filter = Filter{OlderThan: 10 * time.Hour}
	m.Max = 12
	rep, err := m.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Moved != 12 || len(f.queues["q"]) != 12 {
		t.Fatalf("moved %d (target %d), want --max 12", rep.Moved, len(f.queues["q"]))
	}
	for _, msg := range f.queues["q"] {
		n, _ := strconv.Atoi(strings.TrimPrefix(msg.body, "b-"))
		if n < 10 {
			t.Errorf("moved %s, which is younger than 10h", msg.body)
		}
	}
	if f.visible("dlq") != 28 {
		t.Fatalf("DLQ visible = %d, want 28", f.visible("dlq"))
	}
}

func TestPartialSendFailureDeletesOnlySent(t *testing.T) {
	f := dlqOf(10, 0, "X")
	f.sendFail = func(body string) bool { return body == "b-3" || body == "b-7" }
	rep, err := newMover(f).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Moved != 8 || rep.Failed != 2 {
		t.Fatalf("report %s, want moved=8 failed=2", rep.Summary())
	}
	var left []string
	for _, m := range f.queues["dlq"] {
		left = append(left, m.body)
	}
	if !slices.Equal(left, []string{"b-3", "b-7"}) || f.visible("dlq") != 2 {
		t.Fatalf("DLQ holds %v (%d visible), want b-3 and b-7 visible", left, f.visible("dlq"))
	}
}

func TestWholeSendErrorStopsAndKeepsEverything(t *testing.T) {
	f := dlqOf(15, 0, "X")
	f.sendErr = &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue", Message: "no queue"}
	rep, err := newMover(f).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "send to q") {
		t.Fatalf("err = %v, want the send error", err)
	}
	if rep.Failed != 10 || rep.Moved != 0 {
		t.Fatalf("report %s, want failed=10 (one batch) moved=0", rep.Summary())
	}
	if f.visible("dlq") != 15 {
		t.Fatalf("DLQ visible = %d, want all 15", f.visible("dlq"))
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	f := dlqOf(23, time.Minute, "A", "B", "C")
	m := newMover(f)
	m.DryRun, m.Filter, m.Max = true, Filter{Codes: []string{"A"}}, 5
	rep, err := m.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.queues["q"]) != 0 || len(f.queues["dlq"]) != 23 || f.visible("dlq") != 23 {
		t.Fatalf("dry run changed the queues: target %d, DLQ %d (%d visible)", len(f.queues["q"]), len(f.queues["dlq"]), f.visible("dlq"))
	}
	if rep.Seen != 23 || rep.Moved != 5 || rep.Skipped != 18 {
		t.Fatalf("dry run report %s seen=%d, want would_move=5 (A capped by --max) skipped=18 seen=23", rep.Summary(), rep.Seen)
	}
	groups := rep.Groups()
	if len(groups) != 3 || groups[0].Code != "A" || groups[0].Count != 8 || groups[0].Match != 5 {
		t.Fatalf("groups = %+v", groups)
	}
	if want := t0.Add(-21 * time.Minute); !groups[0].Oldest.Equal(want) {
		t.Fatalf("oldest A = %s, want %s", groups[0].Oldest, want)
	}
	var out bytes.Buffer
	if err := WriteTable(&out, rep, true, t0); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WOULD MOVE", "A     8      5           21m", "A happened", "MESSAGE ID"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if lines := strings.Count(out.String(), "\n"); lines != 1+3+2+23 {
		t.Errorf("table has %d lines, want header, 3 groups, blank, header, 23 letters:\n%s", lines, out.String())
	}
}

// A hold that runs out mid-scan is extended, so no letter is seen twice and
// the scan reaches the end.
func TestLongScanExtendsHold(t *testing.T) {
	f := dlqOf(50, 0, "X")
	m := newMover(f)
	m.DryRun, m.Hold = true, 30*time.Second
	m.Progress = func(Report) { f.now = f.now.Add(8 * time.Second) } // each batch takes 8s
	rep, err := m.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seen != 50 {
		t.Fatalf("seen %d, want 50", rep.Seen)
	}
	if f.changes <= 50 {
		t.Fatalf("%d visibility changes: the hold was never extended", f.changes)
	}
	if f.visible("dlq") != 50 {
		t.Fatalf("visible = %d, want 50 after the scan", f.visible("dlq"))
	}
}

func TestCancelReleasesHeld(t *testing.T) {
	f := dlqOf(40, 0, "A", "B")
	ctx, cancel := context.WithCancel(context.Background())
	m := newMover(f)
	m.Filter = Filter{Codes: []string{"A"}}
	m.Progress = func(r Report) {
		if r.Moved >= 5 {
			cancel()
		}
	}
	rep, err := m.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if rep.Moved != 5 || len(f.queues["q"]) != 5 {
		t.Fatalf("moved %d (target %d), want 5", rep.Moved, len(f.queues["q"]))
	}
	if f.visible("dlq") != 35 {
		t.Fatalf("DLQ visible = %d, want 35: skipped letters released on cancel", f.visible("dlq"))
	}
}

func TestCheckNative(t *testing.T) {
	if err := CheckNative(Filter{}, 0, false); err != nil {
		t.Fatalf("no filters: %v", err)
	}
	err := CheckNative(Filter{Codes: []string{"x"}, OlderThan: time.Hour}, 3, true)
	if err == nil {
		t.Fatal("filters accepted with --native")
	}
	for _, flag := range []string{"--code", "--older-than", "--max", "--dry-run", "cannot filter"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("refusal %q does not name %s", err, flag)
		}
	}
}

func TestAgeAndBar(t *testing.T) {
	for d, want := range map[time.Duration]string{
		42 * time.Second: "42s", 12*time.Minute + 5*time.Second: "12m", 5*time.Hour + 3*time.Minute: "5h3m", 76 * time.Hour: "3d4h",
	} {
		if got := Age(d); got != want {
			t.Errorf("Age(%s) = %s, want %s", d, got, want)
		}
	}
	var out bytes.Buffer
	b := NewBar(&out, 100)
	b.Update(Report{Seen: 50, Moved: 40, Skipped: 9, Failed: 1})
	b.Done()
	if want := "\r[###############...............] 50/100  moved=40 skipped=9 failed=1 \n"; out.String() != want {
		t.Fatalf("bar = %q, want %q", out.String(), want)
	}
}

// A letter that comes back while the scan goes on (iamjit dead-lettered a
// poison message again, as a new message) is left in the DLQ: moved once,
// not again until --max.
func TestLetterThatComesBackIsNotMovedAgain(t *testing.T) {
	f := dlqOf(2, time.Minute, "poison")
	m := newMover(f)
	m.Max = 50
	// The consumer, as fast as it can be: every replayed body is dead-
	// lettered again under a new id before the next receive.
	m.Progress = func(Report) {
		for _, msg := range f.queues["q"] {
			f.put("dlq", msg.body, f.now, reasons("poison"))
		}
		f.queues["q"] = nil
	}
	rep, err := m.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Moved != 2 || rep.Skipped != 2 || rep.Seen != 4 {
		t.Fatalf("report = %s seen=%d, want each letter moved once and its return skipped", rep.Summary(), rep.Seen)
	}
	if len(f.queues["dlq"]) != 2 || f.visible("dlq") != 2 {
		t.Fatalf("DLQ holds %d (%d visible), want the two returns, visible again", len(f.queues["dlq"]), f.visible("dlq"))
	}
}
