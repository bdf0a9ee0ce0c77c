package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// replayResult is one `iamjit replay` of the DLQ, or why it was not measured.
type replayResult struct {
	Measured      bool    `json:"measured"`
	Reason        string  `json:"reason,omitempty"`
	Messages      int     `json:"messages"`
	Moved         int     `json:"moved"`
	Seconds       float64 `json:"seconds"`
	MsgsPerS      float64 `json:"msgs_per_s"`
	Calls         calls   `json:"calls_by_op"`
	CallsPerMsg   float64 `json:"calls_per_msg"`
	ProcessOutput string  `json:"output,omitempty"`
}

const replayN = 1000

// runReplay puts 1,000 dead letters (escalates, with the reason attributes
// iamjit's consumer sets) on the DLQ and runs `iamjit replay` through the
// proxy (no delay), which counts its calls; the binary has no /metrics.
// The time is the process's whole run: start-up, the moves, and the two
// empty long-polls with which a scan ends.
func (b *bench) runReplay(ctx context.Context) (*replayResult, error) {
	e, err := b.fresh(ctx, "rp", 0)
	if err != nil {
		return nil, err
	}
	sq := sqs.NewFromConfig(b.direct)
	reasons := map[string]sqstypes.MessageAttributeValue{
		"iamjit.error_code": {DataType: aws.String("String"), StringValue: aws.String("Throttling")},
		"iamjit.error":      {DataType: aws.String("String"), StringValue: aws.String("bench: IAM throttled")},
	}
	if err := enqueue(ctx, sq, e.stack.DLQURL, e.escalates(replayN, "rp"), reasons); err != nil {
		return nil, fmt.Errorf("fill the DLQ: %w", err)
	}
	b.proxy.reset()
	cmd := exec.CommandContext(ctx, b.bin, "replay")
	cmd.Env = append(os.Environ(), b.moto.Env()...)
	cmd.Env = append(cmd.Env, e.exportsEnv(b.proxy.url)...)
	out := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	runErr := runWithTimeout(cmd, 5*time.Minute)
	elapsed := time.Since(start)
	r := &replayResult{Messages: replayN, Seconds: elapsed.Seconds(), Calls: fromOps(b.proxy.snapshot()), ProcessOutput: strings.TrimSpace(out.String())}
	if runErr != nil {
		r.Reason = fmt.Sprintf("`iamjit replay` failed: %v: %s", runErr, firstLine(r.ProcessOutput))
		return r, nil
	}
	inQueue, err := approxCount(ctx, sq, e.stack.QueueURL)
	if err != nil {
		return nil, err
	}
	left, err := approxCount(ctx, sq, e.stack.DLQURL)
	if err != nil {
		return nil, err
	}
	r.Moved = inQueue
	if inQueue != replayN || left != 0 {
		r.Reason = fmt.Sprintf("`iamjit replay` exited 0 but the queue holds %d and the DLQ %d of %d", inQueue, left, replayN)
		return r, nil
	}
	r.Measured = true
	r.MsgsPerS = float64(replayN) / elapsed.Seconds()
	r.CallsPerMsg = float64(r.Calls.total()) / float64(replayN)
	return r, nil
}

func runWithTimeout(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("timed out after %s", d)
	}
}

func approxCount(ctx context.Context, c *sqs.Client, queueURL string) (int, error) {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &queueURL, AttributeNames: []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", queueURL, err)
	}
	a, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	nv, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return a + nv, nil
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
