package motoserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Fix 10 (the input transformer's JSONPaths compiled once): every event a
// rule delivers still carries its own envelope and detail, not a previous
// one's, event after event.
func TestRuleDeliversEachEventsOwnFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, cfg, acct := sharedAccount(t)
	eb, sq := eventbridge.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("results")})
	if err != nil {
		t.Fatal(err)
	}
	qARN := "arn:aws:sqs:" + cfg.Region + ":" + acct + ":results"
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("results"), EventPattern: aws.String(`{"source":["iamjit"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("results"), Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: &qARN}}}); err != nil {
		t.Fatal(err)
	}
	const n = 6
	want := map[string]string{} // detail's n -> detail-type
	for i := range n {
		dt := []string{"Access Granted", "Access Revoked", "Access Expiring"}[i%3]
		want[fmt.Sprint(i)] = dt
		out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
			Source: aws.String("iamjit"), DetailType: aws.String(dt), Detail: aws.String(fmt.Sprintf(`{"n":"%d"}`, i))}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %v, %+v", err, out)
		}
	}
	got, ids := map[string]string{}, map[string]bool{}
	for tries := 0; len(got) < n && tries < 20; tries++ {
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			var ev struct {
				Source     string            `json:"source"`
				DetailType string            `json:"detail-type"`
				ID         string            `json:"id"`
				Detail     map[string]string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				t.Fatalf("delivered %q: %v", aws.ToString(m.Body), err)
			}
			// (moto's delivered envelope has no "account"; AWS's has.)
			if ev.Source != "iamjit" || ev.ID == "" || ids[ev.ID] {
				t.Errorf("delivered %q: source %q, id %q seen before: %v", aws.ToString(m.Body), ev.Source, ev.ID, ids[ev.ID])
			}
			ids[ev.ID] = true
			got[ev.Detail["n"]] = ev.DetailType
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered (detail n -> detail-type) %v, want %v", got, want)
	}
}
