package sessions_test

import (
	"os"
	"testing"

	"github.com/iamjit/iamjit/internal/motoserver"
)

// shared is the package's moto: each env gets an account of its own on it
// instead of a server of its own, whose start-up costs more CPU than most
// of these tests.
var shared motoserver.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Stop()
	os.Exit(code)
}
