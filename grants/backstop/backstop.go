package backstop

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/internal/awsx"
)

// SchedulerAPI is the part of the EventBridge Scheduler client iamjit
// calls.
type SchedulerAPI interface {
	GetSchedule(context.Context, *scheduler.GetScheduleInput, ...func(*scheduler.Options)) (*scheduler.GetScheduleOutput, error)
	CreateSchedule(context.Context, *scheduler.CreateScheduleInput, ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
	UpdateSchedule(context.Context, *scheduler.UpdateScheduleInput, ...func(*scheduler.Options)) (*scheduler.UpdateScheduleOutput, error)
	DeleteSchedule(context.Context, *scheduler.DeleteScheduleInput, ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
	ListSchedules(context.Context, *scheduler.ListSchedulesInput, ...func(*scheduler.Options)) (*scheduler.ListSchedulesOutput, error)
	GetScheduleGroup(context.Context, *scheduler.GetScheduleGroupInput, ...func(*scheduler.Options)) (*scheduler.GetScheduleGroupOutput, error)
}

// What Arm and Move did, for logs and metrics.
const (
	OpCreated = "created" // there was no schedule: one was created
	OpMoved   = "moved"   // the schedule was rewritten (a new time or definition)
	OpKept    = "kept"    // the schedule already fired late enough and was right
)

// Defaults of Options.
const (
	DefaultGroup = "iamjit"
	DefaultGrace = 2 * time.Minute
	// MinLead is how far ahead of now a schedule is set at the least: a
	// membership whose expiry (plus grace) is already past, or nearly, gets
	// its schedule a minute from now, so that AWS accepts and fires it. Later
	// is never early.
	MinLead = time.Minute
	// The retry policy of every schedule: up to 185 attempts (AWS's most)
	// within an hour of the firing time, then the dead-letter event. Not
	// AWS's longest event age (24 h): a retry still running when iamjit is
	// back and grants the membership again would end the new grant, and
	// whether moving or deleting a schedule stops the retries of an
	// invocation already under way is not documented. An hour bounds that
	// window; a removal that fails for an hour is an incident the
	// dead-letter queue reports.
	MaxRetryAttempts = 185
	MaxEventAge      = time.Hour
)

// Where the settings come from, named by every error about them.
const (
	EnvRole  = "IAMJIT_BACKSTOP_ROLE_ARN"
	EnvGroup = "IAMJIT_BACKSTOP_GROUP"
	EnvGrace = "IAMJIT_BACKSTOP_GRACE"
)

// Options configure a Backstop; zero fields take defaults.
type Options struct {
	// Group is the schedule group (IAMJIT_BACKSTOP_GROUP, default iamjit).
	// It must exist: iamjit never creates it (see Check).
	Group string
	// RoleARN is the schedules' execution role: EventBridge Scheduler
	// assumes it to make the removal call. Required.
	RoleARN string
	// RoleSetting names where RoleARN was configured, for errors: default
	// IAMJIT_BACKSTOP_ROLE_ARN; for a member account, e.g.
	// `IAMJIT_ACCOUNTS "prod" backstop_role_arn`.
	RoleSetting string
	// DLQARN is the SQS standard queue (same account and region as the
	// schedules) that receives a dead-letter event when a removal still
	// fails after the retries. AWS allows none, and so does Backstop ("":
	// no DeadLetterConfig; New logs a warning), but a deployment should set
	// one: a failed backstop is otherwise seen nowhere. The execution role
	// needs sqs:SendMessage on it.
	DLQARN string
	// Grace is how long after the membership's latest expiry its schedule
	// fires (IAMJIT_BACKSTOP_GRACE, default 2m): iamjit's own revocation
	// comes first; the schedule is the backstop.
	Grace time.Duration

	// Removal, when set, builds every removal call (target ARN, input JSON)
	// itself; otherwise the built-in builders below are used per kind.
	Removal func(ctx context.Context, k grants.Key) (targetARN, input string, err error)
	// InstanceARN is the Identity Center instance (grants.PermissionSet).
	InstanceARN string
	// IdentityStoreID is the instance's Identity Store (grants.SSOGroup).
	IdentityStoreID string
	// MembershipID finds the id of the user's membership of the Identity
	// Store group (grants.SSOGroup): "" or grants.ErrNotFound when there is
	// none.
	MembershipID func(ctx context.Context, groupID, userID string) (string, error)

	// Latest, when set, is the store's latest expiry of the membership's
	// active grants (active false when it has none). Arm, Move and Disarm
	// then read it after every write of theirs and correct a schedule that a
	// concurrent writer's stale value left too early: see the package
	// comment. Without it the caller must not arm one membership from two
	// places at once.
	Latest func(ctx context.Context, k grants.Key) (expires time.Time, active bool, err error)

	Now func() time.Time
	Log *slog.Logger
}

// Backstop keeps one EventBridge Scheduler schedule per membership, in one
// account's schedule group.
type Backstop struct {
	api  SchedulerAPI
	opts Options
}

var (
	roleARNRE   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
	queueARNRE  = regexp.MustCompile(`^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[a-zA-Z0-9_-]{1,80}$`)
	groupNameRE = regexp.MustCompile(`^[0-9a-zA-Z._-]{1,64}$`)
)

// New returns a Backstop acting through api (a scheduler client in the
// account whose memberships it guards), after checking the options' forms.
// It calls no AWS API: Check does, at start-up.
func New(api SchedulerAPI, opts Options) (*Backstop, error) {
	if opts.Group == "" {
		opts.Group = DefaultGroup
	}
	if opts.RoleSetting == "" {
		opts.RoleSetting = EnvRole
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if !groupNameRE.MatchString(opts.Group) {
		return nil, fmt.Errorf("%s: %q is not a schedule group name (1 to 64 of 0-9 a-z A-Z . _ -)", EnvGroup, opts.Group)
	}
	if !roleARNRE.MatchString(opts.RoleARN) {
		return nil, fmt.Errorf("%s: %q is not an IAM role ARN", opts.RoleSetting, opts.RoleARN)
	}
	if opts.Grace < 0 {
		return nil, fmt.Errorf("%s: %s is negative: a backstop must never fire before the expiry", EnvGrace, opts.Grace)
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	if opts.DLQARN != "" && !queueARNRE.MatchString(opts.DLQARN) {
		return nil, fmt.Errorf("backstop dead-letter queue: %q is not an SQS queue ARN", opts.DLQARN)
	}
	if opts.DLQARN == "" {
		opts.Log.Warn("backstop schedules have no dead-letter queue: a removal that keeps failing is reported nowhere", "group", opts.Group)
	}
	return &Backstop{api: api, opts: opts}, nil
}

// Group is the schedule group the backstop writes in.
func (b *Backstop) Group() string { return b.opts.Group }

// namePrefix starts the name of every membership's schedule.
const namePrefix = "iamjit-"

// nameRE is the form of Name's names: what List counts as a membership's
// schedule.
var nameRE = regexp.MustCompile(`^iamjit-[0-9a-f]{40}$`)

// Name is the schedule name of membership k: "iamjit-" and 40 hexadecimal
// digits (160 bits of SHA-256 over the kind, account, user and group,
// each length-prefixed), 47 characters in all.
//
// A hash, not the names themselves: a schedule name is at most 64 of
// [0-9a-zA-Z-_.], while an IAM group name alone may be 128 characters and
// the names hold characters schedules refuse (IAM's +=,@, a permission
// set's ARN with its colons and slashes); cut or escaped, two memberships
// could share a name, and one's schedule would end the other. The key the
// hash stands for is written in the schedule's description for people.
//
// IAM user and group names are unique regardless of case ("Admins" and
// "admins" are one group), so for grants.IAMGroup they are folded to lower
// case first: one membership spelled two ways is one schedule, never two
// of which the earlier would cut the later grant. Identity Center ids and
// ARNs are case-sensitive and are hashed as they are.
func Name(k grants.Key) string {
	user, group := k.User, k.Group
	if k.Kind == grants.IAMGroup {
		user, group = strings.ToLower(user), strings.ToLower(group)
	}
	h := sha256.New()
	for _, s := range []string{"iamjit backstop v1", string(k.Kind), k.Account, user, group} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return namePrefix + hex.EncodeToString(h.Sum(nil)[:20])
}

// IsName reports whether name is of Name's form.
func IsName(name string) bool { return nameRE.MatchString(name) }

// Schedule is one membership's schedule as EventBridge Scheduler holds it.
type Schedule struct {
	Name       string
	At         time.Time // when it fires (UTC); zero when Expression is not an at() of iamjit's form
	Expression string    // ScheduleExpression, e.g. at(2026-05-01T12:02:00)
	Timezone   string    // ScheduleExpressionTimezone
	TargetARN  string
	Input      string
	RoleARN    string
	DLQARN     string
	// RetryAttempts and EventAge are the target's retry policy.
	RetryAttempts         int32
	EventAge              time.Duration
	State                 string // ENABLED or DISABLED
	ActionAfterCompletion string // DELETE or NONE
	FlexibleOff           bool   // FlexibleTimeWindow mode OFF
	Windowed              bool   // StartDate or EndDate set
	Description           string
}

// FireAt is when the schedule of a membership whose latest expiry is
// expires fires: expires plus the grace, rounded up to the second (an at()
// expression has seconds), and never less than MinLead from now.
func (b *Backstop) FireAt(expires time.Time) time.Time {
	at := ceilSecond(expires.Add(b.opts.Grace))
	if floor := ceilSecond(b.opts.Now().Add(MinLead)); at.Before(floor) {
		at = floor
	}
	return at
}

func ceilSecond(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

const atLayout = "2006-01-02T15:04:05"

func atExpression(t time.Time) string { return "at(" + t.UTC().Format(atLayout) + ")" }

// parseAt reads an at() expression in its time zone; zero if it is not one.
func parseAt(expr, tz string) time.Time {
	inner, ok := strings.CutPrefix(expr, "at(")
	if !ok {
		return time.Time{}
	}
	inner, ok = strings.CutSuffix(inner, ")")
	if !ok {
		return time.Time{}
	}
	loc := time.UTC
	if tz != "" && tz != "UTC" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return time.Time{}
		}
		loc = l
	}
	t, err := time.ParseInLocation(atLayout, inner, loc)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// definition is what iamjit writes for a membership, but the time.
type definition struct {
	name, description, targetARN, input string
}

// matches reports whether s is the definition as iamjit writes it.
func (b *Backstop) matches(s Schedule, d definition) bool {
	return s.TargetARN == d.targetARN && sameJSON(s.Input, d.input) && s.RoleARN == b.opts.RoleARN &&
		s.DLQARN == b.opts.DLQARN && s.RetryAttempts == MaxRetryAttempts && s.EventAge == MaxEventAge &&
		s.State == string(types.ScheduleStateEnabled) && s.FlexibleOff && !s.Windowed &&
		s.ActionAfterCompletion == string(types.ActionAfterCompletionDelete) &&
		(s.Timezone == "" || s.Timezone == "UTC") && s.Expression == atExpression(s.At)
}

func (b *Backstop) target(d definition) *types.Target {
	t := &types.Target{
		Arn: aws.String(d.targetARN), RoleArn: aws.String(b.opts.RoleARN), Input: aws.String(d.input),
		RetryPolicy: &types.RetryPolicy{
			MaximumRetryAttempts:     aws.Int32(MaxRetryAttempts),
			MaximumEventAgeInSeconds: aws.Int32(int32(MaxEventAge / time.Second)),
		},
	}
	if b.opts.DLQARN != "" {
		t.DeadLetterConfig = &types.DeadLetterConfig{Arn: aws.String(b.opts.DLQARN)}
	}
	return t
}

func (b *Backstop) definition(ctx context.Context, k grants.Key) (definition, error) {
	arn, input, err := b.removal(ctx, k)
	if err != nil {
		return definition{}, err
	}
	desc := "iamjit backstop: " + k.String()
	if k.Kind != grants.IAMGroup {
		desc = "iamjit backstop (" + string(k.Kind) + "): " + k.String()
	}
	if len(desc) > 512 {
		desc = desc[:509] + "..."
	}
	return definition{name: Name(k), description: desc, targetARN: arn, input: input}, nil
}

// Arm makes the schedule of membership k fire at FireAt(expires) or later:
// created when absent, moved when it fires earlier (or is not as iamjit
// writes it: another target, input, role, queue, state...), kept when it
// already fires as late or later. It never moves a schedule earlier: pass
// the membership's latest expiry, and use Move when that expiry went down.
// It returns OpCreated, OpMoved or OpKept.
//
// Arm is idempotent. It creates first (a new membership's schedule, the
// common case, costs one call); a create that finds the name taken reads
// the schedule and converges. After an update it reads the schedule back
// (or, with Options.Latest, the store) and writes again if a concurrent
// writer's value left it too early; a create cannot overwrite anyone's, so
// it needs no such read.
func (b *Backstop) Arm(ctx context.Context, k grants.Key, expires time.Time) (string, error) {
	return b.converge(ctx, k, b.FireAt(expires), false, true)
}

// Ensure is Arm for a membership whose schedule most likely exists (the
// periodic check): it reads first, so a schedule already right costs one
// read.
func (b *Backstop) Ensure(ctx context.Context, k grants.Key, expires time.Time) (string, error) {
	return b.converge(ctx, k, b.FireAt(expires), false, false)
}

// Move makes the schedule of membership k fire at exactly
// FireAt(expires), earlier or later than now: for when the membership's
// latest expiry went down (the longest of its grants ended, a shorter one
// remains). Pass the latest expiry among the grants still active, read
// after the store recorded the end, never less.
func (b *Backstop) Move(ctx context.Context, k grants.Key, expires time.Time) (string, error) {
	return b.converge(ctx, k, b.FireAt(expires), true, false)
}

// maxRounds bounds Arm's read-write loop under contention.
const maxRounds = 8

func (b *Backstop) converge(ctx context.Context, k grants.Key, at time.Time, exact, createFirst bool) (string, error) {
	d, err := b.definition(ctx, k)
	if err != nil {
		return "", err
	}
	op := OpKept
	for round := range maxRounds {
		var cur Schedule
		ok := false
		if round > 0 || !createFirst {
			cur, ok, err = b.get(ctx, d.name)
			if err != nil {
				return "", fmt.Errorf("backstop for %s: %w", k, err)
			}
		}
		var written time.Time
		switch {
		case !ok:
			err := b.create(ctx, d, at)
			if awsx.IsCode(err, "ConflictException") {
				b.opts.Log.DebugContext(ctx, "backstop created meanwhile by another writer", "membership", k.String(), "schedule", d.name)
				continue
			}
			if err != nil {
				return "", fmt.Errorf("backstop for %s: %w", k, err)
			}
			// A create overwrote no one's time: nothing to check.
			return OpCreated, nil
		default:
			want := at
			if !exact && cur.At.After(at) {
				want = cur.At // never earlier: the latest expiry wins
			}
			if cur.At.Equal(want) && b.matches(cur, d) {
				return op, nil
			}
			err := b.update(ctx, d, want)
			if awsx.IsCode(err, "ResourceNotFoundException") {
				continue // deleted meanwhile (Disarm, or it fired): create it
			}
			if err != nil {
				return "", fmt.Errorf("backstop for %s: %w", k, err)
			}
			if op != OpCreated {
				op = OpMoved
			}
			written = want
		}
		// Check what was written against a concurrent writer.
		again, floor, err := b.verify(ctx, k, d.name, written)
		if err != nil {
			return "", fmt.Errorf("backstop for %s: %w", k, err)
		}
		if !again {
			return op, nil
		}
		b.opts.Log.WarnContext(ctx, "backstop was left too early by a concurrent writer: writing it again",
			"membership", k.String(), "schedule", d.name, "written", written, "needed", floor)
		if floor.After(at) {
			at, exact = floor, false
		}
	}
	return "", &awsx.Transient{Err: fmt.Errorf("backstop for %s: schedule %s still contended after %d rounds", k, d.name, maxRounds)}
}

// verify checks a write of written against concurrent writers and says
// whether to write again, and the time needed. With Options.Latest it is
// the store that says: the membership's latest expiry plus grace, when
// later than written (a grant recorded meanwhile whose Arm may have lost
// to this write). Without it, a read-back: the schedule gone or earlier
// than written (another writer's stale value landed after this one) is
// written again.
func (b *Backstop) verify(ctx context.Context, k grants.Key, name string, written time.Time) (bool, time.Time, error) {
	if b.opts.Latest != nil {
		exp, active, err := b.opts.Latest(ctx, k)
		if err != nil {
			return false, time.Time{}, fmt.Errorf("read the membership's latest expiry: %w", err)
		}
		if l := b.FireAt(exp); active && l.After(written) {
			return true, l, nil
		}
		return false, written, nil
	}
	cur, ok, err := b.get(ctx, name)
	if err != nil {
		return false, time.Time{}, err
	}
	return !ok || cur.At.Before(written), written, nil
}

// Disarm deletes the schedule of membership k, at the end of its last
// grant. A schedule already gone is success. A grant recorded while it
// deletes is the caller's to arm again: grants' converge does, as the
// token of its MarkSynced has moved (see "Never early" in doc.go).
func (b *Backstop) Disarm(ctx context.Context, k grants.Key) error {
	name := Name(k)
	_, err := b.api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(b.opts.Group)})
	if err != nil && !awsx.IsCode(err, "ResourceNotFoundException") {
		return fmt.Errorf("backstop for %s: delete schedule %s: %w", k, name, err)
	}
	return nil
}

// Get reads the schedule of membership k.
func (b *Backstop) Get(ctx context.Context, k grants.Key) (Schedule, bool, error) {
	s, ok, err := b.get(ctx, Name(k))
	if err != nil {
		return Schedule{}, false, fmt.Errorf("backstop for %s: %w", k, err)
	}
	return s, ok, nil
}

// List reads every membership's schedule in the group (names of Name's
// form; others, such as Check's probes, are left out). ListSchedules
// carries no expression, input or role, so each is read with GetSchedule:
// one call per schedule, for checks and invariants rather than a hot path.
func (b *Backstop) List(ctx context.Context) ([]Schedule, error) {
	var out []Schedule
	p := scheduler.NewListSchedulesPaginator(b.api, &scheduler.ListSchedulesInput{GroupName: aws.String(b.opts.Group), NamePrefix: aws.String(namePrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list schedules in group %s: %w", b.opts.Group, err)
		}
		for _, sum := range page.Schedules {
			name := aws.ToString(sum.Name)
			if !IsName(name) || (sum.GroupName != nil && aws.ToString(sum.GroupName) != b.opts.Group) {
				continue
			}
			s, ok, err := b.get(ctx, name)
			if err != nil {
				return nil, err
			}
			if ok { // else deleted since listed
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func (b *Backstop) get(ctx context.Context, name string) (Schedule, bool, error) {
	out, err := b.api.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(b.opts.Group)})
	if awsx.IsCode(err, "ResourceNotFoundException") {
		return Schedule{}, false, nil
	}
	if err != nil {
		return Schedule{}, false, fmt.Errorf("get schedule %s in group %s: %w", name, b.opts.Group, err)
	}
	s := Schedule{
		Name:                  aws.ToString(out.Name),
		Expression:            aws.ToString(out.ScheduleExpression),
		Timezone:              aws.ToString(out.ScheduleExpressionTimezone),
		State:                 string(out.State),
		ActionAfterCompletion: string(out.ActionAfterCompletion),
		FlexibleOff:           out.FlexibleTimeWindow != nil && out.FlexibleTimeWindow.Mode == types.FlexibleTimeWindowModeOff,
		Windowed:              out.StartDate != nil || out.EndDate != nil,
		Description:           aws.ToString(out.Description),
	}
	s.At = parseAt(s.Expression, s.Timezone)
	if t := out.Target; t != nil {
		s.TargetARN, s.Input, s.RoleARN = aws.ToString(t.Arn), aws.ToString(t.Input), aws.ToString(t.RoleArn)
		if t.DeadLetterConfig != nil {
			s.DLQARN = aws.ToString(t.DeadLetterConfig.Arn)
		}
		if r := t.RetryPolicy; r != nil {
			s.RetryAttempts = aws.ToInt32(r.MaximumRetryAttempts)
			s.EventAge = time.Duration(aws.ToInt32(r.MaximumEventAgeInSeconds)) * time.Second
		}
	}
	return s, true, nil
}

// schedule is the whole of schedule d firing at at, as CreateSchedule
// takes it; UpdateSchedule's input has the very same fields (a conversion),
// and an update must name every one of them.
func (b *Backstop) schedule(d definition, at time.Time, state types.ScheduleState) *scheduler.CreateScheduleInput {
	return &scheduler.CreateScheduleInput{
		Name: aws.String(d.name), GroupName: aws.String(b.opts.Group), Description: aws.String(d.description),
		ScheduleExpression: aws.String(atExpression(at)), ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:    &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion: types.ActionAfterCompletionDelete,
		State:                 state,
		Target:                b.target(d),
	}
}

func (b *Backstop) create(ctx context.Context, d definition, at time.Time) error {
	_, err := b.api.CreateSchedule(ctx, b.schedule(d, at, types.ScheduleStateEnabled))
	if err != nil {
		return b.writeError(ctx, "create", d.name, err)
	}
	return nil
}

// update rewrites the whole schedule: UpdateSchedule replaces every field,
// and one left out goes back to its default (moto 5.2.1 keeps the
// ActionAfterCompletion given at creation whatever an update says; iamjit
// always creates with DELETE, so that is what stays).
func (b *Backstop) update(ctx context.Context, d definition, at time.Time) error {
	_, err := b.api.UpdateSchedule(ctx, (*scheduler.UpdateScheduleInput)(b.schedule(d, at, types.ScheduleStateEnabled)))
	if err != nil && !awsx.IsCode(err, "ResourceNotFoundException") {
		return b.writeError(ctx, "update", d.name, err)
	}
	return err
}

// GroupMissingError says the schedule group does not exist. It is
// permanent until someone creates it (iamjit never does).
type GroupMissingError struct {
	Group string
	Err   error // AWS's answer
}

func (e *GroupMissingError) Error() string {
	return fmt.Sprintf("%s: schedule group %q does not exist (iamjit never creates it): %v", EnvGroup, e.Group, e.Err)
}
func (e *GroupMissingError) Unwrap() error { return e.Err }

// writeError explains a failed create or update: a missing group (AWS
// answers ResourceNotFound, moto 5.2.1 HTTP 500 to a create, which would
// read as retryable) is asked of GetScheduleGroup and returned as a
// GroupMissingError; a refusal names the role setting, since iam:PassRole
// on the execution role is what a create or update needs beyond
// scheduler's own actions.
func (b *Backstop) writeError(ctx context.Context, op, name string, err error) error {
	wrapped := fmt.Errorf("%s schedule %s in group %s: %w", op, name, b.opts.Group, err)
	if awsx.IsCode(err, "ConflictException") {
		return err // the caller reads again
	}
	if awsx.IsCode(err, "ResourceNotFoundException") || awsx.Retryable(err) {
		if gerr := b.groupExists(ctx); gerr != nil {
			var gm *GroupMissingError
			if errors.As(gerr, &gm) {
				return gm
			}
		}
		return wrapped
	}
	if awsx.Denied(err) {
		return fmt.Errorf("%w (may iamjit pass %s = %s to scheduler.amazonaws.com?)", wrapped, b.opts.RoleSetting, b.opts.RoleARN)
	}
	return wrapped
}

// groupExists asks GetScheduleGroup; a GroupMissingError when it is not.
func (b *Backstop) groupExists(ctx context.Context) error {
	_, err := b.api.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(b.opts.Group)})
	if awsx.IsCode(err, "ResourceNotFoundException") {
		return &GroupMissingError{Group: b.opts.Group, Err: err}
	}
	if err != nil {
		return fmt.Errorf("%s: get schedule group %q: %w", EnvGroup, b.opts.Group, err)
	}
	return nil
}
