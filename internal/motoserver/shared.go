package motoserver

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// AccountHeader makes moto act in the account it names (moto's
// multi-account support); accounts share nothing.
const AccountHeader = "x-moto-account-id"

// Shared is one moto_server for a test package, started on first use, that
// hands each test an account of its own: tests that only need a running
// emulator need not start one each (a start costs more CPU than most of
// them). A test that resets the server, turns access control on or stops it
// starts its own. Stop it from TestMain.
type Shared struct {
	once  sync.Once
	srv   *Server
	err   error
	accts atomic.Int64
}

// Account returns the shared server, an SDK config acting in a fresh
// account on it, and that account's id. A server that cannot start fails
// the test, never skips it.
func (s *Shared) Account(tb testing.TB) (*Server, aws.Config, string) {
	tb.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.srv, s.err = StartProcess(ctx, nil)
	})
	if s.err != nil {
		tb.Fatalf("start the shared moto_server: %v", s.err)
	}
	acct := fmt.Sprintf("%012d", 200000000000+s.accts.Add(1))
	cfg := s.srv.AWSConfig(tb)
	cfg.APIOptions = append(cfg.APIOptions, smithyhttp.SetHeaderValue(AccountHeader, acct))
	tb.Cleanup(func() {
		if tb.Failed() {
			out := s.srv.Output()
			tb.Logf("shared moto_server at %s (this test's account %s), last output:\n%s", s.srv.URL(), acct, out[max(0, len(out)-4000):])
		}
	})
	return s.srv, cfg, acct
}

// Stop stops the server if it was started.
func (s *Shared) Stop() {
	if s.srv != nil {
		s.srv.Stop()
	}
}
