package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Event types of Sym's approval template. Only these two change anything.
const (
	TypeEscalate   = "escalate"
	TypeDeescalate = "deescalate"
)

// Target types. TargetIAMGroup is Sym's own aws_iam_group target, and the
// two Identity Center ones are those of Sym's aws_sso strategy. A custom
// target (TargetCustom) whose settings carry what one of them carries reads
// as it: iam_group an IAM group, permission_set_arn a permission set
// assignment, group_id an Identity Store group. That is what iamjit's custom
// Sym strategy offers (infra/modules/sym_flow), so that Sym itself holds no
// AWS rights and iamjit alone changes access. Any other custom target keeps
// its type (and grants refuses it).
const (
	TargetIAMGroup         = "aws_iam_group"
	TargetSSOPermissionSet = "aws_sso_permission_set"
	TargetSSOGroup         = "aws_sso_group"
	TargetCustom           = "custom"
)

// MaxBodyBytes bounds what Decode reads: SQS itself caps a body at 256 KiB.
const MaxBodyBytes = 256 * 1024

// maxDepth bounds JSON nesting; a SymLogEntry is 5 levels deep.
const maxDepth = 32

// Request is what iamjit needs from one SymLogEntry.
type Request struct {
	SymEventID string // Sym's id: identical across duplicate deliveries
	Source     string // EventBridge source; "" for a bare entry
	Bare       bool   // arrived without an EventBridge envelope
	Type       string // event.type: escalate, deescalate, approve, …
	Template   string // event.template
	RunSRN     string // run.srn
	TargetID   string // fields.target_id
	TargetType string // fields.target.type; a custom target reads as the type its settings name
	Requester  string // run.actors.request.username: who gets access
	Approver   string // run.actors.approve.username
	Actor      string // actor.username: who acted on this step
	Group      string // fields.target.settings.iam_group: a name or an ARN
	// Identity Center targets' settings: permission_set_arn and account_id
	// (aws_sso_permission_set), group_id (aws_sso_group).
	PermissionSetARN string
	AccountID        string
	SSOGroupID       string
	Reason           string    // fields.reason
	Duration         int64     // fields.duration, in the configured unit
	HasDur           bool      // fields.duration was present
	DurErr           string    // why fields.duration is unusable, if it is
	Timestamp        time.Time // event.timestamp, UTC
	TSErr            string    // why event.timestamp is unusable, if it is
}

// GrantID identifies a grant: shared by a request's escalate and deescalate.
func (r Request) GrantID() string {
	if r.RunSRN == "" || r.TargetID == "" {
		return ""
	}
	return r.RunSRN + "/" + r.TargetID
}

// DecodeError says why a body is not a SymLogEntry. SymEventID is set when
// the id could be read even though the rest could not.
type DecodeError struct {
	Code       Code // machine-readable: body_too_large, invalid_json, …
	Msg        string
	SymEventID string
}

func (e *DecodeError) Error() string { return string(e.Code) + ": " + e.Msg }

func decodeErr(code Code, format string, args ...any) *DecodeError {
	return &DecodeError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Decode reads an SQS body: an EventBridge envelope whose detail is a
// SymLogEntry, or a bare SymLogEntry. It rejects bodies that are too large,
// not UTF-8, too deeply nested, have duplicate keys, or lack a Sym id.
func Decode(body []byte) (Request, error) {
	if len(body) > MaxBodyBytes {
		return Request{}, decodeErr(CodeBodyTooLarge, "body is %d bytes, limit %d", len(body), MaxBodyBytes)
	}
	if !utf8.Valid(body) {
		return Request{}, decodeErr(CodeInvalidUTF8, "body is not valid UTF-8")
	}
	if err := checkStructure(body); err != nil {
		return Request{}, err
	}
	var probe struct {
		Source *string `json:"source"`
		// Not a pointer: "detail": null must stay an envelope (and fail as
		// one) rather than read as a bare entry carrying the envelope's id.
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return Request{}, decodeErr(CodeInvalidJSON, "%v", err)
	}
	req := Request{}
	entry := body
	if probe.Detail != nil {
		var env Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			return Request{}, decodeErr(CodeInvalidEnvelope, "%v", err)
		}
		req.Source = env.Source
		entry = env.Detail
	} else {
		req.Bare = true
	}
	var id struct {
		ID any `json:"id"`
	}
	if err := json.Unmarshal(entry, &id); err != nil {
		return Request{}, decodeErr(CodeInvalidEntry, "detail is not a JSON object: %v", err)
	}
	symID, ok := id.ID.(string)
	if !ok || strings.TrimSpace(symID) == "" {
		return Request{}, decodeErr(CodeMissingID, "SymLogEntry has no string id")
	}
	if len(symID) > 128 || hasControl(symID) {
		return Request{}, decodeErr(CodeInvalidID, "Sym id is too long or has control characters")
	}
	req.SymEventID = symID
	var e SymLogEntry
	if err := json.Unmarshal(entry, &e); err != nil {
		de := decodeErr(CodeInvalidEntry, "SymLogEntry does not match the schema: %v", err)
		de.SymEventID = symID
		return req, de
	}
	req.Type = e.Event.Type
	req.Template = e.Event.Template
	req.RunSRN = e.Run.SRN
	req.TargetID = e.Fields.TargetID
	req.Requester = e.Run.Actors["request"].Username
	req.Approver = e.Run.Actors["approve"].Username
	req.Actor = e.Actor.Username
	req.Reason = e.Fields.Reason
	if t := e.Fields.Target; t != nil {
		req.TargetType = t.Type
		req.Group = t.Settings["iam_group"]
		req.PermissionSetARN, req.AccountID = t.Settings["permission_set_arn"], t.Settings["account_id"]
		req.SSOGroupID = t.Settings["group_id"]
		if t.Type == TargetCustom {
			req.TargetType = customType(t.Settings)
		}
	}
	req.Duration, req.HasDur, req.DurErr = parseDuration(e.Fields.Duration)
	req.Timestamp, req.TSErr = parseTimestamp(e.Event.Timestamp)
	return req, nil
}

// customType is the type a custom target's settings name; a custom target
// that names none, or more than one, stays custom.
func customType(settings map[string]string) string {
	var types []string
	if _, ok := settings["iam_group"]; ok {
		types = append(types, TargetIAMGroup)
	}
	if _, ok := settings["permission_set_arn"]; ok {
		types = append(types, TargetSSOPermissionSet)
	}
	if _, ok := settings["group_id"]; ok {
		types = append(types, TargetSSOGroup)
	}
	if len(types) != 1 {
		return TargetCustom
	}
	return types[0]
}

func parseDuration(raw json.RawMessage) (int64, bool, string) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, ""
	}
	if raw[0] == '"' {
		// encoding/json reads "30" into a json.Number; Sym sends a number.
		return 0, true, "fields.duration is not a number"
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&n); err != nil {
		return 0, true, "fields.duration is not a number"
	}
	v, err := n.Int64()
	if err != nil {
		return 0, true, "fields.duration is not an integer"
	}
	return v, true, ""
}

// timestampLayouts: Sym writes RFC 3339, sometimes without a zone (UTC).
var timestampLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"}

func parseTimestamp(s string) (time.Time, string) {
	if s == "" {
		return time.Time{}, "event.timestamp is missing"
	}
	for _, l := range timestampLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), ""
		}
	}
	return time.Time{}, "event.timestamp is not RFC 3339"
}

// hasControl also counts Unicode format characters (bidi overrides,
// zero-width joiners) and line/paragraph separators: invisible, they let two
// names look equal (or one look like another) in logs and checks.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
}

// HasControl reports whether s holds a control character; names with one are
// refused rather than logged or passed to IAM.
func HasControl(s string) bool { return hasControl(s) }

// checkStructure walks the tokens once: it bounds nesting and refuses an
// object with a key twice (encoding/json would silently keep the last,
// letting a forged key shadow the real one).
func checkStructure(body []byte) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	type frame struct {
		obj    bool
		keys   map[string]struct{}
		expKey bool
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return decodeErr(CodeInvalidJSON, "%v", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		k, isStr := tok.(string)
		if top != nil && top.obj && top.expKey && isStr {
			// encoding/json matches keys case-insensitively ("Type" fills
			// event.type), so keys equal under folding are duplicates too.
			fk := foldKey(k)
			if _, dup := top.keys[fk]; dup {
				return decodeErr(CodeDuplicateKey, "key %q appears twice in one object", truncate(k, 64))
			}
			top.keys[fk] = struct{}{}
			top.expKey = false
			continue
		}
		if top != nil && top.obj {
			top.expKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, keys: map[string]struct{}{}, expKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if n := len(stack); n > 0 && stack[n-1].obj {
				stack[n-1].expKey = true
			}
		}
		if len(stack) > maxDepth {
			return decodeErr(CodeTooDeep, "JSON nesting exceeds %d levels", maxDepth)
		}
	}
	return nil
}

// foldKey maps every rune to the smallest rune of its case-folding orbit,
// so foldKey(a) == foldKey(b) exactly when strings.EqualFold(a, b), which is
// how encoding/json matches a key to a field.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
