package sessions

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// SetInlineLimit is the longest inline policy a permission set takes
// (PutInlinePolicyToPermissionSet: InlinePolicy length at most 32768
// characters, whitespace counted).
const SetInlineLimit = 32768

// SidPrefix begins the Sid of every statement iamjit writes into a
// permission set's inline policy: the statements it owns there. Every other
// statement is the customer's and is kept as it is. A customer statement
// whose Sid begins so is taken for iamjit's.
const SidPrefix = "IamjitSessionsEnd"

// Levels of a permission set's revocation statements, finest first: each
// denies a superset of the one before, and takes less room.
const (
	LevelUser    = "user"    // per user and account: identitystore:userId and aws:PrincipalAccount
	LevelAccount = "account" // per account: every session of the permission set there
	LevelSet     = "set"     // every session of the permission set in every account
)

// Condition keys of a session issued through a permission set.
const (
	keyUser    = "identitystore:userId"
	keyAccount = "aws:PrincipalAccount"
)

// Entry is one revocation on a permission set: a user's sessions in one
// account.
type Entry struct {
	User    string // Identity Store user id
	Account string // AWS account id
}

func compareEntries(a, b Entry) int {
	return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.User, b.User))
}

// SetPlan is what one write to a permission set's inline policy does.
type SetPlan struct {
	// Doc is the whole inline policy to put: the customer's statements as
	// they were, then iamjit's. Empty when neither has any (the inline
	// policy is deleted).
	Doc string
	// Level is how iamjit's statements deny ("" when it has none).
	Level string
	// NoRoom: not even the LevelSet statement fits beside the customer's
	// statements; nothing is written.
	NoRoom bool
	// Drop lists the entries that deny nothing any more.
	Drop []Entry
	// Entries are those Doc denies.
	Entries map[Entry]time.Time
	// Prune is when the oldest kept entry stops denying anything.
	Prune time.Time
}

// RenderSet builds a permission set's inline policy from the one it holds
// (current, "" for none) and its entries: the customer's statements are
// kept, iamjit's (Sid beginning SidPrefix) replaced by statements for the
// entries whose sessions may still live (cutoff younger than the session
// duration). It starts at LevelUser (LevelAccount with mode RevokeRole) and
// falls back a level while the policy would exceed SetInlineLimit.
func RenderSet(current string, entries map[Entry]time.Time, sessionDuration time.Duration, now time.Time, mode string) (SetPlan, error) {
	var p SetPlan
	p.Entries, p.Drop, p.Prune = live(entries, sessionDuration, now)
	slices.SortFunc(p.Drop, compareEntries)
	head, theirs, err := splitPolicy(current)
	if err != nil {
		return SetPlan{}, err
	}
	levels := []string{LevelUser, LevelAccount, LevelSet}
	if mode == RevokeRole {
		levels = levels[1:]
	}
	if len(p.Entries) == 0 {
		levels = []string{""}
	}
	for _, lvl := range levels {
		doc := joinPolicy(head, theirs, setStatements(lvl, p.Entries))
		if utf8.RuneCountInString(doc) <= SetInlineLimit {
			p.Doc, p.Level = doc, lvl
			return p, nil
		}
	}
	p.NoRoom = true
	return p, nil
}

// setStatements renders the entries at a level, in a stable order.
func setStatements(level string, entries map[Entry]time.Time) []denyStatement {
	type group struct {
		cut      time.Time
		user     string // LevelUser
		accounts []string
	}
	var groups []group
	switch level {
	case LevelUser:
		// A user's entries of one cutoff share a statement: an ended group
		// membership ends the user's sessions in many accounts at once.
		by := map[Entry][]string{} // {user, cutoff stamp} -> accounts
		for e, at := range entries {
			k := Entry{User: e.User, Account: Cutoff(at).Format(stamp)}
			by[k] = append(by[k], e.Account)
		}
		for k, accts := range by {
			c, _ := time.Parse(stamp, k.Account)
			groups = append(groups, group{cut: c, user: k.User, accounts: accts})
		}
	case LevelAccount:
		// Per account, the latest cutoff covers every earlier one there.
		latest := map[string]time.Time{}
		for e, at := range entries {
			if c := Cutoff(at); c.After(latest[e.Account]) {
				latest[e.Account] = c
			}
		}
		by := map[time.Time][]string{}
		for a, c := range latest {
			by[c] = append(by[c], a)
		}
		for c, accts := range by {
			groups = append(groups, group{cut: c, accounts: accts})
		}
	case LevelSet:
		var c time.Time
		for _, at := range entries {
			if Cutoff(at).After(c) {
				c = Cutoff(at)
			}
		}
		groups = append(groups, group{cut: c})
	}
	slices.SortFunc(groups, func(a, b group) int { return cmp.Or(a.cut.Compare(b.cut), cmp.Compare(a.user, b.user)) })
	out := make([]denyStatement, 0, len(groups))
	for i, g := range groups {
		slices.Sort(g.accounts)
		eq := map[string]any{}
		if g.user != "" {
			eq[keyUser] = g.user
		}
		switch len(g.accounts) {
		case 0:
		case 1:
			eq[keyAccount] = g.accounts[0]
		default:
			eq[keyAccount] = g.accounts
		}
		cond := map[string]map[string]any{"DateLessThan": {"aws:TokenIssueTime": g.cut.Format(stamp)}}
		if len(eq) > 0 {
			cond["StringEquals"] = eq
		}
		// Sids are alphanumeric and unique within the policy.
		out = append(out, denyStatement{Sid: fmt.Sprintf("%s%s%d", SidPrefix, g.cut.Format("20060102T150405Z"), i),
			Effect: "Deny", Action: "*", Resource: "*", Condition: cond})
	}
	return out
}

// splitPolicy parses an inline policy into its top-level fields but
// Statement, and its statements that are not iamjit's, each as it was.
func splitPolicy(doc string) (map[string]json.RawMessage, []json.RawMessage, error) {
	head := map[string]json.RawMessage{}
	if strings.TrimSpace(doc) == "" {
		return head, nil, nil
	}
	if err := json.Unmarshal([]byte(doc), &head); err != nil {
		return nil, nil, fmt.Errorf("the permission set's inline policy: %w", err)
	}
	raw := head["Statement"]
	delete(head, "Statement")
	var all []json.RawMessage
	if len(bytes.TrimSpace(raw)) > 0 && bytes.TrimSpace(raw)[0] == '{' {
		all = []json.RawMessage{raw} // one statement, not a list
	} else if len(raw) > 0 {
		if err := json.Unmarshal(raw, &all); err != nil {
			return nil, nil, fmt.Errorf("the permission set's inline policy: Statement: %w", err)
		}
	}
	var theirs []json.RawMessage
	for _, st := range all {
		var id struct{ Sid string }
		if err := json.Unmarshal(st, &id); err != nil {
			return nil, nil, fmt.Errorf("the permission set's inline policy: a statement: %w", err)
		}
		if !strings.HasPrefix(id.Sid, SidPrefix) {
			theirs = append(theirs, st)
		}
	}
	return head, theirs, nil
}

// joinPolicy is head with the customer's statements and iamjit's; "" when
// there are none.
func joinPolicy(head map[string]json.RawMessage, theirs []json.RawMessage, ours []denyStatement) string {
	if len(theirs)+len(ours) == 0 {
		return ""
	}
	// Built by hand: json.Marshal would HTML-escape the customer's text.
	var list bytes.Buffer
	list.WriteByte('[')
	for i, st := range theirs {
		if i > 0 {
			list.WriteByte(',')
		}
		_ = json.Compact(&list, st) // parsed already: cannot fail
	}
	for i, st := range ours {
		if i > 0 || len(theirs) > 0 {
			list.WriteByte(',')
		}
		b, _ := json.Marshal(st) // strings and maps: cannot fail
		list.Write(b)
	}
	list.WriteByte(']')
	out := maps.Clone(head)
	if _, ok := out["Version"]; !ok {
		out["Version"] = json.RawMessage(`"2012-10-17"`)
	}
	out["Statement"] = list.Bytes()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep the customer's <, > and & as they were
	_ = enc.Encode(out)      // raw JSON that parsed: cannot fail
	return strings.TrimSuffix(buf.String(), "\n")
}

// DeniesIn reports whether a permission set's inline policy denies every
// action to user's sessions in account issued before at: a Deny of * on *
// conditioned on aws:TokenIssueTime before at's cutoff or later and,
// optionally, identitystore:userId naming user and aws:PrincipalAccount
// naming account (any of the three levels RenderSet writes).
func DeniesIn(doc, user, account string, at time.Time) bool {
	return deniesWith(doc, at, map[string]string{keyUser: user, keyAccount: account})
}

// SetTarget names a permission set in an account, as sessions_revoked
// lists it.
func SetTarget(permissionSetARN, account string) string {
	return permissionSetARN + " in " + account
}
