package e2e

// Start-up refusals of `iamjit run`, as a process: a wrong role chain or
// ExternalId (with moto's IAM access control on) and bad configuration stop
// it before any message is read, with a message naming the variables and
// never the secret values.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/internal/testbin"
	"github.com/iamjit/iamjit/internal/testkit"
)

// chainFixture is a dev stack in a moto whose access control is on, and the
// credentials of the IAM user standing in for the ECS task role.
type chainFixture struct {
	moto      *motoserver.Server
	st        devstack.Stack
	keyID     string
	secretKey string
	task      aws.Config
}

func newChainFixture(t *testing.T, members ...string) *chainFixture {
	t.Helper()
	ctx := context.Background()
	srv := motoserver.Start(t)
	cfg := srv.AWSConfig(t)
	admin := iam.NewFromConfig(cfg)

	// While calls are free: the task's user with a moto-issued key and an
	// allow-all policy (SQS, DynamoDB, EventBridge, sts:AssumeRole).
	user, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("iamjit-task")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
		UserName: aws.String("iamjit-task"), PolicyName: aws.String("all"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`),
	}); err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("iamjit-task")})
	if err != nil {
		t.Fatal(err)
	}
	// moto matches trust principals by exact ARN: the connector trusts the
	// task user, and the modifier must trust the connector's session ARN
	// (awsx.Chain names it iamjit-connector), not the role ARN AWS accepts.
	st, err := devstack.Create(ctx, cfg, devstack.Options{Prefix: "chain", Trust: aws.ToString(user.User.Arn), MemberAccounts: members})
	if err != nil {
		t.Fatal(err)
	}
	// Each member account's modifier, likewise, trusts its connector's
	// session ARN.
	for _, m := range st.Members {
		connector := m.ConnectorRoleARN[strings.LastIndex(m.ConnectorRoleARN, "/")+1:]
		modifier := m.IAMRoleARN[strings.LastIndex(m.IAMRoleARN, "/")+1:]
		memberSession := fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/iamjit-connector", m.AccountID, connector)
		if _, err := iam.NewFromConfig(devstack.AccountConfig(cfg, m.AccountID)).UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
			RoleName:       aws.String(modifier),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + memberSession + `"},"Action":"sts:AssumeRole"}]}`),
		}); err != nil {
			t.Fatal(err)
		}
	}
	session := fmt.Sprintf("arn:aws:sts::%s:assumed-role/chain-connector/iamjit-connector", motoserver.AccountID)
	if _, err := admin.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
		RoleName:       aws.String("chain-iam-modifier"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + session + `"},"Action":"sts:AssumeRole"}]}`),
	}); err != nil {
		t.Fatal(err)
	}
	f := &chainFixture{moto: srv, st: st, keyID: aws.ToString(key.AccessKey.AccessKeyId), secretKey: aws.ToString(key.AccessKey.SecretAccessKey)}
	f.task = cfg.Copy()
	f.task.Credentials = credentials.NewStaticCredentialsProvider(f.keyID, f.secretKey, "")
	return f
}

// env is `iamjit run`'s environment: the task's key and the stack's
// settings, with overrides ("NAME=value").
func (f *chainFixture) env(t *testing.T, overrides ...string) []string {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for _, kv := range f.moto.Env() {
		if !strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") && !strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY=") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_ACCESS_KEY_ID="+f.keyID, "AWS_SECRET_ACCESS_KEY="+f.secretKey,
		"IAMJIT_QUEUE_URL="+f.st.QueueURL, "IAMJIT_DLQ_URL="+f.st.DLQURL, "IAMJIT_TABLE="+f.st.Table,
		"IAMJIT_EVENT_BUS="+f.st.EventBus, "IAMJIT_CONNECTOR_ROLE_ARN="+f.st.ConnectorRoleARN,
		"IAMJIT_EXTERNAL_ID="+f.st.ExternalID, "IAMJIT_IAM_ROLE_ARN="+f.st.IAMRoleARN,
		"IAMJIT_GROUP_PATH="+f.st.GroupPath, "IAMJIT_SOURCES=sym", "IAMJIT_BACKSTOP_GROUP="+f.st.Backstop.Group,
		"IAMJIT_HTTP_ADDR="+testkit.FreeAddr(t), "IAMJIT_WAIT_TIME=1s", "IAMJIT_LOG_FORMAT=json")
	return append(env, overrides...) // later entries win in os/exec
}

func (f *chainFixture) queueCounts(t *testing.T) (visible, inFlight string) {
	t.Helper()
	out, err := sqs.NewFromConfig(f.task).GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(f.st.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		t.Fatalf("queue attributes with the task's key: %v", err)
	}
	return out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// refused runs `iamjit run` with overrides and checks that it exits 2
// before reading the waiting message, its stderr naming every one of names,
// its output holding no secret and none of never.
func (f *chainFixture) refused(t *testing.T, bin string, secrets, names, never []string, overrides ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run")
	cmd.Env = f.env(t, overrides...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || ctx.Err() != nil {
		t.Fatalf("iamjit run = %v, want exit code 2 (a bad chain setting); stderr:\n%s", err, stderr.String())
	}
	out := stdout.String() + stderr.String()
	t.Logf("exit %d, stderr: %s", ee.ExitCode(), strings.TrimSpace(stderr.String()))
	for _, n := range names {
		if !strings.Contains(stderr.String(), n) {
			t.Errorf("stderr does not name %s:\n%s", n, stderr.String())
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("output contains a secret (%d chars):\n%s", len(s), out)
		}
	}
	for _, n := range never {
		if strings.Contains(out, n) {
			t.Errorf("output says %q although a chain is wrong", n)
		}
	}
	if visible, inFlight := f.queueCounts(t); visible != "1" || inFlight != "0" {
		t.Errorf("queue after the refused start: %s visible, %s in flight; want the message untouched", visible, inFlight)
	}
}

// waitingMessage puts a message on the queue: a refused start must not read
// it.
func (f *chainFixture) waitingMessage(t *testing.T) {
	t.Helper()
	if _, err := sqs.NewFromConfig(f.moto.AWSConfig(t)).SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(f.st.QueueURL), MessageBody: aws.String(`{"source":"sym","detail":{"id":"waiting"}}`),
	}); err != nil {
		t.Fatal(err)
	}
}

func TestRunVerifiesRoleChainAtStartup(t *testing.T) {
	t.Parallel()
	bin := testbin.Build(t)
	f := newChainFixture(t)
	f.waitingMessage(t)
	f.moto.ResetAuth(t, 0)
	never := []string{"iamjit running", "role chain verified"}

	t.Run("wrong external id", func(t *testing.T) {
		wrong := "wrong-" + randomHex(t)
		f.refused(t, bin, []string{wrong, f.st.ExternalID, f.secretKey},
			[]string{"role chain", "IAMJIT_EXTERNAL_ID", "IAMJIT_CONNECTOR_ROLE_ARN"}, never,
			"IAMJIT_EXTERNAL_ID="+wrong)
	})
	t.Run("connector role that does not trust the caller", func(t *testing.T) {
		f.refused(t, bin, []string{f.st.ExternalID, f.secretKey},
			[]string{"role chain", "IAMJIT_CONNECTOR_ROLE_ARN"}, never,
			"IAMJIT_CONNECTOR_ROLE_ARN=arn:aws:iam::"+motoserver.AccountID+":role/sym/chain-iam-modifier")
	})

	t.Run("right external id starts", func(t *testing.T) {
		addr := testkit.FreeAddr(t)
		cmd := exec.Command(bin, "run")
		cmd.Env = f.env(t, "IAMJIT_HTTP_ADDR="+addr)
		p := testkit.Start(t, cmd)
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-p.Exited():
				t.Fatalf("iamjit run exited (%v) with the right external id:\n%s", p.Err(), p.Output())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz not OK within 30s:\n%s", p.Output())
			}
			time.Sleep(100 * time.Millisecond)
		}
		out := p.Output()
		if !strings.Contains(out, "role chain verified") || !strings.Contains(out, "assumed-role/chain-iam-modifier/") {
			t.Errorf("logs do not show the verified chain:\n%s", out)
		}
		for _, s := range []string{f.st.ExternalID, f.secretKey} {
			if strings.Contains(out, s) {
				t.Errorf("logs contain a secret (%d chars)", len(s))
			}
		}
	})
}

// Every member account's chain is verified at start-up through moto's access
// control (the launcher checks the cross-account hop's trust): a wrong
// external id for one account stops start-up, naming that account and no
// secret; the right ones start and log each account's verified chain.
func TestRunVerifiesEveryMemberChain(t *testing.T) {
	t.Parallel()
	bin := testbin.Build(t)
	const a, b = "111111111111", "222222222222"
	f := newChainFixture(t, a, b)
	f.waitingMessage(t)
	f.moto.ResetAuth(t, 0)
	good := f.st.AccountsJSON()
	wrongID := "wrong-" + randomHex(t)
	var wrong string
	{
		var accts map[string]map[string]string
		if err := json.Unmarshal([]byte(good), &accts); err != nil {
			t.Fatal(err)
		}
		accts[b]["external_id"] = wrongID
		w, _ := json.Marshal(accts)
		wrong = string(w)
	}
	secrets := []string{f.secretKey, f.st.ExternalID, f.st.Members[0].ExternalID, f.st.Members[1].ExternalID}

	t.Run("wrong external id of one account", func(t *testing.T) {
		f.refused(t, bin, append(secrets, wrongID), []string{"account " + b + " (check its IAMJIT_ACCOUNTS entry)", "role chain"},
			[]string{"iamjit running", "account " + a + " ("}, "IAMJIT_ACCOUNTS="+wrong)
	})

	t.Run("right external ids start", func(t *testing.T) {
		addr := testkit.FreeAddr(t)
		cmd := exec.Command(bin, "run")
		cmd.Env = f.env(t, "IAMJIT_HTTP_ADDR="+addr, "IAMJIT_ACCOUNTS="+good)
		p := testkit.Start(t, cmd)
		testkit.Eventually(t, "iamjit running with both member chains", 30*time.Second, func() bool {
			select {
			case <-p.Exited():
				t.Fatalf("iamjit run exited (%v) with the right external ids:\n%s", p.Err(), p.Output())
			default:
			}
			return strings.Contains(p.Output(), "iamjit running")
		})
		out := p.Output()
		for _, id := range []string{motoserver.AccountID, a, b} {
			if !strings.Contains(out, `"msg":"role chain verified","account_id":"`+id+`"`) {
				t.Errorf("logs do not show account %s's verified chain:\n%s", id, out)
			}
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("logs contain a secret (%d chars)", len(s))
			}
		}
	})
}

func TestRunBadConfigNamesEveryVariable(t *testing.T) {
	t.Parallel()
	bin := testbin.Build(t)
	const secret = "s3cr3t-external-id-value"
	cmd := exec.Command(bin, "run")
	// No queue, table or bus; and every security setting wrong at once.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"),
		"AWS_ENDPOINT_URL=http://127.0.0.1:1", "AWS_REGION=us-east-1", // never reached
		"IAMJIT_MAX_DURATION=forever",
		"IAMJIT_GROUP_PATH=/",
		"IAMJIT_IDENTITY=username,guess",
		"IAMJIT_ACCEPT_BARE=maybe",
		"IAMJIT_ALLOW_SELF_APPROVAL=sometimes",
		"IAMJIT_CONNECTOR_ROLE_ARN=connector",
		"IAMJIT_EXTERNAL_ID=" + secret,
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit = %v, want code 2; stderr:\n%s", err, stderr.String())
	}
	for _, name := range []string{"IAMJIT_QUEUE_URL", "IAMJIT_TABLE", "IAMJIT_EVENT_BUS", "IAMJIT_MAX_DURATION",
		"IAMJIT_GROUP_PATH", "IAMJIT_IDENTITY", "IAMJIT_ACCEPT_BARE", "IAMJIT_ALLOW_SELF_APPROVAL",
		"IAMJIT_CONNECTOR_ROLE_ARN", "IAMJIT_IAM_ROLE_ARN"} {
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("stderr does not name %s:\n%s", name, stderr.String())
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), secret) {
		t.Errorf("output contains the external id:\n%s", stderr.String())
	}
}
