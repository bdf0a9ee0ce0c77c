package sessions

import (
	"encoding/json"
	"maps"
	"slices"
	"time"
	"unicode"
)

// PolicyName is the one inline policy iamjit owns on each role it revokes
// sessions of. Every other policy of the role is only read, for its size.
const PolicyName = "iamjit-session-revocation"

// InlineLimit is IAM's aggregate size of a role's inline policies, in
// characters, whitespace not counted.
const InlineLimit = 10240

// How a rendered policy denies: a Plan's Mode, and the mode label of the
// revocation metrics. Not IAMJIT_SESSION_REVOCATION, whose values are the
// Revoke* modes: under RevokeUser a role that does not require source
// identity still gets a ModeRole policy.
const (
	ModeUser = "user" // by aws:SourceIdentity, per user
	ModeRole = "role" // by aws:TokenIssueTime alone, every session of the role
)

// Plan is what one write to a role does.
type Plan struct {
	// Doc is the policy to put; empty when nothing is left to deny (the
	// policy is deleted).
	Doc string
	// Mode is ModeUser or ModeRole: how Doc denies.
	Mode string
	// Fallback: the per-user document would not fit, so Doc is role-wide.
	Fallback bool
	// NoRoom: not even the role-wide statement fits beside the role's other
	// inline policies; nothing is written.
	NoRoom bool
	// Drop lists the users whose entries deny nothing any more.
	Drop []string
	// Users are the entries Doc denies.
	Users map[string]time.Time
	// Prune is when the oldest kept entry stops denying anything (zero when
	// none is kept): the item is due for a write then.
	Prune time.Time
}

type denyStatement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    string                    `json:"Action"`
	Resource  string                    `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition"`
}

type denyDocument struct {
	Version   string          `json:"Version"`
	Statement []denyStatement `json:"Statement"`
}

// Cutoff is the aws:TokenIssueTime a revocation at at denies before: the
// next whole second, since IAM compares to the second and a session issued
// in the same second as the revocation must end too.
func Cutoff(at time.Time) time.Time {
	t := at.UTC().Truncate(time.Second)
	if t.Before(at) {
		t = t.Add(time.Second)
	}
	return t
}

const stamp = "2006-01-02T15:04:05Z"

// Render builds the policy a role should carry for its entries (user ->
// revocation time). perUser: the role requires source identity and the mode
// is user. Entries whose sessions have all expired (cutoff older than
// maxSession) are dropped. budget is what IAM leaves for this policy: the
// inline limit less the role's other inline policies.
func Render(entries map[string]time.Time, perUser bool, maxSession time.Duration, now time.Time, budget int) Plan {
	p := Plan{}
	p.Users, p.Drop, p.Prune = live(entries, maxSession, now)
	slices.Sort(p.Drop)
	if len(p.Users) == 0 {
		return p
	}
	if perUser {
		p.Mode, p.Doc = ModeUser, userDoc(p.Users)
		if Size(p.Doc) <= budget {
			return p
		}
		p.Fallback = true
	}
	p.Mode, p.Doc = ModeRole, roleDoc(p.Users)
	if Size(p.Doc) > budget {
		p.Doc, p.NoRoom = "", true
	}
	return p
}

// live splits entries (anything -> revocation time) into those whose
// sessions may still be alive, cutoff younger than maxSession, and those to
// drop; prune is when the oldest kept entry stops denying anything (zero
// when none is kept). Roles and permission sets prune alike.
func live[K comparable](entries map[K]time.Time, maxSession time.Duration, now time.Time) (keep map[K]time.Time, drop []K, prune time.Time) {
	keep = map[K]time.Time{}
	for k, at := range entries {
		end := Cutoff(at).Add(maxSession)
		if !end.After(now) {
			drop = append(drop, k)
			continue
		}
		keep[k] = at
		if prune.IsZero() || end.Before(prune) {
			prune = end
		}
	}
	return keep, drop, prune
}

// userDoc denies each user's sessions issued before their revocation; users
// revoked in the same second share a statement.
func userDoc(users map[string]time.Time) string {
	byCut := map[time.Time][]string{}
	for u, at := range users {
		c := Cutoff(at)
		byCut[c] = append(byCut[c], u)
	}
	var d denyDocument
	for _, c := range slices.SortedFunc(maps.Keys(byCut), time.Time.Compare) {
		names := byCut[c]
		slices.Sort(names)
		var si any = names
		if len(names) == 1 {
			si = names[0]
		}
		d.Statement = append(d.Statement, denyStatement{
			Sid: "UsersBefore" + c.Format("20060102T150405Z"), Effect: "Deny", Action: "*", Resource: "*",
			Condition: map[string]map[string]any{
				"StringEquals": {"aws:SourceIdentity": si},
				"DateLessThan": {"aws:TokenIssueTime": c.Format(stamp)},
			},
		})
	}
	return marshal(d)
}

// roleDoc denies every session of the role issued before the latest
// revocation: a superset of every per-user statement.
func roleDoc(users map[string]time.Time) string {
	var latest time.Time
	for _, at := range users {
		if c := Cutoff(at); c.After(latest) {
			latest = c
		}
	}
	return marshal(denyDocument{Statement: []denyStatement{{
		Sid: "AllBefore" + latest.Format("20060102T150405Z"), Effect: "Deny", Action: "*", Resource: "*",
		Condition: map[string]map[string]any{"DateLessThan": {"aws:TokenIssueTime": latest.Format(stamp)}},
	}}})
}

func marshal(d denyDocument) string {
	d.Version = "2012-10-17"
	b, _ := json.Marshal(d) // plain strings and maps: cannot fail
	return string(b)
}

// Size is a policy's length as IAM counts it: whitespace excluded.
func Size(doc string) int {
	n := 0
	for _, r := range doc {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}
