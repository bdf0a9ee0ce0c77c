package hostile_test

// Hostile messages through the real path: the iamjit binary (`iamjit dev`,
// then `iamjit run`) against a real moto_server. Every body goes straight
// onto the queue with SendMessage, so forged sources and bare entries reach
// the consumer exactly as an attacker with sqs:SendMessage would put them.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/aws/smithy-go"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/internal/testkit"
)

// Outcome kinds a hostile message may have.
const (
	rejected = "rejected" // Access Request Rejected with code, matched by sym_event_id
	dlq      = "dlq"      // moved to the DLQ with iamjit.error_code = code
	ignored  = "ignored"  // deleted, no result, no IAM change
)

const (
	requester = "bob@example.com"
	approver  = "sym-implementer@healthy-health.co"
	devGroup  = "sec-readonly"
	ctlGroup  = "sec-control"
	ctlUser   = "ctl@example.com"
	ctlSymID  = "sec-control-escalate"
	// The Identity Center controls: ctlUser gets the dev permission set
	// (a custom target, as the deployment's Sym flow sends it) and joins
	// the dev Identity Store group.
	ctlPSSymID    = "sec-control-permission-set"
	ctlGroupSymID = "sec-control-sso-group"
	// foreignAccount is in no allow-list and no IAMJIT_ACCOUNTS.
	foreignAccount = "999999999999"
)

type hostile struct {
	name string
	// entry changes the valid SymLogEntry; raw, when set, turns the whole
	// envelope JSON into the body instead (duplicate keys, bad JSON, …).
	entry  func(e map[string]any)
	source *string // nil: "sym"
	bare   bool
	raw    func(body string) string
	kind   string
	code   string
	symID  string // the sym id the outcome carries, when entry sets one
	// echo is what a rejection's detail must carry: key -> value, "" for a
	// key it must not carry.
	echo map[string]string
}

func str(s string) *string { return &s }

func set(path string, v any) func(map[string]any) {
	return func(e map[string]any) { setPath(e, path, v) }
}

func setPath(e map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	m := e
	for _, k := range keys[:len(keys)-1] {
		m = m[k].(map[string]any)
	}
	if v == nil {
		delete(m, keys[len(keys)-1])
		return
	}
	m[keys[len(keys)-1]] = v
}

func both(fs ...func(map[string]any)) func(map[string]any) {
	return func(e map[string]any) {
		for _, f := range fs {
			f(e)
		}
	}
}

func replace(old, new string) func(string) string {
	return func(body string) string {
		if strings.Count(body, old) != 1 {
			panic(fmt.Sprintf("test body has %q %d times", old, strings.Count(body, old)))
		}
		return strings.Replace(body, old, new, 1)
	}
}

func hostileCases(now time.Time, ic icSetup) []hostile {
	group := func(g string) func(map[string]any) { return set("fields.target.settings.iam_group", g) }
	req := func(u string) func(map[string]any) { return set("run.actors.request.username", u) }
	appr := func(u string) func(map[string]any) { return set("run.actors.approve.username", u) }
	dur := func(v any) func(map[string]any) { return set("fields.duration", v) }
	ts := func(v string) func(map[string]any) { return set("event.timestamp", v) }
	acct := motoserver.AccountID
	return append([]hostile{
		// Origin.
		{name: "forged source", source: str("sym.evil"), kind: rejected, code: "source_not_allowed"},
		{name: "source differing in case", source: str("SYM"), kind: rejected, code: "source_not_allowed"},
		{name: "envelope without source", source: str(""), kind: rejected, code: "source_not_allowed"},
		{name: "bare entry when not accepted", bare: true, kind: rejected, code: "bare_not_accepted"},
		{name: "forged malformed body claiming a real sym id", source: str("sym.evil"),
			entry: both(set("id", ctlSymID), set("run.actors", []any{"x"})), kind: rejected, code: "source_not_allowed", symID: ctlSymID},
		// Group.
		{name: "group admins at path /", entry: group("admins"), kind: rejected, code: "group_not_allowed"},
		{name: "group under the path but not in the allow list", entry: group("sec-secret"), kind: rejected, code: "group_not_allowed"},
		{name: "group at a look-alike path /symbolic/", entry: group("sec-lookalike"), kind: rejected, code: "group_not_allowed"},
		{name: "group ARN of another account", entry: group("arn:aws:iam::999999999999:group/sym/" + devGroup), kind: rejected, code: "foreign_account"},
		{name: "group ARN with a path IAM does not have", entry: group("arn:aws:iam::" + acct + ":group/other/" + devGroup), kind: rejected, code: "invalid_group"},
		{name: "group ARN of admins in this account", entry: group("arn:aws:iam::" + acct + ":group/admins"), kind: rejected, code: "group_not_allowed"},
		{name: "group ARN with ../", entry: group("arn:aws:iam::" + acct + ":group/sym/../admins"), kind: rejected, code: "invalid_group"},
		{name: "group ARN with wildcard", entry: group("arn:aws:iam::" + acct + ":group/sym/*"), kind: rejected, code: "invalid_group"},
		{name: "group name ../admins", entry: group("../admins"), kind: rejected, code: "invalid_group"},
		{name: "group name sym/../admins", entry: group("sym/../admins"), kind: rejected, code: "invalid_group"},
		{name: "group name *", entry: group("*"), kind: rejected, code: "invalid_group"},
		{name: "group name sec-*", entry: group("sec-*"), kind: rejected, code: "invalid_group"},
		{name: "group name /admins", entry: group("/admins"), kind: rejected, code: "invalid_group"},
		{name: "empty group", entry: group(""), kind: rejected, code: "invalid_group"},
		{name: "unknown group", entry: group("sec-ghost"), kind: rejected, code: "unknown_group"},
		{name: "control character in the group name", entry: group(devGroup + "\a"), kind: rejected, code: "invalid_request"},
		// Identity.
		{name: "unknown user", entry: req("nobody@example.com"), kind: rejected, code: "unknown_user"},
		{name: "ambiguous user (two users tagged the same email)", entry: req("twin@example.com"), kind: rejected, code: "ambiguous_user"},
		{name: "email without @", entry: req("bob"), kind: rejected, code: "unknown_user"},
		{name: "email with two @", entry: req("bob@example.com@example.org"), kind: rejected, code: "unknown_user"},
		{name: "local part of a domain not allowed", entry: req("carol@evil.example"), kind: rejected, code: "unknown_user"},
		{name: "mapping file names a user IAM does not have", entry: req("ghost@partner.example"), kind: rejected, code: "unknown_user"},
		{name: "control character in the requester", entry: req("bob\x07@example.com"), kind: rejected, code: "invalid_request"},
		{name: "newline in the requester", entry: req("bob@example.com\nlevel=ERROR forged"), kind: rejected, code: "invalid_request"},
		{name: "bidi override in the requester", entry: req("\u202ebob@example.com"), kind: rejected, code: "invalid_request"},
		{name: "oversized requester", entry: req(strings.Repeat("b", 200_000) + "@example.com"), kind: rejected, code: "invalid_request"},
		{name: "missing approver", entry: set("run.actors.approve", nil), kind: rejected, code: "invalid_request"},
		// Self-approval.
		{name: "self-approval", entry: appr(requester), kind: rejected, code: "self_approval"},
		{name: "self-approval in another case", entry: appr(strings.ToUpper(requester)), kind: rejected, code: "self_approval"},
		{name: "self-approval through an alias of the same IAM user", entry: both(req("dave@example.org"), appr("dave.alias@example.com")), kind: rejected, code: "self_approval"},
		{name: "self-approval through the mapping file", entry: appr("boss@partner.example"), kind: rejected, code: "self_approval"},
		{name: "zero-width space hiding a self-approval", entry: appr(requester + "\u200b"), kind: rejected, code: "invalid_request"},
		// Duration.
		{name: "huge duration", entry: dur(1_000_000_000_000), kind: rejected, code: "duration_too_long"},
		{name: "duration above IAMJIT_MAX_DURATION", entry: dur(7200), kind: rejected, code: "duration_too_long"},
		{name: "duration beyond int64", entry: dur(json.Number("1e30")), kind: rejected, code: "invalid_duration"},
		{name: "zero duration", entry: dur(0), kind: rejected, code: "invalid_duration"},
		{name: "negative duration", entry: dur(-600), kind: rejected, code: "invalid_duration"},
		{name: "duration as string", entry: dur("600"), kind: rejected, code: "invalid_duration"},
		{name: "duration float", entry: dur(600.5), kind: rejected, code: "invalid_duration"},
		{name: "missing duration", entry: set("fields.duration", nil), kind: rejected, code: "invalid_duration"},
		// Time.
		{name: "far-future timestamp", entry: ts("2999-01-01T00:00:00Z"), kind: rejected, code: "future_timestamp"},
		{name: "timestamp ten minutes ahead", entry: ts(now.Add(10 * time.Minute).Format(time.RFC3339)), kind: rejected, code: "future_timestamp"},
		{name: "far-past timestamp (expired)", entry: ts("2001-01-01T00:00:00"), kind: rejected, code: "expired"},
		{name: "unparseable timestamp", entry: ts("yesterday"), kind: rejected, code: "invalid_timestamp"},
		// What the request is.
		{name: "non-approval template", entry: set("event.template", "sym:template:custom:1.0.0"), kind: rejected, code: "unsupported_template"},
		{name: "deescalate of a non-approval template", entry: both(set("event.type", "deescalate"), set("event.template", "sym:template:custom:1.0.0")), kind: rejected, code: "unsupported_template"},
		{name: "lambda target", entry: set("fields.target.type", "aws_lambda_function"), kind: rejected, code: "unsupported_target"},
		{name: "missing target_id", entry: set("fields.target_id", nil), kind: rejected, code: "invalid_request"},
		{name: "oversized target_id", entry: set("fields.target_id", strings.Repeat("x", 150_000)), kind: rejected, code: "invalid_request"},
		{name: "approve step with escalate fields", entry: set("event.type", "approve"), kind: ignored},
		// Type confusion.
		{name: "actors as array", entry: set("run.actors", []any{map[string]any{"username": requester}}), kind: rejected, code: "malformed"},
		{name: "settings as string", entry: set("fields.target.settings", `{"iam_group":"admins"}`), kind: rejected, code: "malformed"},
		{name: "target_id as number", entry: set("fields.target_id", 7), kind: rejected, code: "malformed"},
		{name: "id as number", entry: set("id", 12345), kind: dlq, code: "missing_id"},
		{name: "control character in the sym id", entry: set("id", "sec-id\x00"), kind: dlq, code: "invalid_id"},
		{name: "detail as a string", raw: func(b string) string {
			var env map[string]json.RawMessage
			_ = json.Unmarshal([]byte(b), &env)
			env["detail"], _ = json.Marshal(string(env["detail"]))
			out, _ := json.Marshal(env)
			return string(out)
		}, kind: dlq, code: "invalid_entry"},
		// Structure.
		{name: "duplicate id keys", raw: replace(`"id":"SYMID"`, `"id":"SYMID","id":"`+ctlSymID+`"`), kind: dlq, code: "duplicate_key"},
		{name: "duplicate iam_group keys", raw: replace(`"iam_group":"`+devGroup+`"`, `"iam_group":"`+devGroup+`","iam_group":"admins"`), kind: dlq, code: "duplicate_key"},
		{name: "keys equal but for case (type, Type)", raw: replace(`"type":"escalate"`, `"type":"prompt","Type":"escalate"`), kind: dlq, code: "duplicate_key"},
		{name: "deep nesting", raw: replace(`"reason":"Fix Ticket 123"`, `"reason":"x","x":`+strings.Repeat("[", 100_000)+strings.Repeat("]", 100_000)), kind: dlq, code: "too_deep"},
		{name: "not JSON", raw: func(string) string { return `{"source":"sym","detail":{"id":"x"` }, kind: dlq, code: "invalid_json"},
	}, icCases(ic)...)
}

// icCases aim at Identity Center targets. Each is the dev user (who has an
// Identity Store user) asking for what iamjit may grant — the dev
// permission set in the home account, or the dev Identity Store group —
// but for what the case changes; ic's controls show the unchanged request
// is granted.
func icCases(ic icSetup) []hostile {
	target := func(typ string, settings map[string]any) func(map[string]any) {
		return both(set("fields.target.type", typ), set("fields.target.settings", settings))
	}
	ps := func(arn, acct string) func(map[string]any) {
		return target("aws_sso_permission_set", map[string]any{"permission_set_arn": arn, "account_id": acct})
	}
	grp := func(id string) func(map[string]any) { return target("aws_sso_group", map[string]any{"group_id": id}) }
	okPS, okGroup := ps(ic.ps, ic.account), grp(ic.group)
	req := func(u string) func(map[string]any) { return set("run.actors.request.username", u) }
	appr := func(u string) func(map[string]any) { return set("run.actors.approve.username", u) }
	psEcho := func(acct string) map[string]string {
		return map[string]string{"target_type": "aws_sso_permission_set", "account_id": acct, "sso_user_id": ""}
	}
	groupEcho := map[string]string{"target_type": "aws_sso_group", "account_id": "", "sso_user_id": ""}
	// AWS names a permission set arn:aws:sso:::permissionSet/ssoins-…/ps-…,
	// moto arn:aws:sso:::instance/ssoins-…/ps-…: the hostile ARNs are cut
	// from the real one.
	psDir, ssoins := path.Dir(ic.ps), path.Base(ic.instance)
	return []hostile{
		// Which target: a custom target names exactly one kind.
		{name: "custom target naming iam_group and permission_set_arn", entry: target("custom", map[string]any{
			"iam_group": devGroup, "permission_set_arn": ic.ps, "account_id": ic.account}),
			kind: rejected, code: "unsupported_target", echo: map[string]string{"target_type": "custom"}},
		{name: "custom target naming permission_set_arn and group_id", entry: target("custom", map[string]any{
			"permission_set_arn": ic.ps, "account_id": ic.account, "group_id": ic.group}),
			kind: rejected, code: "unsupported_target", echo: map[string]string{"target_type": "custom"}},
		{name: "custom target naming iam_group and group_id", entry: target("custom", map[string]any{"iam_group": devGroup, "group_id": ic.group}),
			kind: rejected, code: "unsupported_target"},
		{name: "custom target with account_id alone", entry: target("custom", map[string]any{"account_id": ic.account}),
			kind: rejected, code: "unsupported_target"},
		{name: "Identity Center type in upper case", entry: target("AWS_SSO_GROUP", map[string]any{"group_id": ic.group}),
			kind: rejected, code: "unsupported_target"},
		// Settings missing.
		{name: "permission set without account_id", entry: target("aws_sso_permission_set", map[string]any{"permission_set_arn": ic.ps}),
			kind: rejected, code: "invalid_request"},
		{name: "permission set without permission_set_arn", entry: target("aws_sso_permission_set", map[string]any{"account_id": ic.account}),
			kind: rejected, code: "invalid_request"},
		{name: "custom permission set with an empty permission_set_arn", entry: target("custom", map[string]any{"permission_set_arn": "", "account_id": ic.account}),
			kind: rejected, code: "invalid_request", echo: map[string]string{"target_type": "aws_sso_permission_set"}},
		{name: "Identity Store group carrying only iam_group", entry: target("aws_sso_group", map[string]any{"iam_group": devGroup}),
			kind: rejected, code: "invalid_request"},
		{name: "Identity Store group with an empty group_id", entry: grp(""), kind: rejected, code: "invalid_request"},
		// Permission set outside IAMJIT_SSO_PERMISSION_SETS.
		{name: "permission set of the instance outside the allow-list", entry: ps(ic.otherPS, ic.account),
			kind: rejected, code: "target_not_allowed", echo: psEcho(ic.account)},
		{name: "permission set ARN with a wildcard id", entry: ps(psDir+"/ps-*", ic.account),
			kind: rejected, code: "target_not_allowed", echo: psEcho(ic.account)},
		{name: "permission set ARN *", entry: ps("*", ic.account), kind: rejected, code: "target_not_allowed"},
		{name: "permission set ARN in upper case", entry: ps(strings.ToUpper(ic.ps), ic.account), kind: rejected, code: "target_not_allowed"},
		{name: "permission set ARN of another instance", entry: ps(strings.Replace(ic.ps, ssoins, "ssoins-0000000000000000", 1), ic.account),
			kind: rejected, code: "target_not_allowed"},
		{name: "allowed permission set under AWS's other spelling (permissionSet/ for moto's instance/)",
			entry: ps(strings.Replace(ic.ps, ":::instance/", ":::permissionSet/", 1), ic.account), kind: rejected, code: "target_not_allowed"},
		{name: "allowed permission set ARN with ../ to another", entry: ps(ic.ps+"/../"+path.Base(ic.otherPS), ic.account),
			kind: rejected, code: "target_not_allowed"},
		{name: "permission set ARN with a trailing space", entry: ps(ic.ps+" ", ic.account), kind: rejected, code: "target_not_allowed"},
		{name: "two permission set ARNs joined by a comma", entry: ps(ic.ps+","+ic.otherPS, ic.account), kind: rejected, code: "target_not_allowed"},
		{name: "malformed permission set ARN", entry: ps("not-an-arn", ic.account), kind: rejected, code: "target_not_allowed"},
		{name: "IAM group ARN as the permission set", entry: ps("arn:aws:iam::"+ic.account+":group/sym/"+devGroup, ic.account),
			kind: rejected, code: "target_not_allowed"},
		// Account outside IAMJIT_SSO_ASSIGNMENT_ACCOUNTS.
		{name: "allowed permission set in a foreign account", entry: ps(ic.ps, foreignAccount),
			kind: rejected, code: "target_not_allowed", echo: psEcho(foreignAccount)},
		{name: "account id *", entry: ps(ic.ps, "*"), kind: rejected, code: "target_not_allowed", echo: psEcho("")},
		{name: "account id of 11 digits", entry: ps(ic.ps, ic.account[1:]), kind: rejected, code: "target_not_allowed", echo: psEcho("")},
		{name: "account id of 13 digits", entry: ps(ic.ps, ic.account+"0"), kind: rejected, code: "target_not_allowed", echo: psEcho("")},
		{name: "account id with a leading space", entry: ps(ic.ps, " "+ic.account), kind: rejected, code: "target_not_allowed", echo: psEcho("")},
		{name: "two account ids joined by a comma", entry: ps(ic.ps, ic.account+","+foreignAccount), kind: rejected, code: "target_not_allowed", echo: psEcho("")},
		{name: "account id in Arabic-Indic digits", entry: ps(ic.ps, "١٢٣٤٥٦٧٨٩٠١٢"), kind: rejected, code: "target_not_allowed", echo: psEcho("")},
		// Identity Store group outside IAMJIT_SSO_GROUPS.
		{name: "Identity Store group outside the allow-list", entry: grp(ic.otherGroup), kind: rejected, code: "target_not_allowed",
			echo: map[string]string{"target_type": "aws_sso_group", "sso_group_id": ic.otherGroup, "account_id": "", "sso_user_id": ""}},
		{name: "group id *", entry: grp("*"), kind: rejected, code: "target_not_allowed", echo: groupEcho},
		{name: "group id with a wildcard suffix", entry: grp(ic.group[:8] + "*"), kind: rejected, code: "target_not_allowed"},
		{name: "group id with a path", entry: grp("../" + ic.group), kind: rejected, code: "target_not_allowed"},
		{name: "group id under the identity store", entry: grp(ic.storeID + "/" + ic.group), kind: rejected, code: "target_not_allowed"},
		{name: "group id in upper case", entry: grp(strings.ToUpper(ic.group)), kind: rejected, code: "target_not_allowed"},
		{name: "group id as the group's display name", entry: grp(devGroup), kind: rejected, code: "target_not_allowed"},
		{name: "two group ids joined by a comma", entry: grp(ic.group + "," + ic.otherGroup), kind: rejected, code: "target_not_allowed"},
		// Text in the settings.
		{name: "control character in permission_set_arn", entry: ps(ic.ps+"\x07", ic.account), kind: rejected, code: "invalid_request"},
		{name: "newline in account_id", entry: ps(ic.ps, ic.account+"\n"), kind: rejected, code: "invalid_request"},
		{name: "bidi override in group_id", entry: grp("\u202e" + ic.group), kind: rejected, code: "invalid_request"},
		{name: "zero-width space in group_id", entry: grp(ic.group + "\u200b"), kind: rejected, code: "invalid_request"},
		{name: "oversized permission_set_arn", entry: ps(ic.ps+strings.Repeat("x", 100_000), ic.account), kind: rejected, code: "invalid_request"},
		{name: "oversized group_id", entry: grp(strings.Repeat("x", 2000)), kind: rejected, code: "invalid_request"},
		{name: "account_id as a number", entry: target("aws_sso_permission_set", map[string]any{"permission_set_arn": ic.ps, "account_id": 123456789012}),
			kind: rejected, code: "malformed"},
		{name: "duplicate permission_set_arn keys", entry: okPS,
			raw:  replace(`"permission_set_arn":"`+ic.ps+`"`, `"permission_set_arn":"`+ic.ps+`","Permission_Set_Arn":"`+ic.otherPS+`"`),
			kind: dlq, code: "duplicate_key"},
		// Who: the Identity Store decides, not IAMJIT_IDENTITY.
		{name: "unknown email for a permission set", entry: both(okPS, req("nobody@example.com")), kind: rejected, code: "unknown_user", echo: psEcho(ic.account)},
		{name: "unknown email for an Identity Store group", entry: both(okGroup, req("nobody@example.com")), kind: rejected, code: "unknown_user",
			echo: map[string]string{"account_id": ic.account, "sso_user_id": ""}},
		{name: "IAM user found by localpart but no Identity Store user", entry: both(okPS, req("dave@example.org")), kind: rejected, code: "unknown_user"},
		{name: "IAM user found by the mapping file but no Identity Store user", entry: both(okGroup, req("boss@partner.example")), kind: rejected, code: "unknown_user"},
		{name: "Identity Center requester without @", entry: both(okPS, req("bob")), kind: rejected, code: "unknown_user"},
		{name: "Identity Center requester with two @", entry: both(okGroup, req(requester+"@example.org")), kind: rejected, code: "unknown_user"},
		{name: "two Identity Store users have the email but for case", entry: both(okPS, req("Twin@example.com")), kind: rejected, code: "ambiguous_user"},
		{name: "control character in an Identity Center requester", entry: both(okGroup, req("bob\x07@example.com")), kind: rejected, code: "invalid_request"},
		// Self-approval.
		{name: "self-approval on a permission set", entry: both(okPS, appr(requester)), kind: rejected, code: "self_approval", echo: psEcho("")},
		{name: "self-approval on an Identity Store group in another case", entry: both(okGroup, appr(strings.ToUpper(requester))),
			kind: rejected, code: "self_approval"},
		{name: "self-approval through a second email of the Identity Store user", entry: both(okPS, req("erin@example.com"), appr("erin.alias@example.com")),
			kind: rejected, code: "self_approval", echo: psEcho(ic.account)},
		{name: "self-approval hidden by a leading space (the Identity Store lookup trims it)", entry: both(okPS, appr(" "+requester)),
			kind: rejected, code: "self_approval", echo: psEcho(ic.account)},
		{name: "self-approval through a second email, on a group", entry: both(okGroup, req("erin.alias@example.com"), appr("erin@example.com")),
			kind: rejected, code: "self_approval"},
		// Order: the request's time is checked before the allow-lists.
		{name: "permission set outside the allow-list for too long", entry: both(ps(ic.otherPS, foreignAccount), set("fields.duration", 7200)),
			kind: rejected, code: "duration_too_long"},
	}
}

func TestHostileMessages(t *testing.T) {
	e := newEnv(t)
	e.iamSetup(t)
	e.setupIC(t)
	before := e.memberships(t)
	now := time.Now().UTC()

	cases := hostileCases(now, e.ic)
	if len(cases) < 30 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	proc := e.startRun(t)

	type sent struct {
		c     hostile
		symID string
		msgID string
	}
	var all []sent
	for i, c := range cases {
		symID := fmt.Sprintf("sec-%02d", i)
		body := e.body(t, symID, i, now, c)
		if c.symID != "" {
			symID = c.symID
		}
		id, err := e.send(body)
		if err != nil {
			t.Fatalf("%s: SendMessage: %v", c.name, err)
		}
		all = append(all, sent{c: c, symID: symID, msgID: id})
	}

	// SQS (and moto 5.2) caps a body at 1 MiB: a 2 MiB body never reaches
	// iamjit, so its refusal is SQS's, and the decoder's own bound is checked
	// directly. A 300 KiB body, which SQS takes, shows iamjit's bound
	// (256 KiB, EventBridge's event limit) on the real path.
	huge := `{"source":"sym","detail":{"id":"sec-huge","pad":"` + strings.Repeat("A", 2<<20) + `"}}`
	var apiErr smithy.APIError
	if _, err := e.send(huge); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidParameterValue" {
		t.Errorf("SendMessage(2 MiB) = %v, want SQS to refuse it with InvalidParameterValue", err)
	}
	var derr *events.DecodeError
	if _, err := events.Decode([]byte(huge)); !errors.As(err, &derr) || derr.Code != "body_too_large" {
		t.Errorf("Decode(2 MiB) = %v, want body_too_large", err)
	}
	bigID, err := e.send(`{"source":"sym","detail":{"id":"sec-big","pad":"` + strings.Repeat("A", 300<<10) + `"}}`)
	if err != nil {
		t.Fatalf("SendMessage(300 KiB): %v", err)
	}

	// Invalid UTF-8 cannot reach the consumer: the SDK's JSON encoder turns
	// it into U+FFFD (and then, without the option below, reports an MD5
	// mismatch although SQS stored the message), which fails IAM's
	// group-name rule. The decoder refuses raw invalid bytes itself.
	utf8ID := "sec-utf8"
	badUTF8 := e.body(t, utf8ID, 900, now, hostile{raw: replace(`"iam_group":"`+devGroup+`"`, "\"iam_group\":\"sec-\xffreadonly\"")})
	if _, err := e.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(e.Vars["IAMJIT_QUEUE_URL"]), MessageBody: &badUTF8},
		func(o *sqs.Options) { o.DisableMessageChecksumValidation = true }); err != nil {
		t.Fatalf("invalid UTF-8 body: SendMessage: %v", err)
	}
	if _, err := events.Decode([]byte("{\"source\":\"sym\",\"detail\":{\"id\":\"a\xff\"}}")); !errors.As(err, &derr) || derr.Code != "invalid_utf8" {
		t.Errorf("Decode(invalid UTF-8) = %v, want invalid_utf8", err)
	}

	// Wait until every message has its outcome.
	rs := &e.Results
	dlqCodes := map[string]string{} // original message id -> iamjit.error_code
	wantDLQ := 0
	for _, s := range all {
		if s.c.kind == dlq {
			wantDLQ++
		}
	}
	wantDLQ++ // the 300 KiB body
	testkit.Eventually(t, "every hostile message's outcome", 60*time.Second, func() bool {
		e.DrainResults(t)
		e.drainDLQ(t, dlqCodes)
		for _, s := range all {
			if s.c.kind == rejected && len(rs.Find(events.AccessRejected, s.symID)) == 0 {
				return false
			}
		}
		return len(rs.Find(events.AccessRejected, utf8ID)) > 0 && len(dlqCodes) >= wantDLQ && e.QueueEmpty(t)
	})
	// Results are published before a message is deleted: with the queue
	// empty, one more drain collects any published after the last one.
	e.DrainResults(t)

	for _, s := range all {
		t.Run(s.c.name, func(t *testing.T) {
			if got := rs.Find(events.AccessGranted, s.symID); len(got) > 0 {
				t.Fatalf("GRANTED: %v", got[0].Detail)
			}
			switch s.c.kind {
			case rejected:
				got := rs.Find(events.AccessRejected, s.symID)[0]
				if got.Detail["code"] != s.c.code {
					t.Errorf("code = %v, want %s (message: %v)", got.Detail["code"], s.c.code, got.Detail["message"])
				}
				for k, want := range s.c.echo {
					if v, ok := got.Detail[k]; want == "" && ok || want != "" && v != want {
						t.Errorf("%s = %v, want %q (\"\": none)", k, v, want)
					}
				}
			case dlq:
				if got := dlqCodes[s.msgID]; got != s.c.code {
					t.Errorf("DLQ code = %q, want %s", got, s.c.code)
				}
			case ignored:
				if got := forSym(rs, s.symID); len(got) > 0 {
					t.Errorf("an ignored step published %v", got)
				}
			}
		})
	}
	if got := rs.Find(events.AccessRejected, utf8ID)[0]; got.Detail["code"] != "invalid_group" {
		t.Errorf("invalid UTF-8 group: code = %v, want invalid_group", got.Detail["code"])
	}
	if dlqCodes[bigID] != "body_too_large" {
		t.Errorf("300 KiB body: DLQ code = %q, want body_too_large", dlqCodes[bigID])
	}
	for _, r := range rs.All() {
		if len(r.Raw) > 16<<10 {
			t.Errorf("a result event is %d bytes: rejections must echo bounded fields", len(r.Raw))
		}
	}

	after := e.memberships(t)
	if !maps.EqualFunc(before, after, slices.Equal[[]string]) {
		t.Fatalf("hostile messages changed IAM:\nbefore %v\nafter  %v", before, after)
	}

	// Control: a valid escalate in the same run grants, with the Sym id the
	// forged malformed message tried to take first.
	e.sendEnvelope(t, ctlSymID, "sym", e.validEntry(t, ctlSymID, "sec:run:control", now, func(m map[string]any) {
		setPath(m, "run.actors.request.username", ctlUser)
		setPath(m, "fields.target.settings.iam_group", ctlGroup)
	}))
	testkit.Eventually(t, "the control escalate to be granted", 30*time.Second, func() bool {
		e.DrainResults(t)
		return len(rs.Find(events.AccessGranted, ctlSymID)) > 0
	})
	want := maps.Clone(before)
	want[ctlGroup] = []string{ctlUser}
	if got := e.memberships(t); !maps.EqualFunc(want, got, slices.Equal[[]string]) {
		t.Fatalf("after the control escalate: memberships %v, want %v", got, want)
	}

	// Identity Center controls: the same request as the hostile ones but
	// for ctlUser, who is in the Identity Store, is granted: the dev
	// permission set (a custom target) and the dev group.
	ic := e.ic
	for symID, target := range map[string]map[string]any{
		ctlPSSymID:    {"type": "custom", "settings": map[string]any{"permission_set_arn": ic.ps, "account_id": ic.account}},
		ctlGroupSymID: {"type": "aws_sso_group", "settings": map[string]any{"group_id": ic.group}},
	} {
		e.sendEnvelope(t, symID, "sym", e.validEntry(t, symID, "sec:run:"+symID, now, func(m map[string]any) {
			setPath(m, "run.actors.request.username", ctlUser)
			setPath(m, "fields.target.type", target["type"])
			setPath(m, "fields.target.settings", target["settings"])
		}))
	}
	testkit.Eventually(t, "the Identity Center control escalates to be granted", 30*time.Second, func() bool {
		e.DrainResults(t)
		return len(rs.Find(events.AccessGranted, ctlPSSymID)) > 0 && len(rs.Find(events.AccessGranted, ctlGroupSymID)) > 0
	})
	psKey, groupKey := "assignments of "+ic.ps+" in "+ic.account, "members of Identity Store group "+ic.group
	want[psKey] = slices.Sorted(slices.Values(append(slices.Clone(before[psKey]), "USER:"+ic.ctlUser)))
	want[groupKey] = []string{ic.ctlUser}
	if got := e.memberships(t); !maps.EqualFunc(want, got, slices.Equal[[]string]) {
		t.Fatalf("after the Identity Center control escalates: memberships %v, want %v", got, want)
	}

	checkLogs(t, proc, e.Vars["IAMJIT_EXTERNAL_ID"])
}

// ---- the harness ----

type env struct {
	*testkit.Stack
	sqs   *sqs.Client
	iam   *iam.Client
	admin *ssoadmin.Client
	store *identitystore.Client
	ic    icSetup
}

// icSetup is the Identity Center the cases aim at: what `iamjit dev` made
// (allowed: its permission set in the home account, its group) and what
// setupIC adds outside the allow-lists.
type icSetup struct {
	instance, storeID string
	account           string // the home account: IAMJIT_SSO_ASSIGNMENT_ACCOUNTS
	ps, otherPS       string // IAMJIT_SSO_PERMISSION_SETS; a permission set of the instance outside it
	group, otherGroup string // IAMJIT_SSO_GROUPS; an Identity Store group outside it
	ctlUser           string // ctlUser's Identity Store user id
}

// newEnv starts moto and runs `iamjit dev`.
func newEnv(t *testing.T) *env {
	t.Helper()
	st := testkit.DevStack(t, "--prefix", "sec", "--visibility", "5", "--max-receive", "2", "--user", requester, "--group", devGroup)
	return &env{Stack: st, sqs: sqs.NewFromConfig(st.Cfg), iam: iam.NewFromConfig(st.Cfg),
		admin: ssoadmin.NewFromConfig(st.Cfg), store: identitystore.NewFromConfig(st.Cfg)}
}

// iamSetup makes the users and groups the hostile cases aim at, and one
// existing membership in admins, so "unchanged" is not "empty".
func (e *env) iamSetup(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	groups := map[string]string{"admins": "/", "sec-secret": "/sym/", "sec-lookalike": "/symbolic/", ctlGroup: "/sym/"}
	for name, path := range groups {
		if _, err := e.iam.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(name), Path: aws.String(path)}); err != nil {
			t.Fatal(err)
		}
	}
	users := map[string]string{ // name -> email tag ("" none)
		"amb-1": "twin@example.com", "amb-2": "TWIN@example.com",
		"carol": "", "dave": "dave.alias@example.com", ctlUser: "",
	}
	for name, email := range users {
		in := &iam.CreateUserInput{UserName: aws.String(name)}
		if email != "" {
			in.Tags = []iamtypes.Tag{{Key: aws.String("email"), Value: aws.String(email)}}
		}
		if _, err := e.iam.CreateUser(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.iam.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("admins"), UserName: aws.String("carol")}); err != nil {
		t.Fatal(err)
	}
}

// memberships is every IAM group's sorted member list and, from
// icMemberships, what Identity Center grants.
func (e *env) memberships(t *testing.T) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	groups, err := e.iam.ListGroups(ctx, &iam.ListGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups {
		got, err := e.iam.GetGroup(ctx, &iam.GetGroupInput{GroupName: g.GroupName})
		if err != nil {
			t.Fatal(err)
		}
		members := []string{}
		for _, u := range got.Users {
			members = append(members, aws.ToString(u.UserName))
		}
		slices.Sort(members)
		out[aws.ToString(g.GroupName)] = members
	}
	maps.Copy(out, e.icMemberships(t))
	return out
}

// setupIC reads the Identity Center `iamjit dev` made and adds what the
// hostile cases aim at outside it: a permission set and a group of the same
// instance outside the allow-lists, Identity Store users for the identity
// cases and the control, and one standing assignment and membership (of
// the targets outside the lists), so "unchanged" is not "empty".
func (e *env) setupIC(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ic := icSetup{instance: e.Vars["IAMJIT_SSO_INSTANCE_ARN"], account: e.Vars["IAMJIT_SSO_ASSIGNMENT_ACCOUNTS"],
		ps: e.Vars["IAMJIT_DEV_SSO_PERMISSION_SET_ARN"], group: e.Vars["IAMJIT_DEV_SSO_GROUP_ID"]}
	if ic.instance == "" || ic.ps == "" || ic.group == "" || ic.account != motoserver.AccountID {
		t.Fatalf("iamjit dev did not set up Identity Center in the home account: %+v", ic)
	}
	inst, err := e.admin.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
	if err != nil || len(inst.Instances) == 0 {
		t.Fatalf("list instances: %v", err)
	}
	ic.storeID = aws.ToString(inst.Instances[0].IdentityStoreId)
	// A session duration of its own: moto 5.2.1 answers the default with a
	// number the SDK cannot read (devstack.SSOSessionDuration).
	ps, err := e.admin.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{InstanceArn: &ic.instance, Name: aws.String("sec-admin"),
		SessionDuration: aws.String(devstack.SSOSessionDuration)})
	if err != nil {
		t.Fatal(err)
	}
	ic.otherPS = aws.ToString(ps.PermissionSet.PermissionSetArn)
	g, err := e.store.CreateGroup(ctx, &identitystore.CreateGroupInput{IdentityStoreId: &ic.storeID, DisplayName: aws.String("sec-admins")})
	if err != nil {
		t.Fatal(err)
	}
	ic.otherGroup = aws.ToString(g.GroupId)
	users := map[string][]string{ // user name -> emails, the first primary
		"twin-a": {"twin@example.com"}, "twin-b": {"TWIN@example.com"},
		"erin":  {"erin@example.com", "erin.alias@example.com"},
		ctlUser: {ctlUser},
	}
	ids := map[string]string{}
	for name, emails := range users {
		in := &identitystore.CreateUserInput{IdentityStoreId: &ic.storeID, UserName: aws.String(name), DisplayName: aws.String(name),
			Name: &istypes.Name{GivenName: aws.String(name), FamilyName: aws.String("Hostile")}}
		for i, m := range emails {
			in.Emails = append(in.Emails, istypes.Email{Value: aws.String(m), Primary: i == 0, Type: aws.String("work")})
		}
		out, err := e.store.CreateUser(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = aws.ToString(out.UserId)
	}
	ic.ctlUser = ids[ctlUser]
	if _, err := e.admin.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{InstanceArn: &ic.instance,
		PermissionSetArn: &ic.otherPS, PrincipalId: aws.String(ids["erin"]), PrincipalType: ssotypes.PrincipalTypeUser,
		TargetId: &ic.account, TargetType: ssotypes.TargetTypeAwsAccount}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateGroupMembership(ctx, &identitystore.CreateGroupMembershipInput{IdentityStoreId: &ic.storeID,
		GroupId: &ic.otherGroup, MemberId: &istypes.MemberIdMemberUserId{Value: ids["erin"]}}); err != nil {
		t.Fatal(err)
	}
	e.ic = ic
}

// icMemberships is what Identity Center grants, by target: every
// assignment of both permission sets in the allowed and the foreign
// account ("TYPE:principal id"), and every member of both Identity Store
// groups, each sorted.
func (e *env) icMemberships(t *testing.T) map[string][]string {
	t.Helper()
	ctx := context.Background()
	ic := e.ic
	out := map[string][]string{}
	for _, ps := range []string{ic.ps, ic.otherPS} {
		for _, acct := range []string{ic.account, foreignAccount} {
			var got []string
			p := ssoadmin.NewListAccountAssignmentsPaginator(e.admin, &ssoadmin.ListAccountAssignmentsInput{
				InstanceArn: &ic.instance, PermissionSetArn: &ps, AccountId: &acct})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range page.AccountAssignments {
					got = append(got, string(a.PrincipalType)+":"+aws.ToString(a.PrincipalId))
				}
			}
			slices.Sort(got)
			out["assignments of "+ps+" in "+acct] = got
		}
	}
	for _, g := range []string{ic.group, ic.otherGroup} {
		got := []string{}
		p := identitystore.NewListGroupMembershipsPaginator(e.store, &identitystore.ListGroupMembershipsInput{IdentityStoreId: &ic.storeID, GroupId: &g})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page.GroupMemberships {
				if id, ok := m.MemberId.(*istypes.MemberIdMemberUserId); ok {
					got = append(got, id.Value)
				}
			}
		}
		slices.Sort(got)
		out["members of Identity Store group "+g] = got
	}
	return out
}

func (e *env) validEntry(t *testing.T, symID, runSRN string, now time.Time, change func(map[string]any)) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "escalate_iam_group.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	setPath(m, "id", symID)
	setPath(m, "run.srn", runSRN)
	setPath(m, "run.actors.request.username", requester)
	setPath(m, "run.actors.approve.username", approver)
	setPath(m, "event.timestamp", now.Format("2006-01-02T15:04:05.000000"))
	setPath(m, "fields.duration", 600)
	setPath(m, "fields.target.settings", map[string]any{"iam_group": devGroup})
	if change != nil {
		change(m)
	}
	return m
}

func envelope(source string, detail any) map[string]any {
	return map[string]any{
		"version": "0", "id": fmt.Sprintf("eb-%d", time.Now().UnixNano()), "detail-type": "SymLogEntry",
		"source": source, "account": motoserver.AccountID, "time": time.Now().UTC().Format(time.RFC3339),
		"region": motoserver.Region, "resources": []string{}, "detail": detail,
	}
}

// body renders case c as an SQS body: a valid escalate except for what c
// changes.
func (e *env) body(t *testing.T, symID string, i int, now time.Time, c hostile) string {
	t.Helper()
	entry := e.validEntry(t, symID, fmt.Sprintf("sec:run:%d", i), now, c.entry)
	var v any = entry
	if !c.bare {
		src := "sym"
		if c.source != nil {
			src = *c.source
			if src == "" {
				env := envelope("", entry)
				delete(env, "source")
				v = env
			} else {
				v = envelope(src, entry)
			}
		} else {
			v = envelope(src, entry)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if c.raw != nil {
		out = c.raw(strings.ReplaceAll(out, `"id":"`+symID+`"`, `"id":"SYMID"`))
		out = strings.ReplaceAll(out, `"id":"SYMID"`, `"id":"`+symID+`"`)
	}
	return out
}

func (e *env) send(body string) (string, error) {
	out, err := e.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(e.Vars["IAMJIT_QUEUE_URL"]), MessageBody: &body})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.MessageId), nil
}

func (e *env) sendEnvelope(t *testing.T, symID, source string, entry map[string]any) {
	t.Helper()
	b, _ := json.Marshal(envelope(source, entry))
	if _, err := e.send(string(b)); err != nil {
		t.Fatalf("send %s: %v", symID, err)
	}
}

// drainDLQ records the iamjit.error_code of every DLQ message by the
// original message id iamjit stamps on it.
func (e *env) drainDLQ(t *testing.T, codes map[string]string) {
	t.Helper()
	for {
		out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.Vars["IAMJIT_DLQ_URL"]),
			MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return
		}
		for _, m := range out.Messages {
			id := m.MessageAttributes["iamjit.message_id"]
			code := m.MessageAttributes["iamjit.error_code"]
			codes[aws.ToString(id.StringValue)] = aws.ToString(code.StringValue)
			_, _ = e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(e.Vars["IAMJIT_DLQ_URL"]), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

func forSym(rs *testkit.Results, symID string) []testkit.Result {
	return rs.Where(func(ev testkit.Result) bool { return ev.Detail["sym_event_id"] == symID })
}

// startRun starts `iamjit run` with the allow lists and identity sources
// the cases aim at.
func (e *env) startRun(t *testing.T) *testkit.Proc {
	t.Helper()
	mapping, err := filepath.Abs(filepath.Join("testdata", "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	return e.StartRun(t, "IAMJIT_MAX_DURATION=1h",
		"IAMJIT_ALLOWED_GROUPS="+strings.Join([]string{devGroup, "admins", "sec-lookalike", "sec-ghost", ctlGroup}, ","),
		"IAMJIT_IDENTITY=username,tag:email,file:"+mapping+",localpart:example.org",
		// Identity Center on (the instance `iamjit dev` printed), allowing
		// exactly what it made: the hostile values lie outside these.
		"IAMJIT_SSO_INSTANCE_ARN="+e.ic.instance,
		"IAMJIT_SSO_PERMISSION_SETS="+e.ic.ps,
		"IAMJIT_SSO_ASSIGNMENT_ACCOUNTS="+e.ic.account,
		"IAMJIT_SSO_GROUPS="+e.ic.group,
	)
}

// checkLogs: no log line carries the external id, and none carries a raw
// body: every line stays bounded although bodies of 200 KiB went through.
func checkLogs(t *testing.T, p *testkit.Proc, externalID string) {
	t.Helper()
	f, err := os.Open(p.Logs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		n++
		if strings.Contains(line, externalID) {
			t.Errorf("log line %d contains the external id", n)
		}
		if len(line) > 4096 {
			t.Errorf("log line %d is %d bytes: %.200s…", n, len(line), line)
		}
		if strings.Contains(line, "[[[[[[[[") || strings.Contains(line, strings.Repeat("b", 300)) || strings.Contains(line, strings.Repeat("x", 300)) {
			t.Errorf("log line %d carries a raw body excerpt: %.200s…", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read logs: %v", err)
	}
	if n == 0 {
		t.Fatal("iamjit run logged nothing")
	}
}
