package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"

	"github.com/iamjit/iamjit/consumer"
	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/backstop"
	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/internal/testbin"
)

// settings size the run; every one can be changed from the environment.
type settings struct {
	events      int           // CHAOS_EVENTS: distinct Sym events
	replicas    int           // CHAOS_REPLICAS
	faultRate   float64       // CHAOS_FAULT_RATE: share of AWS calls that fail
	txRate      float64       // CHAOS_TX_FAULT_RATE: share of TransactWriteItems cancelled or throttled as DynamoDB does
	spread      time.Duration // CHAOS_SPREAD: scenarios start within it
	killMin     time.Duration // CHAOS_KILL_MIN, CHAOS_KILL_MAX: time between kills
	killMax     time.Duration
	workers     int    // CHAOS_WORKERS: IAMJIT_WORKERS of each replica
	seed        uint64 // CHAOS_SEED
	visibility  int32  // CHAOS_VISIBILITY: seconds
	deadline    time.Duration
	repairGrace time.Duration // CHAOS_REPAIR_GRACE: IAMJIT_REPAIR_GRACE of each replica
	sweep       time.Duration // CHAOS_SWEEP_INTERVAL: IAMJIT_SWEEP_INTERVAL of each replica
}

func loadSettings(t *testing.T) settings {
	// Sized for CI on two busy cores: moto is one Python process and the
	// bottleneck (about two messages a second through three replicas with
	// faults and kills, half that beside stress -c 2), so a larger plan
	// only builds a backlog: it turns escalates into "expired" rejections,
	// keeps the scripted scenarios from happening until they are driven
	// again on the empty queue, and makes the run longer, not stronger.
	// make soak runs a larger plan (CHAOS_EVENTS, CHAOS_SPREAD).
	s := settings{events: 48, replicas: 3, faultRate: 0.10, txRate: 0.06, spread: 22 * time.Second, sweep: 2 * time.Second, killMin: 3 * time.Second,
		killMax: 6 * time.Second, workers: 8, seed: uint64(time.Now().UnixNano()), visibility: 3, deadline: 150 * time.Second, repairGrace: 2 * time.Second}
	num := func(name string, set func(string) error) {
		if v := os.Getenv(name); v != "" {
			if err := set(v); err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
		}
	}
	atoi := func(p *int) func(string) error {
		return func(v string) (err error) { *p, err = strconv.Atoi(v); return err }
	}
	dur := func(p *time.Duration) func(string) error {
		return func(v string) (err error) { *p, err = time.ParseDuration(v); return err }
	}
	num("CHAOS_EVENTS", atoi(&s.events))
	num("CHAOS_REPLICAS", atoi(&s.replicas))
	num("CHAOS_WORKERS", atoi(&s.workers))
	num("CHAOS_FAULT_RATE", func(v string) (err error) { s.faultRate, err = strconv.ParseFloat(v, 64); return err })
	num("CHAOS_TX_FAULT_RATE", func(v string) (err error) { s.txRate, err = strconv.ParseFloat(v, 64); return err })
	num("CHAOS_SPREAD", dur(&s.spread))
	num("CHAOS_KILL_MIN", dur(&s.killMin))
	num("CHAOS_KILL_MAX", dur(&s.killMax))
	num("CHAOS_DEADLINE", dur(&s.deadline))
	num("CHAOS_REPAIR_GRACE", dur(&s.repairGrace))
	num("CHAOS_SWEEP_INTERVAL", dur(&s.sweep))
	num("CHAOS_SEED", func(v string) (err error) { s.seed, err = strconv.ParseUint(v, 10, 64); return err })
	num("CHAOS_VISIBILITY", func(v string) error {
		n, err := strconv.Atoi(v)
		s.visibility = int32(n)
		return err
	})
	if s.replicas < 1 || s.events < 10 || s.killMax < s.killMin || s.visibility < 1 {
		t.Fatalf("chaos settings out of range: %+v", s)
	}
	return s
}

// TestChaos runs the replicas through faults and kills and then checks the
// invariants against IAM, DynamoDB, the results queue and the DLQ.
func TestChaos(t *testing.T) {
	set := loadSettings(t)
	ph := newPhases()
	t.Logf("chaos: seed %d (rerun with CHAOS_SEED=%d), %d events, %d replicas, fault rate %.2f, transaction fault rate %.2f",
		set.seed, set.seed, set.events, set.replicas, set.faultRate, set.txRate)
	// Room for a slow emulator: draining, a longer tail and scenarios
	// driven again each have set.deadline; go test's own timeout is 10 min.
	ctx, cancel := context.WithTimeout(context.Background(), set.deadline+4*time.Minute)
	defer cancel()
	ctxDeadline, _ := ctx.Deadline()

	logDir, err := os.MkdirTemp("", "iamjit-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CHAOS_KEEP_LOGS") != "" {
			t.Logf("replica logs kept in %s", logDir)
			return
		}
		os.RemoveAll(logDir)
	})
	bin := testbin.Build(t)

	moto := motoserver.Start(t)
	cfg := moto.AWSConfig(t)
	cfg.RetryMaxAttempts = 10 // the test's own calls meet no injected faults but a loaded moto
	// The home account and one member account: its groups have the names
	// of the first three home groups and the first overlap group, its users
	// the emails of eight of the twelve home users under other names.
	cast := NewCast("chaos", motoserver.AccountID, 12, 4, 2).WithMember(memberAccount, 8, 3, 1)
	stack, err := devstack.Create(ctx, cfg, devstack.Options{
		Prefix: "chaos", VisibilityTimeout: set.visibility, MaxReceiveCount: 12,
		User: "chaos-admin@chaos.example", Group: cast.Groups[0], MemberAccounts: []string{memberAccount},
	})
	if err != nil {
		t.Fatalf("dev stack: %v", err)
	}
	if len(stack.Members) != 1 || stack.Members[0].AccountID != memberAccount || stack.Members[0].GroupName != cast.Groups[0] {
		t.Fatalf("dev stack members %+v, want account %s with group %s", stack.Members, memberAccount, cast.Groups[0])
	}
	setup := newClients(cfg, stack, cast)
	// Identity Center beside IAM, made beside it: permission sets assigned
	// in both accounts, Identity Store groups of the home account's
	// instance.
	type ssoMade struct {
		cast   Cast
		t      ssoTargets
		before map[string][]string
		err    error
	}
	ssoc := make(chan ssoMade, 1)
	go func() {
		var m ssoMade
		m.cast, m.t, m.before, m.err = newClients(cfg, stack, cast).createSSO(ctx, cast, stack.IdentityCenter)
		ssoc <- m
	}()
	outsideBefore := setup.createCast(ctx, t, cast)
	made := <-ssoc
	if made.err != nil {
		t.Fatalf("Identity Center cast: %v", made.err)
	}
	cast, ssoT := made.cast, made.t
	maps.Copy(outsideBefore, made.before)

	proxy, err := NewProxy(moto.URL(), ProxyOptions{
		Rate: set.faultRate, TxRate: set.txRate, MaxLatency: 30 * time.Millisecond, MaxHold: time.Second, Seed: set.seed,
		// Start-up calls fail fast by design (exit 2); faults there would
		// only test the restart loop. Everything a running replica does fails.
		Exempt: map[string]bool{"sts.AssumeRole": true, "sts.GetCallerIdentity": true,
			"dynamodb.DescribeTable": true, "sqs.GetQueueAttributes": true, "sqs.GetQueueUrl": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	// From here on the test's own calls go through a fault-free listener.
	clean, err := proxy.ListenClean()
	if err != nil {
		t.Fatal(err)
	}
	ccfg := cfg.Copy()
	ccfg.BaseEndpoint = aws.String(clean)
	// Without the loaded sources: the SDK takes a base endpoint found there
	// (motoserver's) over cfg.BaseEndpoint, and the calls would bypass the
	// proxy that counts them.
	ccfg.ConfigSources = nil
	aw := newClients(ccfg, stack, cast)

	replicas := make([]*Replica, set.replicas)
	for i := range replicas {
		endpoint, err := proxy.Listen()
		if err != nil {
			t.Fatal(err)
		}
		// A fixed port per replica, kept across restarts, so that the test
		// can read each process's /metrics before it kills or stops it.
		addr, err := motoserver.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = NewReplica(i, bin, logDir, append(replicaEnv(stack, endpoint, addr, set), ssoT.env()...), "http://"+addr+"/metrics")
		if err := replicas[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	stopped := false
	defer func() {
		if !stopped {
			for _, r := range replicas {
				_, _ = r.Stop(5 * time.Second)
			}
		}
	}()

	ph.mark("setup")
	// The plan starts a moment from now so that the replicas are up.
	w := NewWorkload(cast, time.Now().Add(2*time.Second), WorkloadOptions{Events: set.events, Spread: set.spread, Seed: set.seed})

	// The monitor reads the overlap groups of every account and space, and
	// the shared targets of the Identity Center spaces; the late adder the
	// shared IAM groups.
	// (the test's reads cost moto as much as a third of what the replicas'
	// calls do: the overlap groups every second, the Identity Center
	// targets every 3 s, a read of one costing moto more than GetGroup).
	var overlapPlaces, ssoShared, sharedPlaces []Place
	for _, a := range cast.Accounts() {
		for _, g := range a.OverlapGroups {
			overlapPlaces = append(overlapPlaces, Place{a.ID, g})
		}
		for _, g := range a.Groups {
			if a.IsSSO() {
				ssoShared = append(ssoShared, Place{a.ID, g})
			} else {
				sharedPlaces = append(sharedPlaces, Place{a.ID, g})
			}
		}
	}
	mon, ssoMon := &monitor{aw: aw, groups: overlapPlaces}, &monitor{aw: aw, groups: ssoShared}
	monCtx, stopMon := context.WithCancel(ctx)
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		var both sync.WaitGroup
		both.Go(func() { mon.run(monCtx, time.Second) })
		both.Go(func() { ssoMon.run(monCtx, 3*time.Second) })
		both.Wait()
	}()
	// Late adds as a killed replica's would land: right after a removal.
	// Its reads of the shared groups of every account are also what the
	// whole-run check of invariant 9 reads. Every 500 ms: well within the
	// read-back's 5 s, and the seven groups cost moto fewer reads than the
	// four did at 250 ms (moto is the bottleneck).
	late := &lateAdder{aw: aw, groups: sharedPlaces, max: 12}
	late.armed.Store(true)
	lateDone := make(chan struct{})
	go func() { defer close(lateDone); late.run(monCtx, 500*time.Millisecond) }()

	killCtx, stopKiller := context.WithCancel(ctx)
	var kills int
	killDone := make(chan struct{})
	go func() {
		defer close(killDone)
		rng := rand.New(rand.NewPCG(set.seed, 7))
		for {
			d := set.killMin + time.Duration(rng.Int64N(int64(set.killMax-set.killMin)+1))
			if !sleep(killCtx, d) {
				return
			}
			r := replicas[rng.IntN(len(replicas))]
			if err := r.Kill(); err != nil {
				t.Errorf("restart after kill: %v", err)
				return
			}
			kills++
		}
	}()

	// The planned sends go out at their times; each script as the table
	// allows (driver). Neither uses t: a failure is returned.
	d := &driver{aw: aw, w: w, mon: mon}
	reported := false
	defer func() {
		if t.Failed() && !reported {
			for _, n := range d.Notes() {
				t.Logf("not exercised: %s", n)
			}
		}
	}()
	sendErr := make(chan error, 1)
	go func() { sendErr <- aw.send(ctx, w, w.Sends) }()
	var scriptsSent, scriptsDone sync.WaitGroup
	var runs []*scriptRun // appended to by this goroutine only
	var overlappedMu sync.Mutex
	overlapped := map[string]int{} // account -> overlaps exercised so far
	d.overlapped = func(acct string) { overlappedMu.Lock(); overlapped[acct]++; overlappedMu.Unlock() }
	start := func(s *Script, sent func()) {
		run := &scriptRun{s: s}
		runs = append(runs, run)
		scriptsDone.Add(1)
		go func() {
			defer scriptsDone.Done()
			run.ok, run.err = d.run(ctx, s, sent)
		}()
	}
	var lastSentMu sync.Mutex
	var lastSent string // the planned script whose events were all out last
	for _, s := range w.Scripts {
		scriptsSent.Add(1)
		start(s, func() {
			lastSentMu.Lock()
			lastSent = fmt.Sprintf("%s script in %s at +%s", s.Scenario, s.Account(), time.Since(w.Start).Round(100*time.Millisecond))
			lastSentMu.Unlock()
			scriptsSent.Done()
		})
	}
	waitScripts := func() {
		scriptsDone.Wait()
		for _, r := range runs {
			if r.err != nil {
				t.Fatalf("%s script: %v", r.s.Scenario, r.err)
			}
		}
	}
	defer func() { cancel(); scriptsDone.Wait() }() // no goroutine outlives the test
	if err := <-sendErr; err != nil {
		t.Fatalf("send workload: %v", err)
	}
	sendsOut := time.Since(w.Start)
	// The mid-point tail goes out now, behind the planned sends, and is
	// still active when the queue has drained: the mid-point snapshot then
	// checks every account and space against live grants, not only empty
	// groups, without a drain of its own. Long (120 s): it is ended by
	// deescalate once the snapshot is taken, so the run never waits for it.
	const tailDur = 2 * time.Minute
	tail := w.AddTail(time.Now(), len(cast.Accounts())+2, tailDur, set.seed, nil)
	tailSent := make(chan error, 1)
	go func() { tailSent <- aw.send(ctx, w, tail) }()
	ph.mark("planned sends")
	scriptsSent.Wait()
	ph.mark("scripts' sends")
	// Keep killing while the last messages and their redeliveries run:
	// for three visibility timeouts and a bit, or until the queue has
	// drained if that is sooner (nothing is left to kill a replica in);
	// the wait for the drain goes on beside the kills, not after them.
	drained := make(chan error, 1)
	go func() { drained <- aw.waitDrained(ctx, time.Now().Add(set.deadline)) }()
	var drainErr error
	select {
	case drainErr = <-drained:
		drained <- drainErr
	case <-time.After(3*time.Duration(set.visibility)*time.Second + 4*time.Second):
	}
	stopKiller()
	<-killDone
	ph.mark("killing on")
	lastSentMu.Lock()
	t.Logf("chaos: planned sends out at +%s, the last script's (%s); killer stopped after %d kills; waiting for the queue to drain",
		sendsOut.Round(100*time.Millisecond), lastSent, kills)
	lastSentMu.Unlock()
	if err := <-drained; err != nil {
		t.Fatalf("queue did not drain: %v", err)
	}
	ph.mark("drain")
	// No injected late add may be pending at the mid-point snapshot.
	late.armed.Store(false)
	if err := late.waitUndone(ctx, time.Minute); err != nil {
		t.Errorf("late add: %v", err)
	}
	// The tail sent after the planned sends is still active at the
	// mid-point. When the emulator is so slow that every tail grant of an
	// account ended before the snapshot, a longer tail follows, until one
	// is seen active in every account. An account that granted none of its
	// tail grants is not slow but broken: no longer tail is sent for it,
	// and the run fails on it (RequireExercised) instead of waiting.
	obs := Observed{OutsideBefore: outsideBefore, Slack: 5 * time.Second}
	midDeadline := time.Now().Add(set.deadline)
	if err := <-tailSent; err != nil {
		t.Fatalf("send tail: %v", err)
	}
	tails := slices.Clone(tail)
	for dur, n := 2*tailDur, uint64(1); ; dur, n = min(2*dur, 4*time.Minute), n+1 {
		if err := aw.waitDrained(ctx, time.Now().Add(set.deadline)); err != nil {
			t.Fatalf("queue did not drain after the tail: %v", err)
		}
		mid := aw.snapshot(ctx, t, managedAndOutside(cast))
		obs.Mid = &mid
		idle, slow := "", false
		for _, a := range cast.Accounts() {
			if MidActive(w, mid, a.ID) > 0 {
				continue
			}
			idle += " " + a.ID
			if granted := tailGranted(mid, tail, a.ID); granted > 0 {
				slow = true
			} else {
				t.Logf("chaos: account %s granted none of its tail grants; no longer tail for it", a.ID)
			}
		}
		if !slow || time.Now().After(midDeadline) {
			break
		}
		t.Logf("chaos: every tail grant of account(s)%s had ended by the mid-point snapshot; sending a %s tail", idle, dur)
		tail = w.AddTail(time.Now(), len(cast.Accounts())+2, dur, set.seed+n, nil)
		tails = append(tails, tail...)
		if err := aw.send(ctx, w, tail); err != nil {
			t.Fatalf("send tail: %v", err)
		}
		sleep(ctx, 2*time.Second) // the tail's deescalates go out up to 2s later
	}
	t.Logf("chaos: queue drained at %s (+%s); mid-point snapshot taken", time.Now().Format("15:04:05.000"), time.Since(w.Start).Round(100*time.Millisecond))
	ph.mark("mid-point snapshot")
	// The tail's grants are active now, after the kills: every membership
	// with an active grant has its backstop, no earlier than its latest
	// expiry plus the grace (a replica killed between its store write and
	// its schedule is covered by the sweep's backstop check, every tenth
	// sweep).
	if n, err := aw.checkBackstops(ctx, time.Now().Add(12*set.sweep+20*time.Second)); err != nil {
		t.Errorf("inv10 (backstop, mid-point): %v", err)
	} else {
		t.Logf("chaos: backstop: %d active memberships each guarded by one schedule no earlier than its latest expiry + grace", n)
	}
	ph.mark("backstop check")
	// The queue is empty: an overlap started now meets no backlog. When a
	// slow emulator has kept every overlap of an account so far from
	// happening, start one there now, beside what follows, rather than
	// before the snapshot (its messages would hold up the drain it waits
	// for) or after the other scenarios.
	for _, a := range cast.Accounts() {
		overlappedMu.Lock()
		n := overlapped[a.ID]
		overlappedMu.Unlock()
		if n > 0 {
			continue
		}
		if s := w.AddOverlap(a.ID, time.Now(), 20*time.Second); s != nil {
			t.Logf("chaos: no overlap exercised in account %s by the drain; starting one on the empty queue", a.ID)
			start(s, func() {})
		}
	}
	// The tail's grants end now, by deescalate, on the quiet queue: each
	// removal is one the late adder (armed again) can add back before its
	// read-back, with nothing else writing that membership; and the run
	// need not wait for the tail's expiry (the plan's grants, every
	// overlap's long one among them, end by expiry: expired@ in every
	// account and space, RequireExercised).
	late.armed.Store(true)
	if err := aw.send(ctx, w, w.EndGrants(time.Now(), tails)); err != nil {
		t.Fatalf("end the tail: %v", err)
	}
	// The read-back must have undone at least one injected late add (the
	// run fails otherwise: checkLateAdds). On a loaded machine every late
	// add may have been undone first by another convergence of its
	// membership; then a few grants are made and ended on the quiet queue,
	// and their late adds, with nothing else writing those memberships,
	// are the read-back's to undo. Beside the overlaps judged and the
	// scenarios driven again, not after them: they touch other memberships.
	lateDeadline := minTime(time.Now().Add(set.deadline), ctxDeadline.Add(-time.Minute))
	lateErrc := make(chan []string, 1)
	go func() {
		var errs []string
		defer func() { lateErrc <- errs }()
		for try := 0; ; try++ {
			if err := late.waitUndone(ctx, time.Minute); err != nil {
				errs = append(errs, fmt.Sprintf("late add: %v", err))
				return
			}
			if err := aw.waitRechecked(ctx, time.Now().Add(time.Minute)); err != nil {
				errs = append(errs, fmt.Sprintf("late add: %v", err))
				return
			}
			if undoneByReadBack(late.injections(), replicas) > 0 || try == 3 || time.Now().After(lateDeadline) {
				return
			}
			t.Logf("chaos: no late add undone by the read-back yet; making and ending a few grants on the quiet queue (%d)", try+1)
			late.allow(4)
			tail := w.AddTail(time.Now(), 4, 30*time.Second, set.seed+500+uint64(try), cast.IAMAccounts())
			if err := aw.send(ctx, w, tail); err != nil {
				errs = append(errs, fmt.Sprintf("send the late-add tail: %v", err))
				return
			}
			// Ended once granted, and once the escalates' delayed copies
			// are through (one after the deescalate would be a duplicate,
			// but the queue is then quiet for the read-back): the removals
			// then find the users in.
			if _, err := aw.waitGranted(ctx, tail, time.Now().Add(time.Minute)); err != nil {
				errs = append(errs, fmt.Sprintf("late-add tail: %v", err))
				return
			}
			_ = aw.waitDrained(ctx, time.Now().Add(20*time.Second))
			if err := aw.send(ctx, w, w.EndGrants(time.Now(), tail)); err != nil {
				errs = append(errs, fmt.Sprintf("end the late-add tail: %v", err))
				return
			}
			if err := aw.waitDrained(ctx, time.Now().Add(time.Minute)); err != nil {
				errs = append(errs, fmt.Sprintf("late-add tail not drained: %v", err))
				return
			}
		}
	}()

	// Drive every scripted scenario until it has been exercised at least
	// once, within a deadline; Check then fails loudly if it still was not.
	waitScripts()
	ph.mark("scripts judged")
	// Keep a minute for the checks that follow.
	// Each account's scenarios are driven again side by side; not in an
	// account that has granted nothing at all (broken, not slow: the run
	// fails on it without waiting for more tries).
	driveDeadline := minTime(time.Now().Add(set.deadline), ctxDeadline.Add(-time.Minute))
	gaveUp := map[string]bool{}
	all, err := aw.scanGrants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cast.Accounts() {
		if !slices.ContainsFunc(slices.Collect(maps.Values(all)), func(s scanned) bool { return aw.keyOf(s.grant).Account == a.ID && !s.grant.GrantedAt.IsZero() }) {
			t.Logf("chaos: account %s has granted nothing; its scenarios are not driven again", a.ID)
			gaveUp[ScenOverlap+"@"+a.ID], gaveUp[ScenReorder+"@"+a.ID] = true, true
		}
	}
	for extra := 0; ; extra++ {
		more := 0
		for _, a := range cast.Accounts() {
			for _, scen := range []string{ScenOverlap, ScenReorder} {
				if anyExercised(runs, scen, a.ID) || gaveUp[scen+"@"+a.ID] {
					continue
				}
				// The deadline first: a script added to the workload is
				// checked (inv2) as if sent.
				var s *Script
				switch {
				case time.Now().After(driveDeadline):
				case scen == ScenOverlap:
					s = w.AddOverlap(a.ID, time.Now(), 20*time.Second)
				default:
					s = w.AddReorder(a.ID, time.Now())
				}
				if s == nil {
					t.Errorf("chaos: %s scenario not exercised in account %s after %d more tries", scen, a.ID, extra)
					gaveUp[scen+"@"+a.ID] = true
					continue
				}
				t.Logf("chaos: no %s scenario exercised in account %s yet; driving one more (%d)", scen, a.ID, extra+1)
				start(s, func() {})
				more++
			}
		}
		if more == 0 {
			break
		}
		waitScripts()
	}
	ph.mark("scenarios driven again")
	for _, e := range <-lateErrc {
		t.Errorf("%s", e)
	}
	ph.mark("late-add read-back")

	// At rest is a state: nothing queued, no grant ACTIVE, nothing due.
	// Every grant the plan can leave has expired by lastExpiry.
	lastExpiry := w.Start
	for _, e := range w.Events {
		if e.Grants() && e.Expires().After(lastExpiry) {
			lastExpiry = e.Expires()
		}
	}
	t.Logf("chaos: scenarios driven at +%s; waiting for rest", time.Since(w.Start).Round(100*time.Millisecond))
	if err := aw.waitAtRest(ctx, lastExpiry.Add(time.Minute)); err != nil {
		t.Errorf("not at rest: %v", err)
	}
	ph.mark("rest")
	t.Logf("chaos: at rest at +%s", time.Since(w.Start).Round(100*time.Millisecond))
	late.armed.Store(false)
	if err := late.waitUndone(ctx, time.Minute); err != nil {
		t.Errorf("late add: %v", err)
	}
	stopMon()
	<-monDone
	<-lateDone
	obs.Final = aw.snapshot(ctx, t, managedAndOutside(cast))
	// Invariant 8, with the replicas still up to finish a dirty role item:
	// in each account, the /jit/ role its group g1 may assume.
	jitRoles := map[string]string{stack.Members[0].AccountID: stack.Members[0].JITRoleARN, cast.ID: stack.JITRoleARN}
	var revViolations []string
	revChecked := map[string]int{}
	for _, a := range cast.IAMAccounts() {
		v, n, err := aw.waitRevocations(ctx, a.ID, jitRoles[a.ID], cast.Groups[0], obs.Final.After, 30*time.Second)
		if err != nil {
			t.Errorf("session revocation check in account %s: %v", a.ID, err)
		}
		revViolations, revChecked[a.ID] = append(revViolations, v...), n
	}
	obs.Members = aw.members(ctx, t)
	obs.Samples = slices.Concat(mon.samples(), ssoMon.samples(), late.samples())
	ph.mark("final reads")

	stopped = true
	// All at once: each drains on its own; every exit is checked.
	codes, errs := make([]int, len(replicas)), make([]error, len(replicas))
	var stops sync.WaitGroup
	for i, r := range replicas {
		stops.Go(func() { codes[i], errs[i] = r.Stop(20 * time.Second) })
	}
	stops.Wait()
	ph.mark("replicas stopped")
	for i, r := range replicas {
		if errs[i] != nil || codes[i] != 0 {
			t.Errorf("replica %d: SIGTERM ended it with code %d, err %v; want 0", r.Index, codes[i], errs[i])
		}
	}
	// The two queues side by side: each drain ends on three empty polls.
	var dlq []sqstypes.Message
	var dlqErr error
	dlqDone := make(chan struct{})
	go func() { defer close(dlqDone); dlq, dlqErr = aw.drain(ctx, aw.stack.DLQURL) }()
	obs.Results = aw.drainResults(ctx, t)
	<-dlqDone
	if dlqErr != nil {
		t.Fatal(dlqErr)
	}
	obs.DLQ = dlqMessages(dlq)
	ph.mark("queues read")

	nEvents, nMessages, nDup, byScen := w.Figures()
	rep := Check(w, obs)
	var exits, startFails []string
	starts := 0
	for _, r := range replicas {
		s, _, e, sf := r.Figures()
		starts += s
		exits, startFails = append(exits, e...), append(startFails, sf...)
	}
	// A start-up that failed for now (exit 1 before running, on an
	// injected fault) is restarted, as ECS would; more than one start in
	// five is no accident.
	for _, sf := range startFails {
		t.Logf("chaos: start-up failed for now, restarted: %s", sf)
	}
	if len(startFails)*5 > starts {
		rep.fail("inv6: %d of %d starts failed at start-up: %v", len(startFails), starts, startFails)
	}
	for _, e := range exits {
		rep.fail("inv6: %s", e)
	}
	repaired, sweptRevoked := 0, 0
	for _, r := range replicas {
		rp, rv := sweepFigures(r.LogPath())
		repaired += rp
		sweptRevoked += rv
		for _, line := range grepLog(r.LogPath(), "panic", "DATA RACE", "fatal error") {
			rep.fail("inv6: replica %d logged %q", r.Index, line)
		}
	}
	pst := proxy.Stats()
	txMetric := map[string]int64{}
	var scrapeErrs []string
	for _, r := range replicas {
		m, errs := r.TxRetries()
		for k, v := range m {
			txMetric[k] += v
		}
		scrapeErrs = append(scrapeErrs, errs...)
	}
	var staleRepaired int64
	for _, r := range replicas {
		staleRepaired += r.StaleAdds()
	}
	late.mu.Lock()
	lateErrs := slices.Clone(late.errs)
	late.mu.Unlock()
	injected := late.injections()
	var undone []string
	beforeRead := 0
	for _, r := range replicas {
		u, n := undoneInLog(r.LogPath())
		undone, beforeRead = append(undone, u...), beforeRead+n
	}
	checkLateAdds(&rep, injected, undone, beforeRead, staleRepaired, lateErrs)
	for _, v := range revViolations {
		rep.fail("%s", v)
	}
	for _, a := range cast.IAMAccounts() {
		rep.Figures["revocations_checked"] += revChecked[a.ID]
		rep.Figures["revocations_checked@"+a.ID] = revChecked[a.ID]
		// The replicas' IAM calls in the account, through its role chain,
		// as the proxy saw them: signed with keys AssumeRole gave for it.
		rep.Figures["proxy_calls@"+a.ID] = int(pst.ByAccount[a.ID])
		rep.Figures["proxy_faults@"+a.ID] = pst.FaultsByAccount[a.ID]
	}
	for _, a := range cast.SSO {
		// An Identity Center space's calls: those of its service.
		rep.Figures["proxy_calls@"+a.ID] = int(pst.ByService[ssoService(a.Kind)])
		rep.Figures["proxy_faults@"+a.ID] = pst.FaultsByService[ssoService(a.Kind)]
	}
	for i, n := range pst.PerPort {
		if n == 0 {
			rep.fail("inv6: replica %d never called AWS", i)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "chaos figures (seed %d):\n", set.seed)
	fmt.Fprintf(&b, "  time by phase: %s\n", ph)
	fmt.Fprintf(&b, "  events %d, messages sent %d, duplicate copies %d, by scenario %s\n", nEvents, nMessages, nDup, renderMap(byScen))
	fmt.Fprintf(&b, "  replicas %d, processes started %d, kills %d, unexpected exits %d\n", set.replicas, starts, kills, len(exits))
	fmt.Fprintf(&b, "  AWS calls through the proxy %d (per replica %v), faults injected %d: %s\n", pst.Requests, pst.PerPort, pst.Total(), renderMap(pst.Faults))
	fmt.Fprintf(&b, "  DynamoDB transaction faults %d; sent again by the same replica within %s (in-process retry): %s (longest wait %s); later: %s\n",
		pst.TxFaults(), RetryWindow, renderMap(pst.Retried), pst.MaxRetryDelay.Round(time.Millisecond), renderMap(pst.RetriedLate))
	fmt.Fprintf(&b, "  replicas' iamjit_dynamodb_transaction_retries_total: %s (scrapes failed %d)\n", renderMap(txMetric), len(scrapeErrs))
	fmt.Fprintf(&b, "  late adds injected %d, all out at rest: %d undone by the read-back, the rest by another convergence first; undos logged %d, replicas' iamjit_stale_adds_repaired_total %d\n",
		len(injected), rep.Figures["late_adds_undone_by_read_back"], len(undone), staleRepaired)
	for _, in := range injected {
		fmt.Fprintf(&b, "    late add: %s to %s of %s at %s\n", in.User, in.Group, in.Account, in.At.Format("15:04:05.000"))
	}
	for _, a := range cast.IAMAccounts() {
		fmt.Fprintf(&b, "  session revocation in %s: %d ended memberships of %s checked against role item and %s on %s\n",
			a.ID, revChecked[a.ID], cast.Groups[0], "iamjit-session-revocation", jitRoles[a.ID])
	}
	fmt.Fprintf(&b, "  AWS calls through the proxy by the account of their credentials: %s; faults: %s\n", renderMap(pst.ByAccount), renderMap(pst.FaultsByAccount))
	fmt.Fprintf(&b, "  AWS calls through the proxy by service: %s; faults: %s; the test's own calls: %s\n", renderMap(pst.ByService), renderMap(pst.FaultsByService), renderMap(pst.CleanByService))
	byAcct := w.ByAccount()
	for _, a := range cast.Accounts() {
		f := func(name string) int { return rep.Figures[name+"@"+a.ID] }
		role := "home"
		switch {
		case a.Kind == grants.PermissionSet:
			role = "Identity Center permission sets assigned in " + a.AWS
		case a.Kind == grants.SSOGroup:
			role = "Identity Center groups of " + a.AWS + "'s instance"
		case cast.IsMember(a.ID):
			role = "member"
		}
		total := 0
		for _, n := range byAcct[a.ID] {
			total += n
		}
		fmt.Fprintf(&b, "  account %s (%s): planned events %d (%s)\n", a.ID, role, total, renderMap(byAcct[a.ID]))
		fmt.Fprintf(&b, "    grants applied %d, revocation results %d, stored grants ACTIVE %d / REVOKED %d, rejected as expected %d, reorders tombstoned %d, overlaps exercised %d\n",
			f("granted"), f("results/"+events.AccessRevoked), f("grants/ACTIVE"), f("grants/REVOKED"), f("rejected_as_expected"), f("reorder_tombstoned"), f("overlap_exercised"))
		fmt.Fprintf(&b, "    mid-point: %d grants active, %d members; membership items %d; group reads checked %d (%d members seen, %d read with exactly one copy); results' targets checked %d; late adds %d (%d undone by the read-back); session revocations checked %d; calls %d, faults %d\n",
			f("mid_active_grants"), f("mid_members"), f("memberships"), f("samples"), f("sampled_members"), f("one_copy_checked"), f("results_target_checked"),
			f("late_adds_injected"), f("late_adds_undone_by_read_back"), f("revocations_checked"), f("proxy_calls"), f("proxy_faults"))
	}
	if n := rep.Figures["granted_by_home_arn"]; n > 0 {
		fmt.Fprintf(&b, "  home grants requested by the home group's ARN: %d\n", n)
	}
	fmt.Fprintf(&b, "  scripts run %d, exercised %d\n", len(runs), countExercised(runs))
	reported = true
	for _, n := range d.Notes() {
		fmt.Fprintf(&b, "    not exercised: %s\n", n)
	}
	fmt.Fprintf(&b, "  faults by operation (top): %s\n", pst.TopOps(8))
	fmt.Fprintf(&b, "  moto latency: %s\n", proxy.Timing())
	fmt.Fprintf(&b, "  sweeper: expiries handled %d (races included), dirty memberships repaired %d\n", sweptRevoked, repaired)
	if n := rep.Figures["dlq_redriven_after_result"]; n > 0 {
		fmt.Fprintf(&b, "  NOTE: %d applied message(s) reached the DLQ through SQS redrive (receives exhausted by redeliveries)\n", n)
	}
	fmt.Fprintf(&b, "  messages DLQ'd %d, results received %d (distinct %d, duplicate deliveries %d)\n",
		rep.Figures["dlq"], rep.Figures["results"], rep.Figures["results_distinct"], rep.Figures["results_duplicate_deliveries"])
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	fmt.Fprintf(&b, "  figures %s\n", renderMap(rep.Figures))
	fmt.Fprintf(&b, "  group samples %d; violations %d", len(obs.Samples), len(rep.Violations))
	t.Log(b.String())
	if rep.Figures["overlap_exercised"] == 0 {
		rep.fail("inv5: no overlap scenario was exercised: the check proved nothing")
	}
	if rep.Figures["reorder_tombstoned"] == 0 {
		rep.fail("inv4: no late escalate met its tombstone: the check proved nothing")
	}
	if rep.Figures["mid_active_grants"] == 0 {
		rep.fail("inv1: no grant was active at the mid-point: the mid-point check proved nothing")
	}
	RequireExercised(&rep, cast)
	checkTxRetries(&rep, pst, txMetric)
	for _, v := range rep.Violations {
		t.Errorf("violation: %s", v)
	}
}

// phases times the run's steps: where a slow run spends its time.
type phases struct {
	start, last time.Time
	steps       []string
}

func newPhases() *phases {
	now := time.Now()
	return &phases{start: now, last: now}
}

// mark ends the step called name.
func (p *phases) mark(name string) {
	now := time.Now()
	p.steps = append(p.steps, fmt.Sprintf("%s %.1fs", name, now.Sub(p.last).Seconds()))
	p.last = now
}

func (p *phases) String() string {
	return strings.Join(p.steps, ", ") + fmt.Sprintf(" (total %.1fs)", time.Since(p.start).Seconds())
}

// checkTxRetries fails the run when DynamoDB's transaction faults were
// injected but iamjit did not retry them in-process, as seen by the proxy
// (the same request again from the same replica within RetryWindow) and
// by the replicas' own counter.
func checkTxRetries(rep *Report, pst ProxyStats, metric map[string]int64) {
	if pst.TxFaults() == 0 {
		rep.fail("retry: no DynamoDB transaction fault was injected: the in-process retry check proved nothing")
		return
	}
	prompt := 0
	for _, k := range TxFaultKinds {
		prompt += pst.Retried[k]
		// A kind's last fault may fall on the last attempt or a killed
		// replica; three never retried at once are no accident.
		if pst.Faults[k] >= 3 && pst.Retried[k] == 0 {
			rep.fail("retry: %d %s faults injected, none sent again within %s", pst.Faults[k], k, RetryWindow)
		}
	}
	if prompt == 0 {
		rep.fail("retry: %d DynamoDB transaction faults injected, none retried in-process", pst.TxFaults())
	}
	if metric["TransactionConflict"]+metric["ThrottlingError"]+metric["ProvisionedThroughputExceededException"] == 0 {
		rep.fail("retry: the replicas' iamjit_dynamodb_transaction_retries_total counted no conflict or throttle retry (%v)", metric)
	}
}

// tailGranted counts the tail's escalates in account acct that the
// snapshot shows granted (active or ended since).
func tailGranted(s Snapshot, tail []Send, acct string) int {
	n := 0
	for _, send := range tail {
		e := send.Event
		if g, ok := s.After[e.GrantID]; ok && e.Account == acct && e.Type == TypeEsc && g.SymEventID == e.SymID && !g.GrantedAt.IsZero() {
			n++
		}
	}
	return n
}

// scriptRun is one script played by the driver; its goroutine writes ok
// and err before it is done.
type scriptRun struct {
	s   *Script
	ok  bool
	err error
}

func anyExercised(runs []*scriptRun, scen, acct string) bool {
	for _, r := range runs {
		if r.s.Scenario == scen && r.s.Account() == acct && r.ok {
			return true
		}
	}
	return false
}

func countExercised(runs []*scriptRun) int {
	n := 0
	for _, r := range runs {
		if r.ok {
			n++
		}
	}
	return n
}

func replicaEnv(s devstack.Stack, endpoint, httpAddr string, set settings) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "IAMJIT_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"IAMJIT_QUEUE_URL="+s.QueueURL, "IAMJIT_DLQ_URL="+s.DLQURL, "IAMJIT_TABLE="+s.Table,
		"IAMJIT_EVENT_BUS="+s.EventBus, "IAMJIT_CONNECTOR_ROLE_ARN="+s.ConnectorRoleARN,
		"IAMJIT_EXTERNAL_ID="+s.ExternalID, "IAMJIT_IAM_ROLE_ARN="+s.IAMRoleARN, "IAMJIT_GROUP_PATH="+s.GroupPath,
		"IAMJIT_SOURCES="+devstack.SymSource,
		// The member accounts, each through its own chain; their IAM calls
		// go through the proxy like every other call.
		"IAMJIT_ACCOUNTS="+s.AccountsJSON(),
		"AWS_ENDPOINT_URL="+endpoint, "AWS_REGION="+motoserver.Region,
		"AWS_ACCESS_KEY_ID="+motoserver.AccessKey, "AWS_SECRET_ACCESS_KEY="+motoserver.SecretKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"IAMJIT_HTTP_ADDR="+httpAddr, "IAMJIT_WAIT_TIME=1s", "IAMJIT_SWEEP_INTERVAL="+set.sweep.String(),
		"IAMJIT_SHUTDOWN_TIMEOUT=10s", "IAMJIT_LOG_FORMAT=json", "IAMJIT_LOG_LEVEL=info",
		"IAMJIT_WORKERS="+strconv.Itoa(set.workers),
		// Repair young dirty memberships, so that the sweeper's converge
		// races with writers that are still converging theirs.
		"IAMJIT_REPAIR_GRACE="+set.repairGrace.String(),
		// The expiry backstop in every account (the members' roles are in
		// IAMJIT_ACCOUNTS): its schedules are written through the proxy,
		// faults and kills included (checkBackstops).
		"IAMJIT_BACKSTOP_ROLE_ARN="+s.Backstop.RoleARN, "IAMJIT_BACKSTOP_GROUP="+s.Backstop.Group,
		"IAMJIT_BACKSTOP_DLQ_ARN="+s.Backstop.DLQARN,
	)
}

// memberAccount is the member account of the run.
const memberAccount = "111111111111"

// managedAndOutside lists every group of the cast in every account.
func managedAndOutside(c Cast) []Place {
	var out []Place
	for _, a := range c.Accounts() {
		for _, g := range append(a.Managed(), a.OutsideGroup) {
			out = append(out, Place{a.ID, g})
		}
	}
	return out
}

// awsClients talk to moto directly, never through the proxy's faults.
type awsClients struct {
	cfg   aws.Config // the home account's, admin
	sqs   *sqs.Client
	ddb   *dynamodb.Client
	home  string
	iams  map[string]*iam.Client // account -> IAM acting in it
	stack devstack.Stack
	cast  Cast // its Identity Center spaces say how to read a place
	// Identity Center, in the home account's instance.
	admin           *ssoadmin.Client
	ids             *identitystore.Client
	instance, store string
}

// newClients makes the clients on cfg: IAM of the home account with its
// credentials, of each member account with admin credentials there
// (devstack.AccountConfig).
func newClients(cfg aws.Config, stack devstack.Stack, c Cast) *awsClients {
	a := &awsClients{cfg: cfg, sqs: sqs.NewFromConfig(cfg), ddb: dynamodb.NewFromConfig(cfg), home: c.ID,
		iams: map[string]*iam.Client{c.ID: iam.NewFromConfig(cfg)}, stack: stack, cast: c,
		admin: ssoadmin.NewFromConfig(cfg), ids: identitystore.NewFromConfig(cfg),
		instance: stack.IdentityCenter.InstanceARN, store: stack.IdentityCenter.IdentityStoreID}
	for _, m := range c.Members {
		a.iams[m.ID] = iam.NewFromConfig(devstack.AccountConfig(cfg, m.ID))
	}
	return a
}

// iamOf is IAM as account acct sees it.
func (a *awsClients) iamOf(acct string) *iam.Client {
	c, ok := a.iams[acct]
	if !ok {
		panic("chaos: no IAM client for account " + acct)
	}
	return c
}

// keyOf is the membership a stored grant is about, in its account or
// Identity Center space; the store writes no account on the home
// account's grants.
func (a *awsClients) keyOf(g grants.Grant) Key {
	return Key{a.cast.Space(g.Kind, g.Account), g.IAMUser, g.Group}
}

// createCast makes, in every account, the users (tagged with their email),
// the decoys (untagged, named as the other accounts' users) and the
// groups, each checked to be in that account, and puts one user in the
// outside group; it returns that group's members by account.
func (a *awsClients) createCast(ctx context.Context, t *testing.T, c Cast) map[string][]string {
	t.Helper()
	// The accounts side by side, and four writes at a time in each: made
	// one after another they were a good part of a loaded run's set-up.
	var mu sync.Mutex
	var errs []error
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Errorf(format, args...))
	}
	var accts sync.WaitGroup
	for _, acct := range c.IAMAccounts() {
		accts.Go(func() {
			client := a.iamOf(acct.ID)
			var writes sync.WaitGroup
			slots := make(chan struct{}, 4)
			do := func(f func()) {
				writes.Go(func() {
					slots <- struct{}{}
					defer func() { <-slots }()
					f()
				})
			}
			for _, u := range acct.Users {
				do(func() {
					if _, err := client.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(u.Name),
						Tags: []iamtypes.Tag{{Key: aws.String("email"), Value: aws.String(u.Email)}}}); err != nil {
						fail("create user %s in %s: %v", u.Name, acct.ID, err)
					}
				})
			}
			for _, name := range acct.Decoys {
				do(func() {
					if _, err := client.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
						fail("create decoy %s in %s: %v", name, acct.ID, err)
					}
				})
			}
			mk := func(name, path string) {
				_, err := client.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(name), Path: aws.String(path)})
				var exists *iamtypes.EntityAlreadyExistsException
				if err != nil && !errors.As(err, &exists) {
					fail("create group %s in %s: %v", name, acct.ID, err)
					return
				}
				got, err := client.GetGroup(ctx, &iam.GetGroupInput{GroupName: aws.String(name)})
				if err != nil {
					fail("get group %s in %s: %v", name, acct.ID, err)
					return
				}
				if arn := aws.ToString(got.Group.Arn); arn != acct.ARN(name) {
					fail("group %s made as %s, want %s", name, arn, acct.ARN(name))
				}
			}
			for _, g := range acct.Managed() {
				do(func() { mk(g, "/sym/") })
			}
			writes.Wait()
			mk(acct.OutsideGroup, "/other/")
			if _, err := client.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(acct.OutsideGroup), UserName: aws.String(acct.Users[0].Name)}); err != nil {
				fail("add %s to %s in %s: %v", acct.Users[0].Name, acct.OutsideGroup, acct.ID, err)
			}
		})
	}
	accts.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, acct := range c.IAMAccounts() {
		out[acct.ID] = []string{acct.Users[0].Name}
	}
	return out
}

// send puts the workload on the queue as the Sym bus rule would, each
// message at its planned time, ten to a batch.
func (a *awsClients) send(ctx context.Context, w *Workload, sends []Send) error {
	for i := 0; i < len(sends); {
		if !sleep(ctx, time.Until(w.Start.Add(sends[i].At))) {
			return ctx.Err()
		}
		var batch []sqstypes.SendMessageBatchRequestEntry
		for i < len(sends) && len(batch) < 10 && !w.Start.Add(sends[i].At).After(time.Now()) {
			s := sends[i]
			batch = append(batch, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(len(batch))),
				MessageBody: aws.String(s.Event.Body), DelaySeconds: s.Delay})
			i++
		}
		out, err := a.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &a.stack.QueueURL, Entries: batch})
		if err != nil {
			return err
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("send batch: %d entries failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
	}
	return nil
}

func (a *awsClients) queueCount(ctx context.Context) (int, error) {
	return a.count(ctx, a.stack.QueueURL)
}

// count is the number of messages in the queue at url: visible, in flight
// and delayed.
func (a *awsClients) count(ctx context.Context, url string) (int, error) {
	out, err := a.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range out.Attributes {
		k, _ := strconv.Atoi(v)
		n += k
	}
	return n, nil
}

// waitDrained polls until the queue holds nothing, visible, in flight or
// delayed, twice in a row.
//
// A loaded machine drains slowly, not never: while the queue keeps getting
// shorter the deadline moves on (by as long as it had, measured from the
// last new low), so only a queue that stops shrinking fails it; the test's
// own context stays the hard cap.
func (a *awsClients) waitDrained(ctx context.Context, deadline time.Time) error {
	zero := 0
	last, low := -1, -1
	budget := time.Until(deadline)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := a.queueCount(ctx)
		if err != nil {
			return err
		}
		last = n
		if low < 0 || n < low {
			low, deadline = n, time.Now().Add(budget)
		}
		if n == 0 {
			zero++
			if zero == 2 {
				return nil
			}
		} else {
			zero = 0
		}
		sleep(ctx, 500*time.Millisecond)
	}
	return fmt.Errorf("%d messages still in the queue at the deadline (it stopped shrinking at %d)", last, low)
}

// waitAtRest polls until the queue is empty, no grant is ACTIVE and the
// expiry index holds nothing due (the sweeper finished).
func (a *awsClients) waitAtRest(ctx context.Context, deadline time.Time) error {
	var why string
	for time.Now().Before(deadline) {
		n, err := a.queueCount(ctx)
		if err != nil {
			return err
		}
		all, err := a.scanGrants(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		active, overdue, due := 0, 0, 0
		wake := now.Add(time.Second)
		for _, g := range all {
			if g.grant.State == grants.StateActive {
				active++
				if !g.grant.ExpiresAt.After(now) {
					overdue++
				}
				if n == 0 && g.grant.ExpiresAt.After(wake) {
					wake = g.grant.ExpiresAt // nothing queued can end it sooner
				}
			}
			if g.duePK == "EXPIRY" && g.dueAt != "" && !parseTS(g.dueAt).After(now) {
				due++
			}
		}
		if n == 0 && active == 0 && due == 0 {
			return nil
		}
		why = fmt.Sprintf("%d messages in the queue, %d grants ACTIVE (%d past expiry), %d due in the expiry index", n, active, overdue, due)
		sleep(ctx, time.Until(minTime(wake, deadline)))
	}
	return errors.New(why)
}

// grantItem mirrors the store's grant item (grants/dynamo).
type grantItem struct {
	PK            string              `dynamodbav:"pk"`
	ID            string              `dynamodbav:"id"`
	State         grants.State        `dynamodbav:"state"`
	TargetType    grants.Kind         `dynamodbav:"target_type"` // absent: an IAM group
	Account       string              `dynamodbav:"account"`     // absent on the home account's items
	SymEventID    string              `dynamodbav:"sym_event_id"`
	RevokeEventID string              `dynamodbav:"revoke_event_id"`
	IAMUser       string              `dynamodbav:"iam_user"`
	Group         string              `dynamodbav:"grp"`
	GrantedAt     string              `dynamodbav:"granted_at"`
	ExpiresAt     string              `dynamodbav:"expires_at"`
	RevokedAt     string              `dynamodbav:"revoked_at"`
	RevokeReason  string              `dynamodbav:"revoke_reason"`
	Tombstone     bool                `dynamodbav:"tombstone"`
	History       []grants.Transition `dynamodbav:"history"`
	DuePK         string              `dynamodbav:"due_pk"`
	DueAt         string              `dynamodbav:"due_at"`
	Grants        []string            `dynamodbav:"grants,stringset"`
}

type scanned struct {
	grant        grants.Grant
	duePK, dueAt string
}

func parseTS(s string) time.Time {
	t, _ := time.Parse("2006-01-02T15:04:05.000Z", s)
	return t
}

func (a *awsClients) scan(ctx context.Context, prefix string) ([]grantItem, error) {
	var out []grantItem
	p := dynamodb.NewScanPaginator(a.ddb, &dynamodb.ScanInput{TableName: &a.stack.Table, ConsistentRead: aws.Bool(true),
		FilterExpression:          aws.String("begins_with(pk, :p)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": &ddbtypes.AttributeValueMemberS{Value: prefix}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", prefix, err)
		}
		var items []grantItem
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return nil, fmt.Errorf("decode %s items: %w", prefix, err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// waitRechecked waits until no membership's read-back is queued: every
// removal has been read back (and a late add it found undone).
func (a *awsClients) waitRechecked(ctx context.Context, deadline time.Time) error {
	for {
		items, err := a.scan(ctx, "member#")
		if err != nil {
			return err
		}
		var queued []string
		for _, it := range items {
			if it.DuePK == "RECHECK" {
				queued = append(queued, it.PK)
			}
		}
		if len(queued) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("read-backs still queued: %s", strings.Join(queued, ", "))
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

func (a *awsClients) scanGrants(ctx context.Context) (map[string]scanned, error) {
	items, err := a.scan(ctx, "grant#")
	if err != nil {
		return nil, err
	}
	out := map[string]scanned{}
	for _, it := range items {
		out[it.ID] = scanned{duePK: it.DuePK, dueAt: it.DueAt, grant: it.grant()}
	}
	return out, nil
}

func (it grantItem) grant() grants.Grant {
	return grants.Grant{
		ID: it.ID, State: it.State, Kind: it.TargetType, Account: it.Account, SymEventID: it.SymEventID, RevokeEventID: it.RevokeEventID,
		IAMUser: it.IAMUser, Group: it.Group, GrantedAt: parseTS(it.GrantedAt), ExpiresAt: parseTS(it.ExpiresAt),
		RevokedAt: parseTS(it.RevokedAt), RevokeReason: it.RevokeReason, Tombstone: it.Tombstone, History: it.History,
	}
}

// grantsNow scans the grants and marks those still in the expiry index.
func (a *awsClients) grantsNow(ctx context.Context, t *testing.T, expiring map[string]bool) map[string]grants.Grant {
	t.Helper()
	all, err := a.scanGrants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]grants.Grant{}
	for id, s := range all {
		out[id] = s.grant
		if s.duePK == "EXPIRY" && s.grant.State != grants.StateActive {
			expiring[id] = true
		}
	}
	return out
}

func (a *awsClients) members(ctx context.Context, t *testing.T) []MemberItem {
	t.Helper()
	items, err := a.scan(ctx, "member#")
	if err != nil {
		t.Fatal(err)
	}
	var out []MemberItem
	for _, it := range items {
		out = append(out, MemberItem{PK: it.PK, Kind: it.TargetType, Account: it.Account, IAMUser: it.IAMUser, Group: it.Group, GrantIDs: it.Grants, Dirty: it.DuePK == "DIRTY"})
	}
	return out
}

// snapshot reads the groups, each in its own account, between two scans.
func (a *awsClients) snapshot(ctx context.Context, t *testing.T, groups []Place) Snapshot {
	t.Helper()
	s := Snapshot{T0: time.Now(), IAM: map[Place][]string{}, Expiring: map[string]bool{}}
	s.Before = a.grantsNow(ctx, t, s.Expiring)
	s.T1 = time.Now()
	for _, p := range groups {
		m, err := a.readPlace(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		s.IAM[p] = m
	}
	s.After = a.grantsNow(ctx, t, s.Expiring)
	s.T2 = time.Now()
	return s
}

func groupMembers(ctx context.Context, c *iam.Client, group string) ([]string, error) {
	var out []string
	p := iam.NewGetGroupPaginator(c, &iam.GetGroupInput{GroupName: aws.String(group)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("get group %s: %w", group, err)
		}
		for _, u := range page.Users {
			out = append(out, aws.ToString(u.UserName))
		}
	}
	return out, nil
}

// drain receives and deletes everything in a queue, three receivers at
// once, until it answers empty and counts nothing in it, visible, in
// flight or delayed (every replica has stopped: nothing adds to it).
func (a *awsClients) drain(ctx context.Context, url string) ([]sqstypes.Message, error) {
	var mu sync.Mutex
	var out []sqstypes.Message
	var errs []error
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			got, err := a.drainOne(ctx, url)
			mu.Lock()
			defer mu.Unlock()
			out, errs = append(out, got...), append(errs, err)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (a *awsClients) drainOne(ctx context.Context, url string) ([]sqstypes.Message, error) {
	var out []sqstypes.Message
	for {
		got, err := a.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, VisibilityTimeout: 120, MessageAttributeNames: []string{"All"}})
		if err != nil {
			return nil, fmt.Errorf("drain %s: %w", url, err)
		}
		if len(got.Messages) == 0 {
			n, err := a.count(ctx, url)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return out, nil
			}
			continue
		}
		out = append(out, got.Messages...)
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range got.Messages {
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if _, err := a.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: del}); err != nil {
			return nil, fmt.Errorf("delete from %s: %w", url, err)
		}
	}
}

func (a *awsClients) drainResults(ctx context.Context, t *testing.T) []events.Result {
	t.Helper()
	var out []events.Result
	msgs, err := a.drain(ctx, a.stack.ResultsQueueURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		var env struct {
			DetailType string        `json:"detail-type"`
			Source     string        `json:"source"`
			Detail     events.Result `json:"detail"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
			t.Errorf("result event is not JSON: %v: %s", err, aws.ToString(m.Body))
			continue
		}
		if env.DetailType != env.Detail.DetailType {
			t.Errorf("result event detail-type %q but detail says %q", env.DetailType, env.Detail.DetailType)
		}
		out = append(out, env.Detail)
	}
	return out
}

// dlqMessages reads what drain took from the DLQ.
func dlqMessages(msgs []sqstypes.Message) []DLQMessage {
	var out []DLQMessage
	for _, m := range msgs {
		d := DLQMessage{Body: aws.ToString(m.Body)}
		if req, err := events.Decode([]byte(d.Body)); err == nil || req.SymEventID != "" {
			d.SymID = req.SymEventID
		}
		if v, ok := m.MessageAttributes[consumer.AttrCode]; ok {
			d.Code = aws.ToString(v.StringValue)
		}
		if v, ok := m.MessageAttributes[consumer.AttrError]; ok {
			d.Reason = aws.ToString(v.StringValue)
		}
		out = append(out, d)
	}
	return out
}

// monitor samples the overlap groups' members, each in its account or
// space, for invariant 5, and the Identity Center spaces' shared targets
// (copies, and invariant 9 over the run).
type monitor struct {
	aw     *awsClients
	groups []Place
	mu     sync.Mutex
	got    []Sample
}

func (m *monitor) run(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		for _, p := range m.groups {
			start := time.Now()
			members, err := m.aw.readPlace(ctx, p)
			if err != nil {
				continue
			}
			s := NewSample(p, start, time.Now(), members)
			m.mu.Lock()
			m.got = append(m.got, s)
			m.mu.Unlock()
		}
		sleep(ctx, every)
	}
}

func (m *monitor) samples() []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got)
}

func grepLog(path string, needles ...string) []string {
	var out []string
	err := eachLogLine(path, func(line []byte) {
		for _, n := range needles {
			if strings.Contains(string(line), n) && len(out) < 5 {
				out = append(out, clipped(string(line)))
			}
		}
	})
	if err != nil {
		out = append(out, "cannot read log: "+err.Error())
	}
	return out
}

// eachLogLine calls f on every line (up to 1 MiB) of the log at path.
func eachLogLine(path string, f func(line []byte)) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f(sc.Bytes())
	}
	return sc.Err()
}

// sweepFigures adds up what the replica's sweeps logged.
func sweepFigures(path string) (repaired, revoked int) {
	_ = eachLogLine(path, func(b []byte) {
		var line struct {
			Msg      string `json:"msg"`
			Repaired int    `json:"repaired"`
			Revoked  int    `json:"revoked"`
		}
		if json.Unmarshal(b, &line) == nil && line.Msg == "sweep" {
			repaired += line.Repaired
			revoked += line.Revoked
		}
	})
	return repaired, revoked
}

func renderMap[V int | int64](m map[string]V) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "%s=%v ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

// checkBackstops is the backstop's invariant: every membership with an
// active grant (expiring more than a few seconds from now) has its
// schedule, in the account whose chain changes it, firing no earlier than
// the membership's latest expiry plus the grace. It polls until that holds
// or deadline passes (the sweep's backstop check repairs what a kill left),
// and returns how many memberships it checked; none is a failure too: the
// check must not pass unexercised.
func (a *awsClients) checkBackstops(ctx context.Context, deadline time.Time) (int, error) {
	for {
		n, missing, err := a.unguarded(ctx)
		switch {
		case err != nil:
			return n, err
		case n == 0:
			return 0, errors.New("no active membership to check: not exercised")
		case len(missing) == 0:
			return n, nil
		case time.Now().After(deadline):
			return n, fmt.Errorf("%d of %d active memberships without their schedule, or with one too early: %s", len(missing), n, strings.Join(missing, "; "))
		}
		sleep(ctx, time.Second)
	}
}

// unguarded lists the active memberships whose schedule is missing or too
// early, of how many it checked.
func (a *awsClients) unguarded(ctx context.Context) (int, []string, error) {
	all, err := a.scanGrants(ctx)
	if err != nil {
		return 0, nil, err
	}
	soon := time.Now().Add(5 * time.Second) // about to expire: the sweeper's now
	latest := map[grants.Key]time.Time{}
	for _, s := range all {
		g := s.grant
		if g.State != grants.StateActive || !g.ExpiresAt.After(soon) {
			continue
		}
		k := g.Key()
		if k.Account == "" {
			k.Account = a.home // the store writes no account on the home account's grants
		}
		if g.ExpiresAt.After(latest[k]) {
			latest[k] = g.ExpiresAt
		}
	}
	var missing []string
	for k, exp := range latest {
		acct := k.Account
		if k.Kind != grants.IAMGroup {
			acct = a.home // Identity Center's account: the schedules are made there
		}
		b, err := a.backstopOf(acct)
		if err != nil {
			return 0, nil, err
		}
		s, ok, err := b.Get(ctx, k)
		switch {
		case err != nil:
			return 0, nil, err
		case !ok:
			missing = append(missing, k.String()+": no schedule")
		case s.At.Before(exp.Add(backstop.DefaultGrace)):
			missing = append(missing, fmt.Sprintf("%s: fires at %s, before its latest expiry %s + %s", k, s.At.Format(time.RFC3339), exp.Format(time.RFC3339Nano), backstop.DefaultGrace))
		}
	}
	slices.Sort(missing)
	return len(latest), missing, nil
}

// backstopOf reads account acct's schedules.
func (a *awsClients) backstopOf(acct string) (*backstop.Backstop, error) {
	cfg := a.cfg
	if acct != a.home {
		cfg = devstack.AccountConfig(a.cfg, acct)
	}
	return backstop.New(scheduler.NewFromConfig(cfg), backstop.Options{Group: a.stack.Backstop.Group, RoleARN: a.stack.Backstop.RoleARN})
}
