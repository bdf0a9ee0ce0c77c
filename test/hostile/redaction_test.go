package hostile_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/iamjit/iamjit/internal/config"
)

// The external id never leaves config.Config in clear through the ways a
// value gets printed: fmt verbs, slog (text and JSON handlers, as a value
// and inside the whole config), and JSON.
func TestExternalIDIsRedactedEverywhere(t *testing.T) {
	const id = "ext-7f3a9c0b5e"
	cfg, err := config.Load(nil, func(name string) string {
		return map[string]string{
			"IAMJIT_QUEUE_URL": "http://q", "IAMJIT_TABLE": "t", "IAMJIT_EVENT_BUS": "b",
			"IAMJIT_CONNECTOR_ROLE_ARN": "arn:aws:iam::1:role/c", "IAMJIT_IAM_ROLE_ARN": "arn:aws:iam::1:role/m",
			"IAMJIT_EXTERNAL_ID": id,
		}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.ExternalID) != id {
		t.Fatalf("config did not keep the external id for the role chain")
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		outs = append(outs, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, cfg.ExternalID), fmt.Sprintf(verb, &cfg))
	}
	outs = append(outs, fmt.Sprint(cfg.ExternalID), fmt.Sprintln(cfg))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		log := slog.New(h(&b))
		log.Info("cfg", "external_id", cfg.ExternalID, "cfg", cfg, "any", any(cfg.ExternalID))
		log.Info("group", slog.Group("g", "external_id", cfg.ExternalID))
		outs = append(outs, b.String())
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	hexID := fmt.Sprintf("%x", id)
	for _, out := range outs {
		if strings.Contains(out, id) || strings.Contains(strings.ToLower(out), hexID) {
			t.Errorf("external id printed: %s", out)
		}
	}
	if !strings.Contains(outs[0], "[redacted]") {
		t.Errorf("%%v of the config does not say [redacted]: %s", outs[0])
	}
}
