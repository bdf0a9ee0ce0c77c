package sessions_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/iamjit/iamjit/sessions"
)

// fakeSetStore is sessions.SetStore in memory with sessions/dynamo's
// semantics: each method is one atomic step.
type fakeSetStore struct {
	mu    sync.Mutex
	now   func() time.Time
	items map[string]*fakeSetItem
	adds  int // AddEntry calls
	// leases counts Lease calls, refused ones included.
	leases int
}

type fakeSetItem struct {
	st      sessions.SetState
	pending map[string]bool
	owner   string
	until   time.Time
	dirtyAt time.Time
	prune   time.Time
}

func newFakeSetStore(now func() time.Time) *fakeSetStore {
	return &fakeSetStore{now: now, items: map[string]*fakeSetItem{}}
}

func (s *fakeSetStore) AddEntry(_ context.Context, arn string, e sessions.Entry, at time.Time, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.adds++
	it := s.items[arn]
	if it == nil {
		it = &fakeSetItem{st: sessions.SetState{ARN: arn, Entries: map[sessions.Entry]time.Time{}}, pending: map[string]bool{}}
		s.items[arn] = it
	}
	if old, ok := it.st.Entries[e]; !ok || old.Before(at) {
		it.st.Entries[e] = at
	}
	it.pending[e.Account] = true
	it.st.Token, it.st.Dirty, it.dirtyAt = token, true, s.now()
	return nil
}

func (s *fakeSetStore) get(arn string) sessions.SetState {
	it := s.items[arn]
	if it == nil {
		return sessions.SetState{ARN: arn, Entries: map[sessions.Entry]time.Time{}}
	}
	st := it.st
	st.Entries = maps.Clone(it.st.Entries)
	st.Pending = slices.Sorted(maps.Keys(it.pending))
	st.LeasedUntil = it.until
	return st
}

func (s *fakeSetStore) GetSet(_ context.Context, arn string) (sessions.SetState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(arn), nil
}

func (s *fakeSetStore) Lease(_ context.Context, arn, owner string, until, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leases++
	it := s.items[arn]
	if it == nil || (it.owner != "" && it.owner != owner && !it.until.Before(now)) {
		return false, nil
	}
	it.owner, it.until = owner, until
	return true, nil
}

func (s *fakeSetStore) Release(_ context.Context, arn, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.items[arn]; it != nil && it.owner == owner {
		it.owner, it.until = "", time.Time{}
	}
	return nil
}

func (s *fakeSetStore) SyncedSet(_ context.Context, arn, token, owner string, drop []sessions.Entry, provisioned []string, remaining int, prune time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[arn]
	if it == nil || it.st.Token != token || it.owner != owner {
		return false, nil
	}
	if remaining == 0 {
		delete(s.items, arn)
		return true, nil
	}
	for _, e := range drop {
		delete(it.st.Entries, e)
	}
	for _, a := range provisioned {
		delete(it.pending, a)
	}
	it.st.Dirty, it.prune, it.owner, it.until = false, prune, "", time.Time{}
	return true, nil
}

func (s *fakeSetStore) DueSets(_ context.Context, dirtyBefore, now time.Time, _ int32) ([]sessions.SetState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sessions.SetState
	for _, k := range slices.Sorted(maps.Keys(s.items)) {
		it := s.items[k]
		if (it.st.Dirty && !it.dirtyAt.After(dirtyBefore)) || (!it.st.Dirty && !it.prune.After(now)) {
			out = append(out, s.get(k))
		}
	}
	return out, nil
}

func (s *fakeSetStore) AllSets(context.Context) ([]sessions.SetState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sessions.SetState
	for _, k := range slices.Sorted(maps.Keys(s.items)) {
		out = append(out, s.get(k))
	}
	return out, nil
}

func (s *fakeSetStore) owner(arn string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.items[arn]; it != nil {
		return it.owner
	}
	return ""
}

// fakeSets is Identity Center's permission sets in memory. What each
// account was provisioned with is kept: provisioning carries the policy
// the permission set holds when it runs.
type fakeSets struct {
	mu          sync.Mutex
	duration    map[string]time.Duration // permission set -> session duration; absent: gone
	policies    map[string]string        // permission set -> inline policy
	provisioned map[string]string        // SetTarget -> the policy it got
	groups      map[string][]sessions.SetAccount
	puts        int
	provisions  []string // SetTargets in call order
	// beforePut runs before each put, outside the lock, with the put's
	// number (1 first): another writer slipping in.
	beforePut    func(n int)
	provisionErr error
	putErr       error
}

func newFakeSets() *fakeSets {
	return &fakeSets{duration: map[string]time.Duration{}, policies: map[string]string{}, provisioned: map[string]string{}, groups: map[string][]sessions.SetAccount{}}
}

func (f *fakeSets) SessionDuration(_ context.Context, arn string) (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.duration[arn]
	if !ok {
		return 0, sessions.ErrSetGone
	}
	return d, nil
}

func (f *fakeSets) InlinePolicy(_ context.Context, arn string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.duration[arn]; !ok {
		return "", sessions.ErrSetGone
	}
	return f.policies[arn], nil
}

func (f *fakeSets) PutInlinePolicy(_ context.Context, arn, doc string) (string, error) {
	f.mu.Lock()
	f.puts++
	n, hook := f.puts, f.beforePut
	f.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.duration[arn]; !ok {
		return "", sessions.ErrSetGone
	}
	if f.putErr != nil {
		return "", f.putErr
	}
	f.policies[arn] = doc
	return "put-" + strconv.Itoa(n), nil
}

func (f *fakeSets) DeleteInlinePolicy(_ context.Context, arn string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.policies, arn)
	return "delete", nil
}

func (f *fakeSets) Provision(_ context.Context, arn, account string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.provisionErr != nil {
		return "", f.provisionErr
	}
	t := sessions.SetTarget(arn, account)
	f.provisioned[t] = f.policies[arn]
	f.provisions = append(f.provisions, t)
	return "prov-" + strconv.Itoa(len(f.provisions)), nil
}

func (f *fakeSets) GroupAssignments(_ context.Context, group string) ([]sessions.SetAccount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.groups[group], nil
}

func (f *fakeSets) policy(arn string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.policies[arn]
}

// inAccount is the policy the account was last provisioned with.
func (f *fakeSets) inAccount(arn, account string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.provisioned[sessions.SetTarget(arn, account)]
}
