package e2e

// End-to-end tests of the core flow: the real iamjit binary, `iamjit dev`
// and `iamjit run` as processes, against a real moto_server.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/iamjit/iamjit/internal/testbin"
	"github.com/iamjit/iamjit/internal/testkit"
)

// e2eEnv is a dev stack in a fresh moto, with the exports `iamjit dev` printed.
type e2eEnv struct{ *testkit.Stack }

func e2eStack(t *testing.T, devArgs ...string) *e2eEnv {
	t.Helper()
	return &e2eEnv{testkit.DevStack(t, devArgs...)}
}

// startRun starts `iamjit run` sweeping every second; extra comes last.
func (e *e2eEnv) startRun(t *testing.T, extra ...string) *testkit.Proc {
	t.Helper()
	return e.StartRun(t, append([]string{"IAMJIT_SWEEP_INTERVAL=1s"}, extra...)...)
}

// symEntry loads the aws_iam_group fixture and applies changes.
func symEntry(t *testing.T, name string, change func(e map[string]any)) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	change(e)
	return e
}

// request shapes an escalate or deescalate for one grant.
type request struct {
	symID, run, target, user, group string
	duration                        int
	at                              time.Time
}

func (r request) apply(e map[string]any) {
	e["id"] = r.symID
	run := e["run"].(map[string]any)
	run["srn"] = "healthy-health:run:iam:1.0.0:" + r.run
	actors := run["actors"].(map[string]any)
	actors["request"].(map[string]any)["username"] = r.user
	ev := e["event"].(map[string]any)
	ev["timestamp"] = r.at.UTC().Format("2006-01-02T15:04:05.000000")
	f := e["fields"].(map[string]any)
	f["target_id"] = r.target
	f["target"].(map[string]any)["settings"] = map[string]any{"iam_group": r.group}
	if r.duration != 0 {
		f["duration"] = r.duration
	}
}

func (e *e2eEnv) putSym(t *testing.T, entries ...map[string]any) {
	t.Helper()
	eb := eventbridge.NewFromConfig(e.Cfg)
	var reqs []ebtypes.PutEventsRequestEntry
	for _, entry := range entries {
		b, _ := json.Marshal(entry)
		reqs = append(reqs, ebtypes.PutEventsRequestEntry{EventBusName: aws.String(e.Vars["IAMJIT_DEV_SYM_BUS"]),
			Source: aws.String("sym"), DetailType: aws.String("SymLogEntry"), Detail: aws.String(string(b))})
	}
	out, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: reqs})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("put events: %v %+v", err, out)
	}
}

func (e *e2eEnv) sendRaw(t *testing.T, body string) {
	t.Helper()
	_, err := sqs.NewFromConfig(e.Cfg).SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(e.Vars["IAMJIT_QUEUE_URL"]), MessageBody: &body})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *e2eEnv) createGroup(t *testing.T, name, path string) {
	t.Helper()
	_, err := iam.NewFromConfig(e.Cfg).CreateGroup(context.Background(), &iam.CreateGroupInput{GroupName: &name, Path: &path})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *e2eEnv) createUser(t *testing.T, name string) {
	t.Helper()
	_, err := iam.NewFromConfig(e.Cfg).CreateUser(context.Background(), &iam.CreateUserInput{UserName: &name})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *e2eEnv) members(t *testing.T, group string) []string {
	t.Helper()
	out, err := iam.NewFromConfig(e.Cfg).GetGroup(context.Background(), &iam.GetGroupInput{GroupName: &group})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range out.Users {
		names = append(names, aws.ToString(u.UserName))
	}
	return names
}

// escalate publishes r's escalate and waits for its Access Granted.
func (e *e2eEnv) escalate(t *testing.T, r request) testkit.Result {
	t.Helper()
	e.putSym(t, symEntry(t, "escalate_iam_group.json", r.apply))
	return e.WaitResult(t, "Access Granted", r.symID)
}

// deescalate publishes the deescalate of r's grant as Sym event symID and
// waits for its Access Revoked.
func (e *e2eEnv) deescalate(t *testing.T, r request, symID string) testkit.Result {
	t.Helper()
	r.symID = symID
	e.putSym(t, symEntry(t, "deescalate_iam_group.json", r.apply))
	return e.WaitResult(t, "Access Revoked", symID)
}

// duplicateHadOneEffect checks a duplicate delivery of r's escalate, whose
// first delivery was granted as first: a second Access Granted comes, every
// one with first's result_id, and the grant's history has one escalate.
func (e *e2eEnv) duplicateHadOneEffect(t *testing.T, r request, first testkit.Result) {
	t.Helper()
	testkit.Eventually(t, "the duplicate's Access Granted", 30*time.Second, func() bool {
		e.DrainResults(t)
		return len(e.Results.Find("Access Granted", r.symID)) >= 2
	})
	for _, got := range e.Results.Find("Access Granted", r.symID) {
		if got.Detail["result_id"] != first.Detail["result_id"] {
			t.Fatalf("result_id changed across deliveries: %v vs %v", got.Detail["result_id"], first.Detail["result_id"])
		}
	}
	hist := e.grantItem(t, grantID(r))["history"].([]any)
	escalates := 0
	for _, h := range hist {
		if h.(map[string]any)["action"] == "escalate" {
			escalates++
		}
	}
	if escalates != 1 {
		t.Fatalf("grant history has %d escalates, want 1: %v", escalates, hist)
	}
}

func (e *e2eEnv) grantItem(t *testing.T, id string) map[string]any {
	t.Helper()
	out, err := dynamodb.NewFromConfig(e.Cfg).GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.Vars["IAMJIT_TABLE"]), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "grant#" + id}}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := attributevalue.UnmarshalMap(out.Item, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func grantID(r request) string { return "healthy-health:run:iam:1.0.0:" + r.run + "/" + r.target }

func TestE2E(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "e2e", "--visibility", "3", "--max-receive", "3")
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	proc := e.startRun(t, "IAMJIT_MAX_DURATION=1h")
	now := time.Now()

	t.Run("escalate grants, deescalate revokes", func(t *testing.T) {
		r := request{symID: "e2e-esc-1", run: "run-1", target: "t-1", user: user, group: group, duration: 600, at: now}
		granted := e.escalate(t, r)
		if !slices.Contains(e.members(t, group), user) {
			t.Fatalf("%s is not in %s after Access Granted", user, group)
		}
		g := e.grantItem(t, grantID(r))
		if g["state"] != "ACTIVE" {
			t.Fatalf("grant state = %v, want ACTIVE", g["state"])
		}
		exp, err := time.Parse(time.RFC3339, fmt.Sprint(granted.Detail["expires_at"]))
		if err != nil {
			t.Fatalf("expires_at: %v", err)
		}
		wantTTL := exp.Add(2160 * time.Hour).Unix()
		if ttl, ok := g["ttl"].(float64); !ok || int64(ttl) != wantTTL {
			t.Fatalf("ttl = %v, want %d (expiry + 90 days)", g["ttl"], wantTTL)
		}
		if d := exp.Sub(now.Truncate(time.Microsecond)); d < 599*time.Second || d > 601*time.Second {
			t.Fatalf("expires_at %s is not timestamp + 600s", exp)
		}
		for _, k := range []string{"result_id", "grant_id", "run_srn", "requester", "iam_user", "group", "group_arn", "approver", "granted_at"} {
			if granted.Detail[k] == nil || granted.Detail[k] == "" {
				t.Errorf("Access Granted lacks %s: %v", k, granted.Detail)
			}
		}
		if granted.Detail["approver"] != "sym-implementer@healthy-health.co" || granted.Detail["requester"] != user {
			t.Errorf("requester/approver mapped wrong: %v", granted.Detail)
		}
		if granted.Source != "iamjit" {
			t.Errorf("source = %q, want iamjit", granted.Source)
		}

		revoked := e.deescalate(t, r, "e2e-deesc-1")
		if revoked.Detail["reason"] != "deescalated" {
			t.Fatalf("reason = %v, want deescalated", revoked.Detail["reason"])
		}
		if slices.Contains(e.members(t, group), user) {
			t.Fatalf("%s still in %s after Access Revoked", user, group)
		}
		if g := e.grantItem(t, grantID(r)); g["state"] != "REVOKED" {
			t.Fatalf("grant state = %v, want REVOKED", g["state"])
		}
	})

	t.Run("duplicate delivery has one effect and the same result_id", func(t *testing.T) {
		r := request{symID: "e2e-dup-1", run: "run-dup", target: "t-dup", user: user, group: group, duration: 600, at: now}
		entry := symEntry(t, "escalate_iam_group.json", r.apply)
		e.putSym(t, entry)
		first := e.WaitResult(t, "Access Granted", r.symID)
		e.putSym(t, entry)
		e.duplicateHadOneEffect(t, r, first)
	})

	t.Run("sweeper ends a grant with no deescalate", func(t *testing.T) {
		other := "e2e-expiry-group"
		e.createGroup(t, other, "/sym/")
		e.expires(t, request{symID: "e2e-exp-1", run: "run-exp", target: "t-exp", user: user, group: other, duration: 3, at: time.Now()})
	})

	t.Run("bad input", func(t *testing.T) {
		e.createGroup(t, "e2e-admins", "/")
		e.createUser(t, "bob@example.com")
		before := e.members(t, group)
		cases := []struct {
			name, code string
			r          request
		}{
			{"group outside the path", "group_not_allowed", request{group: "e2e-admins"}},
			{"unknown user", "unknown_user", request{user: "nobody@example.com"}},
			{"zero duration", "invalid_duration", request{duration: -1}},
			{"duration above the maximum", "duration_too_long", request{duration: 7200}},
			{"expiry already past", "expired", request{at: now.Add(-2 * time.Hour), duration: 60}},
			{"unknown group", "unknown_group", request{group: "no-such-group"}},
		}
		for i, c := range cases {
			r := request{symID: fmt.Sprintf("e2e-bad-%d", i), run: fmt.Sprintf("run-bad-%d", i), target: "t", user: "bob@example.com", group: group, duration: 600, at: now}
			if c.r.group != "" {
				r.group = c.r.group
			}
			if c.r.user != "" {
				r.user = c.r.user
			}
			if c.r.duration != 0 {
				r.duration = c.r.duration
			}
			if !c.r.at.IsZero() {
				r.at = c.r.at
			}
			entry := symEntry(t, "escalate_iam_group.json", r.apply)
			if c.r.duration == -1 {
				entry["fields"].(map[string]any)["duration"] = 0
			}
			e.putSym(t, entry)
			cases[i].r = r
		}
		// Unparseable: straight onto the queue, then a valid message behind it.
		e.sendRaw(t, "this is not json")
		e.sendRaw(t, `{"detail":{"no":"id"},"source":"sym"}`)
		for _, c := range cases {
			got := e.WaitResult(t, "Access Request Rejected", c.r.symID)
			if got.Detail["code"] != c.code {
				t.Errorf("%s: code = %v, want %s (%v)", c.name, got.Detail["code"], c.code, got.Detail["message"])
			}
		}
		dlq := sqs.NewFromConfig(e.Cfg)
		codes := map[string]bool{}
		testkit.Eventually(t, "two poison messages in the DLQ", 30*time.Second, func() bool {
			out, err := dlq.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.Vars["IAMJIT_DLQ_URL"]),
				MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}, VisibilityTimeout: 0})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.Messages {
				if a, ok := m.MessageAttributes["iamjit.error_code"]; ok {
					codes[aws.ToString(a.StringValue)] = true
				}
			}
			return len(codes) >= 2
		})
		if !codes["invalid_json"] || !codes["missing_id"] {
			t.Fatalf("DLQ reason codes = %v, want invalid_json and missing_id", codes)
		}
		if after := e.members(t, group); slices.Contains(after, "bob@example.com") || len(after) != len(before) {
			t.Fatalf("bad input changed IAM: before %v, after %v", before, after)
		}
		// The consumer goes on after poison: the queue drains.
		testkit.Eventually(t, "the queue to drain", 30*time.Second, func() bool { return e.QueueEmpty(t) })
	})

	t.Run("SIGTERM drains and exits 0", func(t *testing.T) {
		if err := proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-proc.Exited():
			if err := proc.Err(); err != nil {
				t.Fatalf("iamjit run exited with %v after SIGTERM", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("iamjit run did not stop within 30s of SIGTERM")
		}
		logs := proc.Output()
		if !strings.Contains(logs, "iamjit stopped") {
			t.Fatalf("no clean stop in the logs")
		}
		// Every line about a message names it.
		sc := bufio.NewScanner(strings.NewReader(logs))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				t.Fatalf("log line is not JSON: %s", sc.Text())
			}
			if line["msg"] == "moved to the dead-letter queue" && line["sqs_message_id"] == nil {
				t.Errorf("DLQ log line lacks sqs_message_id: %s", sc.Text())
			}
			if strings.Contains(sc.Text(), e.Vars["IAMJIT_EXTERNAL_ID"]) {
				t.Fatalf("a log line contains the external id")
			}
		}
	})
}

func TestConfigErrorsExit2(t *testing.T) {
	t.Parallel()
	bin := testbin.Build(t)
	cmd := exec.Command(bin, "run")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "IAMJIT_MAX_DURATION=forever", "IAMJIT_WORKERS=0"}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit = %v, want code 2; output:\n%s", err, out)
	}
	for _, name := range []string{"IAMJIT_QUEUE_URL", "IAMJIT_TABLE", "IAMJIT_EVENT_BUS", "IAMJIT_MAX_DURATION", "IAMJIT_WORKERS"} {
		if !strings.Contains(string(out), name) {
			t.Errorf("output does not name %s:\n%s", name, out)
		}
	}
}

func TestDevRefusesWithoutEmulator(t *testing.T) {
	t.Parallel()
	bin := testbin.Build(t)
	for _, ep := range []string{"", "https://sqs.us-east-1.amazonaws.com"} {
		cmd := exec.Command(bin, "dev")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AWS_ENDPOINT_URL=" + ep}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "local emulator") {
			t.Fatalf("dev with endpoint %q: err=%v out=%s", ep, err, out)
		}
	}
}
