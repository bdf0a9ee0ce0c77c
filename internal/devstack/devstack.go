package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/grants/dynamo"
)

// Names fixed by the contract (docs/design.md): Sym events carry source "sym",
// iamjit's results carry "iamjit", roles live under /sym/.
const (
	SymSource    = "sym"
	ResultSource = "iamjit"
	RolePath     = "/sym/"
	// JITRolePath is where the roles the dev group may assume live
	// (IAMJIT_ROLE_PATH), as infra/modules/iam_target_group puts them.
	JITRolePath = "/jit/"
	// SessionRevocation is the mode the stack exports.
	SessionRevocation = "user"
	// ExternalIDTag is the connector-role tag that remembers the external id,
	// so a second run reuses it instead of invalidating exported settings.
	ExternalIDTag = "iamjit:external-id"
)

// Options shape the stack; zero values take the defaults.
type Options struct {
	Prefix            string // default "iamjit"
	VisibilityTimeout int32  // seconds, default 30
	MaxReceiveCount   int    // receives before the DLQ, default 5
	User              string // IAM user (an email), default "alice@example.com"
	Group             string // IAM group, default "<prefix>-readonly"
	GroupPath         string // default "/sym/"
	// Trust is the principal ARN that may assume the connector role (with
	// the external id). Default: the account root, i.e. any principal of
	// the account whose own policy allows it, as on real AWS. Member
	// accounts' connector roles trust the same principal.
	Trust string
	// MemberAccounts are account ids (12 digits) that each get a member
	// stack (members.go): connector and IAM-modifier roles, a group of the
	// same name, a user tagged with the same email, a JIT role.
	MemberAccounts []string
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "iamjit"
	}
	if o.VisibilityTimeout == 0 {
		o.VisibilityTimeout = 30
	}
	if o.MaxReceiveCount == 0 {
		o.MaxReceiveCount = 5
	}
	if o.User == "" {
		o.User = "alice@example.com"
	}
	if o.Group == "" {
		o.Group = o.Prefix + "-readonly"
	}
	if o.GroupPath == "" {
		o.GroupPath = "/sym/"
	}
	return o
}

// Stack is what Create made (or found).
type Stack struct {
	QueueURL, QueueARN string
	DLQURL, DLQARN     string
	Table              string
	EventBus           string // results bus name (IAMJIT_EVENT_BUS)
	SymBus             string // the bus Sym events are put on
	ResultsQueueURL    string // receives every result event
	ConnectorRoleARN   string
	IAMRoleARN         string // the IAM-modifier role
	ExternalID         string
	GroupName          string
	GroupARN           string
	GroupPath          string
	UserName           string
	// JITRoleARN is a role under JITRolePath the group lets its members
	// assume, with the trust policy session revocation per user needs.
	JITRoleARN string
	// IdentityCenter is the Identity Center part (identitycenter.go), in
	// the home account's instance.
	IdentityCenter IdentityCenter
	// Backstop is the home account's backstop (backstop.go).
	Backstop Backstop
	// Members are the member accounts' stacks, sorted by account id; nil
	// without Options.MemberAccounts.
	Members []Member
}

// Create builds the whole stack in the emulator cfg points at. It is
// idempotent: a second run finds what the first made and returns the same
// values (including the external id). It refuses any endpoint that is not
// a local emulator.
func Create(ctx context.Context, cfg aws.Config, opts Options) (Stack, error) {
	endpoint := ""
	if cfg.BaseEndpoint != nil {
		endpoint = *cfg.BaseEndpoint
	}
	if err := CheckEndpoint(endpoint); err != nil {
		return Stack{}, err
	}
	o := opts.withDefaults()
	var members []string
	if len(o.MemberAccounts) > 0 {
		home, err := homeAccount(ctx, cfg)
		if err != nil {
			return Stack{}, err
		}
		// Before anything is made: a bad id is a usage error.
		if members, err = checkMembers(o.MemberAccounts, home); err != nil {
			return Stack{}, err
		}
	}
	b := builder{
		o:   o,
		cfg: cfg,
		sqs: sqs.NewFromConfig(cfg),
		eb:  eventbridge.NewFromConfig(cfg),
		ddb: dynamodb.NewFromConfig(cfg),
		iam: iam.NewFromConfig(cfg),
		s: Stack{
			Table:     o.Prefix + "-grants",
			EventBus:  o.Prefix + "-results",
			SymBus:    o.Prefix + "-sym",
			GroupName: o.Group,
			GroupPath: o.GroupPath,
			UserName:  o.User,
		},
	}
	for _, step := range []func(context.Context) error{
		b.queues, b.buses, b.table, b.groupAndUser, b.roles, b.jitRole, b.backstop, b.identityCenter,
	} {
		if err := step(ctx); err != nil {
			return Stack{}, err
		}
	}
	for _, id := range members {
		m, err := b.member(ctx, id)
		if err != nil {
			return Stack{}, err
		}
		b.s.Members = append(b.s.Members, m)
	}
	return b.s, nil
}

type builder struct {
	o   Options
	cfg aws.Config
	sqs *sqs.Client
	eb  *eventbridge.Client
	ddb *dynamodb.Client
	iam *iam.Client
	s   Stack
	// trusted is who may assume the connector roles (Options.Trust or the
	// home account root), set by roles.
	trusted string
}

func (b *builder) queues(ctx context.Context) error {
	var err error
	if b.s.DLQURL, b.s.DLQARN, err = b.queue(ctx, b.o.Prefix+"-dlq", nil); err != nil {
		return err
	}
	redrive, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": b.s.DLQARN,
		"maxReceiveCount":     strconv.Itoa(b.o.MaxReceiveCount),
	})
	b.s.QueueURL, b.s.QueueARN, err = b.queue(ctx, b.o.Prefix+"-queue", map[string]string{
		string(sqstypes.QueueAttributeNameRedrivePolicy):     string(redrive),
		string(sqstypes.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(b.o.VisibilityTimeout)),
	})
	return err
}

// queue creates a queue by name alone and then sets attrs. CreateQueue with
// attributes fails when the queue exists with other values (and moto's error
// code for that, QueueAlreadyExists, is not the SDK's typed QueueNameExists),
// so this split is what makes a rerun with changed options converge.
func (b *builder) queue(ctx context.Context, name string, attrs map[string]string) (queueURL, queueARN string, err error) {
	return ensureQueue(ctx, b.sqs, name, attrs)
}

// ensureQueue is builder.queue with the client of any account.
func ensureQueue(ctx context.Context, c *sqs.Client, name string, attrs map[string]string) (queueURL, queueARN string, err error) {
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	queueURL = aws.ToString(out.QueueUrl)
	if len(attrs) > 0 {
		if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: out.QueueUrl, Attributes: attrs}); err != nil {
			return "", "", fmt.Errorf("set attributes of queue %s: %w", name, err)
		}
	}
	got, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("get arn of queue %s: %w", name, err)
	}
	return queueURL, got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}

func (b *builder) buses(ctx context.Context) error {
	if err := b.route(ctx, b.s.SymBus, SymSource, b.s.QueueURL, b.s.QueueARN); err != nil {
		return err
	}
	var err error
	var resultsARN string
	if b.s.ResultsQueueURL, resultsARN, err = b.queue(ctx, b.o.Prefix+"-results-queue", nil); err != nil {
		return err
	}
	return b.route(ctx, b.s.EventBus, ResultSource, b.s.ResultsQueueURL, resultsARN)
}

// route makes bus (if missing) and a rule on it sending every event of
// source to the queue. PutRule and PutTargets are upserts, so reruns are safe.
func (b *builder) route(ctx context.Context, bus, source, queueURL, queueARN string) error {
	_, err := b.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)})
	var exists *ebtypes.ResourceAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create event bus %s: %w", bus, err)
	}
	pattern, _ := json.Marshal(map[string][]string{"source": {source}})
	rule := bus + "-to-queue"
	out, err := b.eb.PutRule(ctx, &eventbridge.PutRuleInput{
		Name:         aws.String(rule),
		EventBusName: aws.String(bus),
		EventPattern: aws.String(string(pattern)),
		State:        ebtypes.RuleStateEnabled,
	})
	if err != nil {
		return fmt.Errorf("put rule %s on %s: %w", rule, bus, err)
	}
	put, err := b.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{
		Rule:         aws.String(rule),
		EventBusName: aws.String(bus),
		Targets:      []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(queueARN)}},
	})
	if err == nil && put.FailedEntryCount > 0 {
		err = fmt.Errorf("%s", aws.ToString(put.FailedEntries[0].ErrorMessage))
	}
	if err != nil {
		return fmt.Errorf("target rule %s at %s: %w", rule, queueARN, err)
	}
	// Real SQS drops EventBridge deliveries without this policy; moto does
	// not check it, but the stack should look like the real wiring.
	policy, _ := json.Marshal(doc(statement{
		Effect:    "Allow",
		Principal: map[string]string{"Service": "events.amazonaws.com"},
		Action:    "sqs:SendMessage",
		Resource:  queueARN,
		Condition: map[string]map[string]string{"ArnEquals": {"aws:SourceArn": aws.ToString(out.RuleArn)}},
	}))
	if _, err := b.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(queueURL),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): string(policy)},
	}); err != nil {
		return fmt.Errorf("allow %s to send to %s: %w", rule, queueARN, err)
	}
	return nil
}

func (b *builder) table(ctx context.Context) error {
	name := b.s.Table
	_, err := b.ddb.CreateTable(ctx, dynamo.TableInput(name))
	var inUse *ddbtypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	if err := dynamodb.NewTableExistsWaiter(b.ddb).Wait(ctx,
		&dynamodb.DescribeTableInput{TableName: aws.String(name)}, 2*time.Minute,
		func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 100 * time.Millisecond
			o.MaxDelay = 5 * time.Second
		},
	); err != nil {
		return fmt.Errorf("wait for table %s: %w", name, err)
	}
	// Enabling TTL twice is a ValidationException on real DynamoDB, so look
	// first.
	ttl, err := b.ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe ttl of %s: %w", name, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == "ttl" &&
		(d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled || d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabling) {
		return nil
	}
	if _, err := b.ddb.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String("ttl"), Enabled: aws.Bool(true)},
	}); err != nil {
		return fmt.Errorf("enable ttl on %s: %w", name, err)
	}
	return nil
}

func (b *builder) groupAndUser(ctx context.Context) error {
	a := b.account()
	var err error
	if b.s.GroupARN, err = a.group(ctx); err != nil {
		return err
	}
	return a.user(ctx, b.o.User)
}

func (b *builder) roles(ctx context.Context) error {
	// The stack's account is the one the group was made in; its root is
	// who may assume the connector role (the caller, in the emulator).
	home, err := accountOf(b.s.GroupARN)
	if err != nil {
		return err
	}
	b.trusted = b.o.Trust
	if b.trusted == "" {
		b.trusted = "arn:aws:iam::" + home + ":root"
	}
	b.s.ConnectorRoleARN, b.s.ExternalID, b.s.IAMRoleARN, err = b.account().roles(ctx, b.trusted)
	return err
}

func (b *builder) jitRole(ctx context.Context) error {
	home, err := accountOf(b.s.GroupARN)
	if err != nil {
		return err
	}
	b.s.JITRoleARN, err = b.account().jitRole(ctx, home)
	return err
}

func (b *builder) backstop(ctx context.Context) error {
	home, err := accountOf(b.s.GroupARN)
	if err != nil {
		return err
	}
	b.s.Backstop, err = newBackstopAccount(b.o, b.cfg, home).build(ctx)
	return err
}

func (b *builder) account() iamAccount { return iamAccount{o: b.o, iam: b.iam} }

// accountOf is the account id in an IAM ARN.
func accountOf(iamARN string) (string, error) {
	a, err := arn.Parse(iamARN)
	if err != nil {
		return "", fmt.Errorf("parse arn %q: %w", iamARN, err)
	}
	return a.AccountID, nil
}

// iamAccount makes the IAM part of a stack (group, user, role chain, JIT
// role) in the one account its client acts in: the home account, or a
// member account (members.go). Every account gets the same names.
type iamAccount struct {
	o   Options
	iam *iam.Client
}

// group creates the group under GroupPath (or finds it there) and returns
// its ARN.
func (a iamAccount) group(ctx context.Context) (string, error) {
	g, err := a.iam.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(a.o.Group), Path: aws.String(a.o.GroupPath)})
	var exists *iamtypes.EntityAlreadyExistsException
	switch {
	case err == nil:
		return aws.ToString(g.Group.Arn), nil
	case errors.As(err, &exists):
		got, err := a.iam.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(a.o.Group)})
		if err != nil {
			return "", fmt.Errorf("get group %s: %w", a.o.Group, err)
		}
		if p := aws.ToString(got.Group.Path); p != a.o.GroupPath {
			return "", fmt.Errorf("group %s exists under path %s, not %s", a.o.Group, p, a.o.GroupPath)
		}
		return aws.ToString(got.Group.Arn), nil
	default:
		return "", fmt.Errorf("create group %s: %w", a.o.Group, err)
	}
}

// user creates the IAM user name tagged email=<the dev user's email>.
func (a iamAccount) user(ctx context.Context, name string) error {
	tags := []iamtypes.Tag{{Key: aws.String("email"), Value: aws.String(a.o.User)}}
	_, err := a.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Tags: tags})
	var exists *iamtypes.EntityAlreadyExistsException
	if errors.As(err, &exists) {
		// Keep the identity tag right even on a user made by hand.
		_, err = a.iam.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(name), Tags: tags})
	}
	if err != nil {
		return fmt.Errorf("create user %s: %w", name, err)
	}
	return nil
}

// roles makes the connector role (trusted by trusted, with the external id
// it remembers in its ExternalIDTag) and the IAM-modifier role it may
// assume.
func (a iamAccount) roles(ctx context.Context, trusted string) (connectorARN, externalID, modifierARN string, err error) {
	connector := a.o.Prefix + "-connector"
	if externalID, err = a.externalID(ctx, connector); err != nil {
		return "", "", "", err
	}
	connectorARN, err = a.role(ctx, connector,
		doc(statement{
			Effect:    "Allow",
			Principal: map[string]string{"AWS": trusted},
			Action:    "sts:AssumeRole",
			Condition: map[string]map[string]string{"StringEquals": {"sts:ExternalId": externalID}},
		}),
		doc(statement{Effect: "Allow", Action: "sts:AssumeRole", Resource: "arn:aws:iam::*:role" + RolePath + "*"}),
		[]iamtypes.Tag{{Key: aws.String(ExternalIDTag), Value: aws.String(externalID)}},
	)
	if err != nil {
		return "", "", "", err
	}
	modifierARN, err = a.role(ctx, a.o.Prefix+"-iam-modifier",
		doc(statement{Effect: "Allow", Principal: map[string]string{"AWS": connectorARN}, Action: "sts:AssumeRole"}),
		modifierPolicy(a.o),
		nil,
	)
	if err != nil {
		return "", "", "", err
	}
	return connectorARN, externalID, modifierARN, nil
}

// SSOActions and IdentityStoreActions are what iamjit calls on Identity
// Center through the IAM-modifier role (grants/identitycenter).
var (
	SSOActions = []string{
		"sso:ListInstances", "sso:DescribePermissionSet",
		"sso:CreateAccountAssignment", "sso:DeleteAccountAssignment",
		"sso:DescribeAccountAssignmentCreationStatus", "sso:DescribeAccountAssignmentDeletionStatus",
		"sso:ListAccountAssignments", "sso:ListAccountAssignmentsForPrincipal",
		"sso:GetInlinePolicyForPermissionSet", "sso:PutInlinePolicyToPermissionSet",
		"sso:ProvisionPermissionSet", "sso:DescribePermissionSetProvisioningStatus",
		// Only to warn when an assignment account is the management account.
		"organizations:DescribeOrganization",
	}
	IdentityStoreActions = []string{
		"identitystore:GetUserId", "identitystore:DescribeUser", "identitystore:ListUsers",
		"identitystore:DescribeGroup", "identitystore:CreateGroupMembership", "identitystore:DeleteGroupMembership",
		"identitystore:ListGroupMemberships", "identitystore:ListGroupMembershipsForMember",
	}
)

// modifierPolicy is the IAM-modifier role's rights, the same in every
// account: membership of groups under the group path, reads for identity
// mapping and session revocation, iamjit's own policy on JIT roles,
// Identity Center assignments and memberships, and the backstop's
// schedules (the schedule group's, run as the backstop role).
func modifierPolicy(o Options) policy {
	groupPath := o.GroupPath
	scheduleGroup := scheduleGroupName(o)
	return doc(
		statement{
			Effect:   "Allow",
			Action:   []string{"iam:AddUserToGroup", "iam:RemoveUserFromGroup", "iam:GetGroup"},
			Resource: "arn:aws:iam::*:group" + groupPath + "*",
		},
		statement{
			Effect:   "Allow",
			Action:   []string{"iam:GetUser", "iam:ListUsers", "iam:ListUserTags", "iam:GetAccountAuthorizationDetails", "iam:ListGroups", "iam:ListGroupsForUser"},
			Resource: "*",
		},
		// Session revocation: read what the groups let members assume,
		// write iamjit's own policy on roles under the role path only.
		statement{
			Effect:   "Allow",
			Action:   []string{"iam:ListGroupPolicies", "iam:GetGroupPolicy", "iam:ListAttachedGroupPolicies"},
			Resource: "arn:aws:iam::*:group" + groupPath + "*",
		},
		statement{
			Effect:   "Allow",
			Action:   []string{"iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListRoles", "iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies"},
			Resource: "*",
		},
		// IAM has no condition key for an inline policy's name: any
		// inline policy on these roles (README, Security).
		statement{
			Effect:   "Allow",
			Action:   []string{"iam:PutRolePolicy", "iam:DeleteRolePolicy"},
			Resource: "arn:aws:iam::*:role" + JITRolePath + "*",
		},
		// Identity Center: permission set assignments and Identity Store
		// group memberships.
		statement{Effect: "Allow", Action: SSOActions, Resource: "*"},
		statement{Effect: "Allow", Action: IdentityStoreActions, Resource: "*"},
		// The backstop: schedules in its group only, run as its role only.
		statement{
			Effect:   "Allow",
			Action:   "scheduler:*",
			Resource: "arn:aws:scheduler:*:*:schedule/" + scheduleGroup + "/*",
		},
		statement{
			Effect:   "Allow",
			Action:   []string{"scheduler:GetScheduleGroup"},
			Resource: "arn:aws:scheduler:*:*:schedule-group/" + scheduleGroup,
		},
		// ListSchedules takes no resource (the start-up check sweeps its
		// probes; the listing names the group).
		statement{Effect: "Allow", Action: []string{"scheduler:ListSchedules"}, Resource: "*"},
		statement{
			Effect:    "Allow",
			Action:    "iam:PassRole",
			Resource:  "arn:aws:iam::*:role" + RolePath + backstopRoleName(o),
			Condition: map[string]map[string]string{"StringEquals": {"iam:PassedToService": SchedulerService}},
		},
	)
}

// jitRole makes the role the dev group may assume: under JITRolePath, whose
// trust policy requires the caller's user name as source identity (so
// iamjit revokes its sessions per user), and the group policy that lets
// members assume it. account is the account the client acts in.
func (a iamAccount) jitRole(ctx context.Context, account string) (string, error) {
	name := a.o.Prefix + "-jit-readonly"
	trust, _ := json.Marshal(doc(statement{
		Effect:    "Allow",
		Principal: map[string]string{"AWS": "arn:aws:iam::" + account + ":root"},
		Action:    []string{"sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"},
		Condition: map[string]map[string]string{"StringEquals": {"sts:SourceIdentity": "${aws:username}"}},
	}))
	roleARN, err := a.ensureRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String(name), Path: aws.String(JITRolePath),
		AssumeRolePolicyDocument: aws.String(string(trust)), MaxSessionDuration: aws.Int32(3600),
	}, true)
	if err != nil {
		return "", err
	}
	assume, _ := json.Marshal(doc(statement{
		Effect:   "Allow",
		Action:   []string{"sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"},
		Resource: roleARN,
	}))
	if _, err := a.iam.PutGroupPolicy(ctx, &iam.PutGroupPolicyInput{
		GroupName: aws.String(a.o.Group), PolicyName: aws.String(a.o.Group + "-assume"), PolicyDocument: aws.String(string(assume)),
	}); err != nil {
		return "", fmt.Errorf("let group %s assume %s: %w", a.o.Group, name, err)
	}
	return roleARN, nil
}

// externalID returns the id tagged on an existing connector role, or a new
// random one: rerunning `iamjit dev` must not break an already exported
// IAMJIT_EXTERNAL_ID (or IAMJIT_ACCOUNTS).
func (a iamAccount) externalID(ctx context.Context, role string) (string, error) {
	out, err := a.iam.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: aws.String(role)})
	var missing *iamtypes.NoSuchEntityException
	switch {
	case errors.As(err, &missing):
	case err != nil:
		return "", fmt.Errorf("read tags of role %s: %w", role, err)
	default:
		for _, t := range out.Tags {
			if aws.ToString(t.Key) == ExternalIDTag && aws.ToString(t.Value) != "" {
				return aws.ToString(t.Value), nil
			}
		}
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate external id: %w", err)
	}
	return hex.EncodeToString(raw[:]), nil
}

// role creates or updates a role under RolePath with trust policy trust and
// one inline policy, and returns its ARN.
func (a iamAccount) role(ctx context.Context, name string, trust, inline policy, tags []iamtypes.Tag) (string, error) {
	trustJSON, _ := json.Marshal(trust)
	inlineJSON, _ := json.Marshal(inline)
	roleARN, err := a.ensureRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(name),
		Path:                     aws.String(RolePath),
		AssumeRolePolicyDocument: aws.String(string(trustJSON)),
		Tags:                     tags,
	}, false)
	if err != nil {
		return "", err
	}
	// PutRolePolicy replaces a policy of the same name.
	if _, err := a.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName:       aws.String(name),
		PolicyName:     aws.String(name),
		PolicyDocument: aws.String(string(inlineJSON)),
	}); err != nil {
		return "", fmt.Errorf("put policy on role %s: %w", name, err)
	}
	return roleARN, nil
}

// ensureRole creates the role in describes or, when one of that name
// exists, gives it in's trust policy and tags; it returns the role's ARN.
// With samePath an existing role under another path is refused, untouched.
func (a iamAccount) ensureRole(ctx context.Context, in *iam.CreateRoleInput, samePath bool) (string, error) {
	name := aws.ToString(in.RoleName)
	out, err := a.iam.CreateRole(ctx, in)
	var exists *iamtypes.EntityAlreadyExistsException
	switch {
	case err == nil:
		return aws.ToString(out.Role.Arn), nil
	case !errors.As(err, &exists):
		return "", fmt.Errorf("create role %s: %w", name, err)
	}
	got, err := a.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: in.RoleName})
	if err != nil {
		return "", fmt.Errorf("get role %s: %w", name, err)
	}
	if p := aws.ToString(got.Role.Path); samePath && p != aws.ToString(in.Path) {
		return "", fmt.Errorf("role %s exists under path %s, not %s", name, p, aws.ToString(in.Path))
	}
	if _, err := a.iam.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{
		RoleName: in.RoleName, PolicyDocument: in.AssumeRolePolicyDocument,
	}); err != nil {
		return "", fmt.Errorf("update trust of role %s: %w", name, err)
	}
	if len(in.Tags) > 0 {
		if _, err := a.iam.TagRole(ctx, &iam.TagRoleInput{RoleName: in.RoleName, Tags: in.Tags}); err != nil {
			return "", fmt.Errorf("tag role %s: %w", name, err)
		}
	}
	return aws.ToString(got.Role.Arn), nil
}

type policy struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal,omitempty"`
	Action    any                          `json:"Action"`
	Resource  any                          `json:"Resource,omitempty"` // a string or []string
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

func doc(s ...statement) policy { return policy{Version: "2012-10-17", Statement: s} }

const localOnly = "iamjit dev only runs against a local emulator: set AWS_ENDPOINT_URL (for example http://127.0.0.1:5000)"

// CheckEndpoint refuses an empty endpoint (the SDK would then use real AWS)
// and any AWS host, so `iamjit dev` can never create resources in an
// account.
func CheckEndpoint(endpoint string) error {
	if strings.TrimSpace(endpoint) == "" {
		return errors.New(localOnly)
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("%s; %q is not a URL", localOnly, endpoint)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	for _, suffix := range []string{"amazonaws.com", "amazonaws.com.cn", "api.aws"} {
		if host == suffix || strings.HasSuffix(host, "."+suffix) {
			return fmt.Errorf("%s; %s is AWS", localOnly, u.Host)
		}
	}
	return nil
}

// Exports renders the stack as shell `export NAME='value'` lines: every
// IAMJIT_* setting `iamjit run` needs, the dev-only helpers, and the SDK's
// endpoint and region; dummy credentials only when the caller has none.
// With members it adds IAMJIT_ACCOUNTS (after IAMJIT_SOURCES) and one
// IAMJIT_DEV_MEMBER_GROUP_ARN_<id> per member (after IAMJIT_DEV_ROLE_ARN);
// without, the lines are exactly those of a single-account stack.
//
// Identity Center and the backstop add, after IAMJIT_SOURCES (and
// IAMJIT_ACCOUNTS): IAMJIT_SSO_INSTANCE_ARN, IAMJIT_SSO_PERMISSION_SETS,
// IAMJIT_SSO_ASSIGNMENT_ACCOUNTS, IAMJIT_SSO_GROUPS (comma-separated lists
// of permission set ARNs, account ids, Identity Store group ids: one each
// here), IAMJIT_BACKSTOP_ROLE_ARN, IAMJIT_BACKSTOP_GROUP,
// IAMJIT_BACKSTOP_DLQ_ARN; and after the member groups' lines the
// dev helpers IAMJIT_DEV_SSO_USER_ID, IAMJIT_DEV_SSO_GROUP_ID,
// IAMJIT_DEV_SSO_PERMISSION_SET_ARN,
// IAMJIT_DEV_BACKSTOP_DLQ_URL. A Stack
// without them (a zero IdentityCenter or Backstop) prints none of that
// part's lines.
func (s Stack) Exports(endpoint, region string, haveCreds bool) string {
	vars := [][2]string{
		{"IAMJIT_QUEUE_URL", s.QueueURL},
		{"IAMJIT_DLQ_URL", s.DLQURL},
		{"IAMJIT_TABLE", s.Table},
		{"IAMJIT_EVENT_BUS", s.EventBus},
		{"IAMJIT_CONNECTOR_ROLE_ARN", s.ConnectorRoleARN},
		{"IAMJIT_EXTERNAL_ID", s.ExternalID},
		{"IAMJIT_IAM_ROLE_ARN", s.IAMRoleARN},
		{"IAMJIT_GROUP_PATH", s.GroupPath},
		{"IAMJIT_ROLE_PATH", JITRolePath},
		{"IAMJIT_SESSION_REVOCATION", SessionRevocation},
		{"IAMJIT_SOURCES", SymSource},
	}
	if len(s.Members) > 0 {
		vars = append(vars, [2]string{"IAMJIT_ACCOUNTS", s.AccountsJSON()})
	}
	ic, bs := s.IdentityCenter, s.Backstop
	if ic.InstanceARN != "" {
		vars = append(vars, [][2]string{
			{"IAMJIT_SSO_INSTANCE_ARN", ic.InstanceARN},
			{"IAMJIT_SSO_PERMISSION_SETS", ic.PermissionSetARN},
			{"IAMJIT_SSO_ASSIGNMENT_ACCOUNTS", ic.Account},
			{"IAMJIT_SSO_GROUPS", ic.GroupID},
		}...)
	}
	if bs.RoleARN != "" {
		vars = append(vars, [][2]string{
			{"IAMJIT_BACKSTOP_ROLE_ARN", bs.RoleARN},
			{"IAMJIT_BACKSTOP_GROUP", bs.Group},
			{"IAMJIT_BACKSTOP_DLQ_ARN", bs.DLQARN},
		}...)
	}
	vars = append(vars, [][2]string{
		{"IAMJIT_DEV_SYM_BUS", s.SymBus},
		{"IAMJIT_DEV_RESULTS_QUEUE_URL", s.ResultsQueueURL},
		{"IAMJIT_DEV_GROUP", s.GroupName},
		{"IAMJIT_DEV_USER", s.UserName},
		{"IAMJIT_DEV_ROLE_ARN", s.JITRoleARN},
	}...)
	for _, m := range s.Members {
		vars = append(vars, [2]string{"IAMJIT_DEV_MEMBER_GROUP_ARN_" + m.AccountID, m.GroupARN})
	}
	if ic.InstanceARN != "" {
		vars = append(vars, [][2]string{
			{"IAMJIT_DEV_SSO_USER_ID", ic.UserID},
			{"IAMJIT_DEV_SSO_GROUP_ID", ic.GroupID},
			{"IAMJIT_DEV_SSO_PERMISSION_SET_ARN", ic.PermissionSetARN},
		}...)
	}
	if bs.RoleARN != "" {
		vars = append(vars, [2]string{"IAMJIT_DEV_BACKSTOP_DLQ_URL", bs.DLQURL})
	}
	vars = append(vars, [][2]string{
		{"AWS_ENDPOINT_URL", endpoint},
		{"AWS_REGION", region},
	}...)
	if !haveCreds {
		vars = append(vars, [2]string{"AWS_ACCESS_KEY_ID", "test"}, [2]string{"AWS_SECRET_ACCESS_KEY", "test"})
	}
	var b strings.Builder
	for _, v := range vars {
		fmt.Fprintf(&b, "export %s=%s\n", v[0], shellQuote(v[1]))
	}
	return b.String()
}

// shellQuote single-quotes v for POSIX shells: inside '...' nothing is
// special except ', written as '\” (close, escaped quote, reopen).
func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
