package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/iamjit/iamjit/grants/dynamo"
)

func cancelled(codes ...string) *types.TransactionCanceledException {
	tce := &types.TransactionCanceledException{Message: aws.String("Transaction cancelled")}
	for _, c := range codes {
		tce.CancellationReasons = append(tce.CancellationReasons, types.CancellationReason{Code: aws.String(c)})
	}
	return tce
}

func TestTransientCancellation(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"conflict", cancelled("TransactionConflict", "None"), "TransactionConflict"},
		{"conflict second", cancelled("None", "None", "TransactionConflict"), "TransactionConflict"},
		{"throttled item", cancelled("None", "ThrottlingError"), "ThrottlingError"},
		{"no capacity", cancelled("ProvisionedThroughputExceeded", "None"), "ProvisionedThroughputExceeded"},
		{"conflict wins over throttle", cancelled("ThrottlingError", "TransactionConflict"), "TransactionConflict"},
		{"wrapped", fmt.Errorf("transact write: %w", cancelled("TransactionConflict")), "TransactionConflict"},
		{"condition failed", cancelled("ConditionalCheckFailed", "None"), ""},
		{"condition failed beside a conflict", cancelled("TransactionConflict", "ConditionalCheckFailed"), ""},
		{"condition failed beside a throttle", cancelled("ThrottlingError", "None", "ConditionalCheckFailed"), ""},
		{"validation", cancelled("ValidationError", "None"), ""},
		{"size limit", cancelled("ItemCollectionSizeLimitExceeded"), ""},
		{"only None", cancelled("None", "None"), ""},
		{"no reasons", cancelled(), ""},
		{"unknown code", cancelled("SomethingNew"), ""},
		// The type decides, never the text.
		{"code only", &smithy.GenericAPIError{Code: "TransactionCanceledException", Message: "[TransactionConflict]"}, ""},
		{"plain text", errors.New("TransactionCanceledException: TransactionConflict"), ""},
		{"other type", &types.ConditionalCheckFailedException{Message: aws.String("TransactionConflict")}, ""},
		{"nil", nil, ""},
	}
	r := dynamo.NewRetryer(nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := dynamo.TransientCancellation(c.err); got != c.want {
				t.Errorf("TransientCancellation = %q, want %q", got, c.want)
			}
			var tce *types.TransactionCanceledException
			if errors.As(c.err, &tce) {
				if got := r.IsErrorRetryable(c.err); got != (c.want != "") {
					t.Errorf("retryer.IsErrorRetryable = %v, want %v", got, c.want != "")
				}
			}
		})
	}
	// The standard checks still apply to everything else.
	if !r.IsErrorRetryable(&types.ProvisionedThroughputExceededException{Message: aws.String("x")}) {
		t.Error("ProvisionedThroughputExceededException is not retried")
	}
	if r.IsErrorRetryable(&types.ConditionalCheckFailedException{}) {
		t.Error("ConditionalCheckFailedException is retried")
	}
}

// fakeDynamo answers each request with the next scripted response (the last
// one repeats) and keeps what it was sent.
type fakeDynamo struct {
	mu      sync.Mutex
	answers map[string][]string // X-Amz-Target operation -> JSON bodies; "" means 200 {}
	bodies  map[string][]string
}

func (f *fakeDynamo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	op := r.Header.Get("X-Amz-Target")
	op = op[strings.LastIndex(op, ".")+1:]
	f.mu.Lock()
	f.bodies[op] = append(f.bodies[op], string(body))
	n := len(f.bodies[op])
	script := f.answers[op]
	answer := ""
	if len(script) > 0 {
		answer = script[min(n, len(script))-1]
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if answer == "" {
		_, _ = w.Write([]byte(`{}`))
		return
	}
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(answer))
}

func (f *fakeDynamo) sent(op string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bodies[op])
}

// DynamoDB's own answers (the shape the service returns on the wire).
const (
	conflictBody = `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]","CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]}`
	throttleBody = `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, ThrottlingError]","CancellationReasons":[{"Code":"None"},{"Code":"ThrottlingError","Message":"Throughput exceeds the current capacity of your table or index."}]}`
	ccfBody      = `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]","CancellationReasons":[{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"},{"Code":"None"}]}`
	pteeBody     = `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}`
)

// The real SDK client with the store's retryer against a fake DynamoDB:
// conflicts and throttled items are sent again at once with the same body
// (same ClientRequestToken), a failed condition never is, and only
// TransactWriteItems retries are counted.
func TestRetryerOnTheClient(t *testing.T) {
	cases := []struct {
		name     string
		script   []string
		wantErr  string // cancellation reason code the call ends with; "" = success
		attempts int
		retries  []string
	}{
		{"conflict twice then success", []string{conflictBody, conflictBody, ""}, "", 3, []string{"TransactionConflict", "TransactionConflict"}},
		{"throttled item then success", []string{throttleBody, ""}, "", 2, []string{"ThrottlingError"}},
		{"throughput exceeded then success", []string{pteeBody, ""}, "", 2, []string{"ProvisionedThroughputExceededException"}},
		{"condition failed is the answer", []string{ccfBody, ""}, "ConditionalCheckFailed", 1, nil},
		{"conflicts are bounded", []string{conflictBody}, "TransactionConflict", dynamo.RetryMaxAttempts, slices.Repeat([]string{"TransactionConflict"}, dynamo.RetryMaxAttempts-1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := &fakeDynamo{answers: map[string][]string{"TransactWriteItems": c.script}, bodies: map[string][]string{}}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			var mu sync.Mutex
			var retries []string
			cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
				Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
			db := dynamodb.NewFromConfig(cfg, dynamo.WithRetryer(func(reason string) {
				mu.Lock()
				retries = append(retries, reason)
				mu.Unlock()
			}))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}}},
				{Put: &types.Put{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "b"}}}},
			}})
			if c.wantErr == "" && err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if c.wantErr != "" {
				var tce *types.TransactionCanceledException
				if !errors.As(err, &tce) {
					t.Fatalf("err = %v, want a TransactionCanceledException", err)
				}
				if codes := reasonCodes(tce); !slices.Contains(codes, c.wantErr) {
					t.Errorf("cancellation reasons %v, want %s among them", codes, c.wantErr)
				}
			}
			sent := fake.sent("TransactWriteItems")
			if len(sent) != c.attempts {
				t.Errorf("%d attempts, want %d", len(sent), c.attempts)
			}
			for i, b := range sent {
				if b != sent[0] {
					t.Errorf("attempt %d sent a different body:\n%s\nvs\n%s", i+1, b, sent[0])
				}
			}
			if !bytes.Contains([]byte(sent[0]), []byte(`"ClientRequestToken"`)) {
				t.Errorf("no ClientRequestToken in %s", sent[0])
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(retries, c.retries) {
				t.Errorf("counted retries %v, want %v", retries, c.retries)
			}
		})
	}

	t.Run("other operations are retried but not counted", func(t *testing.T) {
		fake := &fakeDynamo{answers: map[string][]string{"GetItem": {pteeBody, ""}}, bodies: map[string][]string{}}
		srv := httptest.NewServer(fake)
		defer srv.Close()
		counted := 0
		cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
			Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
		db := dynamodb.NewFromConfig(cfg, dynamo.WithRetryer(func(string) { counted++ }))
		_, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("t"),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(fake.sent("GetItem")); n != 2 || counted != 0 {
			t.Errorf("GetItem: %d attempts, %d counted; want 2 and 0", n, counted)
		}
	})
}

func reasonCodes(tce *types.TransactionCanceledException) []string {
	var out []string
	for _, r := range tce.CancellationReasons {
		out = append(out, aws.ToString(r.Code))
	}
	return out
}

// Conflicts never drain the retry quota; throttles still do, so a service
// in trouble is not hammered.
func TestRetryQuota(t *testing.T) {
	r := dynamo.NewRetryer(nil)
	ctx := context.Background()
	for i := range 2000 {
		if _, err := r.GetRetryToken(ctx, cancelled("TransactionConflict", "None")); err != nil {
			t.Fatalf("conflict retry %d refused: %v", i+1, err)
		}
	}
	for i := range 2000 {
		if _, err := r.GetRetryToken(ctx, cancelled("ThrottlingError", "None")); err != nil {
			if i < 50 {
				t.Errorf("throttle retries refused after only %d", i)
			}
			return
		}
	}
	t.Error("2000 throttle retries never met the retry quota")
}
