package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if status != http.StatusOK {
			http.Error(w, "receive loop silent for 3m0s", status)
			return
		}
		w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	env := func(k string) string {
		if k == "IAMJIT_HTTP_ADDR" {
			return addr
		}
		return ""
	}

	var out bytes.Buffer
	if err := runHealthcheck(context.Background(), nil, env, &out); err != nil {
		t.Fatalf("healthy server: %v", err)
	}
	if out.String() != "ok\n" {
		t.Fatalf("stdout = %q, want the body", out.String())
	}

	status = http.StatusServiceUnavailable
	err := runHealthcheck(context.Background(), []string{addr}, func(string) string { return "" }, &out)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "receive loop silent") {
		t.Fatalf("unhealthy server: err = %v, want the 503 and its reason", err)
	}
	// Through run: the exit code main would use is 1 (not a usage error).
	err = Run(context.Background(), "test", []string{"healthcheck", addr}, func(string) string { return "" }, &out, &out)
	if err == nil || ExitCode(err) != 1 {
		t.Fatalf("run healthcheck against a 503: err = %v, want a plain error (exit 1)", err)
	}
}
