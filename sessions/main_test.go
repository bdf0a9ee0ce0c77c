package sessions_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iamjit/iamjit/internal/motoserver"
)

// motoAccountHeader makes moto act in the account it names (moto's
// multi-account support): each env gets an account of its own on one
// shared server instead of a server of its own, whose start-up costs more
// CPU than most of these tests.
const motoAccountHeader = "x-moto-account-id"

var shared struct {
	once  sync.Once
	srv   *motoserver.Server
	err   error
	accts atomic.Int64
}

// sharedAccount starts the package's moto on first use and hands out a
// fresh account id on it.
func sharedAccount(t *testing.T) (*motoserver.Server, string) {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.srv, shared.err = motoserver.StartProcess(ctx, nil)
	})
	if shared.err != nil {
		// Fail, never skip (motoserver.NotFound when Python is missing).
		t.Fatalf("start the shared moto_server: %v", shared.err)
	}
	acct := fmt.Sprintf("%012d", 200000000000+shared.accts.Add(1))
	t.Cleanup(func() {
		if t.Failed() {
			out := shared.srv.Output()
			out = out[max(0, len(out)-4000):]
			t.Logf("shared moto_server at %s (this test's account %s), last output:\n%s", shared.srv.URL(), acct, out)
		}
	})
	return shared.srv, acct
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	os.Exit(code)
}
