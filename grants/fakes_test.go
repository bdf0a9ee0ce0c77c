package grants_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
)

// msTime is how grants/dynamo stores times: UTC, to the millisecond.
func msTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

// iamKey is a membership in one fake account's IAM.
type iamKey struct{ user, group string }

type memberRec struct {
	ids     map[string]bool
	token   string
	version int64
	dirty   bool
	dirtyAt time.Time
}

// fakeStore is grants.Store in memory with the same conditions, conflict
// reporting and index semantics as grants/dynamo: every method is one
// atomic step, as each is one DynamoDB transaction there.
type fakeStore struct {
	mu      sync.Mutex
	now     func() time.Time
	grants  map[string]grants.Grant
	due     map[string]bool // grant id -> in the expiry index
	members map[grants.Key]*memberRec
	events  map[string]grants.ProcessedEvent
	// rechecks: memberships a removal queued for its read-back, by token.
	rechecks map[grants.Key]string
	warned   map[string]bool // grants whose Access Expiring was sent

	dueCalls        int
	membershipReads int
	revokes         int // Revoke calls, refused ones included
	appends         int // AppendHistory calls
	// failDue, when set, is returned by Due (an unreadable index).
	failDue error
}

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{now: now, grants: map[string]grants.Grant{}, due: map[string]bool{},
		members: map[grants.Key]*memberRec{}, events: map[string]grants.ProcessedEvent{}, rechecks: map[grants.Key]string{}}
}

func cloneGrant(g grants.Grant) grants.Grant {
	g.History = slices.Clone(g.History)
	g.GrantedAt, g.ExpiresAt, g.RevokedAt = msTime(g.GrantedAt), msTime(g.ExpiresAt), msTime(g.RevokedAt)
	for i := range g.History {
		g.History[i].At = msTime(g.History[i].At)
	}
	return g
}

func cloneEvent(ev grants.ProcessedEvent) grants.ProcessedEvent {
	ev.At = msTime(ev.At)
	return ev
}

// memberWrite is memberUpdate: change the set, replace the token, mark dirty.
func (s *fakeStore) memberWrite(k grants.Key, grantID string, add bool, token string) {
	m := s.members[k]
	if m == nil {
		m = &memberRec{ids: map[string]bool{}}
		s.members[k] = m
	}
	if add {
		m.ids[grantID] = true
	} else {
		delete(m.ids, grantID)
	}
	m.token, m.version, m.dirty, m.dirtyAt = token, m.version+1, true, msTime(s.now())
}

func (s *fakeStore) Activate(_ context.Context, g grants.Grant, ev grants.ProcessedEvent, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// dynamo reports the event conflict first when both conditions fail.
	if old, ok := s.events[ev.SymEventID]; ok {
		return &grants.ConflictError{Event: &old}
	}
	if old, ok := s.grants[g.ID]; ok && old.State != grants.StateFailed {
		c := cloneGrant(old)
		return &grants.ConflictError{Grant: &c}
	}
	s.grants[g.ID] = cloneGrant(g)
	s.due[g.ID] = g.State == grants.StateActive
	s.memberWrite(g.Key(), g.ID, true, token)
	s.events[ev.SymEventID] = cloneEvent(ev)
	return nil
}

func (s *fakeStore) Revoke(_ context.Context, g grants.Grant, ev *grants.ProcessedEvent, token string, keepDue bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokes++
	if ev != nil {
		if old, ok := s.events[ev.SymEventID]; ok {
			return &grants.ConflictError{Event: &old}
		}
	}
	cur, ok := s.grants[g.ID]
	if !ok || cur.State != grants.StateActive {
		return grants.ErrNotActive
	}
	// Like the UpdateItem: only these attributes change.
	cur.State, cur.RevokedAt, cur.RevokeReason, cur.RevokeEventID = grants.StateRevoked, msTime(g.RevokedAt), g.RevokeReason, g.RevokeEventID
	cur.History = append(cur.History, grants.Transition{At: msTime(g.RevokedAt), Action: "revoke", State: grants.StateRevoked, SymEventID: g.RevokeEventID, Note: g.RevokeReason})
	s.grants[g.ID] = cur
	if !keepDue {
		s.due[g.ID] = false
	}
	s.memberWrite(g.Key(), g.ID, false, token)
	if ev != nil {
		s.events[ev.SymEventID] = cloneEvent(*ev)
	}
	return nil
}

func (s *fakeStore) Fail(_ context.Context, g grants.Grant, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.grants[g.ID]
	if !ok || cur.State != grants.StateActive || cur.SymEventID != g.SymEventID {
		return grants.ErrNotActive
	}
	cur.State, cur.RevokedAt, cur.RevokeReason = grants.StateFailed, msTime(g.RevokedAt), g.RevokeReason
	cur.History = append(cur.History, grants.Transition{At: msTime(g.RevokedAt), Action: "fail", State: grants.StateFailed, SymEventID: g.SymEventID})
	s.grants[g.ID] = cur
	s.due[g.ID] = false
	s.memberWrite(g.Key(), g.ID, false, token)
	delete(s.events, g.SymEventID)
	return nil
}

func (s *fakeStore) Tombstone(_ context.Context, g grants.Grant, ev grants.ProcessedEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.events[ev.SymEventID]; ok {
		return &grants.ConflictError{Event: &old}
	}
	if old, ok := s.grants[g.ID]; ok {
		c := cloneGrant(old)
		return &grants.ConflictError{Grant: &c}
	}
	s.grants[g.ID] = cloneGrant(g)
	s.due[g.ID] = g.State == grants.StateActive
	s.events[ev.SymEventID] = cloneEvent(ev)
	return nil
}

func (s *fakeStore) RecordEvent(_ context.Context, ev grants.ProcessedEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.events[ev.SymEventID]; ok {
		return &grants.ConflictError{Event: &old}
	}
	s.events[ev.SymEventID] = cloneEvent(ev)
	return nil
}

func (s *fakeStore) GetGrant(_ context.Context, id string) (grants.Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[id]
	if !ok {
		return grants.Grant{}, grants.ErrNotFound
	}
	return cloneGrant(g), nil
}

func (s *fakeStore) Membership(_ context.Context, k grants.Key) (grants.Membership, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.membershipReads++
	return s.membershipLocked(k), nil
}

func (s *fakeStore) membershipLocked(k grants.Key) grants.Membership {
	m := s.members[k]
	if m == nil {
		return grants.Membership{Account: k.Account, IAMUser: k.User, Group: k.Group}
	}
	ids := make([]string, 0, len(m.ids))
	for id := range m.ids {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		ids = nil // a DynamoDB string set cannot be empty: the attribute goes
	}
	return grants.Membership{Account: k.Account, IAMUser: k.User, Group: k.Group, GrantIDs: ids, Token: m.token, Dirty: m.dirty}
}

func (s *fakeStore) MarkSynced(_ context.Context, k grants.Key, token, grantID string, t grants.Transition) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.members[k]
	if token == "" {
		if m != nil {
			return false, nil
		}
	} else if m == nil || m.token != token {
		return false, nil
	}
	if grantID != "" {
		g, ok := s.grants[grantID]
		if !ok {
			return false, fmt.Errorf("mark synced: grant %s does not exist", grantID)
		}
		g.History = append(g.History, t)
		s.grants[grantID] = g
	}
	if m != nil {
		m.dirty = false
		// As in the table: a removal queues its read-back, any other sync
		// supersedes one.
		if t.Action == "iam_remove" {
			s.rechecks[k] = token
		} else {
			delete(s.rechecks, k)
		}
	}
	return true, nil
}

// Rechecks lists every queued read-back: in the fake they are due at once.
func (s *fakeStore) Rechecks(_ context.Context, _ time.Time, _ int32) ([]grants.Membership, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []grants.Membership
	for k, tok := range s.rechecks {
		out = append(out, grants.Membership{Account: k.Account, IAMUser: k.User, Group: k.Group, Token: tok})
	}
	return out, nil
}

func (s *fakeStore) Rechecked(_ context.Context, k grants.Key, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rechecks[k] == token {
		delete(s.rechecks, k)
	}
	return nil
}

func (s *fakeStore) Due(_ context.Context, now time.Time, limit int32) ([]grants.Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dueCalls++
	if s.failDue != nil {
		return nil, s.failDue
	}
	var out []grants.Grant
	for id, in := range s.due {
		if g := s.grants[id]; in && !msTime(g.ExpiresAt).After(msTime(now)) {
			out = append(out, cloneGrant(g))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ExpiresAt.Equal(out[j].ExpiresAt) {
			return out[i].ExpiresAt.Before(out[j].ExpiresAt)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > int(limit) {
		out = out[:limit]
	}
	return out, nil
}

func (s *fakeStore) Dirty(_ context.Context, before time.Time, limit int32) ([]grants.Membership, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []grants.Membership
	for k, m := range s.members {
		if m.dirty && !m.dirtyAt.After(msTime(before)) {
			out = append(out, s.membershipLocked(k))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IAMUser+"#"+out[i].Group < out[j].IAMUser+"#"+out[j].Group })
	if len(out) > int(limit) {
		out = out[:limit]
	}
	return out, nil
}

func (s *fakeStore) Undue(_ context.Context, grantID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.grants[grantID]; ok {
		s.due[grantID] = false
	}
	return nil
}

// MarkWarned lets the first caller warn of an ACTIVE grant.
func (s *fakeStore) MarkWarned(_ context.Context, grantID string, _ time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[grantID]
	if !ok || g.State != grants.StateActive || s.warned[grantID] {
		return false, nil
	}
	if s.warned == nil {
		s.warned = map[string]bool{}
	}
	s.warned[grantID] = true
	return true, nil
}

// AppendHistory is grants/dynamo's: the hook's role writes go there.
func (s *fakeStore) AppendHistory(_ context.Context, grantID string, ts ...grants.Transition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[grantID]
	if !ok {
		return grants.ErrNotFound
	}
	s.appends++
	g.History = append(g.History, ts...)
	s.grants[grantID] = g
	return nil
}

// inDue reports whether the grant is still in the expiry index.
func (s *fakeStore) inDue(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.due[id]
}

func (s *fakeStore) event(symID string) (grants.ProcessedEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev, ok := s.events[symID]
	return ev, ok
}

func (s *fakeStore) allGrants() []grants.Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]grants.Grant, 0, len(s.grants))
	for _, g := range s.grants {
		out = append(out, cloneGrant(g))
	}
	return out
}

// eachGrant calls fn on every stored grant, under the lock: fn must not
// call the store.
func (s *fakeStore) eachGrant(fn func(*grants.Grant)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.grants {
		fn(&g)
	}
}

var _ grants.Store = (*fakeStore)(nil)

// fakeIAM is grants.GroupMembership: IAM's group members, with hooks to
// fail or to let a "concurrent writer" act in the middle of a call.
type fakeIAM struct {
	mu      sync.Mutex
	members map[iamKey]bool
	adds    int
	removes int
	n       int
	// err, when set, fails every call.
	addErr, removeErr error
	// during runs inside each call, before IAM changes: another replica.
	during func(add bool, user, group string)
}

func newFakeIAM() *fakeIAM { return &fakeIAM{members: map[iamKey]bool{}} }

func (f *fakeIAM) call(add bool, user, group string) (string, error) {
	f.mu.Lock()
	during := f.during
	f.mu.Unlock()
	if during != nil {
		during(add, user, group)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if add && f.addErr != nil {
		return "", f.addErr
	}
	if !add && f.removeErr != nil {
		return "", f.removeErr
	}
	f.n++
	if add {
		f.adds++
		f.members[iamKey{user, group}] = true
	} else {
		f.removes++
		if !f.members[iamKey{user, group}] {
			return "", nil // IAM's NoSuchEntity, which iamgroups answers with no request id
		}
		delete(f.members, iamKey{user, group})
	}
	return "req-" + strconv.Itoa(f.n), nil
}

func (f *fakeIAM) AddUser(_ context.Context, user, group string) (string, error) {
	return f.call(true, user, group)
}

func (f *fakeIAM) RemoveUser(_ context.Context, user, group string) (string, error) {
	return f.call(false, user, group)
}

func (f *fakeIAM) IsMember(_ context.Context, user, group string) (bool, error) {
	return f.isMember(user, group), nil
}

func (f *fakeIAM) isMember(user, group string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[iamKey{user, group}]
}

func (f *fakeIAM) calls() (adds, removes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.adds, f.removes
}

func (f *fakeIAM) setDuring(fn func(add bool, user, group string)) {
	f.mu.Lock()
	f.during = fn
	f.mu.Unlock()
}

// fakeGroups is grants.Groups.
type fakeGroups map[string]grants.GroupInfo

func (f fakeGroups) Group(_ context.Context, name string) (grants.GroupInfo, error) {
	g, ok := f[name]
	if !ok {
		return grants.GroupInfo{}, grants.ErrNotFound
	}
	return g, nil
}

// fakeDirectory is grants.Directory: IAM users and their tags.
type fakeDirectory struct {
	users map[string]map[string]string // user -> tag key -> value
	err   error
}

func (d *fakeDirectory) UserExists(_ context.Context, name string) (bool, error) {
	if d.err != nil {
		return false, d.err
	}
	_, ok := d.users[name]
	return ok, nil
}

func (d *fakeDirectory) UsersWithTag(_ context.Context, key string) (map[string]string, error) {
	if d.err != nil {
		return nil, d.err
	}
	out := map[string]string{}
	for u, tags := range d.users {
		if v, ok := tags[key]; ok {
			out[u] = v
		}
	}
	return out, nil
}

// fakePublisher records published results; err fails Publish.
type fakePublisher struct {
	mu        sync.Mutex
	published []events.Result
	err       error
}

func (p *fakePublisher) Publish(_ context.Context, rs []events.Result) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.published = append(p.published, rs...)
	return nil
}

var errIAMDown = errors.New("iam is down")
