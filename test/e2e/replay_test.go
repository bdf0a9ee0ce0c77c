package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/consumer"
	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/internal/testkit"
)

// envelope wraps a SymLogEntry as the EventBridge rule delivers it.
func envelope(t *testing.T, entry map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"version": "0", "id": "env-" + randomHex(t), "detail-type": "SymLogEntry", "source": "sym",
		"account": motoserver.AccountID, "time": time.Now().UTC().Format(time.RFC3339), "region": motoserver.Region,
		"resources": []string{}, "detail": entry})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A replay after the cause is fixed: a duplicate of an applied escalate has
// no second effect (same result_id, one history entry, IAM unchanged), and
// an escalate whose expiry passed while it sat in the DLQ is rejected as
// expired and grants nothing. The real binary, `iamjit dev`, `iamjit run`
// and `iamjit replay`, against moto.
func TestReplayE2E(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "rpl", "--visibility", "3", "--max-receive", "3")
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	stale := "rpl-stale-group"
	e.createGroup(t, stale, "/sym/")
	e.startRun(t, "IAMJIT_MAX_DURATION=1h")
	now := time.Now()

	applied := request{symID: "rpl-esc-1", run: "run-rpl-1", target: "t-1", user: user, group: group, duration: 600, at: now}
	granted := e.escalate(t, applied)
	membersBefore := e.members(t, group)
	if !slices.Contains(membersBefore, user) {
		t.Fatalf("%s not in %s after Access Granted", user, group)
	}

	late := request{symID: "rpl-stale-1", run: "run-rpl-stale", target: "t-2", user: user, group: stale, duration: 60, at: now.Add(-2 * time.Hour)}
	dlq := sqs.NewFromConfig(e.Cfg)
	dlqURL := e.Vars["IAMJIT_DLQ_URL"]
	for _, l := range []struct{ body, code string }{
		{envelope(t, symEntry(t, "escalate_iam_group.json", applied.apply)), "Throttling"},
		{envelope(t, symEntry(t, "escalate_iam_group.json", late.apply)), "ServiceUnavailable"},
		{"still not json", "invalid_json"}, // not part of this replay
	} {
		_, err := dlq.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &dlqURL, MessageBody: aws.String(l.body),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				consumer.AttrCode:  {DataType: aws.String("String"), StringValue: aws.String(l.code)},
				consumer.AttrError: {DataType: aws.String("String"), StringValue: aws.String(l.code + " while handling")},
			}})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Only SQS settings: replay reads nothing else.
	var env []string
	for _, kv := range e.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "IAMJIT_TABLE" || k == "IAMJIT_EVENT_BUS" || strings.HasSuffix(k, "_ROLE_ARN") {
			continue
		}
		env = append(env, kv)
	}
	cmd := exec.Command(e.Bin, "replay", "--code", "Throttling,ServiceUnavailable")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("iamjit replay: %v\n%s%s", err, out, testkit.StderrOf(err))
	}
	if strings.TrimSpace(string(out)) != "moved=2 skipped=1 failed=0" {
		t.Fatalf("iamjit replay printed %q", out)
	}

	rejected := e.WaitResult(t, "Access Request Rejected", late.symID)
	if rejected.Detail["code"] != "expired" {
		t.Fatalf("stale escalate: code = %v, want expired (%v)", rejected.Detail["code"], rejected.Detail["message"])
	}
	e.duplicateHadOneEffect(t, applied, granted)
	if after := e.members(t, group); fmt.Sprint(after) != fmt.Sprint(membersBefore) {
		t.Fatalf("%s members changed: %v -> %v", group, membersBefore, after)
	}
	if m := e.members(t, stale); len(m) != 0 {
		t.Fatalf("the stale escalate left %v in %s", m, stale)
	}
	// The letter outside the filter is still in the DLQ, with its reason.
	got, err := dlq.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &dlqURL, MaxNumberOfMessages: 10,
		WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 1 || aws.ToString(got.Messages[0].MessageAttributes[consumer.AttrCode].StringValue) != "invalid_json" {
		t.Fatalf("DLQ holds %d letters, want only the invalid_json one", len(got.Messages))
	}
}
