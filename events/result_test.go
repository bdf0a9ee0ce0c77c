package events_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/iamjit/iamjit/events"
)

func TestResultRoundTrip(t *testing.T) {
	at := time.Date(2022, 5, 10, 14, 47, 29, 442289000, time.UTC)
	exp, rev := at.Add(30*time.Minute), at.Add(10*time.Minute)
	in := events.Result{
		DetailType: events.AccessRevoked, ResultID: events.ResultID(events.AccessRevoked, "srn/target"),
		GrantID: "srn/target", SymEventID: "sym-1", RunSRN: "srn", Requester: "user@example.com",
		IAMUser: "user", Group: "sym-readonly", GroupARN: "arn:aws:iam::123456789012:group/sym/sym-readonly",
		Approver: "boss@example.com", Reason: events.RevokedExpired,
		GrantedAt: &at, ExpiresAt: &exp, RevokedAt: &rev, Code: "some_code", Message: "a message",
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out events.Result
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip changed the result:\n in %+v\nout %+v", in, out)
	}

	// The detail's field names are the contract downstream consumers read.
	var keys map[string]any
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"result_id", "grant_id", "sym_event_id", "run_srn", "requester", "iam_user",
		"group", "group_arn", "approver", "granted_at", "expires_at", "revoked_at", "code", "message", "reason"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("detail has no %q: %s", k, b)
		}
	}
	if keys["granted_at"] != "2022-05-10T14:47:29.442289Z" {
		t.Errorf("granted_at = %v, want RFC 3339 in UTC", keys["granted_at"])
	}

	// Empty optional fields are left out, not sent as "" or null.
	b, err = json.Marshal(events.Result{DetailType: events.AccessRejected, ResultID: "x", Code: "c"})
	if err != nil {
		t.Fatal(err)
	}
	keys = nil
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	got := make([]string, 0, len(keys))
	for k := range keys {
		got = append(got, k)
	}
	slices.Sort(got)
	if want := []string{"code", "detail_type", "result_id"}; !slices.Equal(got, want) {
		t.Errorf("minimal result has keys %v, want %v", got, want)
	}
}

func TestResultIDStable(t *testing.T) {
	a := events.ResultID(events.AccessGranted, "run/target")
	if a != events.ResultID(events.AccessGranted, "run/target") {
		t.Error("same inputs, different ids")
	}
	if len(a) != 32 {
		t.Errorf("id %q: want 32 hex characters", a)
	}
	ids := map[string]string{}
	for _, dt := range []string{events.AccessGranted, events.AccessRevoked, events.AccessRejected, events.AccessFailed} {
		for _, key := range []string{"run/target", "run/target2", ""} {
			id := events.ResultID(dt, key)
			if prev, dup := ids[id]; dup {
				t.Errorf("ResultID(%q, %q) collides with %s", dt, key, prev)
			}
			ids[id] = dt + "|" + key
		}
	}
	// The separator keeps (type, key) pairs apart when concatenations agree.
	if events.ResultID("ab", "c") == events.ResultID("a", "bc") {
		t.Error("ResultID is ambiguous across the type/key boundary")
	}
}

func TestTimePtr(t *testing.T) {
	if events.TimePtr(time.Time{}) != nil {
		t.Error("zero time should be nil (omitted)")
	}
	loc := time.FixedZone("x", 2*3600)
	in := time.Date(2022, 5, 10, 16, 0, 0, 0, loc)
	p := events.TimePtr(in)
	if p == nil || !p.Equal(in) || p.Location() != time.UTC {
		t.Errorf("TimePtr(%v) = %v, want the same instant in UTC", in, p)
	}
}
