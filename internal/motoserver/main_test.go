package motoserver_test

import (
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/iamjit/iamjit/internal/motoserver"
)

// Tests that only need a running moto share one, each in an account of its
// own. A test that resets the server, turns access control on or stops it
// starts its own.
var shared motoserver.Shared

func sharedAccount(tb testing.TB) (*motoserver.Server, aws.Config, string) {
	tb.Helper()
	return shared.Account(tb)
}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Stop()
	os.Exit(code)
}
