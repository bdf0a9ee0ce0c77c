package sessions_test

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/iamjit/iamjit/sessions"
)

// fakeStore is sessions.Store in memory with grants/dynamo's semantics:
// each method is one atomic step.
type fakeStore struct {
	mu    sync.Mutex
	now   func() time.Time
	items map[string]*fakeItem
}

type fakeItem struct {
	st      sessions.RoleState
	dirtyAt time.Time
	prune   time.Time
}

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{now: now, items: map[string]*fakeItem{}}
}

func (s *fakeStore) Add(_ context.Context, role sessions.Role, user string, at time.Time, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[role.ARN]
	if it == nil {
		it = &fakeItem{st: sessions.RoleState{ARN: role.ARN, Name: role.Name, Users: map[string]time.Time{}}}
		s.items[role.ARN] = it
	}
	if old, ok := it.st.Users[user]; !ok || old.Before(at) {
		it.st.Users[user] = at
	}
	it.st.Token, it.st.Dirty, it.dirtyAt = token, true, s.now()
	return nil
}

func (s *fakeStore) Get(_ context.Context, arn string) (sessions.RoleState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[arn]
	if it == nil {
		return sessions.RoleState{ARN: arn, Users: map[string]time.Time{}}, nil
	}
	st := it.st
	st.Users = maps.Clone(it.st.Users)
	return st, nil
}

func (s *fakeStore) Synced(_ context.Context, arn, token string, drop []string, remaining int, prune time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[arn]
	if it == nil || it.st.Token != token {
		return false, nil
	}
	for _, u := range drop {
		delete(it.st.Users, u)
	}
	if remaining == 0 {
		delete(s.items, arn)
		return true, nil
	}
	it.st.Dirty, it.prune = false, prune
	return true, nil
}

func (s *fakeStore) Due(_ context.Context, dirtyBefore, now time.Time, limit int32) ([]sessions.RoleState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sessions.RoleState
	for _, k := range slices.Sorted(maps.Keys(s.items)) {
		it := s.items[k]
		if (it.st.Dirty && !it.dirtyAt.After(dirtyBefore)) || (!it.st.Dirty && !it.prune.After(now)) {
			out = append(out, it.st)
		}
	}
	return out, nil
}

func (s *fakeStore) All(ctx context.Context) ([]sessions.RoleState, error) {
	s.mu.Lock()
	keys := slices.Sorted(maps.Keys(s.items))
	s.mu.Unlock()
	var out []sessions.RoleState
	for _, k := range keys {
		st, _ := s.Get(ctx, k)
		out = append(out, st)
	}
	return out, nil
}

// fakeRoles is IAM's roles and one group's assumable roles in memory.
type fakeRoles struct {
	mu       sync.Mutex
	roles    map[string]sessions.Role // by name
	policies map[string]string        // role name -> our policy
	others   map[string]int           // role name -> size of its other inline policies
	puts     int
	// beforePut runs once, before the first put, outside the lock: a second
	// writer slipping in between a read and a write.
	beforePut func()
	assumable []string // role names the group may assume
	putErr    error    // returned by every put
	account   string   // of the roles; "" is 123456789012
	// foreign: role ARNs in other accounts the group's policy names too.
	foreign []string
	listErr error // returned by AllRoles
	lists   int   // AllRoles calls
	// chains: role name -> the role ARNs its own policy lets it assume.
	chains map[string][]string
}

// arn is the ARN of role name as add made it, or as it was before it was
// deleted (the group's policy still names it).
func (f *fakeRoles) arn(name string) string {
	if r, ok := f.roles[name]; ok {
		return r.ARN
	}
	return "arn:aws:iam::" + cmp.Or(f.account, "123456789012") + ":role/" + name
}

func newFakeRoles() *fakeRoles {
	return &fakeRoles{roles: map[string]sessions.Role{}, policies: map[string]string{}, others: map[string]int{}}
}

func (f *fakeRoles) add(name, path string, trust string) sessions.Role {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := sessions.Role{ARN: "arn:aws:iam::" + cmp.Or(f.account, "123456789012") + ":role" + path + name, Name: name, Path: path,
		MaxSessionDuration: time.Hour, Trust: trust}
	f.roles[name] = r
	f.assumable = append(f.assumable, name)
	return r
}

// GroupPolicies is one policy allowing sts:AssumeRole on the assumable
// roles (and on foreign, role ARNs of other accounts): the revoker resolves
// it with FindRoles as it does IAM's.
func (f *fakeRoles) GroupPolicies(context.Context, string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var arns []string
	for _, n := range f.assumable {
		arns = append(arns, f.arn(n))
	}
	arns = append(arns, f.foreign...)
	if len(arns) == 0 {
		return nil, nil
	}
	doc, err := json.Marshal(map[string]any{"Statement": []any{map[string]any{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arns}}})
	return []string{string(doc)}, err
}

// RolePolicies is one policy allowing sts:AssumeRole on the ARNs chains
// names for the role, if any.
func (f *fakeRoles) RolePolicies(_ context.Context, role string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.chains[role]) == 0 {
		return nil, nil
	}
	doc, err := json.Marshal(map[string]any{"Statement": []any{map[string]any{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f.chains[role]}}})
	return []string{string(doc)}, err
}

func (f *fakeRoles) AllRoles(context.Context) ([]sessions.Role, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.listErr != nil {
		return nil, f.listErr
	}
	// In the order add made them (the order the revoker writes them in).
	var out []sessions.Role
	for _, n := range f.assumable {
		if r, ok := f.roles[n]; ok && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(f.roles)) {
		if !slices.Contains(f.assumable, n) {
			out = append(out, f.roles[n])
		}
	}
	return out, nil
}

func (f *fakeRoles) Role(_ context.Context, name string) (sessions.Role, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.roles[name]
	if !ok {
		return sessions.Role{}, sessions.ErrRoleGone
	}
	return r, nil
}

func (f *fakeRoles) OtherInlineSize(_ context.Context, name string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.others[name], nil
}

func (f *fakeRoles) PutPolicy(_ context.Context, name, doc string) (string, error) {
	f.mu.Lock()
	hook := f.beforePut
	f.beforePut = nil
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.roles[name]; !ok {
		return "", sessions.ErrRoleGone
	}
	if f.putErr != nil {
		return "", f.putErr
	}
	f.puts++
	f.policies[name] = doc
	return "req-" + strconv.Itoa(f.puts), nil
}

func (f *fakeRoles) DeletePolicy(_ context.Context, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.policies, name)
	return "del", nil
}

func (f *fakeRoles) Policy(_ context.Context, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.roles[name]; !ok {
		return "", sessions.ErrRoleGone
	}
	return f.policies[name], nil
}

func (f *fakeRoles) policy(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.policies[name]
}

type fakeObserver struct {
	mu      sync.Mutex
	revoked map[string]int
	skipped int
	failed  map[string]int
}

func (o *fakeObserver) SessionsRevoked(mode string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.revoked == nil {
		o.revoked = map[string]int{}
	}
	o.revoked[mode]++
}

func (o *fakeObserver) SessionRoleSkipped() { o.mu.Lock(); o.skipped++; o.mu.Unlock() }

func (o *fakeObserver) SessionRevocationFailed(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failed == nil {
		o.failed = map[string]int{}
	}
	o.failed[reason]++
}

type tokens struct {
	mu sync.Mutex
	n  int
}

func (t *tokens) New() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	return "tok-" + strconv.Itoa(t.n)
}
