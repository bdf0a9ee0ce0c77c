//go:build infrae2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/pipes"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/internal/testbin"
	"github.com/iamjit/iamjit/internal/testkit"
)

// The people of the run: IAM users tagged with the email Sym knows them by
// (IAMJIT_IDENTITY = username,tag:email in the task definition). In the
// member account the same email is another user.
const (
	alice       = "alice"
	aliceEmail  = "alice@example.com"
	aliceMember = "alice-m"
	bob         = "bob"
	bobEmail    = "bob@example.com"
	approver    = "lead@example.com"
)

// TestInfraE2E: terraform apply of environments/prod (AWS half), a second
// plan, iamjit on what it made under its permissions, terraform destroy.
func TestInfraE2E(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	c := &checker{t: t, start: time.Now()}
	work := t.TempDir()
	fx, err := loadFixture()
	if err != nil {
		t.Fatal(err)
	}

	var tfBin, rc string
	c.check("tools: terraform, providers from the mirrors", func() (string, error) {
		var err error
		if tfBin, err = exec.LookPath("terraform"); err != nil {
			return "", errors.New("terraform is not on PATH: install Terraform >= 1.5 (this machine's image has 1.11)")
		}
		if rc, err = providerMirrors(ctx, work); err != nil {
			return "", err
		}
		return "hashicorp/aws from " + pluginMirror() + "; symopsio/sym: the stand-in " + symStubDir + " (manage_sym = false)", nil
	})
	bin := testbin.Build(t)
	m := motoserver.StartWith(t, motoserver.Options{Env: []string{"MOTO_IAM_LOAD_MANAGED_POLICIES=true"}})
	admin := m.AWSConfig(t)
	home := motoserver.AccountID

	// --- what exists before Terraform: the prerequisites infra/README.md lists ---
	var tfCreds, memberAdmin aws.Credentials
	var tfUserARN, vpc string
	var subnetIDs []string
	c.check("prerequisites: user, external ids, member role, VPC", func() (string, error) {
		ic := iam.NewFromConfig(admin)
		u, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("terraform")})
		if err != nil {
			return "", fmt.Errorf("create the terraform user: %w", err)
		}
		tfUserARN = aws.ToString(u.User.Arn)
		if _, err := ic.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("terraform"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")}); err != nil {
			return "", fmt.Errorf("attach AdministratorAccess: %w", err)
		}
		k, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("terraform")})
		if err != nil {
			return "", fmt.Errorf("access key: %w", err)
		}
		tfCreds = aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey), Source: "terraform user"}
		// The member account: a role Terraform may assume there (moto issues
		// credentials into any account for OrganizationAccountAccessRole
		// before the role exists; it is then created so that the trust is
		// checked once access control is on).
		orgRole := "arn:aws:iam::" + memberID + ":role/OrganizationAccountAccessRole"
		if memberAdmin, err = assume(ctx, admin, orgRole, "e2e-setup", nil); err != nil {
			return "", err
		}
		mcfg, err := cfgFor(ctx, m, memberAdmin)
		if err != nil {
			return "", err
		}
		mic := iam.NewFromConfig(mcfg)
		trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":%q},"Action":"sts:AssumeRole"}]}`, tfUserARN)
		if _, err := mic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("OrganizationAccountAccessRole"), AssumeRolePolicyDocument: &trust}); err != nil {
			return "", fmt.Errorf("member OrganizationAccountAccessRole: %w", err)
		}
		if _, err := mic.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("OrganizationAccountAccessRole"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")}); err != nil {
			return "", fmt.Errorf("member AdministratorAccess: %w", err)
		}
		for _, p := range []struct {
			cfg         aws.Config
			user, email string
		}{{admin, alice, aliceEmail}, {admin, bob, bobEmail}, {mcfg, aliceMember, aliceEmail}} {
			if _, err := iam.NewFromConfig(p.cfg).CreateUser(ctx, &iam.CreateUserInput{UserName: &p.user, Tags: []iamtypes.Tag{{Key: aws.String("email"), Value: &p.email}}}); err != nil {
				return "", fmt.Errorf("user %s: %w", p.user, err)
			}
		}
		sc := ssm.NewFromConfig(admin)
		for _, name := range []string{"/iamjit/prod/external-id", "/iamjit/prod/member-external-id"} {
			if _, err := sc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Type: ssmtypes.ParameterTypeSecureString, Value: aws.String(randomID())}); err != nil {
				return "", fmt.Errorf("parameter %s: %w", name, err)
			}
		}
		if vpc, subnetIDs, err = subnets(ctx, admin, m.URL()); err != nil {
			return "", err
		}
		return fmt.Sprintf("users alice, bob (home), alice-m (%s); %s %v", memberID, vpc, subnetIDs), nil
	})

	before, err := homeInventory(ctx, admin, m.URL())
	if err != nil {
		t.Fatalf("inventory before apply: %v", err)
	}
	mcfgAdmin, err := cfgFor(ctx, m, memberAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if err := iamInventory(ctx, mcfgAdmin, before, memberID+" "); err != nil {
		t.Fatalf("member inventory before apply: %v", err)
	}

	// --- terraform apply ------------------------------------------------------------
	root := filepath.Join(work, "infra")
	if err := copyTree(infraDir, root); err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{
		"vpc_id": vpc, "subnet_ids": subnetIDs, "image_tag": "v0.0.0-e2e",
		"manage_sym":                false, // the switch: the AWS half alone (Sym: terraform validate)
		"member_account":            map[string]any{"terraform_role_arn": "arn:aws:iam::" + memberID + ":role/OrganizationAccountAccessRole"},
		"table_deletion_protection": false, // this environment is destroyed at the end
	}
	varFile := filepath.Join(work, "e2e.tfvars.json")
	if b, err := json.Marshal(vars); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(varFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	tfLog, err := os.Create(filepath.Join(work, "terraform.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer tfLog.Close()
	tf := &terraform{bin: tfBin, dir: filepath.Join(root, envDir), log: tfLog, env: append(os.Environ(),
		"TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_INPUT=0",
		"AWS_ENDPOINT_URL="+m.URL(), "AWS_REGION="+motoserver.Region, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID="+tfCreds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+tfCreds.SecretAccessKey, "AWS_SESSION_TOKEN=",
		"AWS_PROFILE=", "SYM_JWT=unused")}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(tfLog.Name())
			t.Logf("terraform log (tail):\n%s", lastLines(string(b), 60))
		}
	})
	tfDo := func(what string, args ...string) (string, error) {
		out, code, err := tf.run(ctx, args...)
		if err != nil {
			return out, err
		}
		if code != 0 {
			return out, fmt.Errorf("%s exited %d:\n%s", what, code, lastLines(out, 25))
		}
		return out, nil
	}
	var timings []string
	timed := func(name string, since time.Time) {
		timings = append(timings, fmt.Sprintf("%s %.0fs", name, time.Since(since).Seconds()))
	}

	c.check("terraform init", func() (string, error) {
		_, err := tfDo("terraform init", "init", "-input=false", "-no-color", "-backend=false")
		return "providers from the mirrors only", err
	})
	applyStart := time.Now()
	c.check("terraform apply (AWS half, member account)", func() (string, error) {
		out, err := tfDo("terraform apply", "apply", "-auto-approve", "-input=false", "-no-color", "-var-file="+varFile)
		if err != nil {
			return "", err
		}
		sum := regexp.MustCompile(`Apply complete! Resources: (\d+) added`).FindStringSubmatch(out)
		if sum == nil {
			return "", fmt.Errorf("no summary:\n%s", lastLines(out, 10))
		}
		return sum[1] + " resources", nil
	})
	timed("apply", applyStart)
	outputs := map[string]json.RawMessage{}
	{
		out, err := tfDo("terraform output", "output", "-json", "-no-color")
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]struct{ Value json.RawMessage }
		if err := json.Unmarshal([]byte(out), &raw); err != nil {
			t.Fatalf("terraform output: %v", err)
		}
		for k, v := range raw {
			outputs[k] = v.Value
		}
	}
	out := func(name string) string {
		var s string
		_ = json.Unmarshal(outputs[name], &s)
		return s
	}
	var member struct {
		AccountID string            `json:"account_id"`
		GroupARNs map[string]string `json:"group_arns"`
	}
	if err := json.Unmarshal(outputs["member_account"], &member); err != nil || member.AccountID != memberID {
		t.Fatalf("output member_account: %v %s", err, outputs["member_account"])
	}

	planStart := time.Now()
	c.check("second terraform plan is empty", func() (string, error) {
		o, code, err := tf.run(ctx, "plan", "-detailed-exitcode", "-input=false", "-no-color", "-var-file="+varFile)
		if err != nil {
			return "", err
		}
		switch code {
		case 0:
			return "no changes", nil
		case 2:
			changes := regexp.MustCompile(`(?m)^  # (\S+) (will be|must be) [^\n]+`).FindAllString(o, -1)
			return "", fmt.Errorf("plan after apply has changes:\n%s", strings.Join(changes, "\n"))
		default:
			return "", fmt.Errorf("terraform plan exited %d:\n%s", code, lastLines(o, 25))
		}
	})
	timed("second plan", planStart)

	// --- before access control: what a service does outside IAM's policies ---------
	// ECS, EventBridge Pipes and the scheduler assume their roles as service
	// principals, which moto's trust evaluation cannot present: the test
	// assumes them as ECS and Pipes would, before access control is on; every
	// call made with those credentials afterwards is checked.
	pipeOut, err := pipes.NewFromConfig(admin).DescribePipe(ctx, &pipes.DescribePipeInput{Name: aws.String("sym-log-prod-to-eventbridge")})
	if err != nil {
		t.Fatalf("describe the pipe: %v", err)
	}
	svc, err := ecs.NewFromConfig(admin).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(out("cluster_name")), Services: []string{out("service_name")}})
	if err != nil || len(svc.Services) != 1 {
		t.Fatalf("describe the service: %v", err)
	}
	td, err := ecs.NewFromConfig(admin).DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.Services[0].TaskDefinition})
	if err != nil {
		t.Fatalf("describe the task definition: %v", err)
	}
	taskCreds, err := assume(ctx, admin, aws.ToString(td.TaskDefinition.TaskRoleArn), "ecs-task-e2e", nil)
	if err != nil {
		t.Fatal(err)
	}
	execCreds, err := assume(ctx, admin, aws.ToString(td.TaskDefinition.ExecutionRoleArn), "ecs-execution-e2e", nil)
	if err != nil {
		t.Fatal(err)
	}
	pipeCreds, err := assume(ctx, admin, aws.ToString(pipeOut.RoleArn), "pipes-e2e", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The results bus has no consumer in Terraform (README: add a rule for
	// Slack, a SIEM...): the test adds one, to a queue it reads.
	results := newObserver(ctx, t, admin, out("results_bus_name"))

	m.ResetAuth(t, 0)
	tcfg, err := cfgFor(ctx, m, tfCreds)
	if err != nil {
		t.Fatal(err)
	}
	results.useConfig(tcfg)
	memberTF, err := assume(ctx, tcfg, "arn:aws:iam::"+memberID+":role/OrganizationAccountAccessRole", "e2e-member", nil)
	if err != nil {
		t.Fatalf("member account under access control: %v", err)
	}
	mcfg, err := cfgFor(ctx, m, memberTF)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("      IAM access control on: every call from here to the destroy is checked against the policies Terraform attached\n")

	runStart := time.Now()

	// --- the task definition, as ECS would start it --------------------------------
	container := td.TaskDefinition.ContainerDefinitions[0]
	env := map[string]string{}
	c.check("task definition read back from ECS", func() (string, error) {
		if aws.ToString(container.Name) != "iamjit" || !slices.Equal(container.Command, []string{"run"}) {
			return "", fmt.Errorf("container %q command %v, want iamjit [run]", aws.ToString(container.Name), container.Command)
		}
		for _, kv := range container.Environment {
			env[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
		}
		if env["IAMJIT_QUEUE_URL"] != out("queue_url") || env["IAMJIT_DLQ_URL"] != out("dlq_url") || env["IAMJIT_TABLE"] != out("table_name") || env["IAMJIT_EVENT_BUS"] != out("results_bus_name") {
			return "", fmt.Errorf("the task's queue/DLQ/table/bus %q %q %q %q differ from the outputs", env["IAMJIT_QUEUE_URL"], env["IAMJIT_DLQ_URL"], env["IAMJIT_TABLE"], env["IAMJIT_EVENT_BUS"])
		}
		return fmt.Sprintf("%s: %d variables, %d secrets, task role %s", aws.ToString(td.TaskDefinition.TaskDefinitionArn), len(container.Environment), len(container.Secrets), aws.ToString(td.TaskDefinition.TaskRoleArn)), nil
	})
	c.check("secrets resolved with the execution role", func() (string, error) {
		ecfg, err := cfgFor(ctx, m, execCreds)
		if err != nil {
			return "", err
		}
		var names []string
		for _, s := range container.Secrets {
			name, from := aws.ToString(s.Name), aws.ToString(s.ValueFrom)
			v, err := resolveSecret(ctx, ecfg, from)
			if err != nil {
				return "", fmt.Errorf("%s (%s): %w", name, from, err)
			}
			env[name] = v
			names = append(names, name)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"IAMJIT_ACCOUNTS", "IAMJIT_EXTERNAL_ID"}) {
			return "", fmt.Errorf("secrets %v, want IAMJIT_ACCOUNTS and IAMJIT_EXTERNAL_ID", names)
		}
		return strings.Join(names, ", ") + " (SSM, Secrets Manager by version)", nil
	})

	// --- the route: the pipe's events, the rule, the queue policies ---------------
	var rule *eventbridge.DescribeRuleOutput
	var ruleTargets []ebtypes.Target
	c.check("rule pattern matches the pipe's Sym events", func() (string, error) {
		eb := eventbridge.NewFromConfig(tcfg)
		rules, err := eb.ListRules(ctx, &eventbridge.ListRulesInput{EventBusName: aws.String(out("sym_event_bus_name"))})
		if err != nil {
			return "", err
		}
		for _, r := range rules.Rules {
			if aws.ToString(r.ManagedBy) == "" && strings.HasPrefix(aws.ToString(r.Name), "iamjit-prod-") {
				rule, err = eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: r.Name, EventBusName: r.EventBusName})
				if err != nil {
					return "", err
				}
			}
		}
		if rule == nil {
			return "", fmt.Errorf("no iamjit rule on %s: %v", out("sym_event_bus_name"), rules.Rules)
		}
		tg, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: rule.Name, EventBusName: rule.EventBusName})
		if err != nil {
			return "", err
		}
		ruleTargets = tg.Targets
		for typ, want := range map[string]bool{"escalate": true, "deescalate": true, "request": false} {
			e, err := fx.entry("pattern-"+typ, typ, "run-pattern", "t", aliceEmail, "sym-readonly", 60)
			if err != nil {
				return "", err
			}
			ev, err := pipeEnvelope(pipeOut, e)
			if err != nil {
				return "", err
			}
			res, err := eb.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: rule.EventPattern, Event: &ev})
			if err != nil {
				return "", fmt.Errorf("TestEventPattern: %w", err)
			}
			if res.Result != want {
				return "", fmt.Errorf("rule %s pattern %s matches a Sym %s event as the pipe delivers it: %v, want %v", aws.ToString(rule.Name), aws.ToString(rule.EventPattern), typ, res.Result, want)
			}
		}
		return fmt.Sprintf("%s: escalate, deescalate match; request does not", aws.ToString(rule.Name)), nil
	})
	c.check("queue policies let the rule send (and no one else)", func() (string, error) {
		if len(ruleTargets) != 1 || ruleTargets[0].DeadLetterConfig == nil {
			return "", fmt.Errorf("rule targets %+v, want the queue with a DLQ", ruleTargets)
		}
		q := sqs.NewFromConfig(tcfg)
		var cases []policyCase
		for _, arn := range []string{aws.ToString(ruleTargets[0].Arn), aws.ToString(ruleTargets[0].DeadLetterConfig.Arn)} {
			url, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(arn[strings.LastIndex(arn, ":")+1:])})
			if err != nil {
				return "", err
			}
			a, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNamePolicy}})
			if err != nil {
				return "", err
			}
			pol := a.Attributes["Policy"]
			if pol == "" {
				return "", fmt.Errorf("%s has no queue policy", arn)
			}
			ctxOK := map[string]string{"aws:SourceArn": aws.ToString(rule.Arn), "aws:SourceAccount": home}
			ctxOther := map[string]string{"aws:SourceArn": aws.ToString(rule.Arn) + "-other", "aws:SourceAccount": home}
			cases = append(cases,
				policyCase{Name: "rule->" + arn, Policy: pol, Action: "sqs:SendMessage", Resource: arn, Principal: "events.amazonaws.com", Context: ctxOK},
				policyCase{Name: "other rule->" + arn, Policy: pol, Action: "sqs:SendMessage", Resource: arn, Principal: "events.amazonaws.com", Context: ctxOther})
		}
		got, err := simulate(ctx, cases)
		if err != nil {
			return "", err
		}
		for _, pc := range cases {
			want := strings.HasPrefix(pc.Name, "rule->")
			if (got[pc.Name] == "Allowed") != want {
				return "", fmt.Errorf("queue policy of %s: events.amazonaws.com SendMessage from %s is %s (IAM simulator), want allowed=%v", pc.Resource, pc.Context["aws:SourceArn"], got[pc.Name], want)
			}
		}
		return "the rule may send to the queue and its DLQ; another rule may not (IAM simulator)", nil
	})

	// --- iamjit run, as the task -----------------------------------------------------
	httpAddr := testkit.FreeAddr(t)
	runEnv := []string{"AWS_ENDPOINT_URL=" + m.URL(), "AWS_ACCESS_KEY_ID=" + taskCreds.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + taskCreds.SecretAccessKey, "AWS_SESSION_TOKEN=" + taskCreds.SessionToken, "AWS_EC2_METADATA_DISABLED=true"}
	for _, k := range sortedKeys(env) {
		v := env[k]
		if k == "IAMJIT_HTTP_ADDR" {
			v = httpAddr // the one change: a free port on this shared machine, not the container's
		}
		runEnv = append(runEnv, k+"="+v)
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = runEnv
	proc := testkit.Start(t, cmd)
	c.check("iamjit run starts as the task (its env, task role)", func() (string, error) {
		err := eventually(40*time.Second, func() error {
			select {
			case <-proc.Exited():
				return fmt.Errorf("iamjit run exited: %v", proc.Err())
			default:
			}
			logs := proc.Output()
			for _, want := range []string{`"msg":"role chain verified","account_id":"` + home + `"`, `"msg":"role chain verified","account_id":"` + memberID + `"`, `"msg":"iamjit running"`} {
				if !strings.Contains(logs, want) {
					return fmt.Errorf("no %s in its log", want)
				}
			}
			resp, err := http.Get("http://" + httpAddr + "/healthz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("/healthz %s", resp.Status)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("%w\n%s", err, lastLines(proc.Output(), 15))
		}
		return "both chains verified at start-up (home, " + memberID + "), /healthz ok", nil
	})
	// /readyz probes the home chain with one page of ListGroups under the
	// group path: a call the modifier policy allows (it once probed a group
	// outside the path, which the policy rightly refused).
	c.check("/readyz ready under the Terraform-made permissions", func() (string, error) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("/readyz %s %s", resp.Status, strings.TrimSpace(string(b)))
		}
		return "/readyz " + resp.Status, nil
	})

	send := func(id, typ, run, targetID, requester, group string, duration int) error {
		e, err := fx.entry(id, typ, run, targetID, requester, group, duration)
		if err != nil {
			return err
		}
		ev, err := pipeEnvelope(pipeOut, e)
		if err != nil {
			return err
		}
		var env struct {
			Source     string   `json:"source"`
			DetailType string   `json:"detail-type"`
			Resources  []string `json:"resources"`
			Detail     json.RawMessage
		}
		if err := json.Unmarshal([]byte(ev), &env); err != nil {
			return err
		}
		pcfg, err := cfgFor(ctx, m, pipeCreds)
		if err != nil {
			return err
		}
		res, err := eventbridge.NewFromConfig(pcfg).PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
			EventBusName: pipeOut.Target, Source: &env.Source, DetailType: &env.DetailType, Resources: env.Resources, Detail: aws.String(string(env.Detail)),
		}}})
		if err != nil {
			return fmt.Errorf("PutEvents as the pipe's role: %w", err)
		}
		if res.FailedEntryCount != 0 {
			return fmt.Errorf("PutEvents as the pipe's role: %+v", res.Entries)
		}
		return nil
	}
	ic := iam.NewFromConfig(tcfg)
	mic := iam.NewFromConfig(mcfg)
	inGroup := func(c *iam.Client, group, user string, want bool) error {
		name := group[strings.LastIndex(group, "/")+1:]
		g, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: &name})
		if err != nil {
			return err
		}
		has := slices.ContainsFunc(g.Users, func(u iamtypes.User) bool { return aws.ToString(u.UserName) == user })
		if has != want {
			return fmt.Errorf("%s member of %s: %v, want %v", user, name, has, want)
		}
		return nil
	}
	expect := func(detailType, symID string, fields map[string]string) (map[string]any, error) {
		r, err := results.wait(ctx, detailType, symID, 30*time.Second)
		if err != nil {
			return nil, fmt.Errorf("%w\niamjit:\n%s", err, lastLines(proc.Output(), 8))
		}
		for k, v := range fields {
			if fmt.Sprint(r[k]) != v {
				return nil, fmt.Errorf("%s %s: %s = %v, want %s", detailType, symID, k, r[k], v)
			}
		}
		return r, nil
	}

	c.check("escalate: Sym bus -> rule -> queue -> iamjit -> IAM", func() (string, error) {
		if err := send("e2e-esc-1", "escalate", "run-1", "t-1", aliceEmail, "sym-readonly", 600); err != nil {
			return "", err
		}
		if _, err := expect("Access Granted", "e2e-esc-1", map[string]string{"iam_user": alice, "group": "sym-readonly", "account_id": home}); err != nil {
			return "", err
		}
		return "alice in sym-readonly, Access Granted on " + out("results_bus_name"), inGroup(ic, "sym-readonly", alice, true)
	})
	memberGroup := member.GroupARNs["sym-readonly"]
	c.check("escalate in the member account (group ARN)", func() (string, error) {
		if err := send("e2e-esc-m", "escalate", "run-m", "t-m", aliceEmail, memberGroup, 600); err != nil {
			return "", err
		}
		if _, err := expect("Access Granted", "e2e-esc-m", map[string]string{"iam_user": aliceMember, "account_id": memberID}); err != nil {
			return "", err
		}
		return "alice-m in " + memberGroup + " through the member chain", inGroup(mic, memberGroup, aliceMember, true)
	})
	c.check("deescalate (home and member)", func() (string, error) {
		if err := send("e2e-de-1", "deescalate", "run-1", "t-1", aliceEmail, "sym-readonly", 600); err != nil {
			return "", err
		}
		if err := send("e2e-de-m", "deescalate", "run-m", "t-m", aliceEmail, memberGroup, 600); err != nil {
			return "", err
		}
		r, err := expect("Access Revoked", "e2e-de-1", map[string]string{"reason": "deescalated"})
		if err != nil {
			return "", err
		}
		if _, err := expect("Access Revoked", "e2e-de-m", map[string]string{"reason": "deescalated", "account_id": memberID}); err != nil {
			return "", err
		}
		if err := inGroup(ic, "sym-readonly", alice, false); err != nil {
			return "", err
		}
		return fmt.Sprintf("both removed; sessions_revoked %v", r["sessions_revoked"]), inGroup(mic, memberGroup, aliceMember, false)
	})
	c.check("expiry ends a grant on time", func() (string, error) {
		if err := send("e2e-esc-2", "escalate", "run-2", "t-2", bobEmail, "sym-cloudwatch-logs", 4); err != nil {
			return "", err
		}
		if _, err := expect("Access Granted", "e2e-esc-2", map[string]string{"iam_user": bob}); err != nil {
			return "", err
		}
		r, err := results.wait(ctx, "Access Revoked", "", 20*time.Second, func(d map[string]any) bool { return d["grant_id"] == "e2e:run:run-2/t-2" })
		if err != nil {
			return "", err
		}
		if r["reason"] != "expired" {
			return "", fmt.Errorf("Access Revoked reason %v, want expired", r["reason"])
		}
		return fmt.Sprintf("bob out of sym-cloudwatch-logs, expires_at %v revoked_at %v", r["expires_at"], r["revoked_at"]), inGroup(ic, "sym-cloudwatch-logs", bob, false)
	})
	dlq := out("dlq_url")
	c.check("poison message -> the Terraform-made DLQ", func() (string, error) {
		if err := send("", "escalate", "run-p", "t-p", aliceEmail, "sym-readonly", 60); err != nil { // no Sym id: cannot be answered
			return "", err
		}
		code, err := dlqMessage(ctx, tcfg, dlq, "")
		if err != nil {
			return "", err
		}
		return "in " + dlq + " with iamjit.error_code " + code, nil
	})
	c.check("iamjit replay: DLQ -> queue (task role)", func() (string, error) {
		// --max 1: a poison message fails again at once, and replay would
		// keep finding it in the DLQ while iamjit runs (README: leave such
		// messages or delete them; here it shows the path).
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		rp := exec.CommandContext(rctx, bin, "replay", "--max", "1")
		rp.Env = runEnv
		o, err := rp.Output()
		if err != nil {
			return "", fmt.Errorf("iamjit replay: %v: %s %s", err, o, testkit.StderrOf(err))
		}
		if !strings.Contains(string(o), "moved=1 ") {
			return "", fmt.Errorf("iamjit replay: %s, want moved=1", strings.TrimSpace(string(o)))
		}
		code, err := dlqMessage(ctx, tcfg, dlq, "iamjit.replayed_from")
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(o)) + "; the poison came back to the DLQ (" + code + ")", nil
	})
	c.check("modifier without iam:RemoveUserFromGroup: deescalate denied", func() (string, error) {
		role := out("iam_role_arn")
		role = role[strings.LastIndex(role, "/")+1:]
		const policy = "modify-groups-under-path"
		orig, err := ic.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: &role, PolicyName: aws.String(policy)})
		if err != nil {
			return "", err
		}
		doc, err := url.QueryUnescape(aws.ToString(orig.PolicyDocument))
		if err != nil {
			return "", err
		}
		short, err := withoutAction(doc, "iam:RemoveUserFromGroup")
		if err != nil {
			return "", err
		}
		if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: &role, PolicyName: aws.String(policy), PolicyDocument: &short}); err != nil {
			return "", err
		}
		restored := false
		restore := func() error {
			if restored {
				return nil
			}
			restored = true
			_, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: &role, PolicyName: aws.String(policy), PolicyDocument: &doc})
			return err
		}
		defer func() { _ = restore() }()
		if err := send("e2e-esc-3", "escalate", "run-3", "t-3", aliceEmail, "sym-readonly", 600); err != nil {
			return "", err
		}
		if _, err := expect("Access Granted", "e2e-esc-3", nil); err != nil {
			return "", err
		}
		if err := send("e2e-de-3", "deescalate", "run-3", "t-3", aliceEmail, "sym-readonly", 600); err != nil {
			return "", err
		}
		var denied string
		err = eventually(30*time.Second, func() error {
			for _, line := range strings.Split(proc.Output(), "\n") {
				if strings.Contains(line, "message will be retried") && strings.Contains(line, "e2e-de-3") && strings.Contains(line, `"error_code":"AccessDenied"`) {
					denied = line
					return nil
				}
			}
			return errors.New("no `message will be retried` with error_code AccessDenied for the deescalate in iamjit's log")
		})
		if err != nil {
			return "", fmt.Errorf("%w\n%s", err, lastLines(proc.Output(), 8))
		}
		if err := inGroup(ic, "sym-readonly", alice, true); err != nil {
			return "", fmt.Errorf("denied removal, yet: %w", err)
		}
		if r, _ := results.wait(ctx, "Access Revoked", "e2e-de-3", time.Second); r != nil {
			return "", errors.New("Access Revoked published although RemoveUserFromGroup was denied")
		}
		if err := restore(); err != nil {
			return "", err
		}
		if _, err := expect("Access Revoked", "e2e-de-3", map[string]string{"reason": "deescalated"}); err != nil {
			return "", fmt.Errorf("after restoring the policy: %w", err)
		}
		if err := inGroup(ic, "sym-readonly", alice, false); err != nil {
			return "", err
		}
		var l struct {
			Msg  string `json:"msg"`
			Code string `json:"error_code"`
			Err  string `json:"err"`
		}
		_ = json.Unmarshal([]byte(denied), &l)
		return fmt.Sprintf("%q error_code=%s (%.80s); retried until the policy was restored, then revoked", l.Msg, l.Code, l.Err), nil
	})
	timed("run", runStart)

	c.check("iamjit run drains on SIGTERM", func() (string, error) {
		if err := proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return "", err
		}
		select {
		case <-proc.Exited():
		case <-time.After(40 * time.Second):
			return "", errors.New("still running 40s after SIGTERM")
		}
		if err := proc.Err(); err != nil {
			return "", fmt.Errorf("exit: %v", err)
		}
		return "exit 0", nil
	})
	c.check("iamjit was denied nothing else", func() (string, error) {
		var denied []string
		for _, line := range strings.Split(proc.Output(), "\n") {
			if (strings.Contains(line, "AccessDenied") || strings.Contains(line, "not authorized")) && !strings.Contains(line, "iam:RemoveUserFromGroup") {
				denied = append(denied, line)
			}
		}
		if len(denied) > 0 {
			return "", fmt.Errorf("%d denied calls under the Terraform-made policies, e.g.\n%s", len(denied), strings.Join(denied[:min(3, len(denied))], "\n"))
		}
		return "no call of iamjit's log was denied but the removal the check above took away", nil
	})
	results.close(ctx)
	// Terraform's own calls are not what this test checks, and moto's
	// signature check fails on REST paths holding an ARN (Pipes'
	// ListTagsForResource): access control goes off for the destroy.
	m.ResetAuth(t, 1<<30)
	fmt.Printf("      IAM access control off\n")

	destroyStart := time.Now()
	c.check("terraform destroy", func() (string, error) {
		o, err := tfDo("terraform destroy", "destroy", "-auto-approve", "-input=false", "-no-color", "-var-file="+varFile)
		if err != nil {
			return "", err
		}
		sum := regexp.MustCompile(`Destroy complete! Resources: (\d+) destroyed`).FindStringSubmatch(o)
		if sum == nil {
			return "", fmt.Errorf("no summary:\n%s", lastLines(o, 10))
		}
		return sum[1] + " resources", nil
	})
	timed("destroy", destroyStart)
	c.check("destroy leaves nothing behind", func() (string, error) {
		after, err := homeInventory(ctx, tcfg, m.URL())
		if err != nil {
			return "", err
		}
		if err := iamInventory(ctx, mcfg, after, memberID+" "); err != nil {
			return "", err
		}
		// The member's OrganizationAccountAccessRole and the home user that
		// ran Terraform are prerequisites, in before.
		if left := after.minus(before); len(left) > 0 {
			return "", fmt.Errorf("left behind: %s", left)
		}
		return "home and member account as before the apply (KMS key pending deletion, task definition INACTIVE: as on AWS)", nil
	})
	fmt.Printf("      timings: %s; total %.0fs\n", strings.Join(timings, ", "), time.Since(c.start).Seconds())
}

// symFixture is a SymLogEntry of the request and approval flow with a
// custom target (the detail of events/testdata/pipe_envelope_custom_escalate.json).
type symFixture []byte

func loadFixture() (symFixture, error) {
	b, err := os.ReadFile(fixture)
	if err != nil {
		return nil, err
	}
	var env struct{ Detail json.RawMessage }
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%s: %w", fixture, err)
	}
	f := symFixture(env.Detail)
	if _, err := f.entry("x", "escalate", "r", "t", "a", "g", 1); err != nil {
		return nil, fmt.Errorf("%s: %w", fixture, err)
	}
	return f, nil
}

// entry is the fixture for one request: typ, run and target_id (the grant
// is run.srn/target_id), requested by requester, approved by approver, now,
// for group (settings.iam_group), duration seconds. id "" is an entry
// without a Sym id.
func (f symFixture) entry(id, typ, run, targetID, requester, group string, duration int) (map[string]any, error) {
	var e map[string]any
	if err := json.Unmarshal(f, &e); err != nil {
		return nil, err
	}
	obj := func(m map[string]any, key string) (map[string]any, error) {
		v, ok := m[key].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("no object %q", key)
		}
		return v, nil
	}
	ev, err1 := obj(e, "event")
	r, err2 := obj(e, "run")
	actor, err3 := obj(e, "actor")
	fields, err4 := obj(e, "fields")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	actors, err := obj(r, "actors")
	if err != nil {
		return nil, err
	}
	target, err := obj(fields, "target")
	if err != nil {
		return nil, err
	}
	for _, who := range []string{"request", "prompt", "approve"} {
		a, err := obj(actors, who)
		if err != nil {
			return nil, err
		}
		a["username"] = requester
		if who == "approve" {
			a["username"] = approver
		}
	}
	e["id"] = id
	ev["type"] = typ
	ev["srn"] = "sym:event-spec:approval:1.0.0:" + typ
	ev["timestamp"] = time.Now().UTC().Format("2006-01-02T15:04:05.000000")
	r["srn"] = "e2e:run:" + run
	actor["username"] = approver
	fields["duration"] = duration
	fields["target_id"] = targetID
	target["settings"] = map[string]any{"iam_group": group}
	return e, nil
}

// pipeEnvelope is the EventBridge event the pipe as applied puts on its
// target bus for a Kinesis record whose data is e: its input template,
// source, detail type and resources (moto does not run Pipes).
func pipeEnvelope(p *pipes.DescribePipeOutput, e map[string]any) (string, error) {
	tp := p.TargetParameters
	if tp == nil || tp.InputTemplate == nil || tp.EventBridgeEventBusParameters == nil {
		return "", fmt.Errorf("pipe %s has no input template or bus parameters", aws.ToString(p.Name))
	}
	detail, err := pipeDetail(aws.ToString(tp.InputTemplate), e)
	if err != nil {
		return "", err
	}
	bp := tp.EventBridgeEventBusParameters
	env := map[string]any{
		"version": "0", "id": randomID(), "detail-type": aws.ToString(bp.DetailType), "source": aws.ToString(bp.Source),
		"account": motoserver.AccountID, "time": time.Now().UTC().Format(time.RFC3339), "region": motoserver.Region,
		"resources": bp.Resources, "detail": json.RawMessage(detail),
	}
	b, err := json.Marshal(env)
	return string(b), err
}

// resolveSecret reads an ECS secret's valueFrom as ECS does with the
// execution role: an SSM parameter ARN, or a Secrets Manager ARN with
// optional :json-key:version-stage:version-id.
func resolveSecret(ctx context.Context, cfg aws.Config, from string) (string, error) {
	parts := strings.Split(from, ":")
	switch {
	case len(parts) >= 6 && parts[2] == "ssm":
		out, err := ssm.NewFromConfig(cfg).GetParameters(ctx, &ssm.GetParametersInput{Names: []string{from}, WithDecryption: aws.Bool(true)})
		if err != nil {
			return "", err
		}
		if len(out.Parameters) != 1 {
			return "", fmt.Errorf("invalid parameters %v", out.InvalidParameters)
		}
		return aws.ToString(out.Parameters[0].Value), nil
	case len(parts) >= 7 && parts[2] == "secretsmanager":
		in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(strings.Join(parts[:7], ":"))}
		if len(parts) == 10 {
			if parts[7] != "" {
				return "", fmt.Errorf("json-key %q: not used by infra/", parts[7])
			}
			if parts[8] != "" {
				in.VersionStage = &parts[8]
			}
			if parts[9] != "" {
				in.VersionId = &parts[9]
			}
		}
		out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, in)
		if err != nil {
			return "", err
		}
		return aws.ToString(out.SecretString), nil
	}
	return "", fmt.Errorf("valueFrom %q is neither an SSM parameter nor a secret ARN", from)
}

// dlqMessage waits for one message in the DLQ carrying attr (any iamjit
// reason when attr is "") and returns its iamjit.error_code, leaving it
// there, visible.
func dlqMessage(ctx context.Context, cfg aws.Config, dlq, attr string) (string, error) {
	q := sqs.NewFromConfig(cfg)
	var code string
	err := eventually(30*time.Second, func() error {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &dlq, MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
		if err != nil {
			return err
		}
		for _, msg := range out.Messages {
			a := msg.MessageAttributes
			if _, ok := a["iamjit.error_code"]; !ok {
				continue
			}
			if _, ok := a[attr]; attr != "" && !ok {
				continue
			}
			code = aws.ToString(a["iamjit.error_code"].StringValue)
			// Visible again at once, for iamjit replay (a receive cannot ask
			// for visibility 0: the SDK omits a zero VisibilityTimeout).
			_, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &dlq, ReceiptHandle: msg.ReceiptHandle, VisibilityTimeout: 0})
			return err
		}
		return fmt.Errorf("no message in the DLQ with iamjit.error_code %s", attr)
	})
	return code, err
}

// withoutAction is the policy document doc without action in any statement.
func withoutAction(doc, action string) (string, error) {
	var p map[string]any
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return "", fmt.Errorf("policy document: %w", err)
	}
	sts, _ := p["Statement"].([]any)
	found := false
	for _, st := range sts {
		s, _ := st.(map[string]any)
		var acts []any
		switch a := s["Action"].(type) {
		case string:
			acts = []any{a}
		case []any:
			acts = a
		}
		var keep []any
		for _, a := range acts {
			if a == action {
				found = true
				continue
			}
			keep = append(keep, a)
		}
		s["Action"] = keep
	}
	if !found {
		return "", fmt.Errorf("the policy has no %s", action)
	}
	b, err := json.Marshal(p)
	return string(b), err
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
