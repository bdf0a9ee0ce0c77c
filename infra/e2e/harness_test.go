//go:build infrae2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/iamjit/iamjit/internal/motoserver"
)

// Where the pieces are, relative to this package.
const (
	infraDir    = ".."                               // modules/ and environments/
	symStubDir  = "symstub"                          // the Sym provider stand-in (its own Go module)
	simulateDir = "../../sessions/testdata/simulate" // the IAM simulator (make simulate-deps)
	fixture     = "../../events/testdata/pipe_envelope_custom_escalate.json"
	memberID    = "210987654321"                        // the member account
	envDir      = "environments/prod"                   // what is applied, under the copied tree
	symVersion  = "3.0.0"                               // the stand-in's version: satisfies "~> 3.0"
	awsProvider = "registry.terraform.io/hashicorp/aws" // what the mirror must hold
	symProvider = "registry.terraform.io/symopsio/sym"  // what the stand-in mirror holds
)

// pluginMirror is the machine's filesystem mirror of Terraform providers,
// the one the infra tests use (IAMJIT_TF_PLUGIN_DIR overrides).
func pluginMirror() string {
	if d := os.Getenv("IAMJIT_TF_PLUGIN_DIR"); d != "" {
		return d
	}
	return "/opt/tf-plugins"
}

// checker prints one line per check and stops the test at the first that
// fails, naming it.
type checker struct {
	t     *testing.T
	start time.Time
}

func (c *checker) check(name string, f func() (string, error)) {
	c.t.Helper()
	t0 := time.Now()
	detail, err := f()
	if err != nil {
		fmt.Printf("FAIL  %-44s %v\n", name, err)
		c.t.Fatalf("check %q failed: %v", name, err)
	}
	fmt.Printf("ok    %-44s %s (%.1fs)\n", name, detail, time.Since(t0).Seconds())
}

// --- terraform -------------------------------------------------------------------

type terraform struct {
	bin, dir string
	env      []string
	log      *os.File
}

// run runs terraform with args in the environment directory; its output
// goes to the log file and, on failure, into the error (the last lines).
func (tf *terraform) run(ctx context.Context, args ...string) (string, int, error) {
	cmd := exec.CommandContext(ctx, tf.bin, args...)
	cmd.Dir = tf.dir
	cmd.Env = tf.env
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, tf.log)
	cmd.Stderr = io.MultiWriter(&out, tf.log)
	fmt.Fprintf(tf.log, "\n$ terraform %s\n", strings.Join(args, " "))
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		return out.String(), -1, fmt.Errorf("terraform %s: %w", args[0], err)
	}
	return out.String(), code, nil
}

// lastLines is the end of terraform's output, its errors and summary.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// copyTree copies src's modules/ and environments/ into dst, byte for byte
// (Terraform writes its lock file, data directory and state beside the
// configuration: the copy keeps them out of the source tree; nothing in it
// is edited).
func copyTree(src, dst string) error {
	for _, top := range []string{"modules", "environments"} {
		err := filepath.WalkDir(filepath.Join(src, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, path)
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") || strings.HasSuffix(d.Name(), ".tfstate") || strings.HasSuffix(d.Name(), ".tfstate.backup") || d.Name() == "terraform.tfvars" {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
		})
		if err != nil {
			return fmt.Errorf("copy %s: %w", top, err)
		}
	}
	return nil
}

// providerMirrors checks the machine's mirror for hashicorp/aws, builds the
// Sym stand-in into a mirror of its own, and writes the CLI configuration
// that installs each from its mirror and nothing from the network.
func providerMirrors(ctx context.Context, work string) (rc string, err error) {
	awsDir := filepath.Join(pluginMirror(), filepath.FromSlash(awsProvider))
	bins, _ := filepath.Glob(filepath.Join(awsDir, "*", "linux_amd64", "terraform-provider-aws_*"))
	if len(bins) == 0 {
		return "", fmt.Errorf("the provider hashicorp/aws is not in the filesystem mirror: no %s/<version>/linux_amd64/terraform-provider-aws_* (set IAMJIT_TF_PLUGIN_DIR to the mirror that holds it)", awsDir)
	}
	stubMirror := filepath.Join(work, "sym-mirror")
	out := filepath.Join(stubMirror, filepath.FromSlash(symProvider), symVersion, "linux_amd64", "terraform-provider-sym_v"+symVersion)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = symStubDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the Sym provider stand-in (%s): %v\n%s", symStubDir, err, b)
	}
	rc = filepath.Join(work, "terraform.rc")
	conf := fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/hashicorp/*"]
  }
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/symopsio/*"]
  }
}
`, pluginMirror(), stubMirror)
	if err := os.WriteFile(rc, []byte(conf), 0o644); err != nil {
		return "", err
	}
	return rc, nil
}

// --- AWS ---------------------------------------------------------------------------

// cfgFor is an SDK configuration for moto with the given credentials.
func cfgFor(ctx context.Context, m *motoserver.Server, c aws.Credentials) (aws.Config, error) {
	cfg, err := m.LoadAWSConfig(ctx)
	if err != nil {
		return aws.Config{}, err
	}
	cfg.Credentials = credentials.StaticCredentialsProvider{Value: c}
	return cfg, nil
}

// assume is AssumeRole of roleARN by cfg's principal.
func assume(ctx context.Context, cfg aws.Config, roleARN, session string, externalID *string) (aws.Credentials, error) {
	out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: &roleARN, RoleSessionName: &session, ExternalId: externalID})
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("assume %s: %w", roleARN, err)
	}
	c := out.Credentials
	return aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken), Source: "AssumeRole"}, nil
}

// queryAPI is a signed call to an AWS query-protocol API (EC2, CloudWatch)
// where the project has no SDK client, or the SDK's protocol is one moto
// does not serve; it returns the XML response.
func queryAPI(ctx context.Context, cfg aws.Config, endpoint, service string, form url.Values) ([]byte, error) {
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), service, cfg.Region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign %s: %w", form.Get("Action"), err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s %v: %.500s", form.Get("Action"), resp.Status, err, b)
	}
	return b, nil
}

// subnets are two default subnets of the default VPC, in two zones (EC2's
// query API: the deployment's prerequisite is only their ids).
func subnets(ctx context.Context, cfg aws.Config, endpoint string) (vpc string, ids []string, err error) {
	b, err := queryAPI(ctx, cfg, endpoint, "ec2", url.Values{"Action": {"DescribeSubnets"}, "Version": {"2016-11-15"}, "Filter.1.Name": {"default-for-az"}, "Filter.1.Value.1": {"true"}})
	if err != nil {
		return "", nil, err
	}
	var res struct {
		Items []struct {
			ID   string `xml:"subnetId"`
			VPC  string `xml:"vpcId"`
			Zone string `xml:"availabilityZone"`
		} `xml:"subnetSet>item"`
	}
	if err := xml.Unmarshal(b, &res); err != nil {
		return "", nil, fmt.Errorf("DescribeSubnets: %w", err)
	}
	zones := map[string]bool{}
	for _, s := range res.Items {
		if (vpc == "" || s.VPC == vpc) && !zones[s.Zone] {
			vpc = s.VPC
			zones[s.Zone] = true
			ids = append(ids, s.ID)
		}
		if len(ids) == 2 {
			return vpc, ids, nil
		}
	}
	return "", nil, fmt.Errorf("no two default subnets in two zones: %+v", res.Items)
}

// --- the pipe ------------------------------------------------------------------------

var placeholder = regexp.MustCompile(`<\$\.data\.([A-Za-z0-9_]+)>`)

// pipeDetail is what the pipe's input template makes of a Kinesis record
// whose data is the SymLogEntry entry: each <$.data.KEY> becomes the JSON
// of entry[KEY] (Pipes quotes strings and inserts objects as they are).
func pipeDetail(template string, entry map[string]any) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(template, func(p string) string {
		key := placeholder.FindStringSubmatch(p)[1]
		v, ok := entry[key]
		if !ok {
			missing = append(missing, key)
			return "null"
		}
		b, _ := json.Marshal(v)
		return string(b)
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("the record has no %v the pipe's template reads", missing)
	}
	if !json.Valid([]byte(out)) {
		return "", fmt.Errorf("the pipe's template makes no JSON of the record: %.300s", out)
	}
	return out, nil
}

// --- the IAM simulator ------------------------------------------------------------

type policyCase struct {
	Name      string            `json:"name"`
	Policy    string            `json:"policy"`
	Action    string            `json:"action"`
	Resource  string            `json:"resource"`
	Principal string            `json:"principal"`
	Context   map[string]string `json:"context"`
}

// simulate evaluates resource-policy cases with @cloud-copilot/iam-simulate
// (moto delivers a rule's events to SQS without reading the queue policy).
func simulate(ctx context.Context, cases []policyCase) (map[string]string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node not found: install Node.js, then run make simulate-deps")
	}
	sim, err := filepath.Abs(simulateDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(sim, "node_modules", "@cloud-copilot", "iam-simulate", "package.json")); err != nil {
		return nil, errors.New("the IAM simulator is not installed: run make simulate-deps")
	}
	in, err := json.Marshal(map[string]any{"simulator": sim, "cases": cases})
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, node, "testdata/resource_policy.mjs")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("simulator: %v: %s", err, stderr.String())
	}
	var res []struct{ Name, Result string }
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("simulator output: %v: %s", err, out)
	}
	got := map[string]string{}
	for _, r := range res {
		got[r.Name] = r.Result
	}
	return got, nil
}

// eventually polls cond every 200ms until it returns nil or within passes;
// the last error says why it did not hold.
func eventually(within time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sortedKeys is m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// --- the results bus, observed -------------------------------------------------------

// observer is a rule on the results bus sending every result to a queue the
// test reads (the consumer a deployment adds for Slack or a SIEM).
type observer struct {
	t     *testing.T
	cfg   aws.Config
	bus   string
	queue string
	seen  []map[string]any // every result's detail, with "detail-type"
}

const observerName = "e2e-results-observer"

func newObserver(ctx context.Context, t *testing.T, cfg aws.Config, bus string) *observer {
	t.Helper()
	q := sqs.NewFromConfig(cfg)
	qu, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(observerName)})
	if err != nil {
		t.Fatalf("observer queue: %v", err)
	}
	a, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: qu.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("observer queue: %v", err)
	}
	eb := eventbridge.NewFromConfig(cfg)
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(observerName), EventBusName: &bus, EventPattern: aws.String(`{"source":["iamjit"]}`)}); err != nil {
		t.Fatalf("observer rule: %v", err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(observerName), EventBusName: &bus, Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(a.Attributes["QueueArn"])}}}); err != nil {
		t.Fatalf("observer target: %v", err)
	}
	return &observer{t: t, cfg: cfg, bus: bus, queue: aws.ToString(qu.QueueUrl)}
}

// useConfig switches the credentials the observer reads with.
func (o *observer) useConfig(cfg aws.Config) { o.cfg = cfg }

func (o *observer) drain(ctx context.Context) error {
	q := sqs.NewFromConfig(o.cfg)
	for {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &o.queue, MaxNumberOfMessages: 10})
		if err != nil {
			return fmt.Errorf("read the results: %w", err)
		}
		if len(out.Messages) == 0 {
			return nil
		}
		for _, m := range out.Messages {
			var ev struct {
				DetailType string         `json:"detail-type"`
				Detail     map[string]any `json:"detail"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				return fmt.Errorf("a result is not an EventBridge event: %w", err)
			}
			ev.Detail["detail-type"] = ev.DetailType
			o.seen = append(o.seen, ev.Detail)
			if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &o.queue, ReceiptHandle: m.ReceiptHandle}); err != nil {
				return err
			}
		}
	}
}

// wait returns the first result of detailType for symID ("" any) that
// every match accepts, waiting up to within.
func (o *observer) wait(ctx context.Context, detailType, symID string, within time.Duration, match ...func(map[string]any) bool) (map[string]any, error) {
	var found map[string]any
	err := eventually(within, func() error {
		if err := o.drain(ctx); err != nil {
			return err
		}
		for _, r := range o.seen {
			if r["detail-type"] != detailType || (symID != "" && r["sym_event_id"] != symID) {
				continue
			}
			ok := true
			for _, m := range match {
				ok = ok && m(r)
			}
			if ok {
				found = r
				return nil
			}
		}
		return fmt.Errorf("no %s for %q on the results bus", detailType, symID)
	})
	return found, err
}

// close removes the rule and the queue (before terraform destroy: a bus
// with a rule cannot be deleted).
func (o *observer) close(ctx context.Context) {
	eb := eventbridge.NewFromConfig(o.cfg)
	if _, err := eb.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String(observerName), EventBusName: &o.bus, Ids: []string{"q"}}); err != nil {
		o.t.Errorf("remove the observer target: %v", err)
	}
	if _, err := eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String(observerName), EventBusName: &o.bus}); err != nil {
		o.t.Errorf("delete the observer rule: %v", err)
	}
	if _, err := sqs.NewFromConfig(o.cfg).DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &o.queue}); err != nil {
		o.t.Errorf("delete the observer queue: %v", err)
	}
}
