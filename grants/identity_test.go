package grants_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/internal/testclock"
)

func TestIdentityStrategies(t *testing.T) {
	dir := &fakeDirectory{users: map[string]map[string]string{
		"dave@example.com": {},                            // named by the email
		"erin":             {"email": "Erin@Example.com"}, // tagged, other case
		"frank":            {},                            // local part
		"gina":             {"email": "gina@example.com"}, // tag and file disagree
		"g.mapped":         {},                            // file target
		"h1":               {"email": "h@example.com"},    // ambiguous tag
		"h2":               {"email": " h@example.com "},
	}}
	mapping := filepath.Join(t.TempDir(), "map.json")
	if err := os.WriteFile(mapping, []byte(`{"GINA@example.com":"g.mapped","ghost@example.com":"nobody"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(t0)
	id, err := grants.NewIdentity(dir, []string{"username", "file:" + mapping, "tag:email", "localpart:corp.example"}, time.Minute, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		email, user string
		code        events.Code
	}{
		{"dave@example.com", "dave@example.com", ""},
		{"erin@example.com", "erin", ""},
		{"gina@example.com", "g.mapped", ""}, // file comes before tag
		{"frank@corp.example", "frank", ""},
		{"frank@other.example", "", events.CodeUnknownUser},
		{"ghost@example.com", "", events.CodeUnknownUser}, // mapped to a user that does not exist
		{"h@example.com", "", events.CodeAmbiguousUser},
		{"nobody@example.com", "", events.CodeUnknownUser},
		{"frank", "", events.CodeUnknownUser},
		{"", "", events.CodeUnknownUser},
		{"a b@example.com", "", events.CodeUnknownUser},
		{"*@example.com", "", events.CodeUnknownUser},
	}
	for _, tc := range cases {
		got, err := id.Resolve(context.Background(), tc.email)
		var ie *grants.IdentityError
		switch {
		case tc.code == "" && (err != nil || got != tc.user):
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.email, got, err, tc.user)
		case tc.code != "" && (!errors.As(err, &ie) || ie.Code != tc.code || got != ""):
			t.Errorf("Resolve(%q) = %q, %v; want %s", tc.email, got, err, tc.code)
		}
	}
}

func TestIdentityErrorsAreNotRefusals(t *testing.T) {
	dir := &fakeDirectory{err: errors.New("throttled")}
	id, err := grants.NewIdentity(dir, []string{"username", "tag:email"}, time.Minute, testclock.New(t0).Now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = id.Resolve(context.Background(), "a@example.com")
	var ie *grants.IdentityError
	if err == nil || errors.As(err, &ie) {
		t.Fatalf("IAM failure = %v; want a plain (retryable) error, not a refusal", err)
	}
}

// A user tagged after the index was built is found once the index is
// refreshed; a mapping is cached for the ttl.
func TestIdentityTagRefresh(t *testing.T) {
	dir := &fakeDirectory{users: map[string]map[string]string{"x": {"email": "x@example.com"}}}
	clock := testclock.New(t0)
	id, err := grants.NewIdentity(dir, []string{"tag:email"}, time.Minute, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if u, err := id.Resolve(ctx, "x@example.com"); u != "x" || err != nil {
		t.Fatalf("%q %v", u, err)
	}
	dir.users["y"] = map[string]string{"email": "y@example.com"}
	clock.Advance(10 * time.Second) // past ttl/10: a miss refreshes
	if u, err := id.Resolve(ctx, "y@example.com"); u != "y" || err != nil {
		t.Fatalf("newly tagged user: %q %v", u, err)
	}
}

func TestNewIdentityRejectsBadSpecs(t *testing.T) {
	for _, spec := range []string{"tag", "tag:", "localpart:", "magic", "file:/does/not/exist"} {
		if _, err := grants.NewIdentity(&fakeDirectory{}, []string{spec}, time.Minute, time.Now); err == nil {
			t.Errorf("NewIdentity(%q) accepted", spec)
		}
	}
}

func FuzzIdentity(f *testing.F) {
	for _, s := range []string{"alice@example.com", "ALICE@example.com", "alice", "bob@example.com",
		"alice@corp.example", "@", "a@b", " alice@example.com ", "alice@example.com\x00", "é@example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, email string) {
		users := map[string]map[string]string{
			"alice":             {"email": "alice@example.com"},
			"alice@example.com": {},
			"bob1":              {"email": "bob@example.com"},
			"bob2":              {"email": "bob@example.com"},
			"carol":             {"email": "carol@corp.example"},
		}
		dir := &fakeDirectory{users: users}
		id, err := grants.NewIdentity(dir, []string{"username", "tag:email", "localpart:corp.example"}, time.Minute, testclock.New(t0).Now)
		if err != nil {
			t.Fatal(err)
		}
		user, err := id.Resolve(context.Background(), email)
		if err != nil {
			var ie *grants.IdentityError
			if !errors.As(err, &ie) || (ie.Code != events.CodeUnknownUser && ie.Code != events.CodeAmbiguousUser) {
				t.Fatalf("Resolve(%q): %v; want an IdentityError", email, err)
			}
			if user != "" {
				t.Fatalf("Resolve(%q) returned %q with an error", email, user)
			}
			return
		}
		if _, ok := users[user]; !ok {
			t.Fatalf("Resolve(%q) = %q, a user the directory does not have", email, user)
		}
		if !strings.Contains(email, "@") {
			t.Fatalf("Resolve(%q) = %q for an input without @", email, user)
		}
	})
}

// An approver with no IAM user is remembered for a while; a requester never
// is, so a user created right after a refusal is granted on the next request.
func TestIdentityMissesAreRememberedForApproversOnly(t *testing.T) {
	dir := &fakeDirectory{users: map[string]map[string]string{}}
	id, err := grants.NewIdentity(dir, []string{"username"}, 5*time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, resolve := range []func(context.Context, string) (string, error){id.Resolve, id.ResolveApprover} {
		if _, err := resolve(ctx, "new@example.com"); err == nil {
			t.Fatal("an unknown user resolved")
		}
	}
	dir.users["new@example.com"] = map[string]string{}
	if _, err := id.ResolveApprover(ctx, "new@example.com"); err == nil {
		t.Fatal("the approver lookup asked IAM again within the miss interval")
	}
	if user, err := id.Resolve(ctx, "new@example.com"); err != nil || user != "new@example.com" {
		t.Fatalf("requester created after a refusal: %q, %v", user, err)
	}
}
