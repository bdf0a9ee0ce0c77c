package awsx_test

import (
	"context"
	"testing"
	"time"

	"github.com/iamjit/iamjit/internal/awsx"
)

func TestSleepStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := awsx.Sleep(ctx, time.Hour); err != context.Canceled || time.Since(start) > time.Second {
		t.Fatalf("Sleep on a cancelled context: %v after %s", err, time.Since(start))
	}
	if err := awsx.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
