package grants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/iamjit/iamjit/events"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Directory reads IAM users (grants/iamgroups).
type Directory interface {
	// UserExists reports whether an IAM user of that name exists.
	UserExists(ctx context.Context, name string) (bool, error)
	// UsersByTag lists every IAM user with their tags of key (name -> value).
	UsersWithTag(ctx context.Context, key string) (map[string]string, error)
}

// IdentityError is a refusal to map an email: unknown or ambiguous.
type IdentityError struct {
	Code events.Code // CodeUnknownUser or CodeAmbiguousUser
	Msg  string
}

func (e *IdentityError) Error() string { return string(e.Code) + ": " + e.Msg }

// Identity maps a requester's email to an IAM user through strategies tried
// in order; the first strategy that finds anyone decides. Two candidates from
// one strategy, or none from all, is a refusal, never a guess.
type Identity struct {
	dir        Directory
	strategies []strategy
	now        func() time.Time
	ttl        time.Duration

	mu      sync.Mutex
	cache   map[string]cached    // email -> resolved user
	misses  map[string]time.Time // email -> when no strategy found anyone
	tags    map[string]tagIndex
	maxSize int
	// refresh lets one caller at a time rebuild a tag index: without it,
	// concurrent misses (every worker at start-up) each list every user.
	refresh sync.Mutex
}

type cached struct {
	user string
	at   time.Time
}

type tagIndex struct {
	byValue map[string][]string // lower-case tag value -> users
	at      time.Time
}

type strategy struct {
	kind string // username, tag, file, localpart
	arg  string
	file map[string]string
}

// NewIdentity parses IAMJIT_IDENTITY strategies. ttl bounds how long a
// mapping and the tag index are trusted before IAM is asked again.
func NewIdentity(dir Directory, specs []string, ttl time.Duration, now func() time.Time) (*Identity, error) {
	id := &Identity{dir: dir, now: now, ttl: ttl, cache: map[string]cached{}, misses: map[string]time.Time{}, tags: map[string]tagIndex{}, maxSize: 10000}
	for _, s := range specs {
		kind, arg, _ := strings.Cut(s, ":")
		st := strategy{kind: kind, arg: arg}
		switch kind {
		case "username":
		case "tag", "localpart":
			if arg == "" {
				return nil, fmt.Errorf("IAMJIT_IDENTITY: %q needs a value after the colon", s)
			}
			st.arg = strings.ToLower(arg)
			if kind == "tag" {
				st.arg = arg // tag keys are case-sensitive
			}
		case "file":
			b, err := os.ReadFile(arg)
			if err != nil {
				return nil, fmt.Errorf("IAMJIT_IDENTITY: read mapping file: %w", err)
			}
			raw := map[string]string{}
			if err := json.Unmarshal(b, &raw); err != nil {
				return nil, fmt.Errorf("IAMJIT_IDENTITY: mapping file %s is not a JSON object of strings: %w", arg, err)
			}
			st.file = map[string]string{}
			for k, v := range raw {
				st.file[strings.ToLower(k)] = v
			}
		default:
			return nil, fmt.Errorf("IAMJIT_IDENTITY: unknown strategy %q", s)
		}
		id.strategies = append(id.strategies, st)
	}
	return id, nil
}

// Resolve returns the IAM user for email, an *IdentityError when there is
// none or more than one, or another error when IAM could not be asked.
func (id *Identity) Resolve(ctx context.Context, email string) (string, error) {
	return id.resolve(ctx, email, false)
}

// ResolveApprover is Resolve for the self-approval check: an email with no
// IAM user (most approvers) is remembered for ttl/10 instead of costing IAM
// calls on every request. A requester's lookup never uses that memory, so a
// user created right after a refusal is found on the next request.
func (id *Identity) ResolveApprover(ctx context.Context, email string) (string, error) {
	return id.resolve(ctx, email, true)
}

func (id *Identity) resolve(ctx context.Context, email string, approver bool) (string, error) {
	email = strings.TrimSpace(email)
	key := strings.ToLower(email)
	if strings.Count(email, "@") != 1 || len(email) > 254 || strings.ContainsAny(email, " \t*/\\") {
		return "", &IdentityError{Code: events.CodeUnknownUser, Msg: fmt.Sprintf("%q is not an email address", clip(email))}
	}
	id.mu.Lock()
	if c, ok := id.cache[key]; ok && id.now().Sub(c.at) < id.ttl {
		id.mu.Unlock()
		return c.user, nil
	}
	if at, ok := id.misses[key]; approver && ok && id.now().Sub(at) < id.ttl/10 {
		id.mu.Unlock()
		return "", &IdentityError{Code: events.CodeUnknownUser, Msg: "no IAM user for " + clip(email)}
	}
	id.mu.Unlock()
	for _, st := range id.strategies {
		cands, err := id.candidates(ctx, st, email, approver)
		if err != nil {
			return "", err
		}
		switch len(cands) {
		case 0:
			continue
		case 1:
			id.remember(key, cands[0])
			return cands[0], nil
		default:
			return "", &IdentityError{Code: events.CodeAmbiguousUser, Msg: fmt.Sprintf("%s matches %d IAM users (%s)", clip(email), len(cands), st.kind)}
		}
	}
	id.mu.Lock()
	if len(id.misses) >= id.maxSize {
		clear(id.misses)
	}
	id.misses[key] = id.now()
	id.mu.Unlock()
	return "", &IdentityError{Code: events.CodeUnknownUser, Msg: "no IAM user for " + clip(email)}
}

func (id *Identity) candidates(ctx context.Context, st strategy, email string, approver bool) ([]string, error) {
	switch st.kind {
	case "username":
		return id.existing(ctx, email)
	case "localpart":
		local, domain, _ := strings.Cut(email, "@")
		if strings.ToLower(domain) != st.arg {
			return nil, nil
		}
		return id.existing(ctx, local)
	case "file":
		name, ok := st.file[strings.ToLower(email)]
		if !ok {
			return nil, nil
		}
		return id.existing(ctx, name)
	case "tag":
		return id.byTag(ctx, st.arg, email, !approver)
	}
	return nil, errors.New("unknown identity strategy " + st.kind)
}

func (id *Identity) existing(ctx context.Context, name string) ([]string, error) {
	if !iamUserName(name) {
		return nil, nil
	}
	ok, err := id.dir.UserExists(ctx, name)
	if err != nil || !ok {
		return nil, err
	}
	return []string{name}, nil
}

// byTag reads an index of tag values, refreshed when older than the ttl or
// when the email is not in it (a user tagged since the last refresh).
func (id *Identity) byTag(ctx context.Context, key, email string, refreshOnMiss bool) ([]string, error) {
	want := strings.ToLower(email)
	id.mu.Lock()
	idx, ok := id.tags[key]
	id.mu.Unlock()
	fresh := ok && id.now().Sub(idx.at) < id.ttl
	if fresh {
		if users := idx.byValue[want]; len(users) > 0 {
			return users, nil
		}
		// A miss in a fresh index is refreshed at most every ttl/10, and
		// never for an approver: most approvers have no IAM user, and each
		// refresh lists every user's tags.
		if !refreshOnMiss || id.now().Sub(idx.at) < id.ttl/10 {
			return nil, nil
		}
	}
	id.refresh.Lock()
	defer id.refresh.Unlock()
	// Whoever held the lock before may have just rebuilt the index.
	id.mu.Lock()
	idx, ok = id.tags[key]
	id.mu.Unlock()
	if ok && id.now().Sub(idx.at) < id.ttl/10 {
		return idx.byValue[want], nil
	}
	tagged, err := id.dir.UsersWithTag(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("list users tagged %s: %w", key, err)
	}
	idx = tagIndex{byValue: map[string][]string{}, at: id.now()}
	for user, v := range tagged {
		v = strings.ToLower(strings.TrimSpace(v))
		idx.byValue[v] = append(idx.byValue[v], user)
	}
	for _, users := range idx.byValue {
		slices.Sort(users)
	}
	id.mu.Lock()
	id.tags[key] = idx
	id.mu.Unlock()
	return idx.byValue[want], nil
}

func (id *Identity) remember(key, user string) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if len(id.cache) >= id.maxSize {
		clear(id.cache) // bounded: a full reset is simpler than LRU and rare
	}
	id.cache[key] = cached{user: user, at: id.now()}
}

// iamUserName is IAM's rule for user names.
func iamUserName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+=,.@_-", r)) {
			return false
		}
	}
	return true
}
