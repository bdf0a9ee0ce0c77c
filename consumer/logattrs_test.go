package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogLinesCarryContextIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	ctx := WithLogAttrs(context.Background(), slog.String("sqs_message_id", "m-1"))
	ctx = WithLogAttrs(ctx, slog.String("sym_event_id", "s-1"), slog.String("grant_id", "g-ctx"))
	log.InfoContext(ctx, "access granted", "grant_id", "g-explicit")
	log.With("sym_event_id", "s-with").InfoContext(ctx, "with")
	log.Info("no context")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines: %s", len(lines), buf.String())
	}
	var first, second, third map[string]any
	for i, p := range []*map[string]any{&first, &second, &third} {
		if err := json.Unmarshal([]byte(lines[i]), p); err != nil {
			t.Fatal(err)
		}
	}
	if first["sqs_message_id"] != "m-1" || first["sym_event_id"] != "s-1" || first["grant_id"] != "g-explicit" {
		t.Fatalf("first line = %v: want the context ids, the explicit grant_id winning", first)
	}
	if strings.Count(lines[0], `"grant_id"`) != 1 || strings.Count(lines[1], `"sym_event_id"`) != 1 {
		t.Fatalf("a key is repeated:\n%s\n%s", lines[0], lines[1])
	}
	if second["sym_event_id"] != "s-with" || second["sqs_message_id"] != "m-1" {
		t.Fatalf("second line = %v", second)
	}
	if _, ok := third["sqs_message_id"]; ok {
		t.Fatalf("a line without context got ids: %v", third)
	}
}
