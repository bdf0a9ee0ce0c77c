package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/consumer"
	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
)

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

// Usage and refusal paths end before any AWS call.
func TestReplayUsageErrors(t *testing.T) {
	q := map[string]string{"IAMJIT_QUEUE_URL": "http://127.0.0.1:1/123456789012/q"}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"native with a code filter", []string{"--native", "--code", "AccessDenied"}, q, []string{"--native", "--code", "cannot filter"}},
		{"native with an age filter and max", []string{"--native", "--older-than", "1h", "--max", "5"}, q, []string{"--older-than", "--max"}},
		{"native dry run", []string{"--native", "--dry-run"}, q, []string{"--dry-run"}},
		{"no queue to move to", nil, map[string]string{"IAMJIT_DLQ_URL": "http://x/dlq"}, []string{"IAMJIT_QUEUE_URL or --to"}},
		{"nothing configured", []string{"--dry-run"}, nil, []string{"IAMJIT_DLQ_URL"}},
		{"unknown flag", []string{"--bogus"}, q, []string{"bogus"}},
		{"bad duration", []string{"--older-than", "soon"}, q, []string{"older-than"}},
		{"empty age window", []string{"--older-than", "2h", "--newer-than", "1h"}, q, []string{"match nothing"}},
		{"stray argument", []string{"now"}, q, []string{"unexpected"}},
		{"same queue both ways", []string{"--from", "http://x/q", "--to", "http://x/q"}, nil, []string{"same queue"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "same queue both ways" {
				// Reached after the AWS configuration loads.
				t.Setenv("AWS_REGION", "us-east-1")
			}
			var out, errOut bytes.Buffer
			err := runReplay(context.Background(), c.args, envOf(c.env), &out, &errOut)
			if exitCode(err) != 2 {
				t.Fatalf("err = %v (exit %d), want exit 2", err, exitCode(err))
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error()+errOut.String(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if out.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", out.String())
			}
		})
	}
}

// The command in-process against moto, with only SQS settings: the DLQ is
// found through the queue's RedrivePolicy and IAMJIT_TABLE is not needed.
func TestReplayCommand(t *testing.T) {
	moto := motoserver.Start(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg := moto.AWSConfig(t)
	st, err := devstack.Create(context.Background(), cfg, devstack.Options{Prefix: "cmd"})
	if err != nil {
		t.Fatal(err)
	}
	c := sqs.NewFromConfig(cfg)
	for i := range 30 {
		code := []string{"AccessDenied", "Throttling", ""}[i%3]
		attrs := map[string]sqstypes.MessageAttributeValue{}
		if code != "" {
			attrs[consumer.AttrCode] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(code)}
			attrs[consumer.AttrError] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String("the " + code + " cause")}
		}
		if _, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &st.DLQURL,
			MessageBody: aws.String(fmt.Sprintf("letter-%d", i)), MessageAttributes: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	env := envOf(map[string]string{"IAMJIT_QUEUE_URL": st.QueueURL})
	count := func(url string) int {
		out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: &url,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
		return n
	}

	t.Run("dry run prints the table and the summary", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := runReplay(context.Background(), []string{"--dry-run", "--code", "Throttling", "--verbose"}, env, &out, &errOut)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut.String())
		}
		for _, want := range []string{"CODE", "WOULD MOVE", "the AccessDenied cause", "search the consumer logs for sqs_message_id=",
			"dry-run would_move=10 skipped=20 seen=30", "MESSAGE ID"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
		n := 0
		for _, line := range strings.Split(out.String(), "\n") {
			if slices.Contains(strings.Fields(line), "Throttling") {
				n++
			}
		}
		if n != 1+10 {
			t.Errorf("%d Throttling lines, want the group and 10 letters:\n%s", n, out.String())
		}
		if count(st.DLQURL) != 30 || count(st.QueueURL) != 0 {
			t.Fatalf("dry run changed the queues: DLQ %d, queue %d", count(st.DLQURL), count(st.QueueURL))
		}
	})

	t.Run("a move prints one summary line", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := runReplay(context.Background(), []string{"--code", "AccessDenied,redrive", "--max", "15"}, env, &out, &errOut)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut.String())
		}
		if out.String() != "moved=15 skipped=15 failed=0\n" {
			t.Fatalf("stdout = %q", out.String())
		}
		if count(st.QueueURL) != 15 || count(st.DLQURL) != 15 {
			t.Fatalf("queue %d, DLQ %d; want 15, 15", count(st.QueueURL), count(st.DLQURL))
		}
	})

	t.Run("a failed send exits 1 and keeps the letters", func(t *testing.T) {
		var out, errOut bytes.Buffer
		missing := strings.TrimSuffix(st.QueueURL, "cmd-queue") + "no-such-queue"
		err := runReplay(context.Background(), []string{"--from", st.DLQURL, "--to", missing}, env, &out, &errOut)
		if exitCode(err) != 1 {
			t.Fatalf("err = %v (exit %d), want exit 1", err, exitCode(err))
		}
		if !strings.Contains(out.String(), "moved=0") || !strings.Contains(out.String(), "failed=10") {
			t.Fatalf("stdout = %q, want moved=0 failed=10", out.String())
		}
		if count(st.DLQURL) != 15 {
			t.Fatalf("DLQ has %d visible, want all 15 back", count(st.DLQURL))
		}
	})
}
