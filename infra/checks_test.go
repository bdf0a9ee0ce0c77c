package infra

// The security and operability invariants of iamjit's Terraform, as checks
// over a tfModule. Each returns the problems it found (nil: none), so the
// tests can run them on the real modules (expect none) and on broken copies
// (expect the problem).

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/iamjit/iamjit/events"
)

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// --- policy documents ----------------------------------------------------------

type principal struct {
	typ string
	ids []string // source text
}

type condition struct {
	test, variable string
	values         []string // source text
	resolved       []string // the values, where all are known offline (else nil)
}

type statement struct {
	where      string // data.aws_iam_policy_document.X[sid]
	off        bool   // a dynamic statement the configuration renders no instance of
	effect     string
	actions    []string
	notActions bool
	resources  []string // source text
	resolved   []string // the resources' values, where all are known offline (else nil)
	notRes     bool
	principals []principal
	conditions []condition
}

func (s statement) allow() bool { return s.effect != "Deny" }

func (s statement) hasAction(a string) bool { return slices.Contains(s.actions, a) }

func (s statement) condition(test, variable string) *condition {
	for i, c := range s.conditions {
		if c.test == test && c.variable == variable {
			return &s.conditions[i]
		}
	}
	return nil
}

// doc returns the statements of data "aws_iam_policy_document" name.
func (m *tfModule) doc(name string) ([]statement, bool) {
	bs := m.top("data", "aws_iam_policy_document", name)
	if len(bs) == 0 {
		return nil, false
	}
	return m.docOf(bs[0], name), true
}

// docOf returns the statements of an aws_iam_policy_document block (one of
// m's, or an instance deep found), named name in their where.
func (m *tfModule) docOf(b *hclsyntax.Block, name string) []statement {
	var out []statement
	for i, r := range m.render(b, "statement") {
		sb := r.Block
		s := statement{where: fmt.Sprintf("data.aws_iam_policy_document.%s statement %d", name, i), off: r.off}
		if sid, ok := m.str(attr(sb, "sid")); ok {
			s.where = fmt.Sprintf("data.aws_iam_policy_document.%s[%s]", name, sid)
		}
		s.effect = "Allow"
		if e, ok := m.str(attr(sb, "effect")); ok {
			s.effect = e
		}
		s.actions = m.strings(attr(sb, "actions"))
		s.notActions = attr(sb, "not_actions") != nil
		s.resources = m.elems(attr(sb, "resources"))
		s.resolved = m.knownStrings(attr(sb, "resources"))
		s.notRes = attr(sb, "not_resources") != nil
		for _, pb := range append(m.render(sb, "principals"), m.render(sb, "not_principals")...) { // off ones too: a "*" there is still refused
			typ, _ := m.str(attr(pb.Block, "type"))
			s.principals = append(s.principals, principal{typ: typ, ids: m.elems(attr(pb.Block, "identifiers"))})
		}
		for _, cb := range m.render(sb, "condition") {
			if cb.off {
				continue // a condition the configuration turns off is not there
			}
			test, _ := m.str(attr(cb.Block, "test"))
			variable, _ := m.str(attr(cb.Block, "variable"))
			s.conditions = append(s.conditions, condition{test: test, variable: variable, values: m.elems(attr(cb.Block, "values")), resolved: m.knownStrings(attr(cb.Block, "values"))})
		}
		out = append(out, s)
	}
	return out
}

// docRef returns X when e is data.aws_iam_policy_document.X.json, and
// X["k"] (the name of that instance, see tfModule.expand) when it is
// data.aws_iam_policy_document.X["k"].json.
func docRef(e hclsyntax.Expression) (string, bool) {
	t, ok := e.(*hclsyntax.ScopeTraversalExpr)
	if !ok || len(t.Traversal) < 4 || len(t.Traversal) > 5 || t.Traversal.RootName() != "data" {
		return "", false
	}
	typ, ok1 := t.Traversal[1].(hcl.TraverseAttr)
	name, ok2 := t.Traversal[2].(hcl.TraverseAttr)
	last, ok3 := t.Traversal[len(t.Traversal)-1].(hcl.TraverseAttr)
	if !ok1 || !ok2 || !ok3 || typ.Name != "aws_iam_policy_document" || last.Name != "json" {
		return "", false
	}
	if len(t.Traversal) == 5 {
		i, ok := t.Traversal[3].(hcl.TraverseIndex)
		if !ok || !i.Key.IsKnown() || i.Key.IsNull() || i.Key.Type() != cty.String {
			return "", false
		}
		return name.Name + "[" + keyString(i.Key) + "]", true
	}
	return name.Name, true
}

// Attributes that hold an IAM or resource policy, by resource type.
var policyAttrs = map[string][]string{
	"aws_iam_role":                     {"assume_role_policy"},
	"aws_iam_role_policy":              {"policy"},
	"aws_iam_policy":                   {"policy"},
	"aws_iam_group_policy":             {"policy"},
	"aws_iam_user_policy":              {"policy"},
	"aws_sqs_queue_policy":             {"policy"},
	"aws_sqs_queue":                    {"policy"},
	"aws_sns_topic_policy":             {"policy"},
	"aws_sns_topic":                    {"policy"},
	"aws_cloudwatch_event_bus_policy":  {"policy"},
	"aws_kms_key":                      {"policy"},
	"aws_ecr_repository_policy":        {"policy"},
	"aws_s3_bucket_policy":             {"policy"},
	"aws_kinesis_resource_policy":      {"policy"},
	"aws_secretsmanager_secret":        {"policy"},
	"aws_secretsmanager_secret_policy": {"policy"},
}

// checkPoliciesAreDocuments: every policy is a data "aws_iam_policy_document"
// of this module, so the other checks see every statement.
func checkPoliciesAreDocuments(m *tfModule) problems {
	var p problems
	for _, b := range m.top("resource") {
		typ, name := b.Labels[0], b.Labels[1]
		exprs := map[string]hclsyntax.Expression{}
		for _, a := range policyAttrs[typ] {
			if e := attr(b, a); e != nil {
				exprs[a] = e
			}
		}
		for _, ib := range nested(b, "inline_policy") {
			if e := attr(ib, "policy"); e != nil {
				exprs["inline_policy.policy"] = e
			}
		}
		for a, e := range exprs {
			doc, ok := docRef(e)
			if !ok {
				p.add("%s.%s: %s must be data.aws_iam_policy_document.<name>.json, not %q", typ, name, a, m.text(e))
				continue
			}
			if _, ok := m.doc(doc); !ok {
				p.add("%s.%s: %s refers to undeclared data.aws_iam_policy_document.%s", typ, name, a, doc)
			}
		}
	}
	return p
}

func (m *tfModule) allStatements() []statement {
	var out []statement
	for _, b := range m.top("data", "aws_iam_policy_document") {
		s, _ := m.doc(b.Labels[1])
		out = append(out, s...)
	}
	return out
}

// checkNoWildcardActions: no statement grants "*" or a whole service
// ("iam:*", "sts:*", ...), none uses NotAction/NotResource, and no Allow has
// a "*" principal.
func checkNoWildcardActions(m *tfModule) problems {
	var p problems
	for _, s := range m.allStatements() {
		for _, a := range s.actions {
			if a == "*" || strings.HasSuffix(a, ":*") {
				p.add("%s: wildcard action %q", s.where, a)
			}
		}
		if s.notActions {
			p.add("%s: not_actions is a wildcard in disguise", s.where)
		}
		if s.notRes {
			p.add("%s: not_resources is a wildcard in disguise", s.where)
		}
		if len(s.actions) == 0 && !s.notActions {
			// A dynamic statement whose actions come from a variable: that
			// variable's validation must refuse wildcards (checked per module).
			continue
		}
		for _, pr := range s.principals {
			if s.allow() && slices.Contains(pr.ids, "*") {
				p.add("%s: Allow for principal \"*\"", s.where)
			}
		}
	}
	return p
}

// keyPolicyDocs are the policy documents of this module's KMS keys: in a
// key policy, resource "*" means the key itself.
func (m *tfModule) keyPolicyDocs() map[string]bool {
	out := map[string]bool{}
	for _, k := range m.resources("aws_kms_key") {
		if d, ok := docRef(attr(k, "policy")); ok {
			out[d] = true
		}
	}
	return out
}

// unscopable are the actions that support no resource-level permissions:
// "*" is the only resource IAM accepts for them.
var unscopable = []string{"organizations:DescribeOrganization", "iam:GetAccountAuthorizationDetails", "iam:ListGroups", "iam:ListRoles", "iam:ListUsers", "ecr:GetAuthorizationToken", "kinesis:ListStreams",
	// Service Authorization Reference: no resource type for these either.
	"sso:ListInstances", "scheduler:ListSchedules"}

// checkStarResources: resource "*" only for actions IAM cannot scope (and in
// key policies, where "*" is the key).
func checkStarResources(m *tfModule) problems {
	var p problems
	keyDocs := m.keyPolicyDocs()
	for _, b := range m.top("data", "aws_iam_policy_document") {
		if keyDocs[b.Labels[1]] {
			continue
		}
		ss, _ := m.doc(b.Labels[1])
		p = append(p, starResources(ss)...)
	}
	return p
}

func starResources(ss []statement) problems {
	var p problems
	for _, s := range ss {
		if !s.allow() || !slices.Contains(s.resources, "*") {
			continue
		}
		for _, a := range s.actions {
			if !slices.Contains(unscopable, a) {
				p.add("%s: %s on resource \"*\" (only %v may be unscoped)", s.where, a, unscopable)
			}
		}
	}
	return p
}

// role returns the trust document and the permission documents of
// aws_iam_role.name, and problems if a policy is attached another way.
func (m *tfModule) role(name string) (trust []statement, perms []statement, p problems) {
	rb := m.resource("aws_iam_role", name)
	if rb == nil {
		p.add("aws_iam_role.%s not declared", name)
		return
	}
	if d, ok := docRef(attr(rb, "assume_role_policy")); ok {
		trust, _ = m.doc(d)
	} else {
		p.add("aws_iam_role.%s: assume_role_policy is not a policy document", name)
	}
	if attr(rb, "managed_policy_arns") != nil || len(nested(rb, "inline_policy")) > 0 {
		p.add("aws_iam_role.%s: attach policies with aws_iam_role_policy, not inline_policy/managed_policy_arns", name)
	}
	ref := "aws_iam_role." + name
	for _, pb := range m.resources("aws_iam_role_policy") {
		if refersTo(attr(pb, "role"), ref) {
			if d, ok := docRef(attr(pb, "policy")); ok {
				s, _ := m.doc(d)
				perms = append(perms, s...)
			}
		}
	}
	for _, pb := range m.resources("aws_iam_role_policy_attachment") {
		if refersTo(attr(pb, "role"), ref) {
			p.add("aws_iam_role.%s: managed policy %s attached; its statements cannot be checked", name, m.text(attr(pb, "policy_arn")))
		}
	}
	return
}

func onlyRole(m *tfModule) (string, problems) {
	var p problems
	roles := m.resources("aws_iam_role")
	if len(roles) != 1 {
		p.add("want exactly one aws_iam_role, found %d", len(roles))
		return "", p
	}
	rb := roles[0]
	if path, _ := m.str(attr(rb, "path")); path != "/sym/" {
		p.add("aws_iam_role.%s: path %q, want \"/sym/\"", rb.Labels[1], path)
	}
	return rb.Labels[1], p
}

func allowedActions(p *problems, ss []statement, allowed []string) {
	for _, s := range ss {
		if !s.allow() {
			continue
		}
		for _, a := range s.actions {
			if !slices.Contains(allowed, a) {
				p.add("%s: action %q is not one of %v", s.where, a, allowed)
			}
		}
	}
}

// chainRole returns the Allow statements of the trust and the permissions
// of the module's one role (a hop of iamjit's chain, under /sym/), with the
// problems of finding them; ok is false when there is no such role.
func chainRole(m *tfModule, what string) (trust, perms []statement, p problems, ok bool) {
	name, p := onlyRole(m)
	if name == "" {
		return nil, nil, p, false
	}
	all, perms, rp := m.role(name)
	p = append(p, rp...)
	if len(all) == 0 {
		p.add("%s: empty trust policy", what)
	}
	for _, s := range all {
		if s.allow() {
			trust = append(trust, s)
		}
	}
	return trust, perms, p, true
}

// --- modules/connector -----------------------------------------------------

var symRoleARN = regexp.MustCompile(`^arn:(\$\{\}|aws[a-z-]*):iam::(\$\{\}|[0-9]{12}):role/sym/\*$`)

func checkConnector(m *tfModule) problems {
	trust, perms, p, ok := chainRole(m, "connector")
	if !ok {
		return p
	}
	for _, s := range trust {
		if len(s.actions) != 1 || s.actions[0] != "sts:AssumeRole" {
			p.add("%s: connector trust grants %v, want only sts:AssumeRole", s.where, s.actions)
		}
		if len(s.principals) == 0 {
			p.add("%s: connector trust has no principal", s.where)
		}
		for _, pr := range s.principals {
			if pr.typ != "AWS" || len(pr.ids) == 0 || slices.Contains(pr.ids, "*") {
				p.add("%s: connector must be trusted by the task role only, not %s %v", s.where, pr.typ, pr.ids)
			}
		}
		c := s.condition("StringEquals", "sts:ExternalId")
		if c == nil || len(c.values) == 0 || slices.Contains(c.values, "") {
			p.add("%s: connector trust lacks a StringEquals sts:ExternalId condition", s.where)
		}
	}
	if len(perms) == 0 {
		p.add("connector: no permission policy")
	}
	allowedActions(&p, perms, []string{"sts:AssumeRole"})
	for _, s := range perms {
		if !s.allow() {
			continue
		}
		if len(s.resources) == 0 {
			p.add("%s: no resources", s.where)
		}
		for _, r := range s.resources {
			if !symRoleARN.MatchString(arnShape(r)) {
				p.add("%s: connector may assume %q; only arn:<partition>:iam::<account>:role/sym/*", s.where, r)
			}
		}
	}
	return p
}

// --- modules/iam_modifier ---------------------------------------------------

var (
	groupActions = []string{"iam:AddUserToGroup", "iam:RemoveUserFromGroup", "iam:GetGroup"}
	// Reading a managed group's policies: which roles membership lets one assume.
	groupReadActions = []string{"iam:GetGroupPolicy", "iam:ListAttachedGroupPolicies", "iam:ListGroupPolicies"}
	// iamjit's own inline policy on roles under IAMJIT_ROLE_PATH: the only
	// writes besides membership.
	rolePolicyActions = []string{"iam:DeleteRolePolicy", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:PutRolePolicy"}
	policyReadActions = []string{"iam:GetPolicy", "iam:GetPolicyVersion"}
	// A removal is read back with the user's groups (grants/iamgroups); make
	// infra-e2e found it missing.
	userReadActions = []string{"iam:ListGroupsForUser"}
	modifierNeeds   = slices.Concat(groupActions, groupReadActions, rolePolicyActions, policyReadActions, userReadActions, []string{"iam:GetRole", "iam:ListRoles"})
	modifierMay     = append(slices.Clone(modifierNeeds), "iam:GetUser", "iam:ListUserTags", "iam:ListUsers", "iam:ListGroups", "iam:GetAccountAuthorizationDetails")
	groupPathARN    = regexp.MustCompile(`^arn:(\$\{[^}]*\}|aws[a-z-]*):iam::(\$\{[^}]*\}|[0-9]{12}):group(\$\{(var|local)\.group_path\}|/[[:alnum:]_+=,.@-]+(/[[:alnum:]_+=,.@-]+)*/)\*$`)
	rolePathARN     = regexp.MustCompile(`^arn:(\$\{[^}]*\}|aws[a-z-]*):iam::(\$\{[^}]*\}|[0-9]{12}):role(\$\{(var|local)\.role_path\}|/[[:alnum:]_+=,.@-]+(/[[:alnum:]_+=,.@-]+)*/)\*$`)
	anyRoleARN      = regexp.MustCompile(`^arn:(\$\{[^}]*\}|aws[a-z-]*):iam::(\$\{[^}]*\}|[0-9]{12}):role/`)
	policyARN       = regexp.MustCompile(`^arn:(\$\{[^}]*\}|aws[a-z-]*):iam::(\$\{[^}]*\}|[0-9]{12}|aws):policy/`)
	prefixedARN     = regexp.MustCompile(`^\$\{local\.iam_prefix\}`)
	iamPrefixExpr   = "arn:${}:iam::${}"
)

func checkIAMModifier(m *tfModule) problems {
	trust, perms, p, ok := chainRole(m, "iam_modifier")
	if !ok {
		return p
	}
	for _, s := range trust {
		if len(s.principals) == 0 {
			p.add("%s: no principal", s.where)
		}
		for _, pr := range s.principals {
			for _, id := range pr.ids {
				if pr.typ != "AWS" || id == "*" || strings.HasSuffix(id, ":root") {
					p.add("%s: IAM modifier must be trusted by the connector role only, not %s %q", s.where, pr.typ, id)
				}
			}
		}
	}
	p = append(p, modifierRights(m, perms)...)
	if rejected, err := m.validationRejects("group_path", cty.StringVal("/")); err != nil || !rejected {
		p.add("variable group_path must reject \"/\" (every group): %v", err)
	}
	for _, bad := range []string{"/", "/sym/"} {
		if rejected, err := m.validationRejects("role_path", cty.StringVal(bad)); err != nil || !rejected {
			p.add("variable role_path must reject %q: %v", bad, err)
		}
	}
	if d, _ := m.vars["role_path"]; d.Type() != cty.String || d.AsString() != "/jit/" {
		p.add("variable role_path: default %v, want \"/jit/\" (IAMJIT_ROLE_PATH's default)", toGo(d))
	}
	return p
}

// modifierRights: the IAM modifier's permissions perms (of m) are only the
// actions it may have, each only on the resources it is meant for (groups
// under the group path, role policies under the role path, ...), and every
// action it needs is there.
func modifierRights(m *tfModule, perms []statement) problems {
	var p problems
	allowedActions(&p, perms, modifierMay)
	bounds := []struct {
		actions []string
		arn     *regexp.Regexp
		what    string
	}{
		{slices.Concat(groupActions, groupReadActions), groupPathARN, "only groups under the group path"},
		{rolePolicyActions, rolePathARN, "only roles under the role path"},
		{[]string{"iam:GetRole"}, anyRoleARN, "only role ARNs"},
		{policyReadActions, policyARN, "only policy ARNs"},
	}
	var granted []string
	for _, s := range perms {
		if !s.allow() {
			continue
		}
		for _, a := range s.actions {
			granted = append(granted, a)
			for _, b := range bounds {
				if !slices.Contains(b.actions, a) {
					continue
				}
				for _, r := range s.resources {
					// role/sym/ holds iamjit's own connector and IAM modifier.
					if !b.arn.MatchString(expandIAMPrefix(m, r)) || (slices.Contains(rolePolicyActions, a) && strings.Contains(r, ":role/sym/")) {
						p.add("%s: %s on %q; %s", s.where, a, r, b.what)
					}
				}
			}
			if (a == "iam:GetUser" || a == "iam:ListUserTags" || a == "iam:ListGroupsForUser") && slices.Contains(s.resources, "*") {
				p.add("%s: %s on \"*\"; scope it to user/*", s.where, a)
			}
		}
	}
	for _, a := range modifierNeeds {
		if !slices.Contains(granted, a) {
			p.add("iam_modifier: %s not granted", a)
		}
	}
	return p
}

// expandIAMPrefix expands ${local.iam_prefix} (the module's
// "arn:${partition}:iam::${account}") so the ARN's shape can be checked.
func expandIAMPrefix(m *tfModule, r string) string {
	if !prefixedARN.MatchString(r) {
		return r
	}
	for _, b := range m.top("locals") {
		if e, ok := b.Body.Attributes["iam_prefix"]; ok {
			if arnShape(m.text(e.Expr)) == iamPrefixExpr {
				return "arn:${p}:iam::${a}" + prefixedARN.ReplaceAllString(r, "")
			}
		}
	}
	return r
}

// --- modules/iam_target_group -------------------------------------------------

func checkTargetGroup(m *tfModule) problems {
	var p problems
	for _, g := range m.resources("aws_iam_group") {
		if path, _ := m.str(attr(g, "path")); !strings.HasPrefix(path, "/sym/") {
			p.add("aws_iam_group.%s: default path %q is not under /sym/", g.Labels[1], path)
		}
	}
	for _, r := range m.resources("aws_iam_role") {
		path, _ := m.str(attr(r, "path"))
		if path == "" || strings.HasPrefix(path, "/sym/") {
			p.add("aws_iam_role.%s: path %q: roles members assume must not be under /sym/ (the connector may assume those)", r.Labels[1], path)
		}
		if v, ok := varName(attr(r, "path")); ok {
			if rejected, err := m.validationRejects(v, cty.StringVal("/sym/")); err != nil || !rejected {
				p.add("variable %s must reject /sym/: %v", v, err)
			}
		}
	}
	p = append(p, checkSourceIdentity(m)...)
	if m.variable("statements") != nil {
		for _, bad := range []string{"*", "iam:*", "sts:*"} {
			v := cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
				"sid":       cty.NullVal(cty.String),
				"actions":   cty.ListVal([]cty.Value{cty.StringVal(bad)}),
				"resources": cty.ListVal([]cty.Value{cty.StringVal("*")}),
			})})
			if rejected, err := m.validationRejects("statements", v); err != nil || !rejected {
				p.add("variable statements must reject action %q: %v", bad, err)
			}
		}
	}
	return p
}

// awsUsername is the policy variable ${aws:username} as HCL writes it.
const awsUsername = "$${aws:username}"

// ownSourceIdentity reports whether s requires sts:SourceIdentity to be the
// caller's IAM user name (the policy variable, not a name of its own).
func ownSourceIdentity(s statement) bool {
	c := s.condition("StringEquals", "sts:SourceIdentity")
	return c != nil && slices.Equal(c.resolved, []string{"${aws:username}"})
}

// checkSourceIdentity: by default (require_source_identity) the roles members
// assume trust an AssumeRole only with sts:SourceIdentity equal to the
// member's IAM user name, and allow setting it; and the group lets members
// set no other source identity.
func checkSourceIdentity(m *tfModule) problems {
	var p problems
	if v := m.vars["require_source_identity"]; v.Type() != cty.Bool || !v.True() {
		p.add("variable require_source_identity: default %v, want true", toGo(v))
	}
	for _, r := range m.resources("aws_iam_role") {
		trust, _, _ := m.role(r.Labels[1]) // members' roles carry managed policies: only the trust matters here
		for _, s := range trust {
			if !s.allow() {
				continue
			}
			if !s.hasAction("sts:SetSourceIdentity") {
				p.add("%s: the trust of aws_iam_role.%s does not allow sts:SetSourceIdentity", s.where, r.Labels[1])
			}
			if !ownSourceIdentity(s) {
				p.add("%s: the trust of aws_iam_role.%s lacks StringEquals sts:SourceIdentity = %s", s.where, r.Labels[1], awsUsername)
			}
		}
	}
	for _, s := range m.allStatements() {
		if s.allow() && s.hasAction("sts:SetSourceIdentity") && len(s.principals) == 0 && !ownSourceIdentity(s) {
			p.add("%s: sts:SetSourceIdentity without StringEquals sts:SourceIdentity = %s: a member could claim another's name", s.where, awsUsername)
		}
	}
	return p
}

// --- modules/iamjit: queues, rule, table, service, roles, alarms ---------------

// mainQueue returns the queue with a redrive policy and its DLQ's name.
func mainQueue(m *tfModule, p *problems) (queue, dlq string) {
	for _, q := range m.resources("aws_sqs_queue") {
		e := attr(q, "redrive_policy")
		if e == nil {
			continue
		}
		queue = q.Labels[1]
		rp, _ := m.eval(e).(map[string]any)
		if _, ok := rp["deadLetterTargetArn"]; !ok {
			p.add("aws_sqs_queue.%s: redrive_policy has no deadLetterTargetArn", queue)
		}
		if n, ok := rp["maxReceiveCount"].(float64); !ok || n < 1 {
			p.add("aws_sqs_queue.%s: redrive_policy maxReceiveCount %v, want a positive number", queue, rp["maxReceiveCount"])
		}
		for _, r := range refs(e) {
			if d, ok := strings.CutPrefix(r, "aws_sqs_queue."); ok {
				dlq = d
			}
		}
	}
	if queue == "" {
		p.add("no aws_sqs_queue with a redrive_policy")
	} else if dlq == "" || m.resource("aws_sqs_queue", dlq) == nil {
		p.add("aws_sqs_queue.%s: deadLetterTargetArn is not a queue of this module", queue)
	}
	return queue, dlq
}

// checkQueueSSE: every queue is encrypted at rest.
func checkQueueSSE(m *tfModule) problems {
	var p problems
	for _, q := range m.resources("aws_sqs_queue") {
		sse, _ := m.boolean(attr(q, "sqs_managed_sse_enabled"))
		if !sse && attr(q, "kms_master_key_id") == nil {
			p.add("aws_sqs_queue.%s: not encrypted (sqs_managed_sse_enabled or kms_master_key_id)", q.Labels[1])
		}
	}
	return p
}

func checkQueues(m *tfModule) problems {
	p := checkQueueSSE(m)
	queue, dlq := mainQueue(m, &p)
	if dlq != "" {
		if r, _ := m.num(attr(m.resource("aws_sqs_queue", dlq), "message_retention_seconds")); r != 1209600 {
			p.add("aws_sqs_queue.%s: DLQ retention %v, want 1209600 (14 days)", dlq, r)
		}
	}
	if v, ok := varName(findRedriveCount(m, queue)); ok {
		if d := toGo(m.vars[v]); d != 5.0 {
			p.add("variable %s: default %v, want 5", v, d)
		}
	}
	// Queue policies: only EventBridge, only SendMessage, only from a rule of this module.
	for _, qp := range m.resources("aws_sqs_queue_policy") {
		d, ok := docRef(attr(qp, "policy"))
		if !ok {
			continue // checkPoliciesAreDocuments reports it
		}
		ss, _ := m.doc(d)
		for _, s := range ss {
			if !s.allow() {
				continue
			}
			if len(s.actions) != 1 || s.actions[0] != "sqs:SendMessage" {
				p.add("%s: queue policy grants %v, want only sqs:SendMessage", s.where, s.actions)
			}
			for _, pr := range s.principals {
				if pr.typ != "Service" || !slices.Equal(pr.ids, []string{"events.amazonaws.com"}) {
					p.add("%s: queue policy principal %s %v, want Service events.amazonaws.com", s.where, pr.typ, pr.ids)
				}
			}
			c := s.condition("ArnEquals", "aws:SourceArn")
			if c == nil || len(c.values) == 0 || !strings.HasPrefix(c.values[0], "aws_cloudwatch_event_rule.") {
				p.add("%s: queue policy lacks an ArnEquals aws:SourceArn condition on the rule", s.where)
			}
		}
	}
	if queue != "" {
		found := false
		for _, qp := range m.resources("aws_sqs_queue_policy") {
			found = found || refersTo(attr(qp, "queue_url"), "aws_sqs_queue."+queue)
		}
		if !found {
			p.add("aws_sqs_queue.%s has no aws_sqs_queue_policy", queue)
		}
	}
	return p
}

func findRedriveCount(m *tfModule, queue string) hclsyntax.Expression {
	e, ok := attr(m.resource("aws_sqs_queue", queue), "redrive_policy").(*hclsyntax.FunctionCallExpr)
	if !ok || len(e.Args) != 1 {
		return nil
	}
	obj, ok := e.Args[0].(*hclsyntax.ObjectConsExpr)
	if !ok {
		return nil
	}
	for _, it := range obj.Items {
		if hcl.ExprAsKeyword(it.KeyExpr) == "maxReceiveCount" {
			return it.ValueExpr
		}
	}
	return nil
}

func checkRule(m *tfModule) problems {
	var p problems
	queue, _ := mainQueue(m, &p)
	p = nil // reported by checkQueues
	rules := m.resources("aws_cloudwatch_event_rule")
	if len(rules) == 0 {
		p.add("no aws_cloudwatch_event_rule")
	}
	for _, r := range rules {
		pat, _ := m.eval(attr(r, "event_pattern")).(map[string]any)
		if src, _ := pat["source"].([]any); !slices.Equal(src, []any{"sym"}) {
			p.add("aws_cloudwatch_event_rule.%s: source %v, want [\"sym\"]", r.Labels[1], pat["source"])
		}
		detail, _ := pat["detail"].(map[string]any)
		event, _ := detail["event"].(map[string]any)
		types, _ := event["type"].([]any)
		if !slices.Contains(types, any("escalate")) || !slices.Contains(types, any("deescalate")) {
			p.add("aws_cloudwatch_event_rule.%s: detail.event.type %v, want escalate and deescalate", r.Labels[1], event["type"])
		}
	}
	targets := 0
	for _, t := range m.resources("aws_cloudwatch_event_target") {
		if !refersTo(attr(t, "arn"), "aws_sqs_queue."+queue) {
			continue
		}
		targets++
		dl := nested1(t, "dead_letter_config")
		if dl == nil || attr(dl, "arn") == nil {
			p.add("aws_cloudwatch_event_target.%s: no dead_letter_config", t.Labels[1])
		}
		if nested1(t, "retry_policy") == nil {
			p.add("aws_cloudwatch_event_target.%s: no retry_policy", t.Labels[1])
		}
	}
	if targets == 0 {
		p.add("no aws_cloudwatch_event_target delivering to aws_sqs_queue.%s", queue)
	}
	if len(m.resources("aws_cloudwatch_event_bus")) == 0 {
		p.add("no aws_cloudwatch_event_bus for results")
	}
	return p
}

func checkTable(m *tfModule) problems {
	var p problems
	t := only(m, &p, "aws_dynamodb_table")
	if t == nil {
		return p
	}
	want := func(what string, e hclsyntax.Expression, v any) {
		if got := m.eval(e); got != v {
			p.add("aws_dynamodb_table: %s = %v, want %v", what, got, v)
		}
	}
	want("billing_mode", attr(t, "billing_mode"), "PAY_PER_REQUEST")
	want("hash_key", attr(t, "hash_key"), "pk")
	if attr(t, "range_key") != nil {
		p.add("aws_dynamodb_table: has a range_key; the key is pk only")
	}
	ttl := nested1(t, "ttl")
	want("ttl.enabled", attr(ttl, "enabled"), true)
	want("ttl.attribute_name", attr(ttl, "attribute_name"), "ttl")
	want("point_in_time_recovery.enabled", attr(nested1(t, "point_in_time_recovery"), "enabled"), true)
	want("server_side_encryption.enabled", attr(nested1(t, "server_side_encryption"), "enabled"), true)
	attrs := map[string]any{}
	for _, a := range nested(t, "attribute") {
		n, _ := m.str(attr(a, "name"))
		attrs[n] = m.eval(attr(a, "type"))
	}
	for _, k := range []string{"pk", "due_pk", "due_at"} {
		if attrs[k] != "S" {
			p.add("aws_dynamodb_table: attribute %s type %v, want S", k, attrs[k])
		}
	}
	var due *hclsyntax.Block
	for _, g := range nested(t, "global_secondary_index") {
		if n, _ := m.str(attr(g, "name")); n == "due" {
			due = g
		}
	}
	if due == nil {
		p.add("aws_dynamodb_table: no global_secondary_index \"due\"")
	} else {
		want("due.hash_key", attr(due, "hash_key"), "due_pk")
		want("due.range_key", attr(due, "range_key"), "due_at")
		want("due.projection_type", attr(due, "projection_type"), "ALL")
	}
	return p
}

// The settings `iamjit run` needs, all set by the container definition.
var requiredEnv = []string{
	"IAMJIT_QUEUE_URL", "IAMJIT_DLQ_URL", "IAMJIT_TABLE", "IAMJIT_EVENT_BUS",
	"IAMJIT_CONNECTOR_ROLE_ARN", "IAMJIT_IAM_ROLE_ARN", "IAMJIT_GROUP_PATH",
	"IAMJIT_MAX_DURATION", "IAMJIT_HTTP_ADDR", "AWS_REGION",
	"IAMJIT_ROLE_PATH", "IAMJIT_SESSION_REVOCATION",
}

// defaultShutdown is config.Defaults().ShutdownTimeout.
const defaultShutdown = 25 * time.Second

func checkService(m *tfModule) problems {
	var p problems
	svc := only(m, &p, "aws_ecs_service")
	if svc == nil {
		return p
	}
	if n, ok := m.num(attr(svc, "desired_count")); !ok || n < 2 {
		p.add("aws_ecs_service: desired_count %v, want >= 2", m.eval(attr(svc, "desired_count")))
	}
	if v, ok := varName(attr(svc, "desired_count")); ok {
		if rejected, err := m.validationRejects(v, cty.NumberIntVal(1)); err != nil || !rejected {
			p.add("variable %s must reject 1: %v", v, err)
		}
	}
	if lt, _ := m.str(attr(svc, "launch_type")); lt != "FARGATE" {
		p.add("aws_ecs_service: launch_type %q, want FARGATE", lt)
	}
	if nested1(svc, "network_configuration") == nil {
		p.add("aws_ecs_service: no network_configuration (awsvpc)")
	}

	td := only(m, &p, "aws_ecs_task_definition")
	if td == nil {
		return p
	}
	if nm, _ := m.str(attr(td, "network_mode")); nm != "awsvpc" {
		p.add("aws_ecs_task_definition: network_mode %q, want awsvpc", nm)
	}
	if !slices.Contains(m.strings(attr(td, "requires_compatibilities")), "FARGATE") {
		p.add("aws_ecs_task_definition: requires_compatibilities lacks FARGATE")
	}
	c, env, secrets := container(m, td, &p)
	if c == nil {
		return p
	}
	stop, ok := c["stopTimeout"].(float64)
	if !ok || stop <= defaultShutdown.Seconds() || stop > 120 {
		p.add("container iamjit: stopTimeout %v, want above %v (IAMJIT_SHUTDOWN_TIMEOUT) and at most 120", c["stopTimeout"], defaultShutdown)
	}
	for _, k := range requiredEnv {
		if _, ok := env[k]; !ok {
			p.add("container iamjit: environment lacks %s", k)
		}
	}
	if v := env["IAMJIT_SESSION_REVOCATION"]; v != "user" {
		p.add("container iamjit: IAMJIT_SESSION_REVOCATION %v by default, want \"user\"", v)
	}
	if rejected, err := m.validationRejects("session_revocation", cty.StringVal("everyone")); err != nil || !rejected {
		p.add("variable session_revocation must reject values other than user, role, off: %v", err)
	}
	if v, _ := env["IAMJIT_ROLE_PATH"].(string); v != "/jit/" {
		p.add("container iamjit: IAMJIT_ROLE_PATH %v by default, want \"/jit/\" (iam_target_group's role_path)", env["IAMJIT_ROLE_PATH"])
	}
	if _, ok := env["IAMJIT_EXTERNAL_ID"]; ok {
		p.add("container iamjit: IAMJIT_EXTERNAL_ID is in the plain environment; use secrets")
	}
	if s, ok := env["IAMJIT_SHUTDOWN_TIMEOUT"].(string); ok {
		d, err := time.ParseDuration(s)
		if err != nil || stop <= d.Seconds() {
			p.add("container iamjit: stopTimeout %v must exceed IAMJIT_SHUTDOWN_TIMEOUT %q", stop, s)
		}
	}
	if v := secrets["IAMJIT_EXTERNAL_ID"]; v == nil || v == "" {
		p.add("container iamjit: IAMJIT_EXTERNAL_ID is not in secrets (valueFrom an SSM parameter or secret)")
	}
	hc, _ := c["healthCheck"].(map[string]any)
	if cmd, _ := hc["command"].([]any); !slices.Equal(cmd, []any{"CMD", "/iamjit", "healthcheck"}) {
		p.add("container iamjit: healthCheck.command %v, want [CMD /iamjit healthcheck]", hc["command"])
	}
	if c["readonlyRootFilesystem"] != true {
		p.add("container iamjit: readonlyRootFilesystem is not true")
	}
	if u, _ := c["user"].(string); u == "" || u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		p.add("container iamjit: user %q, want a non-root user", c["user"])
	}
	lc, _ := c["logConfiguration"].(map[string]any)
	if lc["logDriver"] != "awslogs" {
		p.add("container iamjit: logDriver %v, want awslogs", lc["logDriver"])
	}
	for _, lg := range m.resources("aws_cloudwatch_log_group") {
		if n, ok := m.num(attr(lg, "retention_in_days")); !ok || n <= 0 {
			p.add("aws_cloudwatch_log_group.%s: no retention", lg.Labels[1])
		}
	}
	return p
}

// container returns the iamjit container of task definition td, and its
// environment (name -> value) and secrets (name -> valueFrom), adding to p
// what cannot be read offline.
func container(m *tfModule, td *hclsyntax.Block, p *problems) (c, env, secrets map[string]any) {
	defs, ok := m.eval(attr(td, "container_definitions")).([]any)
	if !ok || len(defs) == 0 {
		p.add("aws_ecs_task_definition: container_definitions is not a jsonencode([...]) list readable offline")
		return nil, nil, nil
	}
	for _, d := range defs {
		if cd, _ := d.(map[string]any); cd["name"] == "iamjit" {
			c = cd
		}
	}
	if c == nil {
		p.add("container_definitions: no container named iamjit")
		return nil, nil, nil
	}
	byName := func(list, value string) map[string]any {
		out := map[string]any{}
		l, ok := c[list].([]any)
		if !ok {
			p.add("container iamjit: %s is not readable offline", list)
		}
		for _, e := range l {
			kv, _ := e.(map[string]any)
			name, _ := kv["name"].(string)
			out[name] = kv[value]
		}
		return out
	}
	return c, byName("environment", "value"), byName("secrets", "valueFrom")
}

func roleOf(m *tfModule, e hclsyntax.Expression) string {
	for _, r := range refs(e) {
		if n, ok := strings.CutPrefix(r, "aws_iam_role."); ok {
			return n
		}
	}
	return ""
}

var (
	taskMay = []string{
		"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:SendMessage",
		"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query",
		"dynamodb:ConditionCheckItem", "dynamodb:DescribeTable", "dynamodb:Scan",
		"events:PutEvents", "sts:AssumeRole",
	}
	executionMay = []string{
		"ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
		"logs:CreateLogStream", "logs:PutLogEvents", "ssm:GetParameters", "secretsmanager:GetSecretValue", "kms:Decrypt",
	}
)

func checkTaskRoles(m *tfModule) problems {
	var p problems
	td := only(m, &p, "aws_ecs_task_definition")
	if td == nil {
		return p
	}
	for _, r := range []struct {
		attr    string
		allowed []string
	}{{"task_role_arn", taskMay}, {"execution_role_arn", executionMay}} {
		name := roleOf(m, attr(td, r.attr))
		if name == "" {
			p.add("aws_ecs_task_definition: %s is not a role of this module", r.attr)
			continue
		}
		trust, perms, rp := m.role(name)
		p = append(p, rp...)
		for _, s := range trust {
			for _, pr := range s.principals {
				if pr.typ != "Service" || !slices.Equal(pr.ids, []string{"ecs-tasks.amazonaws.com"}) {
					p.add("%s: %s trusts %s %v, want Service ecs-tasks.amazonaws.com", s.where, name, pr.typ, pr.ids)
				}
			}
			// Each trust as AWS documents it: the task role's with the
			// confused-deputy conditions, the execution role's without any.
			deputy := s.condition("StringEquals", "aws:SourceAccount") != nil && s.condition("ArnLike", "aws:SourceArn") != nil
			switch {
			case r.attr == "task_role_arn" && !deputy:
				p.add("%s: the task role's trust lacks StringEquals aws:SourceAccount and ArnLike aws:SourceArn", s.where)
			case r.attr == "execution_role_arn" && len(s.conditions) > 0:
				p.add("%s: the execution role's trust has conditions %v; AWS documents it without any", s.where, s.conditions)
			}
		}
		allowedActions(&p, perms, r.allowed)
	}
	return p
}

// checkAlarms: every DLQ (redrive target, rule target DLQ, pipe DLQ) has a
// depth alarm, and a queue with a DLQ has an oldest-message alarm. Alarms
// are this module's and those of the modules it calls (module.alarms).
func checkAlarms(m *tfModule) problems {
	var p problems
	alarms, err := m.deepResources("aws_cloudwatch_metric_alarm")
	if err != nil {
		p.add("alarms: %v", err)
	}
	dlqs := map[string]bool{}
	mains := map[string]bool{}
	for _, q := range m.resources("aws_sqs_queue") {
		if e := attr(q, "redrive_policy"); e != nil {
			mains[q.Labels[1]] = true
			for _, r := range refs(e) {
				if d, ok := strings.CutPrefix(r, "aws_sqs_queue."); ok {
					dlqs[d] = true
				}
			}
		}
	}
	var deadLetterConfigs func(b *hclsyntax.Block)
	deadLetterConfigs = func(b *hclsyntax.Block) {
		for _, c := range b.Body.Blocks {
			if c.Type == "dead_letter_config" {
				for _, r := range refs(attr(c, "arn")) {
					if d, ok := strings.CutPrefix(r, "aws_sqs_queue."); ok {
						dlqs[d] = true
					}
				}
			}
			deadLetterConfigs(c)
		}
	}
	for _, b := range m.top("resource") {
		deadLetterConfigs(b)
	}
	alarmOn := func(queue, metric string) bool {
		for _, a := range alarms {
			mn, _ := m.str(attr(a.Block, "metric_name"))
			if mn == metric && refersTo(attr(a.Block, "dimensions"), "aws_sqs_queue."+queue) {
				return true
			}
		}
		return false
	}
	for d := range dlqs {
		if !alarmOn(d, "ApproximateNumberOfMessagesVisible") {
			p.add("DLQ aws_sqs_queue.%s has no ApproximateNumberOfMessagesVisible alarm", d)
		}
	}
	for q := range mains {
		if !alarmOn(q, "ApproximateAgeOfOldestMessage") {
			p.add("aws_sqs_queue.%s has no ApproximateAgeOfOldestMessage alarm", q)
		}
	}
	for _, a := range alarms {
		mn, _ := m.str(attr(a.Block, "metric_name"))
		if mn != "ApproximateNumberOfMessagesVisible" {
			continue
		}
		op, _ := m.str(attr(a.Block, "comparison_operator"))
		th, _ := m.num(attr(a.Block, "threshold"))
		if op != "GreaterThanThreshold" || th != 0 {
			p.add("%s: want ApproximateNumberOfMessagesVisible > 0, got %s %v", a.addr(), op, th)
		}
	}
	return p
}

// --- modules/sym_log_pipe ---------------------------------------------------------

var pipeMay = []string{
	"kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator",
	"kinesis:ListShards", "kinesis:ListStreams",
	"events:PutEvents", "sqs:SendMessage", "kms:Decrypt",
}

// placeholder is a Pipes input-template variable: <$.data.id>.
var placeholder = regexp.MustCompile(`<[^<>]*>`)

// templatePair is one "key": <$.data.path> of an input template.
var templatePair = regexp.MustCompile(`"([^"]*)"\s*:\s*<\$\.data\.([^<>]*)>`)

// symLogEntryKeys are the JSON keys of the SymLogEntry iamjit decodes.
func symLogEntryKeys() []string {
	var out []string
	t := reflect.TypeFor[events.SymLogEntry]()
	for i := range t.NumField() {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); k != "" && k != "-" {
			out = append(out, k)
		}
	}
	return out
}

// checkPipeTemplate: the pipe's input template turns a Kinesis record holding
// a SymLogEntry into an event detail that is that SymLogEntry as a JSON
// object. Pipes parses the record's data as JSON, so <$.data.k> is the
// entry's k; but a template that is one placeholder (<$.data>) delivers an
// object as a string stripped of its quotes (EventBridge User Guide, "Amazon
// EventBridge Pipes input transformation", "Implicit body data parsing"). So
// the template must be a JSON object mapping each key k to <$.data.k>, for
// every key iamjit reads.
func checkPipeTemplate(it string) problems {
	var p problems
	var obj map[string]any
	if err := json.Unmarshal([]byte(placeholder.ReplaceAllString(it, "null")), &obj); err != nil || obj == nil {
		p.add("aws_pipes_pipe: input_template %q is not a JSON object with placeholders as values (a lone <$.data> delivers the entry as a string): %v", it, err)
		return p
	}
	pairs := map[string]string{}
	for _, m := range templatePair.FindAllStringSubmatch(it, -1) {
		pairs[m[1]] = m[2]
	}
	for k := range obj {
		if pairs[k] != k {
			p.add("aws_pipes_pipe: input_template key %q is not <$.data.%s>", k, k)
		}
	}
	for _, k := range symLogEntryKeys() {
		if _, ok := obj[k]; !ok {
			p.add("aws_pipes_pipe: input_template lacks %q, which iamjit reads from the SymLogEntry", k)
		}
	}
	return p
}

// checkKinesisResources: each Kinesis action on the resource type it is
// authorized against: ListStreams on "*" (it takes none), SubscribeToShard on
// a consumer ARN, every other action on a stream of this module.
func checkKinesisResources(m *tfModule) problems {
	var p problems
	for _, s := range m.allStatements() {
		if !s.allow() {
			continue
		}
		for _, a := range s.actions {
			if !strings.HasPrefix(a, "kinesis:") {
				continue
			}
			for _, r := range s.resources {
				var ok bool
				switch a {
				case "kinesis:ListStreams":
					ok = r == "*"
				case "kinesis:SubscribeToShard":
					ok = strings.Contains(r, "/consumer/")
				default:
					ok = strings.HasPrefix(r, "aws_kinesis_stream.") && strings.HasSuffix(r, ".arn")
				}
				if !ok {
					p.add("%s: %s on %q grants nothing or too much: ListStreams takes \"*\", SubscribeToShard a consumer ARN, the rest this module's stream", s.where, a, r)
				}
			}
		}
	}
	return p
}

func checkPipe(m *tfModule) problems {
	var p problems
	for _, s := range m.resources("aws_kinesis_stream") {
		if et, _ := m.str(attr(s, "encryption_type")); et != "KMS" || attr(s, "kms_key_id") == nil {
			p.add("aws_kinesis_stream.%s: not KMS-encrypted", s.Labels[1])
		}
	}
	pp := only(m, &p, "aws_pipes_pipe")
	if pp == nil {
		return p
	}
	if !strings.HasPrefix(strings.Join(refs(attr(pp, "source")), ","), "aws_kinesis_stream.") {
		p.add("aws_pipes_pipe: source is not the stream")
	}
	if !strings.HasPrefix(strings.Join(refs(attr(pp, "target")), ","), "aws_cloudwatch_event_bus.") {
		p.add("aws_pipes_pipe: target is not the bus")
	}
	tp := nested1(pp, "target_parameters")
	it, _ := m.str(attr(tp, "input_template"))
	p = append(p, checkPipeTemplate(it)...)
	p = append(p, checkKinesisResources(m)...)
	eb := nested1(tp, "eventbridge_event_bus_parameters")
	if s, _ := m.str(attr(eb, "source")); s != "sym" {
		p.add("aws_pipes_pipe: source %q, want \"sym\"", s)
	}
	if s, _ := m.str(attr(eb, "detail_type")); s != "SymLogEntry" {
		p.add("aws_pipes_pipe: detail_type %q, want \"SymLogEntry\"", s)
	}
	ks := nested1(nested1(pp, "source_parameters"), "kinesis_stream_parameters")
	if nested1(ks, "dead_letter_config") == nil {
		p.add("aws_pipes_pipe: kinesis_stream_parameters has no dead_letter_config")
	}
	name := roleOf(m, attr(pp, "role_arn"))
	trust, perms, rp := m.role(name)
	p = append(p, rp...)
	allowedActions(&p, perms, pipeMay)
	for _, s := range trust {
		for _, pr := range s.principals {
			if pr.typ != "Service" || !slices.Equal(pr.ids, []string{"pipes.amazonaws.com"}) {
				p.add("%s: pipe role trusts %s %v", s.where, pr.typ, pr.ids)
			}
		}
		if s.condition("StringEquals", "aws:SourceArn") == nil && s.condition("ArnEquals", "aws:SourceArn") == nil {
			p.add("%s: pipe role trust not limited to the pipe (aws:SourceArn)", s.where)
		}
	}
	return p
}

// --- every directory: references and module calls (an offline `validate`) ----------

var metaArgs = []string{"source", "version", "providers", "count", "for_each", "depends_on"}

func checkReferences(m *tfModule, load func(dir string) (*tfModule, error)) problems {
	var p problems
	declared := map[string]bool{}
	iterators := map[string]bool{"each": true, "count": true, "path": true, "terraform": true, "self": true}
	for _, b := range m.blocks {
		switch b.Type {
		case "resource", "module", "data", "variable", "output":
			key := b.Type + "." + strings.Join(b.Labels, ".")
			if declared[key] {
				p.add("%s declared twice", key)
			}
			declared[key] = true
		case "locals":
			for n := range b.Body.Attributes {
				declared["local."+n] = true
			}
		}
	}
	variableBodies := map[*hclsyntax.Body]*hclsyntax.Body{}
	for _, b := range m.top("variable") {
		variableBodies[b.Body] = b.Body
	}
	var walk func(body *hclsyntax.Body, visit func(hclsyntax.Expression))
	walk = func(body *hclsyntax.Body, visit func(hclsyntax.Expression)) {
		for _, a := range body.Attributes {
			if a.Name == "type" && body == variableBodies[body] {
				continue // a type constraint, not an expression
			}
			visit(a.Expr)
		}
		for _, b := range body.Blocks {
			if b.Type == "dynamic" {
				it := b.Labels[0]
				if e := attr(b, "iterator"); e != nil {
					it = hcl.ExprAsKeyword(e)
				}
				iterators[it] = true
			}
			walk(b.Body, visit)
		}
	}
	for _, b := range m.blocks {
		walk(b.Body, func(hclsyntax.Expression) {})
	}
	modules := map[string]*tfModule{}
	for _, b := range m.top("module") {
		src, _ := m.str(attr(b, "source"))
		if !strings.HasPrefix(src, "./") && !strings.HasPrefix(src, "../") {
			continue
		}
		sub, err := load(m.dir + "/" + src)
		if err != nil {
			p.add("module.%s: %v", b.Labels[0], err)
			continue
		}
		modules[b.Labels[0]] = sub
		for n := range b.Body.Attributes {
			if !slices.Contains(metaArgs, n) && sub.variable(n) == nil {
				p.add("module.%s: %s is not a variable of %s", b.Labels[0], n, src)
			}
		}
		for _, v := range sub.top("variable") {
			if attr(v, "default") == nil && b.Body.Attributes[v.Labels[0]] == nil {
				p.add("module.%s: required variable %s not set", b.Labels[0], v.Labels[0])
			}
		}
	}
	p = append(p, checkModuleProviders(m, modules)...)
	for _, b := range m.blocks {
		if b.Type == "moved" {
			continue // addresses, not references: checkMoved
		}
		body := b.Body
		if b.Type == "module" && body.Attributes["providers"] != nil {
			// Provider addresses, not references: checkModuleProviders.
			nb := *body
			nb.Attributes = maps.Clone(body.Attributes)
			delete(nb.Attributes, "providers")
			body = &nb
		}
		walk(body, func(e hclsyntax.Expression) {
			for _, t := range e.Variables() {
				root := t.RootName()
				var names []string
				for _, s := range t[1:] {
					if a, ok := s.(hcl.TraverseAttr); ok {
						names = append(names, a.Name)
					} else if _, isIndex := s.(hcl.TraverseIndex); isIndex && root == "module" && len(names) == 1 {
						continue // module.x[0].output: an instance of a module with count
					} else {
						break
					}
				}
				at := fmt.Sprintf("%s:%d", e.Range().Filename, e.Range().Start.Line)
				switch {
				case iterators[root]:
				case root == "var" || root == "local":
					if len(names) == 0 || !declared[map[string]string{"var": "variable.", "local": "local."}[root]+names[0]] {
						p.add("%s: %s.%s is not declared", at, root, strings.Join(names, "."))
					}
				case root == "module":
					if len(names) == 0 || !declared["module."+names[0]] {
						p.add("%s: module %v is not declared", at, names)
					} else if sub := modules[names[0]]; sub != nil && len(names) > 1 && len(sub.top("output", names[1])) == 0 {
						p.add("%s: module.%s has no output %s", at, names[0], names[1])
					}
				case root == "data":
					if len(names) < 2 || !declared["data."+names[0]+"."+names[1]] {
						p.add("%s: data.%s is not declared", at, strings.Join(names, "."))
					}
				default:
					if len(names) == 0 || !declared["resource."+root+"."+names[0]] {
						p.add("%s: %s.%s is not declared", at, root, strings.Join(names, "."))
					}
				}
			}
		})
	}
	return append(p, checkMoved(m)...)
}

// checkModuleProviders: a module call's providers map each provider of the
// called module (its required_providers) to a provider configuration of
// this module: the default one (aws) or an alias a provider block declares
// (aws.member).
func checkModuleProviders(m *tfModule, modules map[string]*tfModule) problems {
	var p problems
	configs := map[string]bool{}
	for _, b := range m.top("provider") {
		addr := b.Labels[0]
		if alias, ok := m.str(attr(b, "alias")); ok {
			addr += "." + alias
		}
		configs[addr] = true
	}
	for _, b := range m.top("module") {
		e := attr(b, "providers")
		if e == nil {
			continue
		}
		obj, ok := e.(*hclsyntax.ObjectConsExpr)
		if !ok {
			p.add("module.%s: providers is not a map of provider addresses", b.Labels[0])
			continue
		}
		for _, it := range obj.Items {
			key := hcl.ExprAsKeyword(it.KeyExpr)
			val, isTraversal := it.ValueExpr.(*hclsyntax.ScopeTraversalExpr)
			if key == "" || !isTraversal {
				p.add("module.%s: providers: %s = %s is not <name> = <provider address>", b.Labels[0], m.text(it.KeyExpr), m.text(it.ValueExpr))
				continue
			}
			addr := traversalString(val.Traversal)
			name, _, _ := strings.Cut(addr, ".")
			if !configs[addr] && addr != name {
				p.add("module.%s: providers: %s = %s, which no provider block declares", b.Labels[0], key, addr)
			}
			if sub := modules[b.Labels[0]]; sub != nil && !sub.requiresProvider(strings.Split(key, ".")[0]) {
				p.add("module.%s: providers: %s is not a provider the module requires", b.Labels[0], key)
			}
		}
	}
	return p
}

// requiresProvider reports whether m's terraform.required_providers names provider.
func (m *tfModule) requiresProvider(provider string) bool {
	for _, tb := range m.top("terraform") {
		for _, rp := range nested(tb, "required_providers") {
			if _, ok := rp.Body.Attributes[provider]; ok {
				return true
			}
		}
	}
	return false
}

// checkMoved: a moved block moves a resource from an address this
// configuration no longer declares to a resource instance it declares (here
// or in a module it calls) of the same type, and no address moves twice:
// otherwise `terraform plan` fails, or destroys what it should have moved.
func checkMoved(m *tfModule) problems {
	var p problems
	moved := m.top("moved")
	if len(moved) == 0 {
		return nil
	}
	insts, err := m.deepResources("")
	if err != nil {
		p.add("moved: %v", err)
		return p
	}
	declared := map[string]bool{}
	keysUnknown := map[string]bool{} // for_each or count not known offline
	for _, i := range insts {
		if attr(i.Block, "for_each") != nil || attr(i.Block, "count") != nil {
			keysUnknown[i.addr()] = true
		} else {
			declared[i.addr()] = true
		}
	}
	from := map[string]bool{}
	for _, b := range moved {
		at := fmt.Sprintf("%s:%d", b.TypeRange.Filename, b.TypeRange.Start.Line)
		f, ft, fok := movedAddr(attr(b, "from"))
		t, tt, tok := movedAddr(attr(b, "to"))
		if !fok || !tok {
			p.add("%s: moved from and to must be resource addresses", at)
			continue
		}
		if from[f] {
			p.add("%s: %s moved twice", at, f)
		}
		from[f] = true
		if declared[f] {
			p.add("%s: moved from %s, which is still declared", at, f)
		}
		if !declared[t] && !keysUnknown[instanceIndex.ReplaceAllString(t, "")] {
			p.add("%s: moved to %s, which is not declared", at, t)
		}
		if ft != tt {
			p.add("%s: moved from type %s to type %s", at, ft, tt)
		}
	}
	return p
}

var instanceIndex = regexp.MustCompile(`\[[^\]]*\]$`)

// movedAddr returns a moved block's address and the resource type in it.
func movedAddr(e hclsyntax.Expression) (addr, typ string, ok bool) {
	t, isTraversal := e.(*hclsyntax.ScopeTraversalExpr)
	if !isTraversal {
		return "", "", false
	}
	for i := 0; i < len(t.Traversal); i++ {
		var name string
		switch s := t.Traversal[i].(type) {
		case hcl.TraverseRoot:
			name = s.Name
		case hcl.TraverseAttr:
			name = s.Name
		default:
			continue
		}
		if name == "module" {
			i++ // and its name
			continue
		}
		return traversalString(t.Traversal), name, true
	}
	return "", "", false
}
