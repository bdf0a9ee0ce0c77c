package sessions

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/iamjit/iamjit/events"
)

// Role is what the revoker needs to know about one IAM role.
type Role struct {
	ARN                string
	Name               string
	Path               string
	MaxSessionDuration time.Duration
	Trust              string // the trust policy document, decoded JSON
}

// InPath reports whether the role lies under path (IAMJIT_ROLE_PATH).
func (r Role) InPath(path string) bool { return strings.HasPrefix(r.Path, path) }

// stringList is a policy field that IAM policy JSON allows as one string
// or a list of strings (Action, Resource, a condition's values, a
// principal's ARNs). It decodes either form into a list, so callers never
// ask which one a document used.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("neither a string nor a list of strings: %w", err)
	}
	*s = many
	return nil
}

type statement struct {
	Effect       string
	Principal    json.RawMessage
	NotPrincipal json.RawMessage
	Action       stringList
	NotAction    stringList
	Resource     stringList
	NotResource  stringList
	Condition    map[string]map[string]stringList
}

// statements is a Statement field: one object or a list.
type statements []statement

func (s *statements) UnmarshalJSON(b []byte) error {
	var one statement
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []statement{one}
		return nil
	}
	var many []statement
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

type document struct {
	Statement statements
}

func parse(doc string) (document, error) {
	var d document
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return document{}, fmt.Errorf("policy document: %w", err)
	}
	return d, nil
}

const assumeRole = "sts:AssumeRole"

// allowsAssume reports whether an Allow statement lets its principal call
// sts:AssumeRole. NotAction is handled, not ignored: an Allow whose
// NotAction does not exclude sts:AssumeRole allows it.
func (st statement) allowsAssume() bool {
	if !strings.EqualFold(st.Effect, "Allow") {
		return false
	}
	if len(st.Action) > 0 {
		return slices.ContainsFunc(st.Action, func(p string) bool { return wildMatch(strings.ToLower(p), strings.ToLower(assumeRole)) })
	}
	if len(st.NotAction) > 0 {
		return !slices.ContainsFunc(st.NotAction, func(p string) bool { return wildMatch(strings.ToLower(p), strings.ToLower(assumeRole)) })
	}
	return false
}

// covers reports whether the statement's Resource (or NotResource) takes
// in arn.
func (st statement) covers(arn string) bool {
	if len(st.Resource) > 0 {
		return slices.ContainsFunc(st.Resource, func(p string) bool { return wildMatch(resourcePattern(p), arn) })
	}
	if len(st.NotResource) > 0 {
		return !slices.ContainsFunc(st.NotResource, func(p string) bool { return wildMatch(resourcePattern(p), arn) })
	}
	return false
}

// resourcePattern turns policy variables (${aws:username}, …) into *: what
// they stand for is only known per request, so a role any value could name
// counts as assumable.
func resourcePattern(p string) string {
	var b strings.Builder
	for {
		i := strings.Index(p, "${")
		if i < 0 {
			b.WriteString(p)
			return b.String()
		}
		j := strings.Index(p[i:], "}")
		if j < 0 {
			b.WriteString(p)
			return b.String()
		}
		b.WriteString(p[:i])
		b.WriteByte('*')
		p = p[i+j+1:]
	}
}

// wildMatch matches IAM's wildcards: * any run of characters (slashes
// included), ? one character.
func wildMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// FindRoles returns the roles among existing that the group policy
// documents let a member assume: those named by the Resource (or not
// excluded by the NotResource) of an Allow that covers sts:AssumeRole,
// wildcards and policy variables resolved against existing. A statement
// allowing only sts:TagSession or sts:SetSourceIdentity lets no one assume
// anything and adds no role. Deny statements and conditions are ignored:
// that can only add roles, and a Deny on a role nobody can assume through
// the group costs nothing. A document that does not parse is an error,
// never "no roles".
func FindRoles(docs []string, existing []Role) ([]Role, error) {
	var allow []statement
	for _, doc := range docs {
		d, err := parse(doc)
		if err != nil {
			return nil, err
		}
		for _, st := range d.Statement {
			if st.allowsAssume() {
				allow = append(allow, st)
			}
		}
	}
	var out []Role
	for _, r := range existing {
		if slices.ContainsFunc(allow, func(st statement) bool { return st.covers(r.ARN) }) {
			out = append(out, r)
		}
	}
	return out, nil
}

// MayName reports whether the group policy documents could let a member
// assume a role in account (every account when it is ""): an Allow that
// covers sts:AssumeRole with a NotResource, or a Resource whose account
// field, variables read as *, matches it. Only such an account's roles need
// listing, so an account that no policy names never holds up the others.
func MayName(docs []string, account string) bool {
	if account == "" {
		return true
	}
	for _, doc := range docs {
		d, err := parse(doc)
		if err != nil {
			return true // FindRoles reports it
		}
		for _, st := range d.Statement {
			if !st.allowsAssume() {
				continue
			}
			if len(st.NotResource) > 0 {
				return true
			}
			for _, p := range st.Resource {
				parts := strings.SplitN(resourcePattern(p), ":", 6)
				if len(parts) < 5 || wildMatch(parts[4], account) {
					return true
				}
			}
		}
	}
	return false
}

// ForeignRoles returns the role patterns the group policy documents let a
// member assume in an account managed reports false for: the Resource of
// an Allow that covers sts:AssumeRole, where it names a role
// (arn:<partition>:iam::<12 digits>:role/...). iamjit cannot list or write
// roles there, so it can only report them. A pattern whose account is a
// wildcard or a variable names no one account and is not returned.
func ForeignRoles(docs []string, managed func(account string) bool) []string {
	var out []string
	for _, doc := range docs {
		d, err := parse(doc)
		if err != nil {
			continue // FindRoles reports it
		}
		for _, st := range d.Statement {
			if !st.allowsAssume() {
				continue
			}
			for _, p := range st.Resource {
				parts := strings.SplitN(p, ":", 6)
				if len(parts) < 6 || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") || !events.IsAccountID(parts[4]) || managed(parts[4]) {
					continue
				}
				if !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// Trusts reports whether the trust policy lets sessions of the role
// roleARN assume the role it belongs to: an Allow of sts:AssumeRole whose
// Principal is "*", or whose AWS principals name that role, its account
// (the id or its :root) or "*", or one with a NotPrincipal. Conditions are
// ignored: that can only add roles, as in FindRoles. A trust policy that
// does not parse trusts it too, for the same reason.
func Trusts(trust, roleARN string) bool {
	d, err := parse(trust)
	if err != nil {
		return true
	}
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) < 6 {
		return true
	}
	account := parts[4]
	names := func(p string) bool {
		return p == "*" || p == roleARN || p == account || p == "arn:"+parts[1]+":iam::"+account+":root"
	}
	for _, st := range d.Statement {
		if !st.allowsAssume() {
			continue
		}
		if len(st.NotPrincipal) > 0 {
			return true
		}
		var star string
		if json.Unmarshal(st.Principal, &star) == nil {
			if star == "*" {
				return true
			}
			continue
		}
		var by map[string]stringList
		if json.Unmarshal(st.Principal, &by) == nil && slices.ContainsFunc(by["AWS"], names) {
			return true
		}
	}
	return false
}

// RequiresSourceIdentity reports whether every way into the role sets the
// caller's IAM user name as the session's source identity: each Allow of
// sts:AssumeRole in the trust policy conditions sts:SourceIdentity with
// StringEquals or StringLike to ${aws:username}, and nothing else. Only
// then does a Deny on aws:SourceIdentity catch every session of that user.
func RequiresSourceIdentity(trust string) bool {
	d, err := parse(trust)
	if err != nil {
		return false
	}
	seen := false
	for _, st := range d.Statement {
		if !st.allowsAssume() {
			continue
		}
		seen = true
		ok := false
		for op, keys := range st.Condition {
			if !strings.EqualFold(op, "StringEquals") && !strings.EqualFold(op, "StringLike") {
				continue
			}
			for k, vals := range keys {
				if strings.EqualFold(k, "sts:SourceIdentity") && len(vals) > 0 &&
					!slices.ContainsFunc(vals, func(v string) bool { return v != "${aws:username}" }) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return seen
}
