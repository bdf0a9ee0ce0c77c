// Command demo shows the whole iamjit flow on a local moto: it starts the
// emulator, creates the stack with `iamjit dev`, runs `iamjit run`, publishes
// a Sym escalate on the Sym bus, prints the membership and the results, waits
// for the short grant to expire, prints the revocation, and stops everything
// it started. A member account beside the home one gets the same request
// for its group (by ARN): iamjit changes IAM there through that account's
// own chain, and nowhere else. Run it with `make demo`.
package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
)

//go:embed escalate.json
var escalate []byte

func main() {
	bin := flag.String("bin", "bin/iamjit", "the iamjit binary")
	duration := flag.Int("duration", 8, "grant duration in seconds")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *bin, *duration)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }

func run(ctx context.Context, bin string, duration int) error {
	step("starting moto (the local AWS emulator, through moto_iamjit.py)")
	moto, err := motoserver.StartProcess(ctx, nil)
	if err != nil {
		return err
	}
	defer moto.Stop()
	fmt.Println("    moto at", moto.URL())
	env := append(os.Environ(), moto.Env()...)

	step("iamjit dev: queue + DLQ, Sym bus + rule, results bus + queue, table, IAM group under /sym/, a user, the role chain; and member account %s with its own chain, group and user", memberAccount)
	dev := exec.CommandContext(ctx, bin, "dev", "--prefix", "demo", "--visibility", "5", "--member-account", memberAccount)
	dev.Env, dev.Stderr = env, os.Stderr
	exports, err := dev.Output()
	if err != nil {
		return fmt.Errorf("iamjit dev: %w", err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(exports)), "\n") {
		k, v, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		vars[k] = strings.Trim(v, "'")
		switch k {
		case "IAMJIT_EXTERNAL_ID":
			line = "export IAMJIT_EXTERNAL_ID='…'"
		case "IAMJIT_ACCOUNTS":
			line = "export IAMJIT_ACCOUNTS='{\"" + memberAccount + "\": {\"connector_role_arn\", \"external_id\": …, \"iam_role_arn\"}}'"
		}
		fmt.Println("   ", line)
		env = append(env, k+"="+vars[k])
	}

	step("iamjit run (logs below, prefixed with |)")
	runCmd := exec.Command(bin, "run")
	runCmd.Env = append(env, "IAMJIT_HTTP_ADDR=127.0.0.1:0", "IAMJIT_WAIT_TIME=1s", "IAMJIT_SWEEP_INTERVAL=1s", "IAMJIT_LOG_FORMAT=text")
	logs, err := runCmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := runCmd.Start(); err != nil {
		return fmt.Errorf("start iamjit run: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			fmt.Println("    |", sc.Text())
		}
	}()
	defer func() {
		step("stopping iamjit run (SIGTERM) and moto")
		_ = runCmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- runCmd.Wait() }()
		select {
		case err := <-done:
			fmt.Println("    iamjit run exited:", exitText(err))
		case <-time.After(30 * time.Second):
			_ = runCmd.Process.Kill()
		}
	}()

	cfg, err := moto.LoadAWSConfig(ctx)
	if err != nil {
		return err
	}
	user, group := vars["IAMJIT_DEV_USER"], vars["IAMJIT_DEV_GROUP"]
	memberGroup := vars["IAMJIT_DEV_MEMBER_GROUP_ARN_"+memberAccount]
	home, err := symEntry(user, group, "home", duration)
	if err != nil {
		return err
	}
	member, err := symEntry(user, memberGroup, "member", duration)
	if err != nil {
		return err
	}
	ps := assignment{instance: vars["IAMJIT_SSO_INSTANCE_ARN"], ps: vars["IAMJIT_DEV_SSO_PERMISSION_SET_ARN"],
		account: vars["IAMJIT_SSO_ASSIGNMENT_ACCOUNTS"], user: vars["IAMJIT_DEV_SSO_USER_ID"]}
	sso, err := ssoEntry(user, ps, duration)
	if err != nil {
		return err
	}
	step("Sym approves: an escalate for %s into %s for %ds, one into %s, and one of Identity Center permission set %s in account %s, put on the Sym bus %s",
		user, group, duration, memberGroup, ps.ps, ps.account, vars["IAMJIT_DEV_SYM_BUS"])
	_, err = eventbridge.NewFromConfig(cfg).PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
		{EventBusName: aws.String(vars["IAMJIT_DEV_SYM_BUS"]), Source: aws.String("sym"), DetailType: aws.String("SymLogEntry"), Detail: aws.String(home)},
		{EventBusName: aws.String(vars["IAMJIT_DEV_SYM_BUS"]), Source: aws.String("sym"), DetailType: aws.String("SymLogEntry"), Detail: aws.String(member)},
		{EventBusName: aws.String(vars["IAMJIT_DEV_SYM_BUS"]), Source: aws.String("sym"), DetailType: aws.String("SymLogEntry"), Detail: aws.String(sso)},
	}})
	if err != nil {
		return fmt.Errorf("put the escalates: %w", err)
	}
	iamc, sqsc := iam.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	// The member account as it sees itself: its own group of the same name,
	// and the same email mapped to its own IAM user.
	memberIAM := iam.NewFromConfig(devstack.AccountConfig(cfg, memberAccount))
	memberUser := devstack.MemberUserName(user, memberAccount)
	// settled waits until the user is in (or out of) the group in both
	// accounts and assigned (or not) the permission set, and prints the
	// three results that say so.
	settled := func(in bool, result string) error {
		if err := waitMembers(ctx, iamc, motoserver.AccountID, group, in, user); err != nil {
			return err
		}
		if err := waitMembers(ctx, memberIAM, memberAccount, group, in, memberUser); err != nil {
			return err
		}
		if err := waitAssigned(ctx, ssoadmin.NewFromConfig(cfg), ps, in); err != nil {
			return err
		}
		return printResults(ctx, sqsc, vars["IAMJIT_DEV_RESULTS_QUEUE_URL"], result, 3)
	}
	if err := settled(true, "Access Granted"); err != nil {
		return err
	}
	step("no deescalate will come: iamjit ends the three grants at their expiry (a timer, to the second; the sweep is the safety net)")
	if err := settled(false, "Access Revoked"); err != nil {
		return err
	}
	return printRevocation(ctx, iamc, vars["IAMJIT_DEV_ROLE_ARN"])
}

// memberAccount is the demo's member account.
const memberAccount = "210987654321"

// symEntry is the escalate fixture for user into group (a name, or an ARN
// of a member account's group), for duration seconds; run names the grant.
func symEntry(user, group, run string, duration int) (string, error) {
	var entry map[string]any
	if err := json.Unmarshal(escalate, &entry); err != nil {
		return "", err
	}
	entry["id"] = fmt.Sprintf("%v-%s", entry["id"], run)
	entry["event"].(map[string]any)["timestamp"] = time.Now().UTC().Format("2006-01-02T15:04:05.000000")
	r := entry["run"].(map[string]any)
	r["srn"] = fmt.Sprintf("%v-%s", r["srn"], run)
	r["actors"].(map[string]any)["request"].(map[string]any)["username"] = user
	fields := entry["fields"].(map[string]any)
	fields["duration"] = duration
	fields["target"].(map[string]any)["settings"] = map[string]any{"iam_group": group}
	detail, err := json.Marshal(entry)
	return string(detail), err
}

// assignment is the demo's Identity Center permission set assignment.
type assignment struct{ instance, ps, account, user string }

// ssoEntry is the escalate fixture for a custom target carrying the
// permission set's settings, as iamjit's Sym flow sends it.
func ssoEntry(user string, a assignment, duration int) (string, error) {
	detail, err := symEntry(user, "", "sso", duration)
	if err != nil {
		return "", err
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(detail), &entry); err != nil {
		return "", err
	}
	target := entry["fields"].(map[string]any)["target"].(map[string]any)
	target["type"], target["settings"] = "custom", map[string]any{"permission_set_arn": a.ps, "account_id": a.account}
	b, err := json.Marshal(entry)
	return string(b), err
}

// waitAssigned waits until the user is (or is not) assigned the permission
// set in the account, and prints the assignment.
func waitAssigned(ctx context.Context, c *ssoadmin.Client, a assignment, want bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := c.ListAccountAssignments(ctx, &ssoadmin.ListAccountAssignmentsInput{InstanceArn: &a.instance, PermissionSetArn: &a.ps, AccountId: &a.account})
		if err != nil {
			return fmt.Errorf("list the assignments of %s: %w", a.ps, err)
		}
		var users []string
		for _, as := range out.AccountAssignments {
			if as.PrincipalType == ssotypes.PrincipalTypeUser {
				users = append(users, aws.ToString(as.PrincipalId))
			}
		}
		if slices.Contains(users, a.user) == want {
			step("Identity Center: permission set %s in account %s, assigned to users %v", a.ps, a.account, users)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("user %s assigned %s: %v, want %v", a.user, a.ps, !want, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// printRevocation shows the Deny iamjit put on the /jit/ role the group let
// the user assume: their sessions issued before the expiry stop working.
func printRevocation(ctx context.Context, c *iam.Client, roleARN string) error {
	role := roleARN[strings.LastIndex(roleARN, "/")+1:]
	out, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: &role, PolicyName: aws.String("iamjit-session-revocation")})
	if err != nil {
		return fmt.Errorf("read the session revocation on %s: %w", roleARN, err)
	}
	doc, _ := url.PathUnescape(aws.ToString(out.PolicyDocument))
	var pretty any
	_ = json.Unmarshal([]byte(doc), &pretty)
	b, _ := json.MarshalIndent(pretty, "    ", "  ")
	step("session revocation on %s (inline policy iamjit-session-revocation): sessions issued before the expiry are denied", roleARN)
	fmt.Println("    " + string(b))
	return nil
}

func waitMembers(ctx context.Context, c *iam.Client, account, group string, want bool, user string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: &group})
		if err != nil {
			return fmt.Errorf("get group: %w", err)
		}
		var names []string
		for _, u := range out.Users {
			names = append(names, aws.ToString(u.UserName))
		}
		member := strings.Contains(","+strings.Join(names, ",")+",", ","+user+",")
		if member == want {
			step("IAM group %s in account %s: members %v", group, account, names)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("timed out waiting for %s membership in %s to be %v", user, group, want)
}

// printResults prints the result events as they arrive until n of
// detailType have.
func printResults(ctx context.Context, c *sqs.Client, queue, detailType string, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &queue, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			return fmt.Errorf("receive results: %w", err)
		}
		for _, m := range out.Messages {
			var ev struct {
				DetailType string          `json:"detail-type"`
				Detail     json.RawMessage `json:"detail"`
			}
			_ = json.Unmarshal([]byte(aws.ToString(m.Body)), &ev)
			_, _ = c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &queue, ReceiptHandle: m.ReceiptHandle})
			var pretty map[string]any
			_ = json.Unmarshal(ev.Detail, &pretty)
			b, _ := json.MarshalIndent(pretty, "    ", "  ")
			step("result event on the results bus: %s", ev.DetailType)
			fmt.Println("    " + string(b))
			if ev.DetailType == detailType {
				if n--; n == 0 {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%d more %s results did not arrive", n, detailType)
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}
