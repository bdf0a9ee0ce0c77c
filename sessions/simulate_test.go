package sessions_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// simCase is one request evaluated by the IAM simulator.
type simCase struct {
	Name      string            `json:"name"`
	Policies  []string          `json:"policies"`
	Action    string            `json:"action"`
	Resource  string            `json:"resource"`
	Principal string            `json:"principal"`
	Context   map[string]string `json:"context"`
}

const simDir = "testdata/simulate"

// simulate evaluates cases with @cloud-copilot/iam-simulate through node:
// moto stores aws:TokenIssueTime and aws:SourceIdentity conditions but never
// evaluates them. It fails, never skips, when node or the package is
// missing.
func simulate(t *testing.T, cases []simCase) map[string]string {
	t.Helper()
	const install = "make simulate-deps (npm ci --prefix sessions/testdata/simulate)"
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: install Node.js, then run %s", install)
	}
	if _, err := os.Stat(filepath.Join(simDir, "node_modules", "@cloud-copilot", "iam-simulate", "package.json")); err != nil {
		t.Fatalf("the IAM simulator is not installed: run %s", install)
	}
	in, err := json.Marshal(map[string]any{"cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "simulate.mjs")
	cmd.Dir = simDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("simulator: %v\n%s", err, stderr.String())
	}
	var res []struct{ Name, Result string }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("simulator output: %v: %s", err, out)
	}
	got := map[string]string{}
	for _, r := range res {
		got[r.Name] = r.Result
	}
	return got
}
