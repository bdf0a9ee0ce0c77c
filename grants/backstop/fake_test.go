package backstop_test

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go"
)

// fakeScheduler is EventBridge Scheduler as AWS documents it: names unique
// per group, a create of a taken name is ConflictException, an update
// replaces every field (one left out is gone), a missing schedule or group
// is ResourceNotFoundException. Hooks let a test run another writer at a
// chosen moment.
type fakeScheduler struct {
	mu     sync.Mutex
	groups map[string]bool
	scheds map[string]*scheduler.GetScheduleOutput // group + "/" + name
	now    func() time.Time

	calls   []string // "Op name" in order
	creates []*scheduler.CreateScheduleInput
	updates []*scheduler.UpdateScheduleInput

	// beforeWrite, when set, runs (without the lock) before a create or
	// update is applied; op is "create" or "update".
	beforeWrite func(op, name string)
	// afterWrite runs after a create or update was applied.
	afterWrite func(op, name string)
	// errs answers an operation with an error instead ("GetSchedule": err).
	errs map[string]error
	// missingGroupCreate answers a create into a missing group as moto
	// 5.2.1 does: HTTP 500.
	missingGroupCreate error
}

func newFake(groups ...string) *fakeScheduler {
	f := &fakeScheduler{groups: map[string]bool{}, scheds: map[string]*scheduler.GetScheduleOutput{}, errs: map[string]error{}, now: time.Now}
	for _, g := range groups {
		f.groups[g] = true
	}
	return f
}

func notFound(msg string) error { return &types.ResourceNotFoundException{Message: aws.String(msg)} }

func (f *fakeScheduler) record(op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+name)
	return f.errs[op]
}

func (f *fakeScheduler) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, op+" ") {
			n++
		}
	}
	return n
}

func (f *fakeScheduler) schedule(group, name string) *scheduler.GetScheduleOutput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.scheds[group+"/"+name]
}

// put stores a schedule directly, as another program would have.
func (f *fakeScheduler) put(group string, s *scheduler.GetScheduleOutput) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.GroupName = aws.String(group)
	if s.CreationDate == nil {
		s.CreationDate = aws.Time(f.now())
	}
	f.scheds[group+"/"+aws.ToString(s.Name)] = s
}

func (f *fakeScheduler) GetSchedule(_ context.Context, in *scheduler.GetScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.GetScheduleOutput, error) {
	if err := f.record("GetSchedule", aws.ToString(in.Name)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g := aws.ToString(in.GroupName)
	if !f.groups[g] {
		return nil, notFound("Schedule group " + g + " does not exist.")
	}
	s, ok := f.scheds[g+"/"+aws.ToString(in.Name)]
	if !ok {
		return nil, notFound("Schedule " + aws.ToString(in.Name) + " does not exist.")
	}
	cp := *s
	return &cp, nil
}

func (f *fakeScheduler) hook(h func(op, name string), op, name string) {
	f.mu.Lock()
	fn := h
	f.mu.Unlock()
	if fn != nil {
		fn(op, name)
	}
}

func (f *fakeScheduler) CreateSchedule(_ context.Context, in *scheduler.CreateScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	name := aws.ToString(in.Name)
	if err := f.record("CreateSchedule", name); err != nil {
		return nil, err
	}
	f.hook(f.beforeWrite, "create", name)
	f.mu.Lock()
	g := aws.ToString(in.GroupName)
	if !f.groups[g] {
		f.mu.Unlock()
		if f.missingGroupCreate != nil {
			return nil, f.missingGroupCreate
		}
		return nil, notFound("Schedule group " + g + " does not exist.")
	}
	if _, ok := f.scheds[g+"/"+name]; ok {
		f.mu.Unlock()
		return nil, &types.ConflictException{Message: aws.String("Schedule " + name + " already exists.")}
	}
	f.creates = append(f.creates, in)
	f.scheds[g+"/"+name] = &scheduler.GetScheduleOutput{
		Name: in.Name, GroupName: in.GroupName, Description: in.Description,
		ScheduleExpression: in.ScheduleExpression, ScheduleExpressionTimezone: in.ScheduleExpressionTimezone,
		FlexibleTimeWindow: in.FlexibleTimeWindow, ActionAfterCompletion: in.ActionAfterCompletion,
		State: in.State, Target: in.Target, StartDate: in.StartDate, EndDate: in.EndDate, CreationDate: aws.Time(f.now()),
	}
	f.mu.Unlock()
	f.hook(f.afterWrite, "create", name)
	return &scheduler.CreateScheduleOutput{}, nil
}

func (f *fakeScheduler) UpdateSchedule(_ context.Context, in *scheduler.UpdateScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.UpdateScheduleOutput, error) {
	name := aws.ToString(in.Name)
	if err := f.record("UpdateSchedule", name); err != nil {
		return nil, err
	}
	f.hook(f.beforeWrite, "update", name)
	f.mu.Lock()
	g := aws.ToString(in.GroupName)
	old, ok := f.scheds[g+"/"+name]
	if !f.groups[g] || !ok {
		f.mu.Unlock()
		return nil, notFound("Schedule " + name + " does not exist.")
	}
	f.updates = append(f.updates, in)
	// Every field replaced: what the update leaves out is gone.
	f.scheds[g+"/"+name] = &scheduler.GetScheduleOutput{
		Name: in.Name, GroupName: in.GroupName, Description: in.Description,
		ScheduleExpression: in.ScheduleExpression, ScheduleExpressionTimezone: in.ScheduleExpressionTimezone,
		FlexibleTimeWindow: in.FlexibleTimeWindow, ActionAfterCompletion: in.ActionAfterCompletion,
		State: in.State, Target: in.Target, StartDate: in.StartDate, EndDate: in.EndDate, CreationDate: old.CreationDate,
	}
	f.mu.Unlock()
	f.hook(f.afterWrite, "update", name)
	return &scheduler.UpdateScheduleOutput{}, nil
}

func (f *fakeScheduler) DeleteSchedule(_ context.Context, in *scheduler.DeleteScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error) {
	if err := f.record("DeleteSchedule", aws.ToString(in.Name)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := aws.ToString(in.GroupName) + "/" + aws.ToString(in.Name)
	if _, ok := f.scheds[k]; !ok {
		return nil, notFound("Schedule " + aws.ToString(in.Name) + " does not exist.")
	}
	delete(f.scheds, k)
	return &scheduler.DeleteScheduleOutput{}, nil
}

func (f *fakeScheduler) ListSchedules(_ context.Context, in *scheduler.ListSchedulesInput, _ ...func(*scheduler.Options)) (*scheduler.ListSchedulesOutput, error) {
	if err := f.record("ListSchedules", aws.ToString(in.NamePrefix)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for k, s := range f.scheds {
		g, n, _ := strings.Cut(k, "/")
		if g == aws.ToString(in.GroupName) && strings.HasPrefix(n, aws.ToString(in.NamePrefix)) {
			names = append(names, n)
			_ = s
		}
	}
	sort.Strings(names)
	// Two a page, to exercise pagination.
	start := 0
	if in.NextToken != nil {
		for i, n := range names {
			if n == aws.ToString(in.NextToken) {
				start = i
			}
		}
	}
	out := &scheduler.ListSchedulesOutput{}
	for i := start; i < len(names) && i < start+2; i++ {
		s := f.scheds[aws.ToString(in.GroupName)+"/"+names[i]]
		out.Schedules = append(out.Schedules, types.ScheduleSummary{Name: s.Name, GroupName: s.GroupName, CreationDate: s.CreationDate,
			State: s.State, Target: &types.TargetSummary{Arn: s.Target.Arn}})
	}
	if start+2 < len(names) {
		out.NextToken = aws.String(names[start+2])
	}
	return out, nil
}

func (f *fakeScheduler) GetScheduleGroup(_ context.Context, in *scheduler.GetScheduleGroupInput, _ ...func(*scheduler.Options)) (*scheduler.GetScheduleGroupOutput, error) {
	if err := f.record("GetScheduleGroup", aws.ToString(in.Name)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.groups[aws.ToString(in.Name)] {
		return nil, notFound("Schedule group " + aws.ToString(in.Name) + " does not exist.")
	}
	return &scheduler.GetScheduleGroupOutput{Name: in.Name, State: types.ScheduleGroupStateActive}, nil
}

// serverError is what moto 5.2.1 answers a create into a missing group.
var serverError error = &smithy.GenericAPIError{Code: "InternalServerError", Message: "KeyError", Fault: smithy.FaultServer}
