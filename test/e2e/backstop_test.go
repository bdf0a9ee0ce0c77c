package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/backstop"
	"github.com/iamjit/iamjit/grants/backstop/backstoptest"
	"github.com/iamjit/iamjit/internal/testkit"
)

// backstopOf reads the schedules iamjit keeps in the dev stack's group.
func (e *e2eEnv) backstopOf(t *testing.T) *backstop.Backstop {
	t.Helper()
	b, err := backstop.New(scheduler.NewFromConfig(e.Cfg), backstop.Options{Group: e.Vars["IAMJIT_BACKSTOP_GROUP"],
		RoleARN: e.Vars["IAMJIT_BACKSTOP_ROLE_ARN"], DLQARN: e.Vars["IAMJIT_BACKSTOP_DLQ_ARN"]})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// asBackstopRole is the AWS configuration of the schedules' execution role,
// as EventBridge Scheduler would use it.
func (e *e2eEnv) asBackstopRole(t *testing.T) aws.Config {
	t.Helper()
	cfg := e.Cfg.Copy()
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(e.Cfg), e.Vars["IAMJIT_BACKSTOP_ROLE_ARN"]))
	return cfg
}

// The expiry backstop through the real binary against moto: a grant
// creates its membership's schedule (target, input, time, role); an
// overlapping grant moves it; the last deescalate deletes it. With every
// replica killed, the schedule (fired by the test: moto never fires one)
// removes the user, and a restarted iamjit ends the grant expired, once,
// without re-adding. A schedule a killed replica left early is moved by the
// next grant, never cutting it.
func TestBackstop(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "bs")
	user, group := e.Vars["IAMJIT_DEV_USER"], e.Vars["IAMJIT_DEV_GROUP"]
	home := strings.Split(e.Vars["IAMJIT_IAM_ROLE_ARN"], ":")[4]
	k := grants.Key{Account: home, User: user, Group: group}
	b := e.backstopOf(t)
	ctx := context.Background()
	schedule := func(t *testing.T) (backstop.Schedule, bool) {
		t.Helper()
		s, ok, err := b.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		return s, ok
	}
	expiresOf := func(t *testing.T, r testkit.Result) time.Time {
		t.Helper()
		exp, err := time.Parse(time.RFC3339, fmt.Sprint(r.Detail["expires_at"]))
		if err != nil {
			t.Fatal(err)
		}
		return exp
	}
	proc := e.startRun(t)
	now := time.Now()

	t.Run("a grant creates the schedule, an overlapping one moves it, the last end deletes it", func(t *testing.T) {
		a := request{symID: "bs-a", run: "bs-1", target: "t-1", user: user, group: group, duration: 600, at: now}
		expA := expiresOf(t, e.escalate(t, a))
		s, ok := schedule(t)
		if !ok {
			t.Fatal("no schedule after the grant")
		}
		var input map[string]string
		if err := json.Unmarshal([]byte(s.Input), &input); err != nil {
			t.Fatalf("input %q: %v", s.Input, err)
		}
		want := expA.Add(2 * time.Minute)
		if s.TargetARN != "arn:aws:scheduler:::aws-sdk:iam:removeUserFromGroup" || input["GroupName"] != group || input["UserName"] != user ||
			len(input) != 2 || s.RoleARN != e.Vars["IAMJIT_BACKSTOP_ROLE_ARN"] || s.DLQARN != e.Vars["IAMJIT_BACKSTOP_DLQ_ARN"] ||
			s.At.Before(want) || s.At.After(want.Add(time.Second)) || s.ActionAfterCompletion != "DELETE" {
			t.Fatalf("schedule %+v: want removeUserFromGroup of %s from %s at %s, as the backstop role", s, user, group, want)
		}
		bReq := request{symID: "bs-b", run: "bs-2", target: "t-2", user: user, group: group, duration: 1200, at: now}
		expB := expiresOf(t, e.escalate(t, bReq))
		if s, _ := schedule(t); s.At.Before(expB.Add(2 * time.Minute)) {
			t.Fatalf("after an overlapping longer grant the schedule fires at %s, before %s", s.At, expB.Add(2*time.Minute))
		}
		e.deescalate(t, bReq, "bs-b-de")
		if s, ok := schedule(t); !ok || s.At.Before(expA.Add(2*time.Minute)) {
			t.Fatalf("after the longer grant's end: schedule %+v (present %v), want one no earlier than %s", s, ok, expA.Add(2*time.Minute))
		}
		e.deescalate(t, a, "bs-a-de")
		if s, ok := schedule(t); ok {
			t.Fatalf("the last grant ended and its schedule is still there: %+v", s)
		}
	})

	t.Run("a schedule a killed replica left early is moved by the next grant", func(t *testing.T) {
		if _, err := b.Arm(ctx, k, time.Now()); err != nil { // as if left by a grant that ended
			t.Fatal(err)
		}
		r := request{symID: "bs-c", run: "bs-3", target: "t-3", user: user, group: group, duration: 600, at: time.Now()}
		exp := expiresOf(t, e.escalate(t, r))
		if s, _ := schedule(t); s.At.Before(exp.Add(2 * time.Minute)) {
			t.Fatalf("the left-over schedule fires at %s, inside the new grant (until %s)", s.At, exp)
		}
		e.deescalate(t, r, "bs-c-de")
	})

	t.Run("with every replica killed, the schedule ends access; iamjit back ends the grant once", func(t *testing.T) {
		r := request{symID: "bs-d", run: "bs-4", target: "t-4", user: user, group: group, duration: 3, at: time.Now()}
		e.escalate(t, r)
		_ = proc.Cmd.Process.Signal(syscall.SIGKILL)
		<-proc.Exited()
		time.Sleep(4 * time.Second) // past the expiry, no iamjit to end it
		if !slices.Contains(e.members(t, group), user) {
			t.Fatal("the user left the group with no iamjit running: the test proves nothing")
		}
		s, ok := schedule(t)
		if !ok {
			t.Fatal("no schedule to fire")
		}
		if err := backstoptest.Fire(ctx, s, e.asBackstopRole(t)); err != nil {
			t.Fatalf("fire %s: %v", s.Name, err)
		}
		if slices.Contains(e.members(t, group), user) {
			t.Fatal("the fired schedule did not remove the user")
		}
		if g := e.grantItem(t, grantID(r)); g["state"] != "ACTIVE" {
			t.Fatalf("grant state %v after the backstop fired, want still ACTIVE (only iamjit ends grants)", g["state"])
		}
		e.startRun(t)
		revoked := e.WaitResult(t, "Access Revoked", r.symID)
		if revoked.Detail["reason"] != "expired" {
			t.Fatalf("Access Revoked %v, want reason expired", revoked.Detail)
		}
		time.Sleep(3 * time.Second) // room for a second revocation or a re-add
		e.DrainResults(t)
		if n := len(e.Results.Find("Access Revoked", r.symID)); n != 1 {
			t.Errorf("%d Access Revoked for the grant, want 1", n)
		}
		if slices.Contains(e.members(t, group), user) {
			t.Error("iamjit re-added the user the backstop removed")
		}
		if s, ok := schedule(t); ok {
			t.Errorf("the ended membership's schedule is still there: %+v", s)
		}
	})
}

// Start-up refuses what a request would fail on later, exit 2 naming the
// setting: a schedule group that does not exist (iamjit never creates one),
// and an Identity Center permission set, or group, that does not exist.
func TestStartupRefusesMissingBackstopAndIdentityCenterTargets(t *testing.T) {
	t.Parallel()
	e := e2eStack(t, "--prefix", "refuse")
	ps := e.Vars["IAMJIT_DEV_SSO_PERMISSION_SET_ARN"]
	for _, c := range []struct{ name, env string }{
		{"IAMJIT_BACKSTOP_GROUP", "IAMJIT_BACKSTOP_GROUP=no-such-group"},
		{"IAMJIT_SSO_PERMISSION_SETS", "IAMJIT_SSO_PERMISSION_SETS=" + ps[:len(ps)-4] + "0000"},
		{"IAMJIT_SSO_GROUPS", "IAMJIT_SSO_GROUPS=00000000-0000-0000-0000-000000000000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(e.Bin, "run")
			cmd.Env = append(slices.Clone(e.Env), c.env, "IAMJIT_HTTP_ADDR=")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), c.name) {
				t.Fatalf("iamjit run with %s: %v, want exit 2 naming %s; stderr:\n%s", c.env, err, c.name, stderr.String())
			}
		})
	}
}
