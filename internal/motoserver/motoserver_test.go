package motoserver_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/internal/motoserver"
)

func TestStartCreateResetStop(t *testing.T) {
	ctx := context.Background()
	s := motoserver.Start(t)
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL = %q", s.URL())
	}
	client := sqs.NewFromConfig(s.AWSConfig(t))

	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("probe")})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	if !strings.HasPrefix(*out.QueueUrl, s.URL()) {
		t.Errorf("queue url %q is not on %s", *out.QueueUrl, s.URL())
	}
	if _, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("probe")}); err != nil {
		t.Fatalf("get queue url before reset: %v", err)
	}

	s.Reset(t)

	_, err = client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("probe")})
	var missing *types.QueueDoesNotExist
	if !errors.As(err, &missing) {
		t.Fatalf("after reset: got %v, want QueueDoesNotExist", err)
	}

	// Stop ends the process (StartProcess, which Start runs, is what the
	// shared server of the other tests is started with).
	s.Stop()
	s.Stop() // idempotent, and the cleanup Start registered stops it again
	if err := s.ResetContext(ctx); err == nil {
		t.Fatal("server still answers after Stop")
	}
}

func TestEnvNamesTheServer(t *testing.T) {
	s, _, _ := sharedAccount(t)
	want := map[string]string{
		"AWS_ENDPOINT_URL":          s.URL(),
		"AWS_REGION":                "us-east-1",
		"AWS_ACCESS_KEY_ID":         "test",
		"AWS_SECRET_ACCESS_KEY":     "test",
		"AWS_EC2_METADATA_DISABLED": "true",
	}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if want[k] != v {
			t.Errorf("%s=%q, want %q", k, v, want[k])
		}
		delete(want, k)
	}
	if len(want) != 0 {
		t.Errorf("missing from Env: %v", want)
	}
}

func TestMissingBinaryFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := exec.LookPath("moto_server"); err == nil {
		t.Fatal("moto_server still found")
	}
	_, err := motoserver.StartProcess(context.Background(), nil)
	if err == nil || err.Error() != motoserver.NotFound {
		t.Fatalf("got %v, want %q", err, motoserver.NotFound)
	}
}

// With IAM access control on, credentials moto did not issue are refused:
// this proves Options.Env reaches the child.
func TestStartWithAccessControl(t *testing.T) {
	s := motoserver.StartWith(t, motoserver.Options{Env: []string{"INITIAL_NO_AUTH_ACTION_COUNT=0"}})
	client := sqs.NewFromConfig(s.AWSConfig(t))
	if _, err := client.ListQueues(context.Background(), &sqs.ListQueuesInput{}); err == nil {
		t.Fatal("ListQueues with unknown credentials succeeded; access control is off")
	} else {
		t.Logf("refused as expected: %v", err)
	}
}
