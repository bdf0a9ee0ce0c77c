package motoserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/iamjit/iamjit/internal/motoserver"
)

// TestLauncherAttributesTerraformReads: what infra/e2e's apply and second
// plan need of moto (moto_iamjit.py, fixes 4, 5, 7, 8), with the real SDK.
func TestLauncherAttributesTerraformReads(t *testing.T) {
	ctx := context.Background()
	_, cfg, acct := sharedAccount(t)
	q := sqs.NewFromConfig(cfg)

	dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("dlq")})
	if err != nil {
		t.Fatal(err)
	}
	dlqARN := "arn:aws:sqs:us-east-1:" + acct + ":dlq"
	main, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("main"), Attributes: map[string]string{
		"RedrivePolicy": `{"deadLetterTargetArn":"` + dlqARN + `","maxReceiveCount":5}`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:SendMessage","Resource":"` + dlqARN + `"}]}`
	allow := `{"redrivePermission":"byQueue","sourceQueueArns":["arn:aws:sqs:us-east-1:` + acct + `:main"]}`
	for _, attrs := range []map[string]string{{"Policy": policy}, {"RedriveAllowPolicy": allow}} {
		if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: dlq.QueueUrl, Attributes: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	attrs := func(url *string) map[string]string {
		out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Attributes
	}
	got := attrs(dlq.QueueUrl)
	if got["RedriveAllowPolicy"] != allow {
		t.Errorf("RedriveAllowPolicy = %q, want %q", got["RedriveAllowPolicy"], allow)
	}
	if got["Policy"] == "" {
		t.Error("setting RedriveAllowPolicy dropped the queue's Policy")
	}
	if rp := attrs(main.QueueUrl)["RedrivePolicy"]; rp != `{"deadLetterTargetArn":"`+dlqARN+`","maxReceiveCount":5}` {
		t.Errorf("RedrivePolicy = %q, want SQS's compact JSON", rp)
	}
	if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: dlq.QueueUrl, Attributes: map[string]string{"RedriveAllowPolicy": ""}}); err != nil {
		t.Fatal(err)
	}
	if v, ok := attrs(dlq.QueueUrl)["RedriveAllowPolicy"]; ok {
		t.Errorf("RedriveAllowPolicy %q after setting it to \"\", want none", v)
	}

	k := kinesis.NewFromConfig(cfg)
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), StreamModeDetails: &kinesistypes.StreamModeDetails{StreamMode: kinesistypes.StreamModeOnDemand},
		Tags: map[string]string{"app": "iamjit"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := k.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("s")})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "iamjit" {
		t.Errorf("stream tags after CreateStream with Tags: %+v %v", tags, err)
	}

	e := ecs.NewFromConfig(cfg)
	if _, err := e.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("f"), ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("x"), Image: aws.String("i"), Memory: aws.Int32(128)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("svc"), TaskDefinition: aws.String("f"), DesiredCount: aws.Int32(1), EnableECSManagedTags: true}); err != nil {
		t.Fatal(err)
	}
	svc, err := e.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"svc"}})
	if err != nil || len(svc.Services) != 1 || !svc.Services[0].EnableECSManagedTags || svc.Services[0].AvailabilityZoneRebalancing != ecstypes.AvailabilityZoneRebalancingDisabled {
		t.Errorf("service after CreateService(EnableECSManagedTags): %+v %v", svc, err)
	}

	sc := ssm.NewFromConfig(cfg)
	if _, err := sc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/a/b"), Type: ssmtypes.ParameterTypeSecureString, Value: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:ssm:us-east-1:" + acct + ":parameter/a/b"
	p, err := sc.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{arn}, WithDecryption: aws.Bool(true)})
	if err != nil || len(p.Parameters) != 1 || aws.ToString(p.Parameters[0].Value) != "v" || len(p.InvalidParameters) != 0 {
		t.Errorf("GetParameters by ARN: %+v %v", p, err)
	}

	ev := `{"version":"0","id":"1","detail-type":"SymLogEntry","source":"sym","account":"` + acct + `","time":"2024-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{"event":{"type":"escalate"}}}`
	for pattern, want := range map[string]bool{
		`{"source":["sym"],"detail":{"event":{"type":["escalate","deescalate"]}}}`: true,
		`{"source":["sym"],"detail":{"event":{"type":["deescalate"]}}}`:            false,
	} {
		res, err := eventbridge.NewFromConfig(cfg).TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: &pattern, Event: &ev})
		if err != nil || res.Result != want {
			t.Errorf("TestEventPattern(%s) = %v %v, want %v", pattern, res, err, want)
		}
	}
}

// TestLauncherAccessControl: with access control on, calls are checked
// against the resources they name and the actions AWS authorizes them as,
// role sessions match their role in a trust policy, an absent external id
// fails, and IAM's denial reads as AccessDenied (fixes 6 and 9).
func TestLauncherAccessControl(t *testing.T) {
	ctx := context.Background()
	s := motoserver.Start(t)
	admin := s.AWSConfig(t)
	acct := motoserver.AccountID
	ic := iam.NewFromConfig(admin)
	doc := func(v any) *string {
		b, _ := json.Marshal(v)
		return aws.String(string(b))
	}
	allow := func(actions []string, resource string) map[string]any {
		return map[string]any{"Effect": "Allow", "Action": actions, "Resource": resource}
	}
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The caller: a role (assumed while calls are free), trusted by anyone.
	_, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("task"), AssumeRolePolicyDocument: doc(map[string]any{"Version": "2012-10-17",
		"Statement": []any{map[string]any{"Effect": "Allow", "Principal": map[string]any{"AWS": "*"}, "Action": "sts:AssumeRole"}}})})
	mustDo(err)
	_, err = ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("task"), PolicyName: aws.String("p"), PolicyDocument: doc(map[string]any{"Version": "2012-10-17", "Statement": []any{
		allow([]string{"dynamodb:PutItem", "dynamodb:ConditionCheckItem"}, "arn:aws:dynamodb:us-east-1:"+acct+":table/t"),
		allow([]string{"events:PutEvents"}, "arn:aws:events:us-east-1:"+acct+":event-bus/b"),
		allow([]string{"sqs:SendMessage"}, "arn:aws:sqs:us-east-1:"+acct+":q"),
		allow([]string{"sts:AssumeRole"}, "arn:aws:iam::"+acct+":role/sym/conn"),
		allow([]string{"scheduler:GetScheduleGroup"}, "arn:aws:scheduler:us-east-1:"+acct+":schedule-group/mine"),
		allow([]string{"scheduler:CreateSchedule", "scheduler:GetSchedule", "scheduler:DeleteSchedule"}, "arn:aws:scheduler:us-east-1:"+acct+":schedule/mine/*"),
	}})})
	mustDo(err)
	// The connector: trusted by the task role (the role, not a session) with an external id.
	_, err = ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("conn"), Path: aws.String("/sym/"), AssumeRolePolicyDocument: doc(map[string]any{"Version": "2012-10-17",
		"Statement": []any{map[string]any{"Effect": "Allow", "Principal": map[string]any{"AWS": "arn:aws:iam::" + acct + ":role/task"}, "Action": "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]any{"sts:ExternalId": "the-external-id"}}}}})})
	mustDo(err)
	_, err = ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("conn"), PolicyName: aws.String("p"), PolicyDocument: doc(map[string]any{"Version": "2012-10-17", "Statement": []any{
		allow([]string{"iam:AddUserToGroup", "iam:GetGroup"}, "arn:aws:iam::"+acct+":group/sym/*"),
		allow([]string{"iam:GetUser"}, "arn:aws:iam::"+acct+":user/*"),
	}})})
	mustDo(err)
	for _, g := range []struct{ name, path string }{{"g", "/sym/"}, {"admins", "/"}} {
		_, err := ic.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(g.name), Path: aws.String(g.path)})
		mustDo(err)
	}
	_, err = ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("u")})
	mustDo(err)
	ddb := dynamodb.NewFromConfig(admin)
	for _, tbl := range []string{"t", "u"} {
		_, err := ddb.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String(tbl), BillingMode: ddbtypes.BillingModePayPerRequest,
			KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}},
			AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}}})
		mustDo(err)
	}
	_, err = eventbridge.NewFromConfig(admin).CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("b")})
	mustDo(err)
	for _, g := range []string{"mine", "theirs"} {
		_, err := scheduler.NewFromConfig(admin).CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(g)})
		mustDo(err)
	}
	qu, err := sqs.NewFromConfig(admin).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q")})
	mustDo(err)
	creds, err := sts.NewFromConfig(admin).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + acct + ":role/task"), RoleSessionName: aws.String("task")})
	mustDo(err)
	task := admin.Copy()
	task.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(creds.Credentials.AccessKeyId), aws.ToString(creds.Credentials.SecretAccessKey), aws.ToString(creds.Credentials.SessionToken))

	s.ResetAuth(t, 0)

	item := func(table string) *dynamodb.PutItemInput {
		return &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "1"}}}
	}
	td := dynamodb.NewFromConfig(task)
	assumeConn := func(externalID *string) (*sts.AssumeRoleOutput, error) {
		return sts.NewFromConfig(task).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + acct + ":role/sym/conn"), RoleSessionName: aws.String("c"), ExternalId: externalID})
	}
	conn := func() aws.Config {
		out, err := assumeConn(aws.String("the-external-id"))
		if err != nil {
			t.Fatalf("a role session of the trusted role, with the external id: %v", err)
		}
		c := admin.Copy()
		c.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
		return c
	}()
	ci := iam.NewFromConfig(conn)
	put := func(table string) error { _, err := td.PutItem(ctx, item(table)); return err }
	for _, c := range []struct {
		name    string
		allowed bool
		call    func() error
	}{
		{"PutItem on the policy's table", true, func() error { return put("t") }},
		{"GetScheduleGroup of the policy's group", true, func() error {
			_, err := scheduler.NewFromConfig(task).GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String("mine")})
			return err
		}},
		{"GetScheduleGroup of another group", false, func() error {
			_, err := scheduler.NewFromConfig(task).GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String("theirs")})
			return err
		}},
		{"CreateSchedule in the policy's group", true, func() error { return createSchedule(ctx, task, "mine") }},
		{"CreateSchedule in another group", false, func() error { return createSchedule(ctx, task, "theirs") }},
		{"PutItem on another table", false, func() error { return put("u") }},
		{"TransactWriteItems Put+ConditionCheck (allowed per item)", true, func() error {
			_, err := td.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
				{Put: &ddbtypes.Put{TableName: aws.String("t"), Item: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "2"}}}},
				{ConditionCheck: &ddbtypes.ConditionCheck{TableName: aws.String("t"), Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "1"}}, ConditionExpression: aws.String("attribute_exists(pk)")}},
			}})
			return err
		}},
		{"TransactWriteItems Update (UpdateItem not granted)", false, func() error {
			_, err := td.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
				{Update: &ddbtypes.Update{TableName: aws.String("t"), Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "1"}}, UpdateExpression: aws.String("SET a = :a"),
					ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":a": &ddbtypes.AttributeValueMemberS{Value: "x"}}}},
			}})
			return err
		}},
		{"PutEvents on the policy's bus", true, func() error {
			_, err := eventbridge.NewFromConfig(task).PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{EventBusName: aws.String("b"), Source: aws.String("s"), DetailType: aws.String("d"), Detail: aws.String("{}")}}})
			return err
		}},
		{"PutEvents on the default bus", false, func() error {
			_, err := eventbridge.NewFromConfig(task).PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{Source: aws.String("s"), DetailType: aws.String("d"), Detail: aws.String("{}")}}})
			return err
		}},
		{"SendMessageBatch (sqs:SendMessage)", true, func() error {
			_, err := sqs.NewFromConfig(task).SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: qu.QueueUrl, Entries: []sqstypes.SendMessageBatchRequestEntry{{Id: aws.String("1"), MessageBody: aws.String("x")}}})
			return err
		}},
		{"DeleteMessageBatch (sqs:DeleteMessage not granted)", false, func() error {
			_, err := sqs.NewFromConfig(task).DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: qu.QueueUrl, Entries: []sqstypes.DeleteMessageBatchRequestEntry{{Id: aws.String("1"), ReceiptHandle: aws.String("x")}}})
			return err
		}},
		{"AssumeRole of the connector with a wrong external id", false, func() error { _, err := assumeConn(aws.String("wrong-external-id")); return err }},
		{"AssumeRole of the connector without an external id", false, func() error { _, err := assumeConn(nil); return err }},
		{"AddUserToGroup under /sym/", true, func() error {
			_, err := ci.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("g"), UserName: aws.String("u")})
			return err
		}},
		{"AddUserToGroup outside /sym/", false, func() error {
			_, err := ci.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("admins"), UserName: aws.String("u")})
			return err
		}},
		{"GetUser of a user that does not exist (user/* allows: NoSuchEntity)", true, func() error {
			_, err := ci.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("nobody")})
			var api smithy.APIError
			if errors.As(err, &api) && api.ErrorCode() == "NoSuchEntity" {
				return nil
			}
			return err
		}},
	} {
		err := c.call()
		denied := isAccessDenied(err)
		if c.allowed && err != nil {
			t.Errorf("%s: %v, want allowed", c.name, err)
		}
		if !c.allowed && !denied {
			t.Errorf("%s: %v, want access denied", c.name, err)
		}
	}
	// IAM's denial reads as AccessDenied (the query protocol's error shape).
	_, err = ci.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: aws.String("g"), UserName: aws.String("u")})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" || !strings.Contains(api.ErrorMessage(), "iam:RemoveUserFromGroup") {
		t.Errorf("RemoveUserFromGroup without the action: %v, want AccessDenied naming iam:RemoveUserFromGroup", err)
	}
}

// isAccessDenied: an AccessDenied code, or a 403 (moto's JSON-protocol
// services answer denials in XML the SDK does not read).
func isAccessDenied(err error) bool {
	if err == nil {
		return false
	}
	var api smithy.APIError
	if errors.As(err, &api) && (api.ErrorCode() == "AccessDenied" || api.ErrorCode() == "AccessDeniedException") {
		return true
	}
	return strings.Contains(fmt.Sprint(err), "StatusCode: 403")
}

// createSchedule makes a one-time schedule in group, as the backstop does.
func createSchedule(ctx context.Context, cfg aws.Config, group string) error {
	_, err := scheduler.NewFromConfig(cfg).CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("s"), GroupName: aws.String(group),
		ScheduleExpression: aws.String("at(2030-01-01T00:00:00)"), FlexibleTimeWindow: &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		Target: &schedtypes.Target{Arn: aws.String("arn:aws:scheduler:::aws-sdk:sts:getCallerIdentity"), RoleArn: aws.String("arn:aws:iam::123456789012:role/x"), Input: aws.String("{}")}})
	return err
}
