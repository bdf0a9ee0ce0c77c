package chaos

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// Scenario names: what a Sym event is part of, and so what it must lead to.
const (
	ScenPlain   = "plain"    // escalate, maybe duplicated, maybe deescalated later
	ScenReorder = "reorder"  // deescalate sent seconds before its escalate
	ScenStale   = "stale"    // escalate whose expiry has already passed
	ScenOverlap = "overlap"  // two grants, one (user, group): a long one and a short or deescalated one
	ScenUnknown = "unknown"  // requester maps to no IAM user
	ScenOutside = "outside"  // group outside IAMJIT_GROUP_PATH
	ScenNoise   = "noise"    // prompt, request, approve, deny: acknowledged, no result
	ScenPoison  = "poison"   // a body with no Sym id: the DLQ, with a reason
	ScenHot     = "hot"      // a burst of grants on one (user, group), some deescalated: replicas race on one membership
	TypeEsc     = "escalate" // Sym event types used here
	TypeDeesc   = "deescalate"
)

// User is an IAM user the test creates, tagged with its email.
type User struct {
	Name  string
	Email string
}

// Cast is who and what the workload talks about.
type Cast struct {
	Users         []User
	Groups        []string // managed (/sym/) groups shared by every scenario
	OverlapGroups []string // managed groups used only by overlap scenarios
	OutsideGroup  string   // a group outside the managed path
}

// NewCast names users u01.. and groups for prefix.
func NewCast(prefix string, users, groups, overlapGroups int) Cast {
	c := Cast{OutsideGroup: prefix + "-outside"}
	for i := 1; i <= users; i++ {
		c.Users = append(c.Users, User{Name: fmt.Sprintf("%s-u%02d", prefix, i), Email: fmt.Sprintf("u%02d@chaos.example", i)})
	}
	for i := 1; i <= groups; i++ {
		c.Groups = append(c.Groups, fmt.Sprintf("%s-g%d", prefix, i))
	}
	for i := 1; i <= overlapGroups; i++ {
		c.OverlapGroups = append(c.OverlapGroups, fmt.Sprintf("%s-ov%d", prefix, i))
	}
	return c
}

// Event is one Sym event of the plan.
type Event struct {
	SymID     string
	Type      string // escalate, deescalate, or a non-actionable type
	Scenario  string
	Role      string // overlap: "long" or "short"; else ""
	GrantID   string
	User      string // IAM user ("" when unknown)
	Email     string
	Group     string
	Timestamp time.Time
	Duration  int64 // seconds
	Body      string
	Copies    int // how many times it is sent
	// Pair is the other grant of an overlap scenario.
	Pair string
	// DupDelays are the SQS delays of a scripted event's extra copies.
	DupDelays []int32
}

// Stamp dates the event ts (when a script sends it) and renders its body
// again, with any change made to it since it was planned.
func (e *Event) Stamp(ts time.Time) {
	e.Timestamp = ts.UTC()
	e.Body = body(e)
}

// Grants reports whether the event can leave a grant behind: an escalate
// the service may accept.
func (e *Event) Grants() bool {
	return e.Type == TypeEsc && (e.Scenario == ScenPlain || e.Scenario == ScenReorder || e.Scenario == ScenOverlap || e.Scenario == ScenHot)
}

// Expires is when the grant an escalate asks for ends.
func (e *Event) Expires() time.Time { return e.Timestamp.Add(time.Duration(e.Duration) * time.Second) }

// Send is one SQS message of the plan: At after the start, with Delay.
type Send struct {
	At    time.Duration
	Delay int32 // SQS DelaySeconds
	Event *Event
}

// Script is a scenario whose events go out as the state allows, not at
// planned times, so that what its check needs happens however slow the
// emulator is. The test's driver sends them:
//   - overlap (Events: long, short[, deescalate of short]): the long
//     escalate; the short one once the long grant is ACTIVE, timed to end
//     well before it; the deescalate once the short grant is ACTIVE;
//   - reorder (Events: deescalate, escalate): the deescalate; the escalate
//     once its tombstone is in the table.
type Script struct {
	At       time.Duration // when the first event goes out
	Scenario string
	Events   []*Event
	Pause    time.Duration // between a state being reached and the next event
}

// Workload is the whole plan.
type Workload struct {
	Cast    Cast
	Events  []*Event
	Sends   []Send // ordered by At
	Scripts []*Script
	Start   time.Time

	g     *gen
	pairs [][2]string // overlap (user, group) pairs not used yet
}

// WorkloadOptions size the plan.
type WorkloadOptions struct {
	Events int           // roughly how many distinct Sym events
	Spread time.Duration // scenarios start uniformly within it
	Seed   uint64
}

// NewWorkload plans the events for a run starting at start. Timestamps are
// the planned send times (UTC) so that durations are meaningful.
func NewWorkload(cast Cast, start time.Time, o WorkloadOptions) *Workload {
	w := &Workload{Cast: cast, Start: start.UTC()}
	g := &gen{w: w, rng: rand.New(rand.NewPCG(o.Seed, o.Seed+1)), spread: o.Spread}
	w.g = g
	// Overlap pairs are dedicated: each (user, overlap group) is used once,
	// so nothing else moves that membership while the check samples it.
	for _, grp := range cast.OverlapGroups {
		for _, u := range cast.Users {
			w.pairs = append(w.pairs, [2]string{u.Name, grp})
		}
	}
	g.rng.Shuffle(len(w.pairs), func(i, j int) { w.pairs[i], w.pairs[j] = w.pairs[j], w.pairs[i] })
	g.poison()
	g.poison()
	for len(w.Events) < o.Events {
		switch r := g.rng.Float64(); {
		case r < 0.32:
			g.plain()
		case r < 0.42:
			g.hot()
		case r < 0.56:
			// Most wait for their tombstone; some race, as planned sends.
			if g.rng.IntN(4) == 0 {
				g.reorder()
			} else {
				g.reorderScript(g.at())
			}
		case r < 0.64:
			g.stale()
		case r < 0.78 && len(w.pairs) > 0:
			// In the first half of the spread, before a slow emulator's
			// backlog grows: its three events pass through the queue one
			// after another.
			g.overlap(g.at()/2, 40*time.Second, g.rng.IntN(2) == 0)
		case r < 0.88:
			g.noise()
		case r < 0.94:
			g.unknown()
		default:
			g.outside()
		}
	}
	sort.SliceStable(w.Sends, func(i, j int) bool { return w.Sends[i].At < w.Sends[j].At })
	return w
}

// AddOverlap plans one more overlap script on an unused pair, starting at
// now, its long grant lasting long to long+10s, its short one ended by a
// deescalate (which, unlike an expiry, does not wait for a sweeper that a
// loaded emulator slows down); nil when every pair is used.
func (w *Workload) AddOverlap(now time.Time, long time.Duration) *Script {
	if len(w.pairs) == 0 {
		return nil
	}
	return w.g.overlap(now.Sub(w.Start), long, true)
}

// AddReorder plans one more reorder script, starting at now.
func (w *Workload) AddReorder(now time.Time) *Script {
	return w.g.reorderScript(now.Sub(w.Start))
}

// AddTail plans n more escalates on the shared pairs, timestamped now and
// lasting dur, a third of them deescalated a moment later. Sent once the
// queue has drained, they are what the mid-point check sees still active.
func (w *Workload) AddTail(now time.Time, n int, dur time.Duration, seed uint64) []Send {
	g := &gen{w: w, rng: rand.New(rand.NewPCG(seed, seed+2)), n: len(w.Events) + 10000}
	first := len(w.Sends)
	base := now.Sub(w.Start)
	for i := range n {
		at := base + time.Duration(g.rng.Int64N(int64(time.Second)))
		e := g.escalate(ScenPlain, g.grant(), g.user(), g.group(), w.Start.Add(at), int64(dur/time.Second))
		g.add(e, at, 0.5)
		if i%3 == 0 {
			dAt := at + g.secs(1, 2)
			g.add(g.deescalate(e, w.Start.Add(dAt)), dAt, 0.3)
		}
	}
	tail := append([]Send(nil), w.Sends[first:]...)
	sort.SliceStable(tail, func(i, j int) bool { return tail[i].At < tail[j].At })
	return tail
}

type gen struct {
	w      *Workload
	rng    *rand.Rand
	spread time.Duration
	n      int
}

func (g *gen) id(kind string) string {
	g.n++
	return fmt.Sprintf("chaos-%s-%04d-%08x", kind, g.n, g.rng.Uint32())
}

func (g *gen) at() time.Duration { return time.Duration(g.rng.Int64N(int64(g.spread) + 1)) }

func (g *gen) secs(lo, hi int) time.Duration {
	return time.Duration(lo)*time.Second + time.Duration(g.rng.Int64N(int64(hi-lo)*int64(time.Second)+1))
}

func (g *gen) user() User { return g.w.Cast.Users[g.rng.IntN(len(g.w.Cast.Users))] }

func (g *gen) group() string { return g.w.Cast.Groups[g.rng.IntN(len(g.w.Cast.Groups))] }

// grant starts a new run SRN.
func (g *gen) grant() string { return g.id("run") }

// add records e and schedules its copies: the first at at, duplicates a
// little later or with an SQS delay.
func (g *gen) add(e *Event, at time.Duration, dupP float64) {
	e.Body = body(e)
	e.Copies = 1
	g.w.Events = append(g.w.Events, e)
	g.w.Sends = append(g.w.Sends, Send{At: at, Event: e})
	if g.rng.Float64() < dupP {
		extra := 1 + g.rng.IntN(2)
		for range extra {
			e.Copies++
			s := Send{At: at, Event: e}
			if g.rng.IntN(2) == 0 {
				s.Delay = int32(1 + g.rng.IntN(5))
			} else {
				s.At += g.secs(0, 3)
			}
			g.w.Sends = append(g.w.Sends, s)
		}
	}
}

func (g *gen) escalate(scen, grantID string, u User, group string, ts time.Time, dur int64) *Event {
	// iamjit's grant id is run.srn + "/" + fields.target_id.
	return &Event{SymID: g.id("esc"), Type: TypeEsc, Scenario: scen, GrantID: grantID + "/t-" + group, User: u.Name, Email: u.Email,
		Group: group, Timestamp: ts, Duration: dur}
}

func (g *gen) deescalate(esc *Event, ts time.Time) *Event {
	return &Event{SymID: g.id("deesc"), Type: TypeDeesc, Scenario: esc.Scenario, Role: esc.Role, GrantID: esc.GrantID,
		User: esc.User, Email: esc.Email, Group: esc.Group, Timestamp: ts, Duration: esc.Duration}
}

func (g *gen) plain() {
	at := g.at()
	e := g.escalate(ScenPlain, g.grant(), g.user(), g.group(), g.w.Start.Add(at), int64(6+g.rng.IntN(25)))
	g.add(e, at, 0.5)
	if g.rng.Float64() < 0.4 {
		dAt := at + g.secs(1, 4)
		g.add(g.deescalate(e, g.w.Start.Add(dAt)), dAt, 0.3)
	}
}

// hot sends five grants for one (user, group) within half a second, with
// different expiries, and deescalates two of them a moment later, so that
// several replicas write and converge the same membership at once.
func (g *gen) hot() {
	at := g.at()
	u, grp := g.user(), g.group()
	for i := range 5 {
		eAt := at + time.Duration(g.rng.Int64N(int64(500*time.Millisecond)))
		e := g.escalate(ScenHot, g.grant(), u, grp, g.w.Start.Add(eAt), int64(8+g.rng.IntN(20)))
		g.add(e, eAt, 0.3)
		if i < 2 {
			dAt := eAt + g.secs(1, 3)
			g.add(g.deescalate(e, g.w.Start.Add(dAt)), dAt, 0.3)
		}
	}
}

// scripted records e as part of a script: its copies go out together, the
// extra ones with an SQS delay.
func (g *gen) scripted(e *Event, dupP float64) {
	e.Body = body(e)
	e.Copies = 1
	g.w.Events = append(g.w.Events, e)
	if g.rng.Float64() < dupP {
		for range 1 + g.rng.IntN(2) {
			e.Copies++
			e.DupDelays = append(e.DupDelays, int32(1+g.rng.IntN(5)))
		}
	}
}

func (g *gen) reorderScript(at time.Duration) *Script {
	// Long enough that no backlog makes the late escalate "expired": the
	// tombstone must be what refuses it. It is never granted, so it adds
	// nothing to the wait for every grant to end.
	e := g.escalate(ScenReorder, g.grant(), g.user(), g.group(), g.w.Start.Add(at), int64(60+g.rng.IntN(30)))
	d := g.deescalate(e, g.w.Start.Add(at))
	g.scripted(d, 0.3)
	g.scripted(e, 0.3)
	s := &Script{At: at, Scenario: ScenReorder, Events: []*Event{d, e}, Pause: g.secs(0, 1)}
	g.w.Scripts = append(g.w.Scripts, s)
	return s
}

func (g *gen) reorder() {
	dAt := g.at()
	eAt := dAt + g.secs(3, 6)
	e := g.escalate(ScenReorder, g.grant(), g.user(), g.group(), g.w.Start.Add(eAt), int64(15+g.rng.IntN(15)))
	g.add(g.deescalate(e, g.w.Start.Add(dAt)), dAt, 0.3)
	g.add(e, eAt, 0.3)
}

func (g *gen) stale() {
	at := g.at()
	dur := int64(5 + g.rng.IntN(25))
	ts := g.w.Start.Add(at).Add(-time.Duration(dur)*time.Second - g.secs(20, 120))
	g.add(g.escalate(ScenStale, g.grant(), g.user(), g.group(), ts, dur), at, 0.3)
}

// overlap plans two grants on the next dedicated pair: a long one and a
// short one that ends, by a deescalate or else by expiry, while the long
// one is still active (the driver times it).
func (g *gen) overlap(at, longDur time.Duration, deescalated bool) *Script {
	pair := g.w.pairs[0]
	g.w.pairs = g.w.pairs[1:]
	var u User
	for _, c := range g.w.Cast.Users {
		if c.Name == pair[0] {
			u = c
		}
	}
	long := g.escalate(ScenOverlap, g.grant(), u, pair[1], g.w.Start.Add(at), int64(longDur/time.Second)+int64(g.rng.IntN(10)))
	long.Role = "long"
	// Planned durations; the driver sets the short one's when it sends it.
	short := g.escalate(ScenOverlap, g.grant(), u, pair[1], g.w.Start.Add(at), int64(8+g.rng.IntN(5)))
	short.Role = "short"
	long.Pair, short.Pair = short.GrantID, long.GrantID
	g.scripted(long, 0.3)
	s := &Script{At: at, Scenario: ScenOverlap, Events: []*Event{long, short}, Pause: g.secs(1, 3)}
	if deescalated {
		short.Duration = 20 // ended early by a deescalate
		g.scripted(short, 0.3)
		d := g.deescalate(short, g.w.Start.Add(at))
		g.scripted(d, 0.3)
		s.Events = append(s.Events, d)
	} else {
		g.scripted(short, 0.3)
	}
	g.w.Scripts = append(g.w.Scripts, s)
	return s
}

func (g *gen) noise() {
	at := g.at()
	types := []string{"prompt", "request", "approve", "deny"}
	e := g.escalate(ScenNoise, g.grant(), g.user(), g.group(), g.w.Start.Add(at), 10)
	e.Type = types[g.rng.IntN(len(types))]
	g.add(e, at, 0.3)
}

func (g *gen) unknown() {
	at := g.at()
	u := User{Email: fmt.Sprintf("nobody%d@chaos.example", g.rng.IntN(1000))}
	// Long enough that only the identity can be why it is refused.
	g.add(g.escalate(ScenUnknown, g.grant(), u, g.group(), g.w.Start.Add(at), 3600), at, 0.3)
}

func (g *gen) outside() {
	at := g.at()
	g.add(g.escalate(ScenOutside, g.grant(), g.user(), g.w.Cast.OutsideGroup, g.w.Start.Add(at), 3600), at, 0.3)
}

func (g *gen) poison() {
	at := g.at()
	e := &Event{SymID: g.id("poison"), Type: "poison", Scenario: ScenPoison}
	g.w.Events = append(g.w.Events, e)
	e.Copies = 1
	// Valid JSON, no Sym id: nothing to answer to, so it goes to the DLQ.
	e.Body = fmt.Sprintf(`{"version":"0","id":%q,"detail-type":"SymLogEntry","source":"sym","detail":{"meta":{"schema_version":6}}}`, e.SymID)
	g.w.Sends = append(g.w.Sends, Send{At: at, Event: e})
}

// body renders e as an EventBridge envelope around a SymLogEntry, as the
// rule on the Sym bus delivers it.
func body(e *Event) string {
	srn, target, _ := cutLast(e.GrantID, "/")
	actor := func(email string) map[string]any {
		return map[string]any{"user": "chaos:user:normal:" + email + ":latest", "name": "", "username": email}
	}
	entry := map[string]any{
		"id":   e.SymID,
		"meta": map[string]any{"schema_version": 6},
		"run": map[string]any{
			"srn": srn, "flow": "chaos:flow:iam:1.0.0",
			"actors": map[string]any{"request": actor(e.Email), "approve": actor("approver@chaos.example")},
		},
		"event": map[string]any{
			"srn": "sym:event-spec:approval:1.0.0:" + e.Type, "type": e.Type, "template": "sym:template:approval:1.0.0",
			"timestamp": e.Timestamp.UTC().Format(time.RFC3339Nano), "channel": "slack",
		},
		"actor": actor("approver@chaos.example"),
		"fields": map[string]any{
			"reason": "chaos " + e.Scenario, "duration": e.Duration, "target_id": target,
			"target": map[string]any{"name": e.Group, "srn": "chaos:access_target:aws_iam_group:" + e.Group, "type": "aws_iam_group",
				"label": e.Group, "settings": map[string]string{"iam_group": e.Group}},
		},
		"type": "event",
	}
	env := map[string]any{
		"version": "0", "id": "env-" + e.SymID, "detail-type": "SymLogEntry", "source": "sym",
		"account": "123456789012", "time": e.Timestamp.UTC().Format(time.RFC3339), "region": "us-east-1",
		"resources": []string{}, "detail": entry,
	}
	b, _ := json.Marshal(env)
	return string(b)
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// Figures counts the plan.
func (w *Workload) Figures() (events, messages, duplicates int, byScenario map[string]int) {
	byScenario = map[string]int{}
	for _, e := range w.Events {
		byScenario[e.Scenario+"/"+e.Type]++
		duplicates += e.Copies - 1
	}
	return len(w.Events), len(w.Sends), duplicates, byScenario
}
