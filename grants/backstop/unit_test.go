package backstop_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/backstop"
	"github.com/iamjit/iamjit/internal/awsx"
)

const (
	roleARN = "arn:aws:iam::123456789012:role/iamjit-backstop"
	dlqARN  = "arn:aws:sqs:us-east-1:123456789012:iamjit-backstop-dlq"
)

var (
	t0     = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	alice  = grants.Key{Account: "123456789012", User: "alice", Group: "admins"}
	psKey  = grants.Key{Kind: grants.PermissionSet, Account: "210987654321", User: "9a25a0e7-aee5-4448-815f-9834a59bc1dd", Group: "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1234567890abcdef"}
	ssoKey = grants.Key{Kind: grants.SSOGroup, Account: "123456789012", User: "9a25a0e7-aee5-4448-815f-9834a59bc1dd", Group: "1b2c3d4e-aee5-4448-815f-9834a59bc1dd"}
)

// once makes a hook run only the first time.
func once(fn func(op, name string)) func(op, name string) {
	var done atomic.Bool // not sync.Once: the hook may re-enter (its writer writes too)
	return func(op, name string) {
		if done.CompareAndSwap(false, true) {
			fn(op, name)
		}
	}
}

func newBackstop(t *testing.T, f *fakeScheduler, mod ...func(*backstop.Options)) *backstop.Backstop {
	t.Helper()
	opts := backstop.Options{RoleARN: roleARN, DLQARN: dlqARN, Now: func() time.Time { return t0 },
		InstanceARN: "arn:aws:sso:::instance/ssoins-1234567890abcdef", IdentityStoreID: "d-1234567890",
		MembershipID: func(_ context.Context, g, u string) (string, error) {
			if g == ssoKey.Group && u == ssoKey.User {
				return "m-1", nil
			}
			return "", nil
		}}
	for _, m := range mod {
		m(&opts)
	}
	b, err := backstop.New(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func at(t time.Time) string { return "at(" + t.UTC().Format("2006-01-02T15:04:05") + ")" }

func expr(t *testing.T, f *fakeScheduler, k grants.Key) string {
	t.Helper()
	s := f.schedule("iamjit", backstop.Name(k))
	if s == nil {
		t.Fatalf("no schedule for %s", k)
	}
	return aws.ToString(s.ScheduleExpression)
}

func arm(t *testing.T, b *backstop.Backstop, k grants.Key, exp time.Time, wantOp string) {
	t.Helper()
	op, err := b.Arm(context.Background(), k, exp)
	if err != nil || op != wantOp {
		t.Fatalf("Arm(%s, %s) = %q, %v; want %q", k, exp, op, err, wantOp)
	}
}

// ensure is arm through Ensure: it reads the schedule before it writes.
func ensure(t *testing.T, b *backstop.Backstop, k grants.Key, exp time.Time, wantOp string) {
	t.Helper()
	op, err := b.Ensure(context.Background(), k, exp)
	if err != nil || op != wantOp {
		t.Fatalf("Ensure(%s, %s) = %q, %v; want %q", k, exp, op, err, wantOp)
	}
}

func TestArmCreatesTheFullDefinition(t *testing.T) {
	f := newFake("iamjit")
	b := newBackstop(t, f)
	exp := t0.Add(time.Hour + 300*time.Millisecond)
	arm(t, b, alice, exp, backstop.OpCreated)

	if len(f.creates) != 1 {
		t.Fatalf("%d creates", len(f.creates))
	}
	in := f.creates[0]
	want := at(t0.Add(time.Hour + 2*time.Minute + time.Second)) // rounded up, never early
	checks := map[string][2]string{
		"name":       {aws.ToString(in.Name), backstop.Name(alice)},
		"group":      {aws.ToString(in.GroupName), "iamjit"},
		"expression": {aws.ToString(in.ScheduleExpression), want},
		"timezone":   {aws.ToString(in.ScheduleExpressionTimezone), "UTC"},
		"flexible":   {string(in.FlexibleTimeWindow.Mode), "OFF"},
		"after":      {string(in.ActionAfterCompletion), "DELETE"},
		"state":      {string(in.State), "ENABLED"},
		"target":     {aws.ToString(in.Target.Arn), "arn:aws:scheduler:::aws-sdk:iam:removeUserFromGroup"},
		"input":      {aws.ToString(in.Target.Input), `{"GroupName":"admins","UserName":"alice"}`},
		"role":       {aws.ToString(in.Target.RoleArn), roleARN},
		"dlq":        {aws.ToString(in.Target.DeadLetterConfig.Arn), dlqARN},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", what, c[0], c[1])
		}
	}
	if r := in.Target.RetryPolicy; aws.ToInt32(r.MaximumRetryAttempts) != 185 || aws.ToInt32(r.MaximumEventAgeInSeconds) != 3600 {
		t.Errorf("retry policy %d attempts, %d s", aws.ToInt32(r.MaximumRetryAttempts), aws.ToInt32(r.MaximumEventAgeInSeconds))
	}
	if !strings.Contains(aws.ToString(in.Description), "alice in admins") {
		t.Errorf("description %q does not name the membership", aws.ToString(in.Description))
	}

	s, ok, err := b.Get(context.Background(), alice)
	if err != nil || !ok || !s.At.Equal(t0.Add(time.Hour+2*time.Minute+time.Second)) || s.TargetARN != backstop.TargetRemoveUserFromGroup || s.DLQARN != dlqARN {
		t.Fatalf("Get = %+v, %v, %v", s, ok, err)
	}
}

func TestArmNeverMovesEarlier(t *testing.T) {
	f := newFake("iamjit")
	b := newBackstop(t, f)
	exp := t0.Add(time.Hour)
	arm(t, b, alice, exp, backstop.OpCreated)
	writes := len(f.creates) + len(f.updates)
	arm(t, b, alice, exp, backstop.OpKept)
	arm(t, b, alice, exp.Add(-30*time.Minute), backstop.OpKept)
	if n := len(f.creates) + len(f.updates); n != writes {
		t.Fatalf("kept, yet %d writes", n-writes)
	}
	if got, want := expr(t, f, alice), at(exp.Add(2*time.Minute)); got != want {
		t.Fatalf("after an earlier Arm: %s, want %s", got, want)
	}
	arm(t, b, alice, exp.Add(time.Hour), backstop.OpMoved)
	if got, want := expr(t, f, alice), at(exp.Add(time.Hour+2*time.Minute)); got != want {
		t.Fatalf("after a later Arm: %s, want %s", got, want)
	}
}

// UpdateSchedule replaces everything: every update sends the whole
// definition, so nothing goes back to a default.
func TestMoveSendsTheFullDefinition(t *testing.T) {
	f := newFake("iamjit")
	b := newBackstop(t, f)
	arm(t, b, alice, t0.Add(time.Hour), backstop.OpCreated)
	arm(t, b, alice, t0.Add(2*time.Hour), backstop.OpMoved)
	if len(f.updates) != 1 {
		t.Fatalf("%d updates", len(f.updates))
	}
	u, c := f.updates[0], f.creates[0]
	if aws.ToString(u.Target.Input) != aws.ToString(c.Target.Input) || aws.ToString(u.Target.Arn) != aws.ToString(c.Target.Arn) ||
		aws.ToString(u.Target.RoleArn) != roleARN || u.Target.DeadLetterConfig == nil || aws.ToString(u.Target.DeadLetterConfig.Arn) != dlqARN ||
		u.Target.RetryPolicy == nil || aws.ToInt32(u.Target.RetryPolicy.MaximumRetryAttempts) != 185 ||
		u.FlexibleTimeWindow == nil || u.FlexibleTimeWindow.Mode != types.FlexibleTimeWindowModeOff ||
		u.ActionAfterCompletion != types.ActionAfterCompletionDelete || u.State != types.ScheduleStateEnabled ||
		aws.ToString(u.ScheduleExpressionTimezone) != "UTC" || aws.ToString(u.Description) != aws.ToString(c.Description) {
		t.Fatalf("update is not the full definition: %+v target %+v", u, u.Target)
	}
	// And the stored schedule, rebuilt from the update alone, is still right.
	s, _, _ := b.Get(context.Background(), alice)
	if s.ActionAfterCompletion != "DELETE" || s.State != "ENABLED" || !s.FlexibleOff || s.EventAge != time.Hour {
		t.Fatalf("after the move: %+v", s)
	}
}

func TestMoveEarlierExactly(t *testing.T) {
	f := newFake("iamjit")
	b := newBackstop(t, f)
	ctx := context.Background()
	arm(t, b, alice, t0.Add(3*time.Hour), backstop.OpCreated)
	op, err := b.Move(ctx, alice, t0.Add(time.Hour))
	if err != nil || op != backstop.OpMoved {
		t.Fatalf("Move = %q, %v", op, err)
	}
	if got, want := expr(t, f, alice), at(t0.Add(time.Hour+2*time.Minute)); got != want {
		t.Fatalf("after Move: %s, want %s", got, want)
	}
	if op, err := b.Move(ctx, alice, t0.Add(time.Hour)); err != nil || op != backstop.OpKept {
		t.Fatalf("Move again = %q, %v", op, err)
	}
	// Move of an absent schedule creates it.
	_ = b.Disarm(ctx, alice)
	if op, err := b.Move(ctx, alice, t0.Add(time.Hour)); err != nil || op != backstop.OpCreated {
		t.Fatalf("Move of an absent schedule = %q, %v", op, err)
	}
}

// A time already past, or nearly, is set MinLead from now; seconds round up.
func TestFireAtNeverEarly(t *testing.T) {
	b := newBackstop(t, newFake("iamjit"))
	if got, want := b.FireAt(t0.Add(-time.Hour)), t0.Add(backstop.MinLead); !got.Equal(want) {
		t.Errorf("past expiry fires at %s, want %s", got, want)
	}
	if got, want := b.FireAt(t0.Add(time.Hour+time.Nanosecond)), t0.Add(time.Hour+2*time.Minute+time.Second); !got.Equal(want) {
		t.Errorf("FireAt rounds to %s, want %s", got, want)
	}
	if got := b.FireAt(t0.Add(time.Hour)); got.Before(t0.Add(time.Hour + 2*time.Minute)) {
		t.Errorf("FireAt %s is before expiry plus grace", got)
	}
}

// A schedule of the membership's name that is not as iamjit writes it
// (disabled, another input, a flexible window, NONE after completion, an
// unreadable expression) is rewritten, at the later of the two times.
func TestArmRewritesAForeignDefinition(t *testing.T) {
	later := t0.Add(5 * time.Hour)
	cases := map[string]func(*scheduler.GetScheduleOutput){
		"disabled": func(s *scheduler.GetScheduleOutput) { s.State = types.ScheduleStateDisabled },
		"input": func(s *scheduler.GetScheduleOutput) {
			s.Target.Input = aws.String(`{"GroupName":"admins","UserName":"bob"}`)
		},
		"flexible": func(s *scheduler.GetScheduleOutput) { s.FlexibleTimeWindow.Mode = types.FlexibleTimeWindowModeFlexible },
		"none":     func(s *scheduler.GetScheduleOutput) { s.ActionAfterCompletion = types.ActionAfterCompletionNone },
		"role": func(s *scheduler.GetScheduleOutput) {
			s.Target.RoleArn = aws.String("arn:aws:iam::123456789012:role/other")
		},
		"no dlq":     func(s *scheduler.GetScheduleOutput) { s.Target.DeadLetterConfig = nil },
		"enddate":    func(s *scheduler.GetScheduleOutput) { s.EndDate = aws.Time(t0) },
		"expression": func(s *scheduler.GetScheduleOutput) { s.ScheduleExpression = aws.String("rate(5 minutes)") },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFake("iamjit")
			b := newBackstop(t, f)
			arm(t, b, alice, later, backstop.OpCreated)
			s := f.schedule("iamjit", backstop.Name(alice))
			tgt := *s.Target
			fw := *s.FlexibleTimeWindow
			s.Target, s.FlexibleTimeWindow = &tgt, &fw
			change(s)
			arm(t, b, alice, t0.Add(time.Hour), backstop.OpMoved)
			want := at(later.Add(2 * time.Minute))
			if name == "expression" {
				want = at(t0.Add(time.Hour + 2*time.Minute)) // unreadable: rewritten at the time asked
			}
			got, _, _ := b.Get(context.Background(), alice)
			if got.Expression != want || got.State != "ENABLED" || got.Input != `{"GroupName":"admins","UserName":"alice"}` ||
				!got.FlexibleOff || got.ActionAfterCompletion != "DELETE" || got.RoleARN != roleARN || got.DLQARN != dlqARN || got.Windowed {
				t.Fatalf("after Arm: %+v (want %s)", got, want)
			}
			arm(t, b, alice, t0.Add(time.Hour), backstop.OpKept)
		})
	}
}

// Two replicas create at once: the loser's ConflictException reads again
// and converges: kept when the winner's time is later, moved when earlier.
func TestCreateConflictConverges(t *testing.T) {
	for _, tc := range []struct {
		name    string
		other   time.Time
		wantOp  string
		wantExp time.Time
	}{
		{"winner later", t0.Add(3 * time.Hour), backstop.OpKept, t0.Add(3*time.Hour + 2*time.Minute)},
		{"winner earlier", t0.Add(30 * time.Minute), backstop.OpMoved, t0.Add(time.Hour + 2*time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake("iamjit")
			b := newBackstop(t, f)
			other := newBackstop(t, f)
			f.beforeWrite = once(func(op, _ string) {
				if op != "create" {
					t.Errorf("first write is a %s", op)
				}
				arm(t, other, alice, tc.other, backstop.OpCreated)
			})
			arm(t, b, alice, t0.Add(time.Hour), tc.wantOp)
			if got := expr(t, f, alice); got != at(tc.wantExp) {
				t.Fatalf("schedule %s, want %s", got, at(tc.wantExp))
			}
		})
	}
}

// The lost race without Latest: B's stale, earlier write lands after A's
// write but before A's read-back; A writes its time again.
func TestReadBackRepairsAStaleWrite(t *testing.T) {
	f := newFake("iamjit")
	a := newBackstop(t, f)
	arm(t, a, alice, t0.Add(time.Hour), backstop.OpCreated)
	f.afterWrite = once(func(op, name string) {
		// Another writer that read before A's write now writes its earlier time.
		f.mu.Lock()
		f.scheds["iamjit/"+name].ScheduleExpression = aws.String(at(t0.Add(90 * time.Minute)))
		f.mu.Unlock()
	})
	arm(t, a, alice, t0.Add(3*time.Hour), backstop.OpMoved)
	if got, want := expr(t, f, alice), at(t0.Add(3*time.Hour+2*time.Minute)); got != want {
		t.Fatalf("schedule %s, want %s", got, want)
	}
	if n := len(f.updates); n != 2 {
		t.Fatalf("%d updates, want 2 (the move and its repair)", n)
	}
}

// store is the grants' view for Options.Latest: each membership's latest
// expiry among active grants.
type store struct {
	mu     sync.Mutex
	latest map[grants.Key]time.Time
	reads  int
}

func (s *store) set(k grants.Key, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.IsZero() {
		delete(s.latest, k)
		return
	}
	s.latest[k] = t
}

func (s *store) Latest(_ context.Context, k grants.Key) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	t, ok := s.latest[k]
	return t, ok, nil
}

// The race the read-back cannot see: A (an earlier grant) read the schedule
// before B (a later grant) wrote, and A's write lands after B finished,
// read-back and all. With Latest, A reads the store after its write, sees
// B's grant, and writes B's time.
func TestLatestRepairsALostRace(t *testing.T) {
	f := newFake("iamjit")
	st := &store{latest: map[grants.Key]time.Time{}}
	withLatest := func(o *backstop.Options) { o.Latest = st.Latest }
	a, b := newBackstop(t, f, withLatest), newBackstop(t, f, withLatest)

	st.set(alice, t0.Add(time.Hour))
	arm(t, a, alice, t0.Add(time.Hour), backstop.OpCreated)

	// A's grant (2h) is recorded; A reads the schedule (1h) and is about to
	// write 2h when B's grant (3h) is recorded and armed, to the end.
	st.set(alice, t0.Add(2*time.Hour))
	f.beforeWrite = once(func(string, string) {
		st.set(alice, t0.Add(3*time.Hour))
		arm(t, b, alice, t0.Add(3*time.Hour), backstop.OpMoved)
	})
	ensure(t, a, alice, t0.Add(2*time.Hour), backstop.OpMoved) // Ensure reads first: the race above
	if got, want := expr(t, f, alice), at(t0.Add(3*time.Hour+2*time.Minute)); got != want {
		t.Fatalf("schedule %s, want %s (B's grant)", got, want)
	}
}

// Move (lowering, at the end of the longest grant) races a new grant: the
// store check raises it back.
func TestLatestRepairsAMoveRacingAnArm(t *testing.T) {
	f := newFake("iamjit")
	st := &store{latest: map[grants.Key]time.Time{}}
	withLatest := func(o *backstop.Options) { o.Latest = st.Latest }
	a, b := newBackstop(t, f, withLatest), newBackstop(t, f, withLatest)
	st.set(alice, t0.Add(3*time.Hour))
	arm(t, a, alice, t0.Add(3*time.Hour), backstop.OpCreated)

	// The 3h grant ended; a 1h one remains. A moves to 1h; before its write
	// lands, B records and arms a 2h grant.
	st.set(alice, t0.Add(time.Hour))
	f.beforeWrite = once(func(string, string) {
		st.set(alice, t0.Add(2*time.Hour))
		arm(t, b, alice, t0.Add(2*time.Hour), backstop.OpKept) // 3h still stands when B looks
	})
	if op, err := a.Move(context.Background(), alice, t0.Add(time.Hour)); err != nil || op != backstop.OpMoved {
		t.Fatalf("Move = %q, %v", op, err)
	}
	if got, want := expr(t, f, alice), at(t0.Add(2*time.Hour+2*time.Minute)); got != want {
		t.Fatalf("schedule %s, want %s (B's grant)", got, want)
	}
}

func TestDisarm(t *testing.T) {
	f := newFake("iamjit")
	b := newBackstop(t, f)
	ctx := context.Background()
	arm(t, b, alice, t0.Add(time.Hour), backstop.OpCreated)
	if err := b.Disarm(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Get(ctx, alice); ok || err != nil {
		t.Fatalf("after Disarm: present %v, %v", ok, err)
	}
	if err := b.Disarm(ctx, alice); err != nil {
		t.Fatalf("Disarm of an absent schedule: %v", err)
	}
}

// Disarm only deletes: with Latest set it reads no store (a grant recorded
// meanwhile is the caller's, grants' converge, to arm again).
func TestDisarmOnlyDeletes(t *testing.T) {
	f := newFake("iamjit")
	st := &store{latest: map[grants.Key]time.Time{}}
	b := newBackstop(t, f, func(o *backstop.Options) { o.Latest = st.Latest })
	st.set(alice, t0.Add(time.Hour))
	arm(t, b, alice, t0.Add(time.Hour), backstop.OpCreated)
	reads := st.reads
	if err := b.Disarm(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	if f.schedule("iamjit", backstop.Name(alice)) != nil || st.reads != reads {
		t.Fatalf("after Disarm: schedule %v, store reads %d, want deleted and none", f.schedule("iamjit", backstop.Name(alice)), st.reads-reads)
	}
}

// An update whose schedule was deleted meanwhile (it fired, or the last
// grant ended) creates it.
func TestArmRecreatesAScheduleDeletedMeanwhile(t *testing.T) {
	f := newFake("iamjit")
	b := newBackstop(t, f)
	arm(t, b, alice, t0.Add(time.Hour), backstop.OpCreated)
	f.beforeWrite = once(func(_, name string) {
		f.mu.Lock()
		delete(f.scheds, "iamjit/"+name)
		f.mu.Unlock()
	})
	arm(t, b, alice, t0.Add(2*time.Hour), backstop.OpCreated)
	if got, want := expr(t, f, alice), at(t0.Add(2*time.Hour+2*time.Minute)); got != want {
		t.Fatalf("schedule %s, want %s", got, want)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("missing group, moto's 500", func(t *testing.T) {
		f := newFake()
		f.missingGroupCreate = serverError
		b := newBackstop(t, f)
		_, err := b.Arm(ctx, alice, t0.Add(time.Hour))
		var gm *backstop.GroupMissingError
		if !errors.As(err, &gm) || awsx.Retryable(err) || !strings.Contains(err.Error(), "IAMJIT_BACKSTOP_GROUP") {
			t.Fatalf("err %v (retryable %v), want a permanent GroupMissingError naming IAMJIT_BACKSTOP_GROUP", err, awsx.Retryable(err))
		}
	})
	t.Run("missing group, AWS's ResourceNotFound", func(t *testing.T) {
		b := newBackstop(t, newFake())
		var gm *backstop.GroupMissingError
		if _, err := b.Arm(ctx, alice, t0.Add(time.Hour)); !errors.As(err, &gm) {
			t.Fatalf("err %v, want GroupMissingError", err)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		f := newFake("iamjit")
		f.errs["GetSchedule"] = &types.ThrottlingException{Message: aws.String("slow down")}
		f.errs["CreateSchedule"] = &types.ThrottlingException{Message: aws.String("slow down")}
		b := newBackstop(t, f)
		if _, err := b.Arm(ctx, alice, t0.Add(time.Hour)); !awsx.Retryable(err) {
			t.Fatalf("Arm err %v, want retryable", err)
		}
		if _, err := b.Ensure(ctx, alice, t0.Add(time.Hour)); !awsx.Retryable(err) {
			t.Fatalf("Ensure err %v, want retryable", err)
		}
		if err := func() error { _, _, err := b.Get(ctx, alice); return err }(); !awsx.Retryable(err) {
			t.Fatalf("Get err %v, want retryable", err)
		}
	})
	t.Run("server error on create, group present", func(t *testing.T) {
		f := newFake("iamjit")
		f.errs["CreateSchedule"] = &types.InternalServerException{Message: aws.String("oops")}
		b := newBackstop(t, f)
		_, err := b.Arm(ctx, alice, t0.Add(time.Hour))
		var gm *backstop.GroupMissingError
		if errors.As(err, &gm) || !awsx.Retryable(err) {
			t.Fatalf("err %v, want retryable and not a missing group", err)
		}
	})
	t.Run("validation is permanent", func(t *testing.T) {
		f := newFake("iamjit")
		f.errs["CreateSchedule"] = &types.ValidationException{Message: aws.String("bad")}
		b := newBackstop(t, f)
		if _, err := b.Arm(ctx, alice, t0.Add(time.Hour)); err == nil || awsx.Retryable(err) {
			t.Fatalf("err %v, want permanent", err)
		}
	})
	t.Run("denied names the role", func(t *testing.T) {
		f := newFake("iamjit")
		f.errs["CreateSchedule"] = awsDenied
		b := newBackstop(t, f)
		if _, err := b.Arm(ctx, alice, t0.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "IAMJIT_BACKSTOP_ROLE_ARN") || awsx.Retryable(err) {
			t.Fatalf("err %v, want a permanent error naming IAMJIT_BACKSTOP_ROLE_ARN", err)
		}
	})
	t.Run("contended forever", func(t *testing.T) {
		f := newFake("iamjit")
		b := newBackstop(t, f)
		// Every create finds the name taken, then the schedule gone.
		f.beforeWrite = func(_, name string) {
			f.mu.Lock()
			f.scheds["iamjit/"+name] = &scheduler.GetScheduleOutput{Name: aws.String(name)}
			f.mu.Unlock()
		}
		f.errs["GetSchedule"] = notFound("gone")
		_, err := b.Arm(ctx, alice, t0.Add(time.Hour))
		var tr *awsx.Transient
		if !errors.As(err, &tr) {
			t.Fatalf("err %v, want Transient", err)
		}
	})
}

var awsDenied error = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform iam:PassRole", Fault: smithy.FaultClient}

func TestName(t *testing.T) {
	names := map[string]grants.Key{}
	keys := []grants.Key{
		alice,
		{Account: "210987654321", User: "alice", Group: "admins"},
		{Account: "123456789012", User: "alice", Group: "admin"},
		{Account: "123456789012", User: "alic", Group: "eadmins"},
		{Account: "123456789012", User: "alice", Group: "admins", Kind: grants.SSOGroup},
		{Account: "123456789012", User: "alice", Group: "Admins", Kind: grants.SSOGroup},
		psKey, ssoKey,
		{Account: "123456789012", User: "a+b=c,d@e.f_g-h", Group: strings.Repeat("g", 128)},
	}
	for _, k := range keys {
		n := backstop.Name(k)
		if len(n) > 64 || !backstop.IsName(n) || strings.Trim(n, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.") != "" {
			t.Errorf("Name(%s) = %q: not a valid schedule name", k, n)
		}
		if other, ok := names[n]; ok {
			t.Errorf("%s and %s share the name %s", k, other, n)
		}
		names[n] = k
		if backstop.Name(k) != n {
			t.Errorf("Name(%s) is not deterministic", k)
		}
	}
	// One IAM membership spelled two ways is one schedule.
	if backstop.Name(alice) != backstop.Name(grants.Key{Account: alice.Account, User: "Alice", Group: "ADMINS"}) {
		t.Error("IAM names differing only in case have two schedules")
	}
}

func TestNewValidates(t *testing.T) {
	for name, tc := range map[string]struct {
		opts backstop.Options
		want string
	}{
		"no role":        {backstop.Options{}, "IAMJIT_BACKSTOP_ROLE_ARN"},
		"bad role":       {backstop.Options{RoleARN: "arn:aws:iam::123:user/x"}, "IAMJIT_BACKSTOP_ROLE_ARN"},
		"member role":    {backstop.Options{RoleARN: "nope", RoleSetting: `IAMJIT_ACCOUNTS "prod" backstop_role_arn`}, `IAMJIT_ACCOUNTS "prod" backstop_role_arn`},
		"bad group":      {backstop.Options{RoleARN: roleARN, Group: "a/b"}, "IAMJIT_BACKSTOP_GROUP"},
		"negative grace": {backstop.Options{RoleARN: roleARN, Grace: -time.Second}, "IAMJIT_BACKSTOP_GRACE"},
		"bad dlq":        {backstop.Options{RoleARN: roleARN, DLQARN: "https://sqs/q"}, "dead-letter"},
	} {
		if _, err := backstop.New(newFake(), tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one naming %s", name, err, tc.want)
		}
	}
	b, err := backstop.New(newFake(), backstop.Options{RoleARN: roleARN})
	if err != nil || b.Group() != "iamjit" {
		t.Fatalf("defaults: %v, group %q", err, b.Group())
	}
	if got := b.FireAt(time.Now().Add(time.Hour)); got.Sub(time.Now().Add(time.Hour)) < 2*time.Minute-time.Second {
		t.Fatalf("default grace: fires %s after expiry", got.Sub(time.Now().Add(time.Hour)))
	}
}

func TestIdentityCenterRemovals(t *testing.T) {
	f := newFake("iamjit")
	b := newBackstop(t, f)
	ctx := context.Background()
	arm(t, b, psKey, t0.Add(time.Hour), backstop.OpCreated)
	s, _, _ := b.Get(ctx, psKey)
	if s.TargetARN != "arn:aws:scheduler:::aws-sdk:ssoadmin:deleteAccountAssignment" ||
		s.Input != `{"InstanceArn":"arn:aws:sso:::instance/ssoins-1234567890abcdef","PermissionSetArn":"`+psKey.Group+
			`","PrincipalId":"`+psKey.User+`","PrincipalType":"USER","TargetId":"210987654321","TargetType":"AWS_ACCOUNT"}` {
		t.Errorf("permission set: %s %s", s.TargetARN, s.Input)
	}
	arm(t, b, ssoKey, t0.Add(time.Hour), backstop.OpCreated)
	s, _, _ = b.Get(ctx, ssoKey)
	if s.TargetARN != "arn:aws:scheduler:::aws-sdk:identitystore:deleteGroupMembership" ||
		s.Input != `{"IdentityStoreId":"d-1234567890","MembershipId":"m-1"}` {
		t.Errorf("group membership: %s %s", s.TargetARN, s.Input)
	}
	// Not a member (yet): nothing to name in the input.
	other := ssoKey
	other.User = "0a25a0e7-aee5-4448-815f-9834a59bc1dd"
	if _, err := b.Arm(ctx, other, t0.Add(time.Hour)); !errors.Is(err, backstop.ErrNoMembership) || !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("Arm of a membership that does not exist: %v", err)
	}
	// A membership removed and added again has a new id: Arm rewrites the
	// input even when the time is kept.
	b2 := newBackstop(t, f, func(o *backstop.Options) {
		o.MembershipID = func(context.Context, string, string) (string, error) { return "m-2", nil }
	})
	arm(t, b2, ssoKey, t0.Add(30*time.Minute), backstop.OpMoved)
	s, _, _ = b.Get(ctx, ssoKey)
	if s.Input != `{"IdentityStoreId":"d-1234567890","MembershipId":"m-2"}` || s.At != t0.Add(time.Hour+2*time.Minute) {
		t.Errorf("after the new membership: %s at %s", s.Input, s.At)
	}
	// Not configured.
	b3, _ := backstop.New(f, backstop.Options{RoleARN: roleARN})
	if _, err := b3.Arm(ctx, psKey, t0.Add(time.Hour)); err == nil {
		t.Error("a permission set without an instance ARN armed")
	}
}

func TestList(t *testing.T) {
	f := newFake("iamjit")
	b := newBackstop(t, f)
	ctx := context.Background()
	for i, k := range []grants.Key{alice, psKey, ssoKey} {
		arm(t, b, k, t0.Add(time.Duration(i+1)*time.Hour), backstop.OpCreated)
	}
	f.put("iamjit", &scheduler.GetScheduleOutput{Name: aws.String("iamjit-check-0123456789abcdef"), Target: &types.Target{Arn: aws.String(backstop.ProbeTarget)}})
	f.put("iamjit", &scheduler.GetScheduleOutput{Name: aws.String("someone-else"), Target: &types.Target{Arn: aws.String("x")}})
	got, err := b.List(ctx)
	if err != nil || len(got) != 3 {
		t.Fatalf("List = %d schedules, %v", len(got), err)
	}
	for _, s := range got {
		if !backstop.IsName(s.Name) || s.At.IsZero() || s.Input == "" || s.RoleARN != roleARN {
			t.Errorf("listed %+v", s)
		}
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	t.Run("its own create, retried after a lost answer", func(t *testing.T) {
		f := newFake("iamjit")
		// The first attempt landed; the SDK's retry finds the probe there.
		f.beforeWrite = once(func(op, name string) {
			if op == "create" {
				f.put("iamjit", &scheduler.GetScheduleOutput{Name: aws.String(name), CreationDate: aws.Time(t0), Target: &types.Target{Arn: aws.String("x")}})
			}
		})
		if err := newBackstop(t, f).Check(ctx); err != nil {
			t.Fatalf("Check after a conflicting retry of its own probe: %v", err)
		}
		if f.count("DeleteSchedule") != 1 {
			t.Errorf("the probe was not deleted: %v", f.calls)
		}
	})
	t.Run("a probe that cannot be deleted for now does not fail the start", func(t *testing.T) {
		f := newFake("iamjit")
		f.errs["DeleteSchedule"] = &types.ThrottlingException{Message: aws.String("slow down")}
		if err := newBackstop(t, f).Check(ctx); err != nil {
			t.Fatalf("Check with a throttled probe delete: %v", err)
		}
		f.errs["DeleteSchedule"] = &types.ValidationException{Message: aws.String("no")}
		if err := newBackstop(t, f).Check(ctx); err == nil {
			t.Fatal("Check with a refused probe delete passed")
		}
	})
	t.Run("ok", func(t *testing.T) {
		f := newFake("iamjit")
		// A probe a crashed Check left two hours ago, and one another
		// replica is using now.
		f.put("iamjit", &scheduler.GetScheduleOutput{Name: aws.String("iamjit-check-old"), CreationDate: aws.Time(t0.Add(-2 * time.Hour)), Target: &types.Target{Arn: aws.String("x")}})
		f.put("iamjit", &scheduler.GetScheduleOutput{Name: aws.String("iamjit-check-new"), CreationDate: aws.Time(t0.Add(-time.Minute)), Target: &types.Target{Arn: aws.String("x")}})
		b := newBackstop(t, f)
		if err := b.Check(ctx); err != nil {
			t.Fatal(err)
		}
		c := f.creates[0]
		if c.State != types.ScheduleStateDisabled || aws.ToString(c.Target.RoleArn) != roleARN || aws.ToString(c.Target.Arn) != backstop.ProbeTarget {
			t.Errorf("probe %+v", c)
		}
		if f.count("UpdateSchedule") != 1 || f.count("GetSchedule") != 1 || f.count("DeleteSchedule") != 2 {
			t.Errorf("calls %v", f.calls)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.scheds) != 1 || f.scheds["iamjit/iamjit-check-new"] == nil {
			t.Errorf("left %v", f.scheds)
		}
	})
	t.Run("missing group", func(t *testing.T) {
		f := newFake("other")
		err := newBackstop(t, f).Check(ctx)
		if err == nil || !strings.Contains(err.Error(), "IAMJIT_BACKSTOP_GROUP") || f.count("CreateSchedule") != 0 {
			t.Fatalf("err %v, calls %v", err, f.calls)
		}
	})
	t.Run("role not passable", func(t *testing.T) {
		f := newFake("iamjit")
		f.errs["CreateSchedule"] = awsDenied
		err := newBackstop(t, f, func(o *backstop.Options) { o.RoleSetting = `IAMJIT_ACCOUNTS "prod" backstop_role_arn` }).Check(ctx)
		if err == nil || !strings.Contains(err.Error(), `IAMJIT_ACCOUNTS "prod" backstop_role_arn`) || !strings.Contains(err.Error(), roleARN) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("update refused: the probe is deleted", func(t *testing.T) {
		f := newFake("iamjit")
		f.errs["UpdateSchedule"] = awsDenied
		err := newBackstop(t, f).Check(ctx)
		if err == nil || !strings.Contains(err.Error(), "IAMJIT_BACKSTOP_ROLE_ARN") {
			t.Fatalf("err %v", err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.scheds) != 0 {
			t.Fatalf("probe left: %v", f.scheds)
		}
	})
}

// A new membership's schedule costs one call, a create, and no read of the
// store: the bench's calls per escalate rise by that one call. A create
// overwrites no one's time, so there is nothing to check after it.
func TestArmOfANewMembershipIsOneCall(t *testing.T) {
	f := newFake("iamjit")
	st := &store{latest: map[grants.Key]time.Time{alice: t0.Add(time.Hour)}}
	reads := 0
	b := newBackstop(t, f, func(o *backstop.Options) {
		o.Latest = func(ctx context.Context, k grants.Key) (time.Time, bool, error) { reads++; return st.Latest(ctx, k) }
	})
	arm(t, b, alice, t0.Add(time.Hour), backstop.OpCreated)
	f.mu.Lock()
	calls := slices.Clone(f.calls)
	f.mu.Unlock()
	if len(calls) != 1 || !strings.HasPrefix(calls[0], "CreateSchedule ") || reads != 0 {
		t.Fatalf("calls %v and %d store reads, want one CreateSchedule and none", calls, reads)
	}
}
