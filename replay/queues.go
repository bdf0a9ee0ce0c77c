package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Queues is the part of the SQS client that reads queue settings.
type Queues interface {
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
}

// ErrNoRedrivePolicy means the queue names no dead-letter queue.
var ErrNoRedrivePolicy = errors.New("the queue has no RedrivePolicy")

// DLQOf reads queueURL's RedrivePolicy and returns its dead-letter queue's
// URL.
func DLQOf(ctx context.Context, api Queues, queueURL string) (string, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &queueURL, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return "", fmt.Errorf("read the RedrivePolicy of %s: %w", queueURL, err)
	}
	rp := out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]
	if rp == "" {
		return "", fmt.Errorf("%s: %w", queueURL, ErrNoRedrivePolicy)
	}
	var p struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if err := json.Unmarshal([]byte(rp), &p); err != nil {
		return "", fmt.Errorf("RedrivePolicy of %s is not JSON: %w", queueURL, err)
	}
	return URLOf(ctx, api, p.DeadLetterTargetArn)
}

// URLOf turns an SQS queue ARN into its URL.
func URLOf(ctx context.Context, api Queues, arn string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[2] != "sqs" {
		return "", fmt.Errorf("%q is not an SQS queue ARN", arn)
	}
	out, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: &parts[5], QueueOwnerAWSAccountId: &parts[4]})
	if err != nil {
		return "", fmt.Errorf("find the queue %s: %w", arn, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// Count is the queue's approximate number of visible messages (for a
// progress bar's total).
func Count(ctx context.Context, api Queues, queueURL string) (int, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &queueURL, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		return 0, fmt.Errorf("count the messages in %s: %w", queueURL, err)
	}
	n, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	if err != nil {
		return 0, fmt.Errorf("count the messages in %s: %w", queueURL, err)
	}
	return n, nil
}

// NativeMover is the part of the SQS client a native move uses.
type NativeMover interface {
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	StartMessageMoveTask(context.Context, *sqs.StartMessageMoveTaskInput, ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error)
}

// CheckNative says why a native move cannot do what was asked: SQS's
// StartMessageMoveTask moves everything and lists nothing.
func CheckNative(f Filter, max int, dryRun bool) error {
	var why []string
	if len(f.Codes) > 0 {
		why = append(why, "--code")
	}
	if f.OlderThan > 0 {
		why = append(why, "--older-than")
	}
	if f.NewerThan > 0 {
		why = append(why, "--newer-than")
	}
	if max > 0 {
		why = append(why, "--max")
	}
	if dryRun {
		why = append(why, "--dry-run")
	}
	if len(why) > 0 {
		return fmt.Errorf("--native cannot be combined with %s: SQS's StartMessageMoveTask moves every message and cannot filter, count or list; drop --native to let iamjit move them itself",
			strings.Join(why, ", "))
	}
	return nil
}

// StartNative starts an SQS message move task from the DLQ to toURL (empty:
// back to each message's source queue) and returns its task handle.
func StartNative(ctx context.Context, api NativeMover, fromURL, toURL string) (string, error) {
	in := &sqs.StartMessageMoveTaskInput{}
	var err error
	if in.SourceArn, err = queueARN(ctx, api, fromURL); err != nil {
		return "", err
	}
	if toURL != "" {
		if in.DestinationArn, err = queueARN(ctx, api, toURL); err != nil {
			return "", err
		}
	}
	out, err := api.StartMessageMoveTask(ctx, in)
	if err != nil {
		return "", fmt.Errorf("start a message move task from %s: %w", fromURL, err)
	}
	return aws.ToString(out.TaskHandle), nil
}

func queueARN(ctx context.Context, api NativeMover, url string) (*string, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &url, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return nil, fmt.Errorf("read the ARN of %s: %w", url, err)
	}
	arn := out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return nil, fmt.Errorf("%s has no QueueArn", url)
	}
	return &arn, nil
}
