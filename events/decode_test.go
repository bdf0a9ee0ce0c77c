package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/iamjit/iamjit/events"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.json from Decode's output")

// golden is what a fixture decodes to; GrantID is derived, so it is
// pinned too.
type golden struct {
	Request events.Request
	GrantID string
}

func fixtures(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in testdata: %v", err)
	}
	return paths
}

func TestDecodeGolden(t *testing.T) {
	for _, path := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			req, err := events.Decode(body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got, err := json.MarshalIndent(golden{Request: req, GrantID: req.GrantID()}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			gpath := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(gpath), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(gpath, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(gpath)
			if err != nil {
				t.Fatalf("read golden (run go test ./events -run TestDecodeGolden -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Decode(%s) differs from %s:\ngot:\n%s\nwant:\n%s", path, gpath, got, want)
			}
		})
	}
}

// TestDecodeFollowsDesignTable checks each fixture against docs/design.md's
// table, reading the raw JSON independently of Decode, so that a golden
// rewritten with -update cannot silently enshrine a wrong mapping.
func TestDecodeFollowsDesignTable(t *testing.T) {
	for _, path := range fixtures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			if err := json.Unmarshal(body, &raw); err != nil {
				t.Fatal(err)
			}
			entry, isEnv := raw["detail"].(map[string]any)
			if !isEnv {
				entry = raw
			}
			str := func(m map[string]any, keys ...string) string {
				var cur any = m
				for _, k := range keys {
					mm, ok := cur.(map[string]any)
					if !ok {
						return ""
					}
					cur = mm[k]
				}
				s, _ := cur.(string)
				return s
			}
			req, err := events.Decode(body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			check := func(field, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
			check("SymEventID", req.SymEventID, str(entry, "id"))
			check("Requester", req.Requester, str(entry, "run", "actors", "request", "username"))
			check("Approver", req.Approver, str(entry, "run", "actors", "approve", "username"))
			check("Actor", req.Actor, str(entry, "actor", "username"))
			check("Type", req.Type, str(entry, "event", "type"))
			check("Group", req.Group, str(entry, "fields", "target", "settings", "iam_group"))
			check("PermissionSetARN", req.PermissionSetARN, str(entry, "fields", "target", "settings", "permission_set_arn"))
			check("AccountID", req.AccountID, str(entry, "fields", "target", "settings", "account_id"))
			check("SSOGroupID", req.SSOGroupID, str(entry, "fields", "target", "settings", "group_id"))
			// A custom target reads as the one type its settings name.
			wantType := str(entry, "fields", "target", "type")
			if wantType == events.TargetCustom {
				for setting, typ := range map[string]string{"iam_group": events.TargetIAMGroup,
					"permission_set_arn": events.TargetSSOPermissionSet, "group_id": events.TargetSSOGroup} {
					if str(entry, "fields", "target", "settings", setting) != "" {
						wantType = typ
					}
				}
			}
			check("TargetType", req.TargetType, wantType)
			check("GrantID", req.GrantID(), str(entry, "run", "srn")+"/"+str(entry, "fields", "target_id"))
			if req.Bare == isEnv {
				t.Errorf("Bare = %v for an entry that is an envelope: %v", req.Bare, isEnv)
			}
			if isEnv {
				check("Source", req.Source, str(raw, "source"))
			}
			// Sym's escalates are acted on by the approver, so a decoder
			// reading "actor" as the requester would hand access to the
			// wrong person.
			if req.Type == events.TypeEscalate && req.Requester == req.Actor {
				t.Errorf("fixture should have requester != actor to catch a swap")
			}
			ts := str(entry, "event", "timestamp")
			want, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil { // no zone: UTC
				want, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", ts, time.UTC)
				if err != nil {
					t.Fatalf("fixture timestamp %q: %v", ts, err)
				}
			}
			if !req.Timestamp.Equal(want) || req.Timestamp.Location() != time.UTC || req.TSErr != "" {
				t.Errorf("Timestamp = %v (%q), want %v in UTC", req.Timestamp, req.TSErr, want)
			}
		})
	}
}

// All the IAM-group fixtures describe the same instant and the same group.
func TestDecodeTimestampAndGroupVariants(t *testing.T) {
	want := time.Date(2022, 5, 10, 14, 47, 29, 442289000, time.UTC)
	for _, name := range []string{"iam_escalate_ts_nozone", "iam_escalate_ts_utc_offset", "iam_escalate_ts_plus2", "iam_escalate_bare"} {
		req := decodeFile(t, name)
		if !req.Timestamp.Equal(want) || req.Timestamp.Location() != time.UTC {
			t.Errorf("%s: Timestamp = %v, want %v", name, req.Timestamp, want)
		}
	}
	if g := decodeFile(t, "iam_escalate_group_arn").Group; g != "arn:aws:iam::123456789012:group/sym/sym-readonly" {
		t.Errorf("group ARN decoded as %q; Decode must pass it through for grants to check the account", g)
	}
	env, moto := decodeFile(t, "iam_escalate_envelope"), decodeFile(t, "iam_escalate_envelope_moto")
	env.SymEventID, moto.SymEventID = "", ""
	if env != moto {
		t.Errorf("an envelope without \"account\" (moto) decodes differently:\n%+v\n%+v", env, moto)
	}
	if d := decodeFile(t, "iam_escalate_envelope"); d.Bare || d.Source != "sym" || d.SymEventID != "5b0e3c2a-7f61-4d0c-9a57-1c1f2f0b8e01" {
		t.Errorf("envelope: Sym id must come from detail.id, not the EventBridge id: %+v", d)
	}
}

// A custom target carrying settings.iam_group (iamjit's own Sym strategy,
// infra/modules/sym_flow) is an IAM group to grants; any other custom target
// keeps its type, so grants refuses it as unsupported_target.
func TestDecodeCustomIAMGroupTarget(t *testing.T) {
	req := decodeFile(t, "pipe_envelope_custom_escalate")
	if req.TargetType != events.TargetIAMGroup || req.Group != "sym-readonly" {
		t.Errorf("custom target with iam_group: TargetType %q, Group %q; want %q, sym-readonly", req.TargetType, req.Group, events.TargetIAMGroup)
	}
	target := func(m map[string]any) map[string]any { return fields(m)["target"].(map[string]any) }
	cases := []struct {
		name      string
		edit      func(map[string]any)
		wantType  string
		wantGroup string
	}{
		{"custom with iam_group", func(m map[string]any) { target(m)["type"] = "custom" }, events.TargetIAMGroup, "sym-readonly"},
		{"custom without iam_group", func(m map[string]any) {
			target(m)["type"] = "custom"
			target(m)["settings"] = map[string]any{"identifier": "sym-readonly"}
		}, events.TargetCustom, ""},
		{"custom with an empty iam_group", func(m map[string]any) {
			target(m)["type"] = "custom"
			target(m)["settings"] = map[string]any{"iam_group": ""}
		}, events.TargetIAMGroup, ""},
		{"another type with iam_group", func(m map[string]any) { target(m)["type"] = "aws_lambda_function" }, "aws_lambda_function", "sym-readonly"},
		{"type case differs", func(m map[string]any) { target(m)["type"] = "Custom" }, "Custom", "sym-readonly"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := events.Decode(mutate(t, tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			if req.TargetType != tc.wantType || req.Group != tc.wantGroup {
				t.Errorf("TargetType %q, Group %q; want %q, %q", req.TargetType, req.Group, tc.wantType, tc.wantGroup)
			}
		})
	}
}

func decodeFile(t *testing.T, name string) events.Request {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := events.Decode(body)
	if err != nil {
		t.Fatalf("Decode(%s): %v", name, err)
	}
	return req
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// mutate applies f to the bare IAM escalate and returns it as JSON.
func mutate(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFixture(t, "iam_escalate_bare"), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fields(m map[string]any) map[string]any { return m["fields"].(map[string]any) }

func TestDecodeMalformed(t *testing.T) {
	const symID = "5b0e3c2a-7f61-4d0c-9a57-1c1f2f0b8e01"
	bare := string(readFixture(t, "iam_escalate_bare"))
	deep := `{"id":"x","a":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`
	big := `{"id":"x","pad":"` + strings.Repeat("a", events.MaxBodyBytes) + `"}`
	cases := []struct {
		name   string
		body   string
		code   events.Code
		withID string // SymEventID the DecodeError must carry, if any
	}{
		{"not json", `hello`, "invalid_json", ""},
		{"empty", ``, "invalid_json", ""},
		{"whitespace", "  \n", "invalid_json", ""},
		{"array", `[{"id":"x"}]`, "invalid_json", ""},
		{"string", `"x"`, "invalid_json", ""},
		{"no id", `{"event":{"type":"escalate"}}`, "missing_id", ""},
		{"id null", `{"id":null}`, "missing_id", ""},
		{"id number", `{"id":42}`, "missing_id", ""},
		{"id blank", `{"id":"  "}`, "missing_id", ""},
		{"id control char", `{"id":"a\u0007b"}`, "invalid_id", ""},
		{"id too long", `{"id":"` + strings.Repeat("a", 129) + `"}`, "invalid_id", ""},
		{"invalid utf8", "{\"id\":\"a\xff\"}", "invalid_utf8", ""},
		{"duplicate top-level key", `{"id":"a","id":"b"}`, "duplicate_key", ""},
		{"duplicate key differing in case", `{"id":"a","ID":"b"}`, "duplicate_key", ""},
		{"duplicate nested key", strings.Replace(bare, `"iam_group": "sym-readonly"`, `"iam_group": "sym-readonly", "iam_group": "admins"`, 1), "duplicate_key", ""},
		{"duplicate key in envelope detail", `{"source":"sym","detail":{"id":"a","run":{"srn":"x","srn":"y"}}}`, "duplicate_key", ""},
		{"too deep", deep, "too_deep", ""},
		{"too large", big, "body_too_large", ""},
		{"trailing garbage", bare + `x`, "invalid_json", ""},
		{"two objects", `{"id":"a"}{"id":"b"}`, "invalid_json", ""},
		{"unterminated", `{"id":"a"`, "invalid_json", ""},
		{"envelope detail is a string", `{"source":"sym","id":"eb-id","detail":"{\"id\":\"a\"}"}`, "invalid_entry", ""},
		{"envelope detail is null", `{"source":"sym","id":"eb-id","detail":null}`, "missing_id", ""},
		{"envelope detail is an array", `{"source":"sym","id":"eb-id","detail":[]}`, "invalid_entry", ""},
		{"envelope source not a string", `{"source":1,"detail":{"id":"a"}}`, "invalid_json", ""},
		{"iam_group is a number", string(mutate(t, func(m map[string]any) {
			fields(m)["target"].(map[string]any)["settings"].(map[string]any)["iam_group"] = 7
		})), "invalid_entry", symID},
		{"event is a string", string(mutate(t, func(m map[string]any) { m["event"] = "escalate" })), "invalid_entry", symID},
		{"actors is a list", string(mutate(t, func(m map[string]any) { m["run"].(map[string]any)["actors"] = []any{} })), "invalid_entry", symID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := events.Decode([]byte(tc.body))
			var de *events.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode = %+v, %v; want a *DecodeError %s", req, err, tc.code)
			}
			if de.Code != tc.code {
				t.Errorf("code = %q (%v), want %q", de.Code, de, tc.code)
			}
			if de.SymEventID != tc.withID {
				t.Errorf("DecodeError.SymEventID = %q, want %q (a readable id makes a recorded rejection)", de.SymEventID, tc.withID)
			}
			if tc.withID != "" && req.SymEventID != tc.withID {
				t.Errorf("Request.SymEventID = %q, want %q", req.SymEventID, tc.withID)
			}
		})
	}
}

// Type confusion inside fields.duration is the request's problem, not the
// body's: it decodes and carries the reason, so grants rejects it with
// invalid_duration under the Sym id.
func TestDecodeDurationConfusion(t *testing.T) {
	cases := []struct {
		name   string
		dur    any
		want   int64
		hasDur bool
		errSub string
	}{
		{"integer", 30, 30, true, ""},
		{"string", "30", 0, true, "not a number"},
		{"fraction", 1.5, 0, true, "not an integer"},
		{"exponent", json.Number("3e2"), 0, true, "not an integer"},
		{"bool", true, 0, true, "not a number"},
		{"object", map[string]any{"s": 1}, 0, true, "not a number"},
		{"null", nil, 0, false, ""},
		{"huge", json.Number("99999999999999999999"), 0, true, "not an integer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := mutate(t, func(m map[string]any) { fields(m)["duration"] = tc.dur })
			req, err := events.Decode(body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if req.Duration != tc.want || req.HasDur != tc.hasDur || !strings.Contains(req.DurErr, tc.errSub) || (tc.errSub == "") != (req.DurErr == "") {
				t.Errorf("duration %v: got (%d, %v, %q), want (%d, %v, ~%q)", tc.dur, req.Duration, req.HasDur, req.DurErr, tc.want, tc.hasDur, tc.errSub)
			}
		})
	}
	body := mutate(t, func(m map[string]any) { delete(fields(m), "duration") })
	if req, err := events.Decode(body); err != nil || req.HasDur {
		t.Errorf("missing duration: HasDur = %v, err %v", req.HasDur, err)
	}
}

func TestDecodeTimestampErrors(t *testing.T) {
	for _, ts := range []any{"", "yesterday", "2022-05-10 14:47:29", "2022-13-10T14:47:29Z"} {
		body := mutate(t, func(m map[string]any) { m["event"].(map[string]any)["timestamp"] = ts })
		req, err := events.Decode(body)
		if err != nil {
			t.Fatalf("timestamp %q: Decode: %v", ts, err)
		}
		if req.TSErr == "" || !req.Timestamp.IsZero() {
			t.Errorf("timestamp %q: got %v, TSErr %q; want an error", ts, req.Timestamp, req.TSErr)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, p := range fixtures(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		// Compact: the fuzzer minimizes every new input and that takes
		// time proportional to its size.
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			f.Fatal(err)
		}
		f.Add(c.Bytes())
	}
	f.Add([]byte(`{"id":"a","detail":null}`))
	f.Add([]byte(`{"source":"sym","detail":{"id":"a","fields":{"duration":"1"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := events.Decode(body)
		if err != nil {
			var de *events.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error is not a *DecodeError: %T %v", err, err)
			}
			if de.Code == "" {
				t.Fatalf("DecodeError without a code: %v", de)
			}
			if de.SymEventID != "" {
				validID(t, de.SymEventID)
			}
			return
		}
		validID(t, req.SymEventID)
		if !req.Timestamp.IsZero() && req.Timestamp.Location() != time.UTC {
			t.Fatalf("timestamp not UTC: %v", req.Timestamp)
		}
		if req.HasDur && req.DurErr == "" && req.Duration == 0 && !bytes.Contains(body, []byte("duration")) {
			t.Fatalf("duration %d from a body without one", req.Duration)
		}
	})
}

func validID(t *testing.T, id string) {
	t.Helper()
	if strings.TrimSpace(id) == "" || !utf8.ValidString(id) || events.HasControl(id) || len(id) > 128 {
		t.Fatalf("bad Sym id %q", id)
	}
}

// A custom target reads as the type its settings name, and stays custom
// (refused later) when they name none or more than one.
func TestCustomTargetType(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"iam group", map[string]any{"iam_group": "g"}, events.TargetIAMGroup},
		{"permission set", map[string]any{"permission_set_arn": "arn:aws:sso:::permissionSet/ssoins-1/ps-1", "account_id": "210987654321"}, events.TargetSSOPermissionSet},
		{"sso group", map[string]any{"group_id": "g-1"}, events.TargetSSOGroup},
		{"two kinds", map[string]any{"iam_group": "g", "group_id": "g-1"}, events.TargetCustom},
		{"none", map[string]any{"other": "x"}, events.TargetCustom},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := mutate(t, func(m map[string]any) {
				target := fields(m)["target"].(map[string]any)
				target["type"], target["settings"] = events.TargetCustom, c.settings
			})
			req, err := events.Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			if req.TargetType != c.want {
				t.Errorf("TargetType = %q, want %q", req.TargetType, c.want)
			}
		})
	}
}
