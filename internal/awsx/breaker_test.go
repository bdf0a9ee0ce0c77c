package awsx

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go/middleware"
	"github.com/sony/gobreaker/v2"
)

// failingIAM is an IAM endpoint that answers 503 while down is set, and an
// empty GetGroup otherwise; hits counts the requests that reached it.
func failingIAM(t *testing.T, down *atomic.Bool, hits *atomic.Int64) *iam.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte(`<GetGroupResponse><GetGroupResult><Group><GroupName>g</GroupName><Path>/sym/</Path><GroupId>AGPA</GroupId><Arn>arn:aws:iam::210987654321:group/sym/g</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate></Group><Users/><IsTruncated>false</IsTruncated></GetGroupResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetGroupResponse>`))
	}))
	t.Cleanup(srv.Close)
	return iam.New(iam.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
}

func TestBreakerFailsFastAndRecovers(t *testing.T) {
	var down atomic.Bool
	var hits atomic.Int64
	down.Store(true)
	var opened, closed atomic.Int64
	opt := Breaker("210987654321", BreakerSettings{Failures: 3, Open: 200 * time.Millisecond, OnChange: func(account string, open bool) {
		if account != "210987654321" {
			t.Errorf("state change names %q", account)
		}
		if open {
			opened.Add(1)
		} else {
			closed.Add(1)
		}
	}})
	client := failingIAM(t, &down, &hits)
	call := func() error {
		_, err := client.GetGroup(context.Background(), &iam.GetGroupInput{GroupName: aws.String("g")}, func(o *iam.Options) {
			o.APIOptions = append(o.APIOptions, opt)
		})
		return err
	}
	for range 3 {
		if err := call(); err == nil || errors.Is(err, gobreaker.ErrOpenState) {
			t.Fatalf("call while down: %v, want the endpoint's 503", err)
		}
	}
	before := hits.Load()
	for range 10 {
		err := call()
		if !errors.Is(err, gobreaker.ErrOpenState) || !Retryable(err) {
			t.Fatalf("call with the breaker open: %v, want a retryable open-state error", err)
		}
	}
	if hits.Load() != before || opened.Load() != 1 {
		t.Fatalf("with the breaker open %d requests reached the endpoint (want 0), opened %d times", hits.Load()-before, opened.Load())
	}
	down.Store(false)
	time.Sleep(250 * time.Millisecond)
	if err := call(); err != nil {
		t.Fatalf("the probe after the open time: %v", err)
	}
	if err := call(); err != nil || closed.Load() == 0 {
		t.Fatalf("after the account answered again: %v, closed %d", err, closed.Load())
	}
}

// A refusal is an answer: NoSuchEntity-like client errors never open it.
func TestBreakerIgnoresPermanentErrors(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>no</Message></Error><RequestId>r</RequestId></ErrorResponse>`))
	}))
	defer srv.Close()
	client := iam.New(iam.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		APIOptions:  []func(*middleware.Stack) error{Breaker("210987654321", BreakerSettings{Failures: 2, Open: time.Minute})},
	})
	for range 5 {
		_, err := client.GetGroup(context.Background(), &iam.GetGroupInput{GroupName: aws.String("g")})
		if !IsCode(err, "NoSuchEntity") {
			t.Fatalf("err %v, want NoSuchEntity from the endpoint", err)
		}
	}
	if hits.Load() != 5 {
		t.Fatalf("%d of 5 calls reached the endpoint", hits.Load())
	}
}
