package e2e

// `iamjit reconcile`, and run's reconcile loop and /metrics, as processes
// against a real moto_server (helpers in e2e_test.go).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/iamjit/iamjit/internal/testkit"
	"github.com/iamjit/iamjit/reconcile"
)

// cli runs the iamjit binary with the stack's environment and returns its
// stdout and exit code.
func (e *e2eEnv) cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(e.Bin, args...)
	cmd.Env = append(append([]string{}, e.Env...), "IAMJIT_LOG_FORMAT=json")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("iamjit %s: exit %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	return out.String(), code
}

func (e *e2eEnv) addToGroup(t *testing.T, user, group string) {
	t.Helper()
	if _, err := iam.NewFromConfig(e.Cfg).AddUserToGroup(context.Background(), &iam.AddUserToGroupInput{UserName: &user, GroupName: &group}); err != nil {
		t.Fatal(err)
	}
}

func (e *e2eEnv) removeFromGroup(t *testing.T, user, group string) {
	t.Helper()
	if _, err := iam.NewFromConfig(e.Cfg).RemoveUserFromGroup(context.Background(), &iam.RemoveUserFromGroupInput{UserName: &user, GroupName: &group}); err != nil {
		t.Fatal(err)
	}
}

// revokedFor returns the Access Revoked results for user with reason.
func (e *e2eEnv) revokedFor(user, reason string) []testkit.Result {
	return e.Results.Where(func(ev testkit.Result) bool {
		return ev.DetailType == "Access Revoked" && ev.Detail["iam_user"] == user && ev.Detail["reason"] == reason
	})
}

func reconcileJSON(t *testing.T, out string) reconcile.Report {
	t.Helper()
	var rep reconcile.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("reconcile --json: %v\n%s", err, out)
	}
	return rep
}

func TestReconcileCLI(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "rec")
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	e.startRun(t)

	if out, code := e.cli(t, "reconcile"); code != 0 || !strings.Contains(out, "no drift") {
		t.Fatalf("fresh stack: exit %d, want 0 and no drift:\n%s", code, out)
	}

	t.Run("a member added by hand is reported, then removed with --enforce", func(t *testing.T) {
		e.createUser(t, "mallory@example.com")
		e.addToGroup(t, "mallory@example.com", group)
		out, code := e.cli(t, "reconcile")
		if code != exitDrift {
			t.Fatalf("exit %d, want %d (drift, not enforced)", code, exitDrift)
		}
		line := lineWith(out, "mallory@example.com")
		if !strings.HasPrefix(line, "unexplained_member") || !strings.Contains(line, group) {
			t.Fatalf("no unexplained_member line for mallory in %s:\n%s", group, out)
		}
		if !slices.Contains(e.members(t, group), "mallory@example.com") {
			t.Fatal("reconcile without --enforce changed IAM")
		}

		out, code = e.cli(t, "reconcile", "--enforce", "--json")
		if code != 0 {
			t.Fatalf("--enforce exit %d, want 0:\n%s", code, out)
		}
		rep := reconcileJSON(t, out)
		if len(rep.Differences) != 1 || rep.Differences[0].Action != reconcile.ActionRemoved {
			t.Fatalf("report = %+v, want mallory removed", rep)
		}
		if slices.Contains(e.members(t, group), "mallory@example.com") {
			t.Fatal("mallory is still in the group after --enforce")
		}
		var got []testkit.Result
		testkit.Eventually(t, "Access Revoked (drift) for mallory", 20*time.Second, func() bool {
			e.DrainResults(t)
			got = e.revokedFor("mallory@example.com", "drift")
			return len(got) > 0
		})
		if got[0].Detail["group"] != group || got[0].Detail["result_id"] != rep.Differences[0].ResultID || got[0].Detail["revoked_at"] == nil {
			t.Fatalf("drift result = %v, want group %s and result_id %s", got[0].Detail, group, rep.Differences[0].ResultID)
		}
		if out, code := e.cli(t, "reconcile"); code != 0 {
			t.Fatalf("after --enforce: exit %d, want 0:\n%s", code, out)
		}
	})

	t.Run("a member removed by hand while their grant is active is re-added", func(t *testing.T) {
		r := request{symID: "rec-esc-1", run: "rec-run-1", target: "t-1", user: user, group: group, duration: 600, at: time.Now()}
		e.escalate(t, r)
		e.removeFromGroup(t, user, group)

		out, code := e.cli(t, "reconcile")
		if code != exitDrift {
			t.Fatalf("exit %d, want %d", code, exitDrift)
		}
		line := lineWith(out, user)
		if !strings.HasPrefix(line, "missing_member") || !strings.Contains(line, grantID(r)) {
			t.Fatalf("no missing_member line naming grant %s:\n%s", grantID(r), out)
		}
		if _, code := e.cli(t, "reconcile", "--enforce"); code != 0 {
			t.Fatalf("--enforce exit %d, want 0", code)
		}
		if !slices.Contains(e.members(t, group), user) {
			t.Fatalf("%s was not re-added to %s", user, group)
		}
		// The re-add is in the grant's history, joined to CloudTrail by its
		// request id.
		var readd map[string]any
		for _, h := range e.grantItem(t, grantID(r))["history"].([]any) {
			if hm := h.(map[string]any); hm["action"] == "iam_add" && strings.Contains(fmt.Sprint(hm["note"]), "reconcile") {
				readd = hm
			}
		}
		if readd == nil || readd["iam_request_id"] == "" || readd["iam_request_id"] == nil {
			t.Fatalf("grant history has no reconcile re-add with a request id: %v", e.grantItem(t, grantID(r))["history"])
		}
		if out, code := e.cli(t, "reconcile"); code != 0 {
			t.Fatalf("after --enforce: exit %d, want 0:\n%s", code, out)
		}
	})
}

func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// scrape reads /metrics into series -> value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil // not listening yet
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// A known workload (3 escalates, 1 unparseable body) gives known counts,
// and run's reconcile loop removes a member added by hand.
func TestRunMetricsAndReconcileLoop(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "met")
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	proc := e.startRun(t, "IAMJIT_RECONCILE_INTERVAL=1s")
	// One group each: grants racing on one membership legitimately converge
	// with extra IAM calls, and the count here must be exact.
	groups := []string{group, "met-second", "met-third"}
	e.createGroup(t, groups[1], "/sym/")
	e.createGroup(t, groups[2], "/sym/")
	for i := range 3 {
		r := request{symID: "met-esc-" + strconv.Itoa(i), run: "met-run-" + strconv.Itoa(i), target: "t", user: user, group: groups[i], duration: 600, at: time.Now()}
		e.putSym(t, symEntry(t, "escalate_iam_group.json", r.apply))
	}
	e.sendRaw(t, "this is not json")

	var m map[string]float64
	testkit.Eventually(t, "4 messages processed and 3 active grants counted", 30*time.Second, func() bool {
		m = scrape(t, proc.Addr)
		return m["iamjit_processing_seconds_count"] == 4 && m["iamjit_active_grants"] == 3
	})
	want := map[string]float64{
		`iamjit_messages_total{outcome="applied"}`:                                  3,
		`iamjit_messages_total{outcome="poison"}`:                                   1,
		`iamjit_messages_received_total`:                                            4,
		`iamjit_dlq_moves_total`:                                                    1,
		`iamjit_messages_in_flight`:                                                 0,
		`iamjit_processing_seconds_bucket{le="+Inf"}`:                               4,
		`iamjit_aws_calls_total{operation="AddUserToGroup",service="IAM"}`:          3,
		`iamjit_aws_errors_total{operation="AddUserToGroup",service="IAM"}`:         0,
		`iamjit_aws_calls_total{operation="PutEvents",service="EventBridge"}`:       -1, // present
		`iamjit_aws_calls_total{operation="TransactWriteItems",service="DynamoDB"}`: -1,
		`iamjit_aws_calls_total{operation="SendMessage",service="SQS"}`:             1, // the DLQ move
		`iamjit_sweeper_lag_seconds`:                                                0,
	}
	for k, v := range want {
		g, ok := m[k]
		if !ok || (v >= 0 && g != v) || (v < 0 && g < 1) {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if m[`iamjit_messages_total{outcome="applied"}`] != 3 {
		t.Fatalf("metrics:\n%v", m)
	}

	e.createUser(t, "mallory@example.com")
	e.addToGroup(t, "mallory@example.com", group)
	testkit.Eventually(t, "run's reconcile loop to remove mallory", 30*time.Second, func() bool {
		return !slices.Contains(e.members(t, group), "mallory@example.com")
	})
	testkit.Eventually(t, "Access Revoked (drift) for mallory", 20*time.Second, func() bool {
		e.DrainResults(t)
		return len(e.revokedFor("mallory@example.com", "drift")) == 1
	})
	if !slices.Contains(e.members(t, group), user) {
		t.Fatalf("reconcile loop removed %s, whose grants are active", user)
	}
	testkit.Eventually(t, "drift metrics", 10*time.Second, func() bool {
		m = scrape(t, proc.Addr)
		return m["iamjit_drift_repaired_total"] >= 1 && m["iamjit_reconcile_runs_total"] >= 2
	})

	// Every log line about a message names the SQS message, the Sym event
	// and the grant.
	var granted []map[string]any
	sc := bufio.NewScanner(strings.NewReader(proc.Output()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if line["msg"] == "access granted" {
			granted = append(granted, line)
		}
	}
	if len(granted) != 3 {
		t.Fatalf("%d 'access granted' lines, want 3", len(granted))
	}
	var syms []string
	for _, l := range granted {
		for _, k := range []string{"sqs_message_id", "sym_event_id", "grant_id"} {
			if s, _ := l[k].(string); s == "" {
				t.Errorf("'access granted' line lacks %s: %v", k, l)
			}
		}
		syms = append(syms, l["sym_event_id"].(string))
	}
	slices.Sort(syms)
	if !slices.Equal(syms, []string{"met-esc-0", "met-esc-1", "met-esc-2"}) {
		t.Fatalf("sym ids on the lines = %v", syms)
	}
}

// exitDrift is the documented exit code of `iamjit reconcile` when drift
// remains (README, Commands).
const exitDrift = 3
