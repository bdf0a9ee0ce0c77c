package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/internal/cli"
	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/sessions"
)

// setup starts a private moto and creates the stack in it.
func setup(t *testing.T, opts devstack.Options) (*motoserver.Server, aws.Config, devstack.Stack) {
	t.Helper()
	t.Parallel()
	srv := motoserver.Start(t)
	cfg := srv.AWSConfig(t)
	st, err := devstack.Create(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return srv, cfg, st
}

// A stack the tests which only read it share: one moto and one Create for
// all of them (each private stack costs seconds of moto's CPU). A test that
// changes anything uses setup.
type sharedStack struct {
	opts devstack.Options
	once sync.Once
	srv  *motoserver.Server
	cfg  aws.Config
	st   devstack.Stack
	err  error
}

var (
	// sharedHome has the default options.
	sharedHome = &sharedStack{}
	// sharedEvents has the default options, for tests that each change a
	// part of it no other test reads: the two that put events (each on its
	// own bus, read from its own queue) and the one that adds the user to
	// the group.
	sharedEvents = &sharedStack{}
	// sharedMembers has two member accounts, named out of order.
	sharedMembers = &sharedStack{opts: devstack.Options{MemberAccounts: []string{member2, member1}}}
)

// get returns the shared stack, created on first use; TestMain stops its
// moto. Tests using it must not change it.
func (s *sharedStack) get(t *testing.T) (aws.Config, devstack.Stack) {
	t.Helper()
	t.Parallel()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if s.srv, s.err = motoserver.StartProcess(ctx, nil); s.err != nil {
			return
		}
		if s.cfg, s.err = s.srv.LoadAWSConfig(ctx); s.err != nil {
			return
		}
		s.st, s.err = devstack.Create(context.Background(), s.cfg, s.opts)
	})
	if s.err != nil {
		t.Fatalf("the shared stack: %v", s.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shared moto_server at %s, output:\n%s", s.srv.URL(), s.srv.Output())
		}
	})
	return s.cfg, s.st
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []*sharedStack{sharedHome, sharedEvents, sharedMembers} {
		if s.srv != nil {
			s.srv.Stop()
		}
	}
	os.Exit(code)
}

// TestCreateIsIdempotent: Create on the shared stack again changes nothing
// it reports.
func TestCreateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	cfg, first := sharedHome.get(t)
	second, err := devstack.Create(ctx, cfg, devstack.Options{})
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("second run differs:\n first %+v\nsecond %+v", first, second)
	}
	if len(first.ExternalID) != 32 || strings.Trim(first.ExternalID, "0123456789abcdef") != "" {
		t.Errorf("external id %q is not 32 hex chars", first.ExternalID)
	}
	want := devstack.Stack{
		Table: "iamjit-grants", EventBus: "iamjit-results", SymBus: "iamjit-sym",
		GroupName: "iamjit-readonly", GroupPath: "/sym/", UserName: "alice@example.com",
	}
	got := devstack.Stack{
		Table: first.Table, EventBus: first.EventBus, SymBus: first.SymBus,
		GroupName: first.GroupName, GroupPath: first.GroupPath, UserName: first.UserName,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names = %+v, want %+v", got, want)
	}
	for name, v := range map[string]string{
		"QueueURL": first.QueueURL, "DLQURL": first.DLQURL, "ResultsQueueURL": first.ResultsQueueURL,
		"ConnectorRoleARN": first.ConnectorRoleARN, "IAMRoleARN": first.IAMRoleARN, "GroupARN": first.GroupARN,
	} {
		if v == "" {
			t.Errorf("%s is empty", name)
		}
	}
	if !strings.Contains(first.ConnectorRoleARN, ":role/sym/iamjit-connector") ||
		!strings.Contains(first.IAMRoleARN, ":role/sym/iamjit-iam-modifier") {
		t.Errorf("role arns %s, %s not under /sym/", first.ConnectorRoleARN, first.IAMRoleARN)
	}
}

func TestCreateConvergesOnChangedOptions(t *testing.T) {
	ctx := context.Background()
	_, cfg, st := setup(t, devstack.Options{})
	if _, err := devstack.Create(ctx, cfg, devstack.Options{VisibilityTimeout: 7, MaxReceiveCount: 3}); err != nil {
		t.Fatalf("rerun with other options: %v", err)
	}
	out, err := sqs.NewFromConfig(cfg).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(st.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := out.Attributes["VisibilityTimeout"]; v != "7" {
		t.Errorf("VisibilityTimeout = %s, want 7", v)
	}
	var redrive struct {
		Target string          `json:"deadLetterTargetArn"`
		Max    json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(out.Attributes["RedrivePolicy"]), &redrive); err != nil {
		t.Fatalf("RedrivePolicy %q: %v", out.Attributes["RedrivePolicy"], err)
	}
	if strings.Trim(string(redrive.Max), `"`) != "3" || !strings.HasSuffix(redrive.Target, ":iamjit-dlq") {
		t.Errorf("RedrivePolicy = %s", out.Attributes["RedrivePolicy"])
	}
}

func TestTableShape(t *testing.T) {
	ctx := context.Background()
	cfg, st := sharedHome.get(t)
	db := dynamodb.NewFromConfig(cfg)
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(st.Table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "ttl" {
		t.Errorf("ttl = %s on %q, want ENABLED on ttl", d.TimeToLiveStatus, aws.ToString(d.AttributeName))
	}
	tbl, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(st.Table)})
	if err != nil {
		t.Fatal(err)
	}
	td := tbl.Table
	if td.TableStatus != ddbtypes.TableStatusActive || len(td.KeySchema) != 1 || aws.ToString(td.KeySchema[0].AttributeName) != "pk" {
		t.Errorf("table status %s, key %+v", td.TableStatus, td.KeySchema)
	}
	if len(td.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("GSIs = %+v", td.GlobalSecondaryIndexes)
	}
	gsi := td.GlobalSecondaryIndexes[0]
	if aws.ToString(gsi.IndexName) != "due" || aws.ToString(gsi.KeySchema[0].AttributeName) != "due_pk" ||
		aws.ToString(gsi.KeySchema[1].AttributeName) != "due_at" || gsi.Projection.ProjectionType != ddbtypes.ProjectionTypeAll {
		t.Errorf("GSI = %+v", gsi)
	}
}

func TestGroupAndUser(t *testing.T) {
	ctx := context.Background()
	cfg, st := sharedHome.get(t)
	c := iam.NewFromConfig(cfg)
	g, err := c.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(st.GroupName)})
	if err != nil {
		t.Fatal(err)
	}
	if p := aws.ToString(g.Group.Path); p != "/sym/" {
		t.Errorf("group path = %q", p)
	}
	tags, err := c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String(st.UserName)})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "email" || aws.ToString(tags.Tags[0].Value) != "alice@example.com" {
		t.Errorf("user tags = %+v", tags.Tags)
	}
}

// receiveOne long-polls queueURL until one message arrives.
func receiveOne(t *testing.T, c *sqs.Client, queueURL string) sqstypes.Message {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), WaitTimeSeconds: 1, MaxNumberOfMessages: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 1 {
			return out.Messages[0]
		}
	}
	t.Fatalf("nothing arrived on %s", queueURL)
	return sqstypes.Message{}
}

// putAndReceive puts one event on bus and returns what reached queueURL.
func putAndReceive(t *testing.T, cfg aws.Config, bus, source, detail, queueURL string) events.Envelope {
	t.Helper()
	out, err := eventbridge.NewFromConfig(cfg).PutEvents(context.Background(), &eventbridge.PutEventsInput{
		Entries: []ebtypes.PutEventsRequestEntry{{
			EventBusName: aws.String(bus), Source: aws.String(source),
			DetailType: aws.String("test event"), Detail: aws.String(detail),
		}},
	})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %v %+v", err, out)
	}
	msg := receiveOne(t, sqs.NewFromConfig(cfg), queueURL)
	var env events.Envelope
	if err := json.Unmarshal([]byte(aws.ToString(msg.Body)), &env); err != nil {
		t.Fatalf("body %q is not an envelope: %v", aws.ToString(msg.Body), err)
	}
	// No check on account: moto leaves it empty (see doc.go).
	if env.Version != "0" || env.Source != source || env.DetailType != "test event" || env.ID == "" ||
		env.Region != "us-east-1" || env.Time == "" {
		t.Errorf("envelope = %+v", env)
	}
	if !jsonEqual(t, env.Detail, []byte(detail)) {
		t.Errorf("detail = %s, want %s", env.Detail, detail)
	}
	return env
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

func TestSymEventsReachTheQueue(t *testing.T) {
	cfg, st := sharedEvents.get(t)
	// Another source on the Sym bus must not be delivered.
	if _, err := eventbridge.NewFromConfig(cfg).PutEvents(context.Background(), &eventbridge.PutEventsInput{
		Entries: []ebtypes.PutEventsRequestEntry{{
			EventBusName: aws.String(st.SymBus), Source: aws.String("other"),
			DetailType: aws.String("noise"), Detail: aws.String(`{}`),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	putAndReceive(t, cfg, st.SymBus, "sym", `{"id":"e1","event":{"type":"escalate"},"fields":{"duration":3600}}`, st.QueueURL)
	out, err := sqs.NewFromConfig(cfg).ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(st.QueueURL)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 0 {
		t.Errorf("unexpected extra message %s", aws.ToString(out.Messages[0].Body))
	}
}

func TestResultEventsReachTheResultsQueue(t *testing.T) {
	cfg, st := sharedEvents.get(t)
	putAndReceive(t, cfg, st.EventBus, "iamjit", `{"result_id":"r1","grant_id":"g1"}`, st.ResultsQueueURL)
}

func TestRedriveToDLQ(t *testing.T) {
	ctx := context.Background()
	_, cfg, st := setup(t, devstack.Options{Prefix: "redrive", MaxReceiveCount: 2})
	c := sqs.NewFromConfig(cfg)
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(st.QueueURL), MessageBody: aws.String("poison")}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		msg := receiveOne(t, c, st.QueueURL)
		// Fail it at once instead of waiting out the visibility timeout.
		if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(st.QueueURL), ReceiptHandle: msg.ReceiptHandle, VisibilityTimeout: 0,
		}); err != nil {
			t.Fatalf("receive %d: %v", i+1, err)
		}
	}
	// The receive after the maxReceiveCount-th moves it instead of returning it.
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(st.QueueURL), WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 0 {
		t.Fatalf("message still delivered from the queue after %d receives", 2)
	}
	if body := aws.ToString(receiveOne(t, c, st.DLQURL).Body); body != "poison" {
		t.Errorf("DLQ body = %q", body)
	}
}

// chain assumes the connector role with externalID and then the
// IAM-modifier role, the way iamjit run does.
func chain(cfg aws.Config, st devstack.Stack, externalID string) aws.Config {
	return chainARNs(cfg, st.ConnectorRoleARN, externalID, st.IAMRoleARN)
}

func chainARNs(cfg aws.Config, connectorARN, externalID, modifierARN string) aws.Config {
	connector := cfg.Copy()
	connector.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), connectorARN,
		func(o *stscreds.AssumeRoleOptions) { o.ExternalID = aws.String(externalID) }))
	modifier := cfg.Copy()
	modifier.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(connector), modifierARN))
	return modifier
}

func TestRoleChainCanChangeMembership(t *testing.T) {
	ctx := context.Background()
	cfg, st := sharedEvents.get(t)
	modifier := chain(cfg, st, st.ExternalID)
	who, err := sts.NewFromConfig(modifier).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("chained GetCallerIdentity: %v", err)
	}
	if !strings.Contains(aws.ToString(who.Arn), ":assumed-role/iamjit-iam-modifier/") {
		t.Errorf("chained identity = %s", aws.ToString(who.Arn))
	}
	addAndCheck(t, modifier, cfg, st)
}

func addAndCheck(t *testing.T, modifier, admin aws.Config, st devstack.Stack) {
	t.Helper()
	ctx := context.Background()
	if _, err := iam.NewFromConfig(modifier).AddUserToGroup(ctx, &iam.AddUserToGroupInput{
		GroupName: aws.String(st.GroupName), UserName: aws.String(st.UserName),
	}); err != nil {
		t.Fatalf("AddUserToGroup as the modifier: %v", err)
	}
	g, err := iam.NewFromConfig(admin).GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(st.GroupName)})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Users) != 1 || aws.ToString(g.Users[0].UserName) != st.UserName {
		t.Errorf("group members = %+v", g.Users)
	}
}

// With moto's IAM access control on, the policies Create wrote are
// evaluated, so this proves them rather than their existence. moto matches
// trust principals by exact ARN (account root and role ARNs never match a
// caller), so the connector trusts the test's caller by name and the
// modifier's credentials are issued before enforcement starts.
func TestPoliciesUnderAccessControl(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := motoserver.Start(t)
	cfg := srv.AWSConfig(t)
	admin := iam.NewFromConfig(cfg)

	// While calls are still free: a caller with a moto-issued key that may
	// assume roles (the ECS task role's stand-in), and a group outside /sym/.
	taskARN, task := taskUser(t, cfg)
	if _, err := admin.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("admins"), Path: aws.String("/")}); err != nil {
		t.Fatal(err)
	}
	st, err := devstack.Create(ctx, cfg, devstack.Options{Trust: taskARN})
	if err != nil {
		t.Fatal(err)
	}
	// Unchecked while free: credentials of the modifier role, whose inline
	// policy is enforced once access control is on.
	mod, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(st.IAMRoleARN), RoleSessionName: aws.String("iamjit")})
	if err != nil {
		t.Fatal(err)
	}
	modifier := cfg.Copy()
	modifier.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(mod.Credentials.AccessKeyId),
		aws.ToString(mod.Credentials.SecretAccessKey), aws.ToString(mod.Credentials.SessionToken))

	srv.ResetAuth(t, 0)

	assume := func(externalID *string) error {
		_, err := sts.NewFromConfig(task).AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn: aws.String(st.ConnectorRoleARN), RoleSessionName: aws.String("iamjit"), ExternalId: externalID,
		})
		return err
	}
	if err := assume(aws.String(st.ExternalID)); err != nil {
		t.Errorf("AssumeRole(connector) with the external id: %v", err)
	}
	if err := assume(aws.String("wrong")); !isDenied(err) {
		t.Errorf("AssumeRole(connector) with a wrong external id: got %v, want AccessDenied", err)
	}
	t.Logf("AssumeRole(connector) without an external id: %v (moto lets it through; AWS denies)", assume(nil))

	// The modifier's inline policy is attached and enforced: its
	// Resource "*" statement allows GetUser; nothing allows CreateUser.
	mc := iam.NewFromConfig(modifier)
	if _, err := mc.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(st.UserName)}); err != nil {
		t.Errorf("modifier GetUser: %v", err)
	}
	if _, err := mc.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("mallory")}); !isDenied(err) {
		t.Errorf("modifier CreateUser: got %v, want access denied", err)
	}
	if _, err := mc.AddUserToGroup(ctx, &iam.AddUserToGroupInput{
		GroupName: aws.String("admins"), UserName: aws.String(st.UserName),
	}); !isDenied(err) {
		t.Errorf("modifier AddUserToGroup(admins): got %v, want access denied", err)
	}
	// The Identity Center statements (on "*") are enforced too: reads and
	// assignment calls are allowed, making permission sets or users is not.
	sso, ids := ssoadmin.NewFromConfig(modifier), identitystore.NewFromConfig(modifier)
	if _, err := sso.ListInstances(ctx, &ssoadmin.ListInstancesInput{}); err != nil {
		t.Errorf("modifier sso:ListInstances: %v", err)
	}
	ic := st.IdentityCenter
	if _, err := sso.ListAccountAssignments(ctx, &ssoadmin.ListAccountAssignmentsInput{InstanceArn: &ic.InstanceARN,
		AccountId: &ic.Account, PermissionSetArn: &ic.PermissionSetARN}); err != nil {
		t.Errorf("modifier sso:ListAccountAssignments: %v", err)
	}
	if _, err := ids.DescribeUser(ctx, &identitystore.DescribeUserInput{IdentityStoreId: &ic.IdentityStoreID, UserId: &ic.UserID}); err != nil {
		t.Errorf("modifier identitystore:DescribeUser: %v", err)
	}
	if _, err := sso.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{InstanceArn: &ic.InstanceARN,
		Name: aws.String("admin"), SessionDuration: aws.String("PT1H")}); !isDenied(err) {
		t.Errorf("modifier sso:CreatePermissionSet: got %v, want access denied", err)
	}
	if _, err := ids.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: &ic.IdentityStoreID,
		DisplayName: aws.String("admins")}); !isDenied(err) {
		t.Errorf("modifier identitystore:CreateGroup: got %v, want access denied", err)
	}
	// moto checks IAM group actions against resource "*", so the
	// group/sym/* statement never matches there; real IAM allows this.
	_, err = mc.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(st.GroupName), UserName: aws.String(st.UserName)})
	t.Logf("modifier AddUserToGroup(%s) under moto access control: %v", st.GroupName, err)
}

// isDenied: STS answers AccessDenied; moto's IAM denial does not parse
// (the SDK reports UnknownError), so its HTTP 403 is what identifies it.
func isDenied(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "AccessDenied" {
		return true
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden
}

func TestCreateRefusesRealAWS(t *testing.T) {
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("https://iam.amazonaws.com")}
	if _, err := devstack.Create(context.Background(), cfg, devstack.Options{}); err == nil {
		t.Fatal("Create accepted an amazonaws.com endpoint")
	}
	if _, err := devstack.Create(context.Background(), aws.Config{Region: "us-east-1"}, devstack.Options{}); err == nil {
		t.Fatal("Create accepted a config without an endpoint")
	}
}

func TestCheckEndpoint(t *testing.T) {
	const msg = "iamjit dev only runs against a local emulator: set AWS_ENDPOINT_URL (for example http://127.0.0.1:5000)"
	for _, bad := range []string{
		"", " ", "https://sqs.us-east-1.amazonaws.com", "https://IAM.AMAZONAWS.COM.", "https://sts.cn-north-1.amazonaws.com.cn",
		"https://sqs.us-east-1.api.aws", "https://amazonaws.com", "not a url",
	} {
		err := devstack.CheckEndpoint(bad)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("CheckEndpoint(%q) = %v, want an error saying %q", bad, err, msg)
		}
	}
	for _, good := range []string{"http://127.0.0.1:5000", "http://localhost:4566", "http://moto:5000", "http://notamazonaws.com:5000"} {
		if err := devstack.CheckEndpoint(good); err != nil {
			t.Errorf("CheckEndpoint(%q) = %v", good, err)
		}
	}
}

func TestExports(t *testing.T) {
	st := devstack.Stack{
		QueueURL: "http://127.0.0.1:5000/123456789012/q", DLQURL: "http://127.0.0.1:5000/123456789012/dlq",
		Table: "t", EventBus: "results", SymBus: "sym-bus", ResultsQueueURL: "http://127.0.0.1:5000/123456789012/r",
		ConnectorRoleARN: "arn:aws:iam::123456789012:role/sym/c", IAMRoleARN: "arn:aws:iam::123456789012:role/sym/m",
		ExternalID: "it's $HOME `x` \"q\"", GroupName: "g", GroupPath: "/sym/", UserName: "alice@example.com",
	}
	out := st.Exports("http://127.0.0.1:5000", "us-east-1", false)
	names := []string{
		"IAMJIT_QUEUE_URL", "IAMJIT_DLQ_URL", "IAMJIT_TABLE", "IAMJIT_EVENT_BUS", "IAMJIT_CONNECTOR_ROLE_ARN",
		"IAMJIT_EXTERNAL_ID", "IAMJIT_IAM_ROLE_ARN", "IAMJIT_GROUP_PATH", "IAMJIT_ROLE_PATH", "IAMJIT_SESSION_REVOCATION",
		"IAMJIT_SOURCES", "IAMJIT_DEV_SYM_BUS",
		"IAMJIT_DEV_RESULTS_QUEUE_URL", "IAMJIT_DEV_GROUP", "IAMJIT_DEV_USER", "IAMJIT_DEV_ROLE_ARN", "AWS_ENDPOINT_URL", "AWS_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(names) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(names), out)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "export "+names[i]+"='") || !strings.HasSuffix(l, "'") {
			t.Errorf("line %d = %q, want export %s='…'", i, l, names[i])
		}
	}
	if withCreds := st.Exports("http://127.0.0.1:5000", "us-east-1", true); strings.Contains(withCreds, "AWS_ACCESS_KEY_ID") ||
		strings.Contains(withCreds, "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("dummy credentials exported although the caller has some:\n%s", withCreds)
	}

	got := strings.Join(evalExports(t, out, "IAMJIT_QUEUE_URL", "IAMJIT_EXTERNAL_ID", "IAMJIT_SOURCES", "AWS_SECRET_ACCESS_KEY"), "\n")
	want := st.QueueURL + "\n" + st.ExternalID + "\nsym\ntest"
	if got != want {
		t.Errorf("bash read back %q, want %q", got, want)
	}

	// With Identity Center and the backstop: every line above, unchanged
	// and in order, and theirs added.
	st.IdentityCenter = devstack.IdentityCenter{
		InstanceARN: "arn:aws:sso:::instance/ssoins-0123456789abcdef", PermissionSetARN: "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef",
		Account: "123456789012", GroupID: "g-1", UserID: "u-1",
	}
	st.Backstop = devstack.Backstop{RoleARN: "arn:aws:iam::123456789012:role/sym/b", Group: "iamjit",
		DLQURL: "http://127.0.0.1:5000/123456789012/bdlq", DLQARN: "arn:aws:sqs:us-east-1:123456789012:bdlq"}
	full := st.Exports("http://127.0.0.1:5000", "us-east-1", false)
	fullNames := slices.Concat(names[:11], []string{
		"IAMJIT_SSO_INSTANCE_ARN", "IAMJIT_SSO_PERMISSION_SETS", "IAMJIT_SSO_ASSIGNMENT_ACCOUNTS", "IAMJIT_SSO_GROUPS", "IAMJIT_BACKSTOP_ROLE_ARN", "IAMJIT_BACKSTOP_GROUP", "IAMJIT_BACKSTOP_DLQ_ARN",
	}, names[11:16], []string{
		"IAMJIT_DEV_SSO_USER_ID", "IAMJIT_DEV_SSO_GROUP_ID", "IAMJIT_DEV_SSO_PERMISSION_SET_ARN",
		"IAMJIT_DEV_BACKSTOP_DLQ_URL",
	}, names[16:])
	fullLines := strings.Split(strings.TrimSuffix(full, "\n"), "\n")
	if len(fullLines) != len(fullNames) {
		t.Fatalf("%d lines, want %d:\n%s", len(fullLines), len(fullNames), full)
	}
	var kept []string
	for i, l := range fullLines {
		if !strings.HasPrefix(l, "export "+fullNames[i]+"='") {
			t.Errorf("line %d = %q, want export %s='…'", i, l, fullNames[i])
		}
		if slices.Contains(names, fullNames[i]) {
			kept = append(kept, l)
		}
	}
	if !slices.Equal(kept, lines) {
		t.Errorf("the lines of before changed:\n%s\nwas\n%s", strings.Join(kept, "\n"), out)
	}
	vals := evalExports(t, full, "IAMJIT_SSO_PERMISSION_SETS", "IAMJIT_SSO_GROUPS", "IAMJIT_BACKSTOP_DLQ_ARN")
	if !slices.Equal(vals, []string{st.IdentityCenter.PermissionSetARN, "g-1", st.Backstop.DLQARN}) {
		t.Errorf("bash read back %q", vals)
	}
}

// The dev group may assume one role under /jit/, whose trust requires the
// caller's user name as source identity, so the stack exercises session
// revocation per user.
func TestJITRole(t *testing.T) {
	ctx := context.Background()
	cfg, st := sharedHome.get(t)
	c := iam.NewFromConfig(cfg)
	r, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("iamjit-jit-readonly")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(r.Role.Path) != devstack.JITRolePath || aws.ToString(r.Role.Arn) != st.JITRoleARN {
		t.Fatalf("role = %s under %s, stack says %s", aws.ToString(r.Role.Arn), aws.ToString(r.Role.Path), st.JITRoleARN)
	}
	trust, _ := url.PathUnescape(aws.ToString(r.Role.AssumeRolePolicyDocument))
	if !sessions.RequiresSourceIdentity(trust) {
		t.Fatalf("trust does not require source identity: %s", trust)
	}
	out, err := c.GetGroupPolicy(ctx, &iam.GetGroupPolicyInput{GroupName: aws.String(st.GroupName), PolicyName: aws.String(st.GroupName + "-assume")})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := url.PathUnescape(aws.ToString(out.PolicyDocument))
	found, err := sessions.FindRoles([]string{doc}, []sessions.Role{{ARN: st.JITRoleARN}, {ARN: st.IAMRoleARN}})
	if err != nil || len(found) != 1 || found[0].ARN != st.JITRoleARN {
		t.Fatalf("the group may assume %+v (%v), want only %s", found, err, st.JITRoleARN)
	}
}

// Two member accounts beside the home account (motoserver.AccountID).
const (
	member1 = "111111111111"
	member2 = "222222222222"
)

// admins are configurations acting in each account of st: the home
// account with cfg's credentials, each member through AssumeRole.
func admins(cfg aws.Config, st devstack.Stack) map[string]aws.Config {
	out := map[string]aws.Config{motoserver.AccountID: cfg}
	for _, m := range st.Members {
		out[m.AccountID] = devstack.AccountConfig(cfg, m.AccountID)
	}
	return out
}

// policyDoc is an IAM policy document as IAM returns it (URL-encoded), parsed.
func policyDoc(t *testing.T, encoded *string) map[string]any {
	t.Helper()
	raw, err := url.QueryUnescape(aws.ToString(encoded))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("policy %s: %v", raw, err)
	}
	return doc
}

// roleDocs are a role's trust policy and its inline policy of its own name.
func roleDocs(t *testing.T, c *iam.Client, name string) (trust, inline map[string]any) {
	t.Helper()
	ctx := context.Background()
	r, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetRole %s: %v", name, err)
	}
	p, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetRolePolicy %s: %v", name, err)
	}
	return policyDoc(t, r.Role.AssumeRolePolicyDocument), policyDoc(t, p.PolicyDocument)
}

// firstStatement is a policy's only statement.
func firstStatement(t *testing.T, doc map[string]any) map[string]any {
	t.Helper()
	st, _ := doc["Statement"].([]any)
	if len(st) != 1 {
		t.Fatalf("want one statement: %v", doc)
	}
	s, _ := st[0].(map[string]any)
	return s
}

func sortedSet(vs ...string) []string {
	out := slices.Clone(vs)
	slices.Sort(out)
	return out
}

// (a) Each member account holds exactly its own roles, group and user;
// the same group name is three groups; the member stacks have the home
// stack's trust rule and rights.
func TestMemberAccountsStayApart(t *testing.T) {
	ctx := context.Background()
	cfg, st := sharedMembers.get(t)
	if len(st.Members) != 2 || st.Members[0].AccountID != member1 || st.Members[1].AccountID != member2 {
		t.Fatalf("members = %+v, want %s and %s in order", st.Members, member1, member2)
	}
	type want struct{ roles, groups, users []string }
	wants := map[string]want{motoserver.AccountID: {
		roles:  sortedSet(st.ConnectorRoleARN, st.IAMRoleARN, st.JITRoleARN, st.Backstop.RoleARN),
		groups: []string{st.GroupARN}, users: []string{st.UserName},
	}}
	ids := map[string]bool{st.ExternalID: true}
	for _, m := range st.Members {
		wants[m.AccountID] = want{
			roles:  sortedSet(m.ConnectorRoleARN, m.IAMRoleARN, m.JITRoleARN, m.Backstop.RoleARN),
			groups: []string{m.GroupARN}, users: []string{m.UserName},
		}
		for _, a := range []string{m.ConnectorRoleARN, m.IAMRoleARN, m.JITRoleARN, m.GroupARN, m.Backstop.RoleARN} {
			if !strings.HasPrefix(a, "arn:aws:iam::"+m.AccountID+":") {
				t.Errorf("%s is not in account %s", a, m.AccountID)
			}
		}
		if m.GroupName != st.GroupName || m.GroupARN != "arn:aws:iam::"+m.AccountID+":group/sym/"+st.GroupName {
			t.Errorf("member %s group = %s %s, want the home group's name %s under /sym/", m.AccountID, m.GroupName, m.GroupARN, st.GroupName)
		}
		if m.UserName != "alice-"+m.AccountID {
			t.Errorf("member %s user = %q", m.AccountID, m.UserName)
		}
		if len(m.ExternalID) != 32 || strings.Trim(m.ExternalID, "0123456789abcdef") != "" || ids[m.ExternalID] {
			t.Errorf("member %s external id %q is not 32 hex chars of its own", m.AccountID, m.ExternalID)
		}
		ids[m.ExternalID] = true
	}

	var homeConnector, homeModifier map[string]any
	for acct, c := range admins(cfg, st) {
		ic := iam.NewFromConfig(c)
		who, err := sts.NewFromConfig(c).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(who.Account) != acct {
			t.Fatalf("admin of %s acts as %v (%v)", acct, who, err)
		}
		roles, err := ic.ListRoles(ctx, &iam.ListRolesInput{})
		if err != nil {
			t.Fatal(err)
		}
		groups, err := ic.ListGroups(ctx, &iam.ListGroupsInput{})
		if err != nil {
			t.Fatal(err)
		}
		users, err := ic.ListUsers(ctx, &iam.ListUsersInput{})
		if err != nil {
			t.Fatal(err)
		}
		var got want
		for _, r := range roles.Roles {
			got.roles = append(got.roles, aws.ToString(r.Arn))
		}
		for _, g := range groups.Groups {
			got.groups = append(got.groups, aws.ToString(g.Arn))
		}
		for _, u := range users.Users {
			got.users = append(got.users, aws.ToString(u.UserName))
		}
		slices.Sort(got.roles)
		if !reflect.DeepEqual(got, wants[acct]) {
			t.Errorf("account %s holds %+v, want %+v", acct, got, wants[acct])
		}
		if acct == motoserver.AccountID {
			_, homeConnector = roleDocs(t, ic, "iamjit-connector")
			_, homeModifier = roleDocs(t, ic, "iamjit-iam-modifier")
		}
	}

	for _, m := range st.Members {
		ic := iam.NewFromConfig(devstack.AccountConfig(cfg, m.AccountID))
		tags, err := ic.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: aws.String(m.UserName)})
		if err != nil {
			t.Fatal(err)
		}
		if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "email" || aws.ToString(tags.Tags[0].Value) != "alice@example.com" {
			t.Errorf("member %s user tags = %+v", m.AccountID, tags.Tags)
		}

		trust, inline := roleDocs(t, ic, "iamjit-connector")
		s := firstStatement(t, trust)
		if p, _ := s["Principal"].(map[string]any); p["AWS"] != "arn:aws:iam::"+motoserver.AccountID+":root" {
			t.Errorf("member %s connector trusts %v, want the home account root", m.AccountID, s["Principal"])
		}
		cond, _ := s["Condition"].(map[string]any)
		if eq, _ := cond["StringEquals"].(map[string]any); eq["sts:ExternalId"] != m.ExternalID {
			t.Errorf("member %s connector condition = %v, want its external id", m.AccountID, s["Condition"])
		}
		if !reflect.DeepEqual(inline, homeConnector) {
			t.Errorf("member %s connector policy %v, home %v", m.AccountID, inline, homeConnector)
		}
		rt, err := ic.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: aws.String("iamjit-connector")})
		if err != nil || len(rt.Tags) != 1 || aws.ToString(rt.Tags[0].Key) != devstack.ExternalIDTag || aws.ToString(rt.Tags[0].Value) != m.ExternalID {
			t.Errorf("member %s connector tags = %+v (%v)", m.AccountID, rt, err)
		}

		trust, inline = roleDocs(t, ic, "iamjit-iam-modifier")
		if p, _ := firstStatement(t, trust)["Principal"].(map[string]any); p["AWS"] != m.ConnectorRoleARN {
			t.Errorf("member %s modifier trusts %v, want %s", m.AccountID, p, m.ConnectorRoleARN)
		}
		if !reflect.DeepEqual(inline, homeModifier) {
			t.Errorf("member %s modifier policy %v, home %v", m.AccountID, inline, homeModifier)
		}

		r, err := ic.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("iamjit-jit-readonly")})
		if err != nil {
			t.Fatal(err)
		}
		jitTrust, _ := url.QueryUnescape(aws.ToString(r.Role.AssumeRolePolicyDocument))
		if aws.ToString(r.Role.Path) != devstack.JITRolePath || !sessions.RequiresSourceIdentity(jitTrust) ||
			!strings.Contains(jitTrust, `"arn:aws:iam::`+m.AccountID+`:root"`) {
			t.Errorf("member %s JIT role under %s, trust %s", m.AccountID, aws.ToString(r.Role.Path), jitTrust)
		}
		gp, err := ic.GetGroupPolicy(ctx, &iam.GetGroupPolicyInput{GroupName: aws.String(m.GroupName), PolicyName: aws.String(m.GroupName + "-assume")})
		if err != nil {
			t.Fatal(err)
		}
		gdoc, _ := url.QueryUnescape(aws.ToString(gp.PolicyDocument))
		found, err := sessions.FindRoles([]string{gdoc}, []sessions.Role{{ARN: m.JITRoleARN}, {ARN: st.JITRoleARN}, {ARN: m.IAMRoleARN}})
		if err != nil || len(found) != 1 || found[0].ARN != m.JITRoleARN {
			t.Errorf("member %s group may assume %+v (%v), want only %s", m.AccountID, found, err, m.JITRoleARN)
		}
	}
}

// groupMembers are the user names in group name, as account's admin sees it.
func groupMembers(t *testing.T, admin aws.Config, name string) []string {
	t.Helper()
	g, err := iam.NewFromConfig(admin).GetGroup(context.Background(), &iam.GetGroupInput{GroupName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, u := range g.Users {
		out = append(out, aws.ToString(u.UserName))
	}
	return out
}

func isNoSuchEntity(err error) bool {
	var nse *iamtypes.NoSuchEntityException
	return errors.As(err, &nse)
}

// (b) The chain into a member account (connector with its external id,
// then modifier) acts in that account: it adds the member user to the
// member group, and the groups of the same name in the home account and the
// other member stay as they were.
func TestMemberRoleChainActsInItsAccount(t *testing.T) {
	ctx := context.Background()
	_, cfg, st := setup(t, devstack.Options{MemberAccounts: []string{member1, member2}})
	admin := admins(cfg, st)
	want := map[string][]string{motoserver.AccountID: {}, member1: {}, member2: {}}
	for _, m := range st.Members {
		mod := chainARNs(cfg, m.ConnectorRoleARN, m.ExternalID, m.IAMRoleARN)
		who, err := sts.NewFromConfig(mod).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatalf("chain into %s: %v", m.AccountID, err)
		}
		if aws.ToString(who.Account) != m.AccountID || !strings.Contains(aws.ToString(who.Arn), ":assumed-role/iamjit-iam-modifier/") {
			t.Fatalf("chain into %s acts as %s in %s", m.AccountID, aws.ToString(who.Arn), aws.ToString(who.Account))
		}
		mc := iam.NewFromConfig(mod)
		if _, err := mc.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(m.GroupName), UserName: aws.String(m.UserName)}); err != nil {
			t.Fatalf("AddUserToGroup in %s: %v", m.AccountID, err)
		}
		want[m.AccountID] = []string{m.UserName}
		// The home user's name means nothing there: identities are per account.
		if _, err := mc.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(m.GroupName), UserName: aws.String(st.UserName)}); !isNoSuchEntity(err) {
			t.Errorf("AddUserToGroup(%s) in %s: got %v, want NoSuchEntity", st.UserName, m.AccountID, err)
		}
		for acct, names := range want {
			if got := groupMembers(t, admin[acct], st.GroupName); !reflect.DeepEqual(got, names) {
				t.Errorf("after the add in %s: %s in %s has %v, want %v", m.AccountID, st.GroupName, acct, got, names)
			}
		}
	}
	// And the home chain cannot reach a member's user.
	home := chain(cfg, st, st.ExternalID)
	if _, err := iam.NewFromConfig(home).AddUserToGroup(ctx, &iam.AddUserToGroupInput{
		GroupName: aws.String(st.GroupName), UserName: aws.String(st.Members[0].UserName),
	}); !isNoSuchEntity(err) {
		t.Errorf("home chain AddUserToGroup(%s): got %v, want NoSuchEntity", st.Members[0].UserName, err)
	}
	if got := groupMembers(t, cfg, st.GroupName); len(got) != 0 {
		t.Errorf("home group members = %v", got)
	}
}

// runDev runs `iamjit dev` in-process against srv with dummy credentials.
func runDev(t *testing.T, srv *motoserver.Server, args ...string) (stdout string, err error) {
	t.Helper()
	env := map[string]string{"AWS_ENDPOINT_URL": srv.URL(), "AWS_REGION": motoserver.Region}
	var out, errOut bytes.Buffer
	err = cli.Run(context.Background(), "test", append([]string{"dev"}, args...), func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), err
}

// evalExports evaluates export lines in bash and returns names' values.
func evalExports(t *testing.T, exports string, names ...string) []string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	script := `eval "$(cat)"`
	for _, n := range names {
		script += `; printf '%s\n' "${` + n + `-UNSET}"`
	}
	cmd := exec.Command(bash, "-c", script)
	cmd.Env = []string{"HOME=/nonexistent"}
	cmd.Stdin = strings.NewReader(exports)
	got, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("bash: %v: %s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
}

// (c) and (e) A second `iamjit dev` (flags in another order) reuses every
// external id and prints the same lines; IAMJIT_ACCOUNTS is JSON with
// exactly the contract's keys, and each member group's ARN is exported.
func TestDevMemberAccountsCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := motoserver.Start(t)
	first, err := runDev(t, srv, "--member-account", member1, "--member-account", member2)
	if err != nil {
		t.Fatalf("iamjit dev: %v", err)
	}
	second, err := runDev(t, srv, "--member-account", member2, "--member-account", member1)
	if err != nil {
		t.Fatalf("second iamjit dev: %v", err)
	}
	if first != second {
		t.Errorf("second run printed other lines:\n%s\nfirst:\n%s", second, first)
	}
	vals := evalExports(t, first, "IAMJIT_ACCOUNTS", "IAMJIT_DEV_MEMBER_GROUP_ARN_"+member1,
		"IAMJIT_DEV_MEMBER_GROUP_ARN_"+member2, "IAMJIT_EXTERNAL_ID", "IAMJIT_DEV_GROUP")
	var accounts map[string]map[string]string
	if err := json.Unmarshal([]byte(vals[0]), &accounts); err != nil {
		t.Fatalf("IAMJIT_ACCOUNTS %q is not JSON of strings: %v", vals[0], err)
	}
	if len(accounts) != 2 {
		t.Fatalf("IAMJIT_ACCOUNTS has %d accounts: %s", len(accounts), vals[0])
	}
	// What the command printed is what is in the emulator.
	st, err := devstack.Create(ctx, srv.AWSConfig(t), devstack.Options{MemberAccounts: []string{member1, member2}})
	if err != nil {
		t.Fatal(err)
	}
	if vals[3] != st.ExternalID || vals[4] != st.GroupName {
		t.Errorf("home settings %v, stack %s %s", vals[3:], st.ExternalID, st.GroupName)
	}
	for i, m := range st.Members {
		want := map[string]string{"connector_role_arn": m.ConnectorRoleARN, "external_id": m.ExternalID, "iam_role_arn": m.IAMRoleARN,
			"backstop_role_arn": m.Backstop.RoleARN, "backstop_dlq_arn": m.Backstop.DLQARN}
		if !reflect.DeepEqual(accounts[m.AccountID], want) {
			t.Errorf("IAMJIT_ACCOUNTS[%s] = %v, want exactly %v", m.AccountID, accounts[m.AccountID], want)
		}
		if vals[1+i] != m.GroupARN {
			t.Errorf("IAMJIT_DEV_MEMBER_GROUP_ARN_%s = %q, want %s", m.AccountID, vals[1+i], m.GroupARN)
		}
		// The printed settings make a working chain into that account.
		who, err := sts.NewFromConfig(chainARNs(srv.AWSConfig(t), m.ConnectorRoleARN, accounts[m.AccountID]["external_id"], m.IAMRoleARN)).
			GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(who.Account) != m.AccountID {
			t.Errorf("chain from the printed settings of %s: %v %v", m.AccountID, who, err)
		}
	}
	// Without --member-account: no IAMJIT_ACCOUNTS, and otherwise the same
	// lines as with members.
	plain, err := runDev(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	var stripped []string
	for _, l := range strings.SplitAfter(first, "\n") {
		if !strings.HasPrefix(l, "export IAMJIT_ACCOUNTS=") && !strings.HasPrefix(l, "export IAMJIT_DEV_MEMBER_GROUP_ARN_") {
			stripped = append(stripped, l)
		}
	}
	if strings.Contains(plain, "IAMJIT_ACCOUNTS") || strings.Join(stripped, "") != plain {
		t.Errorf("without members:\n%s\nwith members, minus their lines:\n%s", plain, strings.Join(stripped, ""))
	}
}

// (e) A bad --member-account stops `iamjit dev` with exit code 2 and a
// message naming the value, before anything is made.
func TestDevRejectsBadMemberAccount(t *testing.T) {
	t.Parallel()
	srv := motoserver.Start(t)
	for _, tc := range []struct {
		args []string
		bad  string
	}{
		{[]string{"--member-account", "12345"}, `"12345"`},
		{[]string{"--member-account", "1234567890123"}, `"1234567890123"`},
		{[]string{"--member-account", "12345678901x"}, `"12345678901x"`},
		{[]string{"--member-account", " 11111111111"}, `" 11111111111"`},
		{[]string{"--member-account", member1, "--member-account", ""}, `""`},
		{[]string{"--member-account", member1, "--member-account", member1}, `"` + member1 + `" ... given twice`},
		{[]string{"--member-account", motoserver.AccountID}, `"` + motoserver.AccountID + `" ... home account`},
	} {
		out, err := runDev(t, srv, tc.args...)
		if code := cli.ExitCode(err); code != 2 {
			t.Errorf("dev %q: exit %d (%v), want 2", tc.args, code, err)
			continue
		}
		for _, part := range strings.Split(tc.bad, " ... ") {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("dev %q: message %q does not say %s", tc.args, err, part)
			}
		}
		if out != "" {
			t.Errorf("dev %q printed %q", tc.args, out)
		}
	}
	// Nothing was made by the refused runs.
	groups, err := iam.NewFromConfig(devstack.AccountConfig(srv.AWSConfig(t), member1)).ListGroups(context.Background(), &iam.ListGroupsInput{})
	if err != nil || len(groups.Groups) != 0 {
		t.Errorf("groups in %s after refused runs: %+v (%v)", member1, groups, err)
	}
	if _, err := devstack.Create(context.Background(), srv.AWSConfig(t), devstack.Options{MemberAccounts: []string{"42"}}); !errors.Is(err, devstack.ErrMemberAccount) {
		t.Errorf("Create with member 42: %v, want ErrMemberAccount", err)
	}
}

// (d) The member connector's external id condition is enforced, under
// moto's access control, on the hop iamjit makes: a caller of the home
// account assuming the member account's connector (the project's moto
// launcher checks another account's trust policy, as AWS does); the home
// stack's id does not open it.
func TestMemberExternalIDUnderAccessControl(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := motoserver.Start(t)
	cfg := srv.AWSConfig(t)
	// While calls are free: the task's user at home, trusted by name (moto
	// matches principals by exact ARN).
	taskARN, homeTask := taskUser(t, cfg)
	st, err := devstack.Create(ctx, cfg, devstack.Options{Trust: taskARN, MemberAccounts: []string{member1}})
	if err != nil {
		t.Fatal(err)
	}
	m := st.Members[0]
	srv.ResetAuth(t, 0)

	assume := func(externalID string) error {
		_, err := sts.NewFromConfig(homeTask).AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn: aws.String(m.ConnectorRoleARN), RoleSessionName: aws.String("iamjit"), ExternalId: aws.String(externalID),
		})
		return err
	}
	if err := assume(m.ExternalID); err != nil {
		t.Errorf("AssumeRole(member connector) from home with its external id: %v", err)
	}
	if err := assume("wrong"); !isDenied(err) {
		t.Errorf("AssumeRole(member connector) from home with a wrong external id: got %v, want AccessDenied", err)
	}
	if err := assume(st.ExternalID); !isDenied(err) {
		t.Errorf("AssumeRole(member connector) from home with the home external id: got %v, want AccessDenied", err)
	}
}

func TestMemberUserName(t *testing.T) {
	long := strings.Repeat("a", 60) + "@example.com"
	for user, want := range map[string]string{
		"alice@example.com": "alice-" + member1,
		"bob":               "bob-" + member1,
		long:                strings.Repeat("a", 51) + "-" + member1,
	} {
		if got := devstack.MemberUserName(user, member1); got != want || len(got) > 64 {
			t.Errorf("MemberUserName(%q) = %q, want %q", user, got, want)
		}
	}
}

// taskUser creates, while moto's calls are free, the IAM user "task" with a
// moto-issued key that may assume any role: the ECS task role's stand-in.
// It returns its ARN and a configuration signed with its key.
func taskUser(t *testing.T, cfg aws.Config) (string, aws.Config) {
	t.Helper()
	ctx := context.Background()
	ic := iam.NewFromConfig(cfg)
	u, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("task")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
		UserName: aws.String("task"), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`),
	}); err != nil {
		t.Fatal(err)
	}
	key, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("task")})
	if err != nil {
		t.Fatal(err)
	}
	out := cfg.Copy()
	out.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), "")
	return aws.ToString(u.User.Arn), out
}
