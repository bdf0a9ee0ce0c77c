package chaos

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/iamjit/iamjit/grants"
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
	ScenAbsent  = "absent"   // a member account's group ARN with a name only the home account has: unknown_group
	ScenForeign = "foreign"  // a group ARN of an account iamjit does not serve: foreign_account
	TypeEsc     = "escalate" // Sym event types used here
	TypeDeesc   = "deescalate"
)

// User is an IAM user the test creates, tagged with its email.
type User struct {
	Name  string
	Email string
}

// ForeignAccount is an account iamjit does not serve (not in
// IAMJIT_ACCOUNTS): a group ARN naming it is refused as foreign_account.
const ForeignAccount = "333333333333"

// MemberShare is the share of the IAM scenarios played in a member
// account, when the cast has one.
const MemberShare = 1.0 / 3

// SSOShare is the share of scenarios played on Identity Center targets,
// when the cast has Identity Center spaces.
const SSOShare = 1.0 / 3

// Account is one AWS account's IAM part of the cast, or one Identity
// Center space: the assignments of permission sets in one AWS account
// (Kind PermissionSet), or the Identity Store groups of the instance
// (Kind SSOGroup). A space's "users" are Identity Store user ids and its
// "groups" permission set ARNs or Identity Store group ids; everything the
// checks do per account they do per space, which is named by SpaceID.
type Account struct {
	ID            string // the AWS account id; SpaceID for an Identity Center space
	Kind          grants.Kind
	AWS           string // an Identity Center space's AWS account ("" for IAM: ID)
	Users         []User
	Groups        []string // managed (/sym/) groups shared by every scenario
	OverlapGroups []string // managed groups used only by overlap scenarios
	OutsideGroup  string   // a group outside the managed path (a target outside IAMJIT_SSO_*)
	// Decoys are IAM users without an email tag, named as the other
	// accounts' users: a request applied in the wrong account, or an email
	// mapped to a user in the wrong one, then finds a user of that name and
	// shows up in IAM, where the checks see it, instead of failing quietly.
	Decoys []string
}

// SpaceID names the Identity Center space of kind k in AWS account acct
// ("ps:<account>", "sg:<account>"); an IAM account is named by its id.
func SpaceID(k grants.Kind, acct string) string {
	switch k {
	case grants.PermissionSet:
		return "ps:" + acct
	case grants.SSOGroup:
		return "sg:" + acct
	}
	return acct
}

// AWSAccount is the AWS account of the account or space.
func (a Account) AWSAccount() string { return cmp.Or(a.AWS, a.ID) }

// IsSSO reports whether a is an Identity Center space.
func (a Account) IsSSO() bool { return a.Kind != grants.IAMGroup }

// Describe names group grp of a in messages.
func (a Account) Describe(grp string) string {
	switch a.Kind {
	case grants.PermissionSet:
		return "the assignments of permission set " + grp + " in account " + a.AWS
	case grants.SSOGroup:
		return "Identity Store group " + grp + " (instance of account " + a.AWS + ")"
	}
	return "IAM group " + grp + " of account " + a.ID
}

// Managed lists the groups iamjit may change in the account.
func (a Account) Managed() []string { return append(slices.Clone(a.Groups), a.OverlapGroups...) }

// HasUser reports whether name is one of the account's (tagged) users.
func (a Account) HasUser(name string) bool {
	return slices.ContainsFunc(a.Users, func(u User) bool { return u.Name == name })
}

// ARN is the ARN of the account's group name (under /other/ for the
// outside group, /sym/ otherwise).
func (a Account) ARN(group string) string {
	path := "/sym/"
	if group == a.OutsideGroup {
		path = "/other/"
	}
	return GroupARN(a.ID, path, group)
}

// GroupARN is IAM's ARN of a group.
func GroupARN(account, path, name string) string {
	return "arn:aws:iam::" + account + ":group" + path + name
}

// Cast is who and what the workload talks about: the home account (the
// embedded Account) and the member accounts, whose groups have the home
// groups' names and whose users have the home users' emails under other
// names (requests name their groups by ARN).
type Cast struct {
	Account
	Members []Account
	SSO     []Account // Identity Center spaces
}

// NewCast names users u01.. and groups for prefix in the home account.
func NewCast(prefix, home string, users, groups, overlapGroups int) Cast {
	c := Cast{Account: Account{ID: home, OutsideGroup: prefix + "-outside"}}
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

// Decoys is how many of each other account's user names every account gets
// as decoys (the first ones). Few: iamjit's tag:email lookup lists every
// user's tags in every account on each process start, so each user costs
// moto a call per restart.
const Decoys = 4

// WithMember adds member account id: the first users of the home users'
// emails, each named <home name>-<id>; the first groups and overlapGroups
// of the home groups' names; an outside group of the same name. Every
// account gets the first Decoys user names of each other account as
// decoys.
func (c Cast) WithMember(id string, users, groups, overlapGroups int) Cast {
	m := Account{ID: id, OutsideGroup: c.OutsideGroup,
		Groups: slices.Clone(c.Groups[:min(groups, len(c.Groups))]), OverlapGroups: slices.Clone(c.OverlapGroups[:min(overlapGroups, len(c.OverlapGroups))])}
	for _, u := range c.Users[:min(users, len(c.Users))] {
		m.Users = append(m.Users, User{Name: u.Name + "-" + id, Email: u.Email})
	}
	c.Members = append(slices.Clone(c.Members), m)
	all := c.IAMAccounts()
	for i := range all {
		var decoys []string
		for j, other := range all {
			if j != i {
				for _, u := range other.Users[:min(Decoys, len(other.Users))] {
					decoys = append(decoys, u.Name)
				}
			}
		}
		all[i].Decoys = decoys
	}
	c.Account, c.Members = all[0], all[1:]
	return c
}

// WithSSO adds an Identity Center space of kind k in AWS account acct.
func (c Cast) WithSSO(k grants.Kind, acct string, users []User, groups, overlapGroups []string, outside string) Cast {
	c.SSO = append(slices.Clone(c.SSO), Account{ID: SpaceID(k, acct), Kind: k, AWS: acct, Users: slices.Clone(users),
		Groups: slices.Clone(groups), OverlapGroups: slices.Clone(overlapGroups), OutsideGroup: outside})
	return c
}

// Accounts lists the home account first, then the members, then the
// Identity Center spaces.
func (c Cast) Accounts() []Account {
	return append(c.IAMAccounts(), c.SSO...)
}

// IAMAccounts lists the home account first, then the members.
func (c Cast) IAMAccounts() []Account { return append([]Account{c.Account}, c.Members...) }

// Space is the account or space of a grant of kind k in AWS account acct
// ("" the home account).
func (c Cast) Space(k grants.Kind, acct string) string { return SpaceID(k, cmp.Or(acct, c.ID)) }

// Find returns the account of id.
func (c Cast) Find(id string) (Account, bool) {
	for _, a := range c.Accounts() {
		if a.ID == id {
			return a, true
		}
	}
	return Account{}, false
}

// IsMember reports whether id is one of the member accounts.
func (c Cast) IsMember(id string) bool {
	return slices.ContainsFunc(c.Members, func(a Account) bool { return a.ID == id })
}

// Event is one Sym event of the plan.
type Event struct {
	SymID    string
	Type     string // escalate, deescalate, or a non-actionable type
	Scenario string
	Role     string // overlap: "long" or "short"; else ""
	GrantID  string
	User     string // IAM user ("" when unknown)
	Email    string
	Group    string // the group's name
	Account  string // the group's account (the cast's home id, a member's, or ForeignAccount), or its Identity Center space
	ARN      string // when set, the request names the group by this ARN, not by Group
	// Identity Center: the target's kind, the account a permission set is
	// assigned in (AWS), and whether the target is a custom one naming
	// the kind by its settings.
	Kind      grants.Kind
	AWS       string
	Custom    bool
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

// Target is what the request puts in fields.target.settings.iam_group.
func (e *Event) Target() string {
	if e.ARN != "" {
		return e.ARN
	}
	return e.Group
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
//   - overlap (Events: long, short[, deescalate of short[, deescalate of
//     long]]): the long escalate; the short one once the long grant is
//     ACTIVE, timed to end well before it; the deescalate once the short
//     grant is ACTIVE; the long one's once the overlap has been sampled;
//   - reorder (Events: deescalate, escalate): the deescalate; the escalate
//     once its tombstone is in the table.
type Script struct {
	At       time.Duration // when the first event goes out
	Scenario string
	Events   []*Event
	Pause    time.Duration // between a state being reached and the next event
}

// Account is the account of the script's group.
func (s *Script) Account() string { return s.Events[0].Account }

// Workload is the whole plan.
type Workload struct {
	Cast    Cast
	Events  []*Event
	Sends   []Send // ordered by At
	Scripts []*Script
	Start   time.Time

	g     *gen
	pairs []pair // overlap pairs not used yet
	// mu serialises the Add methods, which the harness calls from more
	// than one goroutine once the planned sends are out.
	mu sync.Mutex
}

// pair is one (account, user, overlap group) membership.
type pair struct {
	acct  Account
	user  User
	group string
}

// WorkloadOptions size the plan.
type WorkloadOptions struct {
	Events int           // roughly how many distinct Sym events
	Spread time.Duration // scenarios start uniformly within it
	Seed   uint64
}

// NewWorkload plans the events for a run starting at start. Timestamps are
// the planned send times (UTC) so that durations are meaningful. A share
// MemberShare of the scenarios is played in the cast's member accounts,
// each kind that has a meaning there.
func NewWorkload(cast Cast, start time.Time, o WorkloadOptions) *Workload {
	w := &Workload{Cast: cast, Start: start.UTC()}
	g := &gen{w: w, rng: rand.New(rand.NewPCG(o.Seed, o.Seed+1)), spread: o.Spread}
	w.g = g
	// Overlap pairs are dedicated: each (account, user, overlap group) is
	// used once, so nothing else moves that membership while the check
	// samples it.
	for _, a := range cast.Accounts() {
		for _, grp := range a.OverlapGroups {
			for _, u := range a.Users {
				w.pairs = append(w.pairs, pair{a, u, grp})
			}
		}
	}
	g.rng.Shuffle(len(w.pairs), func(i, j int) { w.pairs[i], w.pairs[j] = w.pairs[j], w.pairs[i] })
	g.poison()
	g.poison()
	for len(w.Events) < o.Events {
		a := g.acct()
		switch r := g.rng.Float64(); {
		case r < 0.32:
			g.plain(a)
		case r < 0.42:
			g.hot(a)
		case r < 0.56:
			// Most wait for their tombstone; some race, as planned sends.
			if g.rng.IntN(4) == 0 {
				g.reorder(a)
			} else {
				g.reorderScript(a, g.at())
			}
		case r < 0.63:
			g.stale(a)
		case r < 0.77 && w.hasPair(a.ID):
			// In the first half of the spread, before a slow emulator's
			// backlog grows: its three events pass through the queue one
			// after another.
			g.overlap(w.takePair(a.ID), g.at()/2, 30*time.Second, g.rng.IntN(2) == 0)
		case r < 0.85:
			g.noise(a)
		case r < 0.90:
			g.unknown(a)
		case r < 0.94:
			g.outside(a)
		case r < 0.97 && len(cast.Members) > 0:
			g.absent()
		case len(cast.Members) > 0:
			g.foreign()
		default:
			g.unknown(a)
		}
	}
	// Every account gets a scripted overlap and reorder, whatever the draw.
	for _, a := range cast.Accounts() {
		if !w.hasScript(ScenOverlap, a.ID) && w.hasPair(a.ID) {
			g.overlap(w.takePair(a.ID), g.at()/2, 30*time.Second, g.rng.IntN(2) == 0)
		}
		if !w.hasScript(ScenReorder, a.ID) {
			g.reorderScript(a, g.at())
		}
	}
	sort.SliceStable(w.Sends, func(i, j int) bool { return w.Sends[i].At < w.Sends[j].At })
	return w
}

func (w *Workload) hasScript(scen, id string) bool {
	return slices.ContainsFunc(w.Scripts, func(s *Script) bool { return s.Scenario == scen && s.Account() == id })
}

// hasPair reports whether an overlap pair of account id ("" any) is left.
func (w *Workload) hasPair(id string) bool {
	return slices.ContainsFunc(w.pairs, func(p pair) bool { return id == "" || p.acct.ID == id })
}

// takePair uses the next overlap pair of account id ("" any).
func (w *Workload) takePair(id string) pair {
	i := slices.IndexFunc(w.pairs, func(p pair) bool { return id == "" || p.acct.ID == id })
	p := w.pairs[i]
	w.pairs = slices.Delete(w.pairs, i, i+1)
	return p
}

// AddOverlap plans one more overlap script on an unused pair of account
// id ("" any), starting at now, its long grant lasting long to long+10s,
// its short one ended by a deescalate (which, unlike an expiry, does not
// wait for a sweeper that a loaded emulator slows down), and its long one
// too, once the overlap has been sampled (the run need not wait for it);
// nil when every such pair is used.
func (w *Workload) AddOverlap(id string, now time.Time, long time.Duration) *Script {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.hasPair(id) {
		return nil
	}
	s := w.g.overlap(w.takePair(id), now.Sub(w.Start), long, true)
	d := w.g.deescalate(s.Events[0], now)
	w.g.scripted(d, 0)
	s.Events = append(s.Events, d)
	return s
}

// AddReorder plans one more reorder script in account id, starting at
// now; nil when the cast has no such account.
func (w *Workload) AddReorder(id string, now time.Time) *Script {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.Cast.Find(id)
	if !ok {
		return nil
	}
	return w.g.reorderScript(a, now.Sub(w.Start))
}

// AddTail plans n more escalates in the accounts and spaces of in (all
// of the cast's when nil), round robin, timestamped now and lasting dur;
// each one's first on its first group, never deescalated, and every other
// later one deescalated a moment later.
// Sent once the queue has drained, they are what the mid-point check sees
// still active, in every account and space.
func (w *Workload) AddTail(now time.Time, n int, dur time.Duration, seed uint64, in []Account) []Send {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := &gen{w: w, rng: rand.New(rand.NewPCG(seed, seed+2)), n: len(w.Events) + 10000}
	if in == nil {
		in = w.Cast.Accounts()
	}
	first := len(w.Sends)
	base := now.Sub(w.Start)
	for i := range n {
		a := in[i%len(in)]
		grp := g.group(a)
		if i < len(in) {
			// The group whose members may assume the account's /jit/ role:
			// a membership of it ends in every account.
			grp = a.Groups[0]
		}
		at := base + time.Duration(g.rng.Int64N(int64(time.Second)))
		e := g.escalate(ScenPlain, g.grant(), a, g.user(a), grp, w.Start.Add(at), int64(dur/time.Second))
		g.add(e, at, 0.5)
		if i >= len(in) && i%2 == 0 {
			dAt := at + g.secs(1, 2)
			g.add(g.deescalate(e, w.Start.Add(dAt)), dAt, 0.3)
		}
	}
	tail := append([]Send(nil), w.Sends[first:]...)
	sort.SliceStable(tail, func(i, j int) bool { return tail[i].At < tail[j].At })
	return tail
}

// EndGrants plans, now, a deescalate of every escalate of sends that has
// none among them: grants ended on a quiet queue, at once, rather than by
// an expiry the sweeper handles up to its interval later. Each is sent
// once: a duplicate would converge the membership again before the
// read-back of its removal (the late adder's chance).
func (w *Workload) EndGrants(now time.Time, sends []Send) []Send {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := &gen{w: w, rng: rand.New(rand.NewPCG(uint64(len(w.Events)), 3)), n: len(w.Events) + 20000}
	ended := map[string]bool{}
	for _, s := range sends {
		if s.Event.Type == TypeDeesc {
			ended[s.Event.GrantID] = true
		}
	}
	first := len(w.Sends)
	at := now.Sub(w.Start)
	for _, s := range sends {
		if e := s.Event; e.Type == TypeEsc && !ended[e.GrantID] {
			ended[e.GrantID] = true
			g.add(g.deescalate(e, now), at, 0)
		}
	}
	return append([]Send(nil), w.Sends[first:]...)
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

// acct picks the account a scenario plays in: an Identity Center space
// for a share SSOShare of them, a member account for a share MemberShare
// of the rest.
func (g *gen) acct() Account {
	if ss := g.w.Cast.SSO; len(ss) > 0 && g.rng.Float64() < SSOShare {
		return ss[g.rng.IntN(len(ss))]
	}
	if ms := g.w.Cast.Members; len(ms) > 0 && g.rng.Float64() < MemberShare {
		return ms[g.rng.IntN(len(ms))]
	}
	return g.w.Cast.Account
}

func (g *gen) user(a Account) User { return a.Users[g.rng.IntN(len(a.Users))] }

func (g *gen) group(a Account) string { return a.Groups[g.rng.IntN(len(a.Groups))] }

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

// escalate plans an escalate of u to group in account a. A member
// account's group is named by its ARN, as a request must; a home group by
// its name, or now and then by its ARN (which stays in the home account).
func (g *gen) escalate(scen, grantID string, a Account, u User, group string, ts time.Time, dur int64) *Event {
	e := &Event{SymID: g.id("esc"), Type: TypeEsc, Scenario: scen, User: u.Name, Email: u.Email,
		Group: group, Account: a.ID, Timestamp: ts, Duration: dur, Kind: a.Kind, AWS: a.AWS}
	target := "t-" + group
	switch {
	case a.IsSSO():
		// A permission set's ARN and a group id hold no "/" past the last.
		target = "t-" + strings.ReplaceAll(a.ID, ":", "-") + "-" + group[strings.LastIndex(group, "/")+1:]
		e.Custom = g.rng.IntN(3) == 0
	case g.w.Cast.IsMember(a.ID):
		e.ARN = a.ARN(group)
		target = "t-" + a.ID + "-" + group
	case g.rng.IntN(5) == 0:
		e.ARN = a.ARN(group)
	}
	// iamjit's grant id is run.srn + "/" + fields.target_id.
	e.GrantID = grantID + "/" + target
	return e
}

func (g *gen) deescalate(esc *Event, ts time.Time) *Event {
	return &Event{SymID: g.id("deesc"), Type: TypeDeesc, Scenario: esc.Scenario, Role: esc.Role, GrantID: esc.GrantID,
		User: esc.User, Email: esc.Email, Group: esc.Group, Account: esc.Account, ARN: esc.ARN, Timestamp: ts, Duration: esc.Duration,
		Kind: esc.Kind, AWS: esc.AWS, Custom: esc.Custom}
}

func (g *gen) plain(a Account) {
	at := g.at()
	e := g.escalate(ScenPlain, g.grant(), a, g.user(a), g.group(a), g.w.Start.Add(at), int64(6+g.rng.IntN(25)))
	g.add(e, at, 0.5)
	if g.rng.Float64() < 0.4 {
		dAt := at + g.secs(1, 4)
		g.add(g.deescalate(e, g.w.Start.Add(dAt)), dAt, 0.3)
	}
}

// hot sends five grants for one (user, group) within half a second, with
// different expiries, and deescalates two of them a moment later, so that
// several replicas write and converge the same membership at once.
func (g *gen) hot(a Account) {
	at := g.at()
	u, grp := g.user(a), g.group(a)
	for i := range 5 {
		eAt := at + time.Duration(g.rng.Int64N(int64(500*time.Millisecond)))
		e := g.escalate(ScenHot, g.grant(), a, u, grp, g.w.Start.Add(eAt), int64(8+g.rng.IntN(20)))
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

func (g *gen) reorderScript(a Account, at time.Duration) *Script {
	// Long enough that no backlog makes the late escalate "expired": the
	// tombstone must be what refuses it. It is never granted, so it adds
	// nothing to the wait for every grant to end.
	e := g.escalate(ScenReorder, g.grant(), a, g.user(a), g.group(a), g.w.Start.Add(at), int64(60+g.rng.IntN(30)))
	d := g.deescalate(e, g.w.Start.Add(at))
	g.scripted(d, 0.3)
	g.scripted(e, 0.3)
	s := &Script{At: at, Scenario: ScenReorder, Events: []*Event{d, e}, Pause: g.secs(0, 1)}
	g.w.Scripts = append(g.w.Scripts, s)
	return s
}

func (g *gen) reorder(a Account) {
	dAt := g.at()
	eAt := dAt + g.secs(3, 6)
	e := g.escalate(ScenReorder, g.grant(), a, g.user(a), g.group(a), g.w.Start.Add(eAt), int64(15+g.rng.IntN(15)))
	g.add(g.deescalate(e, g.w.Start.Add(dAt)), dAt, 0.3)
	g.add(e, eAt, 0.3)
}

func (g *gen) stale(a Account) {
	at := g.at()
	dur := int64(5 + g.rng.IntN(25))
	ts := g.w.Start.Add(at).Add(-time.Duration(dur)*time.Second - g.secs(20, 120))
	g.add(g.escalate(ScenStale, g.grant(), a, g.user(a), g.group(a), ts, dur), at, 0.3)
}

// overlap plans two grants on pair p: a long one and a short one that ends,
// by a deescalate or else by expiry, while the long one is still active
// (the driver times it).
func (g *gen) overlap(p pair, at, longDur time.Duration, deescalated bool) *Script {
	long := g.escalate(ScenOverlap, g.grant(), p.acct, p.user, p.group, g.w.Start.Add(at), int64(longDur/time.Second)+int64(g.rng.IntN(10)))
	long.Role = "long"
	// Planned durations; the driver sets the short one's when it sends it.
	// Both name the group the same way.
	short := g.escalate(ScenOverlap, g.grant(), p.acct, p.user, p.group, g.w.Start.Add(at), int64(8+g.rng.IntN(5)))
	short.Role, short.ARN = "short", long.ARN
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

func (g *gen) noise(a Account) {
	at := g.at()
	types := []string{"prompt", "request", "approve", "deny"}
	e := g.escalate(ScenNoise, g.grant(), a, g.user(a), g.group(a), g.w.Start.Add(at), 10)
	e.Type = types[g.rng.IntN(len(types))]
	g.add(e, at, 0.3)
}

// unknown asks for a requester who maps to no IAM user in the group's
// account: an email nobody has, or, in a member account, half the time the
// email of a user only the home account has (whom a lookup in the wrong
// account would find).
func (g *gen) unknown(a Account) {
	at := g.at()
	u := User{Email: fmt.Sprintf("nobody%d@chaos.example", g.rng.IntN(1000))}
	var homeOnly []User
	for _, h := range g.w.Cast.Users {
		if !slices.ContainsFunc(a.Users, func(m User) bool { return m.Email == h.Email }) {
			homeOnly = append(homeOnly, h)
		}
	}
	if len(homeOnly) > 0 && g.rng.IntN(2) == 0 {
		u = User{Email: homeOnly[g.rng.IntN(len(homeOnly))].Email}
	}
	// Long enough that only the identity can be why it is refused. In an
	// Identity Center space the home-only emails are those of IAM users
	// with no Identity Store user.
	g.add(g.escalate(ScenUnknown, g.grant(), a, u, g.group(a), g.w.Start.Add(at), 3600), at, 0.3)
}

// outside asks for a group outside the managed path, or an Identity
// Center target outside the allow-lists: the space's outside permission
// set or group, or (half the time) an allowed permission set in an
// account outside IAMJIT_SSO_ASSIGNMENT_ACCOUNTS.
func (g *gen) outside(a Account) {
	at := g.at()
	e := g.escalate(ScenOutside, g.grant(), a, g.user(a), a.OutsideGroup, g.w.Start.Add(at), 3600)
	if a.Kind == grants.PermissionSet && g.rng.IntN(2) == 0 {
		e.Group, e.AWS = a.Groups[0], ForeignAccount
	}
	g.add(e, at, 0.3)
}

// absent asks, by a member account's ARN, for a group name that only the
// home account has: unknown_group, never the home group of that name.
func (g *gen) absent() {
	m := g.w.Cast.Members[g.rng.IntN(len(g.w.Cast.Members))]
	var only []string
	for _, grp := range g.w.Cast.Managed() {
		if !slices.Contains(m.Managed(), grp) {
			only = append(only, grp)
		}
	}
	if len(only) == 0 {
		g.unknown(m)
		return
	}
	at := g.at()
	e := g.escalate(ScenAbsent, g.grant(), m, g.user(m), only[g.rng.IntN(len(only))], g.w.Start.Add(at), 3600)
	g.add(e, at, 0.3)
}

// foreign asks for a home group's name by an ARN of ForeignAccount.
func (g *gen) foreign() {
	at := g.at()
	a := g.w.Cast.Account
	e := g.escalate(ScenForeign, g.grant(), a, g.user(a), g.group(a), g.w.Start.Add(at), 3600)
	e.Account, e.ARN = ForeignAccount, GroupARN(ForeignAccount, "/sym/", e.Group)
	g.add(e, at, 0.3)
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
	ttype, settings := "aws_iam_group", map[string]string{"iam_group": e.Target()}
	switch e.Kind {
	case grants.PermissionSet:
		ttype, settings = string(e.Kind), map[string]string{"permission_set_arn": e.Group, "account_id": e.AWS}
	case grants.SSOGroup:
		ttype, settings = string(e.Kind), map[string]string{"group_id": e.Group}
	}
	if e.Custom {
		ttype = "custom"
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
			"target": map[string]any{"name": e.Group, "srn": "chaos:access_target:" + ttype + ":" + target, "type": ttype,
				"label": e.Group, "settings": settings},
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

// ByAccount counts the plan's events per account of their group, by
// scenario and type (poison bodies name no group and are left out).
func (w *Workload) ByAccount() map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, e := range w.Events {
		if e.Account == "" {
			continue
		}
		if out[e.Account] == nil {
			out[e.Account] = map[string]int{}
		}
		out[e.Account][e.Scenario+"/"+e.Type]++
	}
	return out
}
