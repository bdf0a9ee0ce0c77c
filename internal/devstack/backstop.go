package devstack

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SchedulerService is the service principal EventBridge Scheduler assumes
// a schedule's execution role as.
const SchedulerService = "scheduler.amazonaws.com"

// Backstop is what ends a grant when iamjit itself cannot: one-time
// EventBridge Scheduler schedules in the schedule group Group, each calling
// the membership's delete (iam:RemoveUserFromGroup,
// sso:DeleteAccountAssignment, identitystore:DeleteGroupMembership) as
// RoleARN, with dead letters on the queue DLQURL. Every account of the stack
// gets one, with the same names.
type Backstop struct {
	RoleARN  string // the schedules' execution role, /sym/<prefix>-backstop
	Group    string // the schedule group: the prefix ("iamjit")
	GroupARN string
	DLQURL   string // <prefix>-backstop-dlq
	DLQARN   string
}

// backstopRoleName is the execution role's name, the same in every account.
func backstopRoleName(o Options) string { return o.Prefix + "-backstop" }

// scheduleGroupName is the backstop schedule group's name.
func scheduleGroupName(o Options) string { return o.Prefix }

// backstopAccount makes a Backstop in the one account its clients act in.
type backstopAccount struct {
	o       Options
	account string // the account id the clients act in
	iam     iamAccount
	sqs     *sqs.Client
	sched   *scheduler.Client
}

func newBackstopAccount(o Options, cfg aws.Config, account string) backstopAccount {
	return backstopAccount{
		o: o, account: account,
		iam:   iamAccount{o: o, iam: iam.NewFromConfig(cfg)},
		sqs:   sqs.NewFromConfig(cfg),
		sched: scheduler.NewFromConfig(cfg),
	}
}

func (a backstopAccount) build(ctx context.Context) (Backstop, error) {
	var bs Backstop
	var err error
	// Dead letters of the schedules: kept the longest SQS allows.
	if bs.DLQURL, bs.DLQARN, err = ensureQueue(ctx, a.sqs, a.o.Prefix+"-backstop-dlq", map[string]string{
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(14 * 24 * 3600),
	}); err != nil {
		return Backstop{}, err
	}
	bs.Group = scheduleGroupName(a.o)
	if bs.GroupARN, err = ensureScheduleGroup(ctx, a.sched, bs.Group); err != nil {
		return Backstop{}, err
	}
	bs.RoleARN, err = a.iam.role(ctx, backstopRoleName(a.o),
		backstopTrust(a.account, bs.Group), backstopPolicy(a.o, a.account, bs.DLQARN), nil)
	if err != nil {
		return Backstop{}, err
	}
	return bs, nil
}

// backstopTrust lets EventBridge Scheduler assume the role for schedules of
// the group in account only (the confused-deputy conditions AWS
// recommends).
func backstopTrust(account, group string) policy {
	return doc(statement{
		Effect:    "Allow",
		Principal: map[string]string{"Service": SchedulerService},
		Action:    "sts:AssumeRole",
		Condition: map[string]map[string]string{
			"StringEquals": {"aws:SourceAccount": account},
			"ArnLike":      {"aws:SourceArn": "arn:aws:scheduler:*:" + account + ":schedule/" + group + "/*"},
		},
	})
}

// backstopPolicy is what a backstop schedule may do: end a membership of
// each kind, and dead-letter a failed invocation.
func backstopPolicy(o Options, account, dlqARN string) policy {
	return doc(
		statement{
			Effect:   "Allow",
			Action:   "iam:RemoveUserFromGroup",
			Resource: "arn:aws:iam::" + account + ":group" + o.GroupPath + "*",
		},
		statement{Effect: "Allow", Action: "sso:DeleteAccountAssignment", Resource: "*"},
		statement{Effect: "Allow", Action: "identitystore:DeleteGroupMembership", Resource: "*"},
		statement{Effect: "Allow", Action: "sqs:SendMessage", Resource: dlqARN},
	)
}

// ensureScheduleGroup returns the ARN of the schedule group name, creating
// it only when GetScheduleGroup says it is missing: moto 5.2.1 answers
// CreateScheduleGroup on an existing name by replacing the group with an
// empty one (its schedules vanish), where AWS answers ConflictException.
func ensureScheduleGroup(ctx context.Context, c *scheduler.Client, name string) (string, error) {
	get := func() (string, error) {
		out, err := c.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(name)})
		if err != nil {
			return "", err
		}
		if s := out.State; s != "" && s != schedtypes.ScheduleGroupStateActive {
			return "", fmt.Errorf("schedule group %s is %s, not ACTIVE", name, s)
		}
		return aws.ToString(out.Arn), nil
	}
	groupARN, err := get()
	var missing *schedtypes.ResourceNotFoundException
	switch {
	case err == nil:
		return groupARN, nil
	case !errors.As(err, &missing):
		return "", fmt.Errorf("get schedule group %s: %w", name, err)
	}
	out, err := c.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(name)})
	var conflict *schedtypes.ConflictException
	switch {
	case err == nil:
		return aws.ToString(out.ScheduleGroupArn), nil
	case errors.As(err, &conflict): // made meanwhile
		if groupARN, err = get(); err == nil {
			return groupARN, nil
		}
	}
	return "", fmt.Errorf("create schedule group %s: %w", name, err)
}
