package replay

// Integration tests: the real SDK against a real moto_server.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/consumer"
	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
)

// The DLQ's mix: four reasons iamjit recorded, and redrive moves without one.
var mixCodes = []string{"AccessDenied", "Throttling", "InternalError", "unknown_group", ""}

// letters is the DLQ size of most tests. moto's ReceiveMessage reads every
// queue attribute, each a pass over all messages, once per message it
// returns: a scan costs O(n²). One test fills the full 1,000.
const letters = 100

type motoQueues struct {
	sqs        *sqs.Client
	queue, dlq string
	bodies     map[string]string // body -> code ("" for redrive)
}

func motoStack(t testing.TB, moto *motoserver.Server, prefix string, n int) *motoQueues {
	t.Helper()
	cfg := moto.AWSConfig(t)
	st, err := devstack.Create(context.Background(), cfg, devstack.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	q := &motoQueues{sqs: sqs.NewFromConfig(cfg), queue: st.QueueURL, dlq: st.DLQURL, bodies: map[string]string{}}
	q.fill(t, n)
	return q
}

// fill sends the letters straight into the DLQ, as the consumer (with
// reason attributes) or an SQS redrive (with the original ones only) would.
func (q *motoQueues) fill(t testing.TB, n int) {
	t.Helper()
	for start := 0; start < n; start += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for i := start; i < start+10; i++ {
			code := mixCodes[i%len(mixCodes)]
			body := fmt.Sprintf(`{"n":%d,"code":%q}`, i, code)
			q.bodies[body] = code
			attrs := map[string]types.MessageAttributeValue{
				"origin": str("o-" + strconv.Itoa(i)),
				"blob":   {DataType: aws.String("Binary"), BinaryValue: []byte{byte(i % 256), 0xff}},
			}
			if code != "" {
				attrs[consumer.AttrCode] = str(code)
				attrs[consumer.AttrError] = str(code + ": details")
				attrs[consumer.AttrReceiveCount] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String("5")}
				attrs[consumer.AttrVersion] = str("test")
				attrs[consumer.AttrMessageID] = str("orig-" + strconv.Itoa(i))
			}
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(body), MessageAttributes: attrs})
		}
		out, err := q.sqs.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: &q.dlq, Entries: entries})
		if err != nil || len(out.Failed) > 0 {
			t.Fatalf("fill the DLQ: %v %+v", err, out)
		}
	}
}

func (q *motoQueues) mover() *Mover {
	return &Mover{SQS: q.sqs, From: q.dlq, To: q.queue}
}

// counts is (visible, in flight) of a queue.
func (q *motoQueues) counts(t testing.TB, url string) (int, int) {
	t.Helper()
	out, err := q.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: &url,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	n, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return v, n
}

// read receives every message of a queue (leaving them invisible) and
// returns them by body, with how often each body occurs.
func (q *motoQueues) read(t testing.TB, url string) (map[string]types.Message, map[string]int) {
	t.Helper()
	msgs, times := map[string]types.Message{}, map[string]int{}
	for {
		out, err := q.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10,
			VisibilityTimeout: 300, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return msgs, times
		}
		for _, m := range out.Messages {
			msgs[aws.ToString(m.Body)] = m
			times[aws.ToString(m.Body)]++
		}
	}
}

func TestMotoReplay(t *testing.T) {
	moto := motoserver.Start(t)
	ctx := context.Background()

	t.Run("a filter moves exactly the matching letters, attributes kept", func(t *testing.T) {
		filteredReplay(t, moto, "filter", letters)
	})

	t.Run("dry run lists by reason and changes nothing", func(t *testing.T) {
		q := motoStack(t, moto, "dry", letters)
		m := q.mover()
		m.DryRun = true
		m.Filter = Filter{Codes: []string{"AccessDenied"}}
		rep, err := m.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		per := letters / len(mixCodes)
		if rep.Seen != letters || rep.Moved != per || rep.Skipped != letters-per {
			t.Fatalf("dry run %s, want would_move=%d skipped=%d seen=%d", rep.Summary(), per, letters-per, letters)
		}
		groups := rep.Groups()
		if len(groups) != len(mixCodes) {
			t.Fatalf("groups = %+v, want %d", groups, len(mixCodes))
		}
		for _, g := range groups {
			if g.Count != per {
				t.Errorf("group %s has %d, want %d", g.Code, g.Count, per)
			}
			if g.Code != CodeRedrive && g.ExampleError != g.Code+": details" {
				t.Errorf("group %s example error = %q", g.Code, g.ExampleError)
			}
		}
		// Right after the run, not after a visibility timeout.
		if v, n := q.counts(t, q.dlq); v != letters || n != 0 {
			t.Fatalf("after a dry run the DLQ has %d visible, %d in flight; want %d, 0", v, n, letters)
		}
		if v, n := q.counts(t, q.queue); v+n != 0 {
			t.Fatalf("dry run put %d messages on the queue", v+n)
		}
	})

	t.Run("--max moves at most N", func(t *testing.T) {
		q := motoStack(t, moto, "max", letters)
		m := q.mover()
		m.Max = 7
		m.Filter = Filter{Codes: []string{"InternalError"}}
		rep, err := m.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		moved, _ := q.read(t, q.queue)
		if rep.Moved != 7 || len(moved) != 7 {
			t.Fatalf("moved %d (queue holds %d), want 7", rep.Moved, len(moved))
		}
		for body := range moved {
			if q.bodies[body] != "InternalError" {
				t.Errorf("moved %s, not InternalError", body)
			}
		}
		if v, n := q.counts(t, q.dlq); v != letters-7 || n != 0 {
			t.Fatalf("DLQ has %d visible, %d in flight; want %d, 0", v, n, letters-7)
		}
	})

	t.Run("a replay killed halfway and run again loses nothing", func(t *testing.T) {
		q := motoStack(t, moto, "kill", letters)
		kctx, kill := context.WithCancel(ctx)
		m := q.mover()
		m.Progress = func(r Report) {
			if r.Moved >= letters/3 {
				kill()
			}
		}
		first, err := m.Run(kctx)
		kill()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("first run: err = %v, want context.Canceled", err)
		}
		if first.Moved < letters/3 || first.Moved >= letters {
			t.Fatalf("first run moved %d, want it stopped after %d", first.Moved, letters/3)
		}
		if v, n := q.counts(t, q.dlq); v != letters-first.Moved || n != 0 {
			t.Fatalf("after the kill the DLQ has %d visible, %d in flight; want %d, 0", v, n, letters-first.Moved)
		}
		second, err := q.mover().Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if second.Moved != letters-first.Moved || second.Failed != 0 {
			t.Fatalf("second run %s, want moved=%d", second.Summary(), letters-first.Moved)
		}
		inQueue, _ := q.read(t, q.queue)
		inDLQ, _ := q.read(t, q.dlq)
		for body := range q.bodies {
			if _, ok := inQueue[body]; !ok {
				_, dlq := inDLQ[body]
				t.Errorf("%s is not in the queue (in the DLQ: %v)", body, dlq)
			}
		}
		for body := range inQueue {
			if _, ok := q.bodies[body]; !ok {
				t.Errorf("the queue holds %s, which was never sent", body)
			}
		}
		if len(inDLQ) != 0 {
			t.Fatalf("%d letters left in the DLQ", len(inDLQ))
		}
	})

	t.Run("DLQOf reads the RedrivePolicy", func(t *testing.T) {
		cfg := moto.AWSConfig(t)
		st, err := devstack.Create(ctx, cfg, devstack.Options{Prefix: "redrive"})
		if err != nil {
			t.Fatal(err)
		}
		c := sqs.NewFromConfig(cfg)
		got, err := DLQOf(ctx, c, st.QueueURL)
		if err != nil || got != st.DLQURL {
			t.Fatalf("DLQOf = %q, %v; want %s", got, err, st.DLQURL)
		}
		if _, err := DLQOf(ctx, c, st.DLQURL); !errors.Is(err, ErrNoRedrivePolicy) {
			t.Fatalf("DLQOf(the DLQ) err = %v, want ErrNoRedrivePolicy", err)
		}
	})
}

// filteredReplay fills a DLQ with n letters of mixed reasons, replays the
// Throttling and redrive ones and checks both queues body by body.
func filteredReplay(t testing.TB, moto *motoserver.Server, prefix string, n int) {
	t.Helper()
	q := motoStack(t, moto, prefix, n)
	m := q.mover()
	m.Filter = Filter{Codes: []string{"Throttling", CodeRedrive}}
	rep, err := m.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	match := 2 * n / len(mixCodes)
	if rep.Moved != match || rep.Skipped != n-match || rep.Failed != 0 || rep.Seen != n {
		t.Fatalf("report %s seen=%d, want moved=%d skipped=%d failed=0 seen=%d", rep.Summary(), rep.Seen, match, n-match, n)
	}
	if v, inFlight := q.counts(t, q.dlq); v != n-match || inFlight != 0 {
		t.Fatalf("DLQ has %d visible, %d in flight; want the %d others, all visible", v, inFlight, n-match)
	}
	moved, times := q.read(t, q.queue)
	if len(moved) != match {
		t.Fatalf("queue holds %d distinct bodies, want %d", len(moved), match)
	}
	for body, m := range moved {
		code, ok := q.bodies[body]
		if !ok || (code != "Throttling" && code != "") {
			t.Fatalf("moved %s (code %q), which the filter does not match", body, code)
		}
		if times[body] != 1 {
			t.Errorf("%s is in the queue %d times", body, times[body])
		}
		want := code
		if want == "" {
			want = CodeRedrive
		}
		if got := aws.ToString(m.MessageAttributes[AttrReplayedFrom].StringValue); got != want {
			t.Errorf("%s: %s = %q, want %q", body, AttrReplayedFrom, got, want)
		}
		for k := range m.MessageAttributes {
			if reasonAttrs[k] && k != AttrReplayedFrom {
				t.Errorf("%s still carries the reason attribute %s", body, k)
			}
		}
		var i int
		fmt.Sscanf(body, `{"n":%d`, &i)
		if got := aws.ToString(m.MessageAttributes["origin"].StringValue); got != "o-"+strconv.Itoa(i) {
			t.Errorf("%s: origin = %q, want o-%d", body, got, i)
		}
		if b := m.MessageAttributes["blob"]; aws.ToString(b.DataType) != "Binary" || len(b.BinaryValue) != 2 || b.BinaryValue[0] != byte(i%256) {
			t.Errorf("%s: binary attribute = %+v", body, b)
		}
	}
	left, _ := q.read(t, q.dlq)
	for body := range left {
		if code := q.bodies[body]; code == "Throttling" || code == "" {
			t.Errorf("%s (code %q) matched but stayed in the DLQ", body, code)
		}
	}
	if len(left) != n-match {
		t.Fatalf("DLQ holds %d distinct bodies, want %d", len(left), n-match)
	}
}

// BenchmarkFilteredReplay1000 is the 1,000-letter DLQ of the issue, with
// the same checks as the test; one op is fill, replay and read-back. It is a benchmark because moto's scan cost
// grows with the square of the queue (minutes at 1,000 on a busy machine):
// go test -run '^$' -bench FilteredReplay1000 -benchtime 1x ./replay/
func BenchmarkFilteredReplay1000(b *testing.B) {
	moto := motoserver.Start(b)
	for i := 0; b.Loop(); i++ {
		filteredReplay(b, moto, fmt.Sprintf("bench%d", i), 1000)
	}
}
