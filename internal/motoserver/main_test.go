package motoserver_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/iamjit/iamjit/internal/motoserver"
)

// Tests that only need a running moto share one, each in an account of
// its own: moto acts in the account the x-moto-account-id header names,
// and accounts share nothing. A test that resets the server, turns access
// control on or stops it starts its own.
var shared struct {
	once  sync.Once
	srv   *motoserver.Server
	err   error
	accts atomic.Int64
}

// sharedAccount is the package's moto (StartProcess, on first use) and an
// SDK config acting in a fresh account on it.
func sharedAccount(tb testing.TB) (*motoserver.Server, aws.Config, string) {
	tb.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.srv, shared.err = motoserver.StartProcess(ctx, nil)
	})
	if shared.err != nil {
		tb.Fatalf("start the shared moto_server: %v", shared.err)
	}
	acct := fmt.Sprintf("%012d", 200000000000+shared.accts.Add(1))
	cfg := shared.srv.AWSConfig(tb)
	cfg.APIOptions = append(cfg.APIOptions, smithyhttp.SetHeaderValue("x-moto-account-id", acct))
	tb.Cleanup(func() {
		if tb.Failed() {
			out := shared.srv.Output()
			tb.Logf("shared moto_server at %s (this test's account %s), last output:\n%s", shared.srv.URL(), acct, out[max(0, len(out)-4000):])
		}
	})
	return shared.srv, cfg, acct
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	os.Exit(code)
}
