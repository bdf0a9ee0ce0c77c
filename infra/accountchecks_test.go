package infra

// Checks of one iamjit serving several AWS accounts (IAMJIT_ACCOUNTS): module
// member_account (a member account's chain and groups, made by the home
// account's modules), module iamjit's member_accounts (the task role may
// assume exactly their connectors, the map reaches the container as one
// secret), and environments/prod's member account (its own provider, wired
// to iamjit).

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// --- modules/iamjit: member_accounts ---------------------------------------------

// accountsEntryKeys are the keys of an account's chain in IAMJIT_ACCOUNTS
// (docs/design.md, Configuration): the Go side reads exactly these.
var accountsEntryKeys = []string{"connector_role_arn", "external_id", "iam_role_arn"}

// accountsEntryOptionalKeys are the keys an entry has only with that
// account's expiry backstop: backstop_role_arn, its execution role, and
// backstop_dlq_arn, its dead-letter queue.
var accountsEntryOptionalKeys = []string{"backstop_role_arn", "backstop_dlq_arn"}

// The chain and secrets checkMemberAccounts configures module iamjit with.
const (
	homeConnector     = "arn:aws:iam::123456789012:role/sym/iamjit-connector"
	homeIAMModifier   = "arn:aws:iam::123456789012:role/sym/iamjit-iam-modifier"
	externalIDParam   = "arn:aws:ssm:us-east-1:123456789012:parameter/iamjit/external-id"
	accountsSecret    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:iamjit-accounts-AbCdEf"
	accountsVersion   = "00000000-0000-0000-0000-000000000001"
	memberConnector   = "arn:aws:iam::%s:role/sym/iamjit-connector"
	memberIAMModifier = "arn:aws:iam::%s:role/sym/iamjit-iam-modifier"
)

// memberAccounts is a value of module iamjit's member_accounts: a chain in
// each account of ids.
func memberAccounts(ids ...string) cty.Value {
	attrs := map[string]cty.Type{}
	for _, k := range accountsEntryKeys {
		attrs[k] = cty.String
	}
	typ := cty.Object(attrs)
	if len(ids) == 0 {
		return cty.MapValEmpty(typ)
	}
	m := map[string]cty.Value{}
	for _, id := range ids {
		m[id] = cty.ObjectVal(map[string]cty.Value{
			"connector_role_arn": cty.StringVal(fmt.Sprintf(memberConnector, id)),
			"external_id":        cty.StringVal("external-id-of-" + id),
			"iam_role_arn":       cty.StringVal(fmt.Sprintf(memberIAMModifier, id)),
		})
	}
	return cty.MapVal(m)
}

// objectTypeKeys returns the sorted attribute names of the object in a type
// constraint such as map(object({a = string, b = string})).
func objectTypeKeys(e hclsyntax.Expression) []string {
	for {
		switch x := e.(type) {
		case *hclsyntax.FunctionCallExpr:
			if len(x.Args) == 0 {
				return nil
			}
			e = x.Args[0]
		case *hclsyntax.ObjectConsExpr:
			var out []string
			for _, it := range x.Items {
				out = append(out, hcl.ExprAsKeyword(it.KeyExpr))
			}
			slices.Sort(out)
			return out
		default:
			return nil
		}
	}
}

// withMembers is module iamjit configured with a chain in this account and
// member accounts ids, its accounts secret (if any) known.
func withMembers(m *tfModule, ids ...string) (*tfModule, error) {
	return m.with(map[string]cty.Value{
		"connector_role_arn":        cty.StringVal(homeConnector),
		"iam_role_arn":              cty.StringVal(homeIAMModifier),
		"external_id_parameter_arn": cty.StringVal(externalIDParam),
		"member_accounts":           memberAccounts(ids...),
	}, map[string]cty.Value{
		"aws_secretsmanager_secret": cty.ObjectVal(map[string]cty.Value{"accounts": cty.TupleVal([]cty.Value{
			cty.ObjectVal(map[string]cty.Value{"arn": cty.StringVal(accountsSecret), "id": cty.StringVal(accountsSecret)}),
		})}),
		"aws_secretsmanager_secret_version": cty.ObjectVal(map[string]cty.Value{"accounts": cty.TupleVal([]cty.Value{
			cty.ObjectVal(map[string]cty.Value{"arn": cty.StringVal(accountsSecret), "version_id": cty.StringVal(accountsVersion)}),
		})}),
	})
}

// checkMemberAccounts: module iamjit serves the member accounts of
// member_accounts. Configured with none, it is the single-account module: no
// secret, no IAMJIT_ACCOUNTS, the task role may assume this account's
// connector only. Configured with two, the task role may assume exactly this
// account's connector and theirs; the map, as JSON, is one Secrets Manager
// secret, which the execution role may read (no other secret but the external
// id) and which reaches the container as IAMJIT_ACCOUNTS through its secrets
// (pinned to the secret's version), never through its environment.
func checkMemberAccounts(m *tfModule) problems {
	var p problems
	if v := m.variable("member_accounts"); v == nil {
		p.add("variable member_accounts not declared")
		return p
	} else if s, _ := m.boolean(attr(v, "sensitive")); !s {
		p.add("variable member_accounts: not sensitive; it holds the external ids")
	}
	if got, want := objectTypeKeys(attr(m.variable("member_accounts"), "type")), slices.Sorted(slices.Values(slices.Concat(accountsEntryKeys, accountsEntryOptionalKeys))); !slices.Equal(got, want) {
		p.add("variable member_accounts: an account's chain has keys %v, want %v (IAMJIT_ACCOUNTS)", got, want)
	}
	if rejected, err := m.validationRejects("extra_environment", cty.MapVal(map[string]cty.Value{"IAMJIT_ACCOUNTS": cty.StringVal("{}")})); err != nil || !rejected {
		p.add("variable extra_environment must reject IAMJIT_ACCOUNTS (a secret): %v", err)
	}
	elsewhere := cty.MapVal(map[string]cty.Value{"210987654321": cty.ObjectVal(map[string]cty.Value{
		"connector_role_arn": cty.StringVal(fmt.Sprintf(memberConnector, "999999999999")),
		"external_id":        cty.StringVal("external-id-of-210987654321"),
		"iam_role_arn":       cty.StringVal(fmt.Sprintf(memberIAMModifier, "210987654321")),
	})})
	if rejected, err := m.validationRejects("member_accounts", elsewhere); err != nil || !rejected {
		p.add("variable member_accounts must reject a connector in another account than its key: %v", err)
	}
	for _, c := range []struct {
		ids     []string
		secrets float64
	}{{nil, 0}, {[]string{"210987654321", "310987654321"}, 1}} {
		mm, err := withMembers(m, c.ids...)
		if err != nil {
			p.add("%v", err)
			return p
		}
		with := fmt.Sprintf("with member accounts %v", c.ids)
		for _, typ := range []string{"aws_secretsmanager_secret", "aws_secretsmanager_secret_version"} {
			rs := mm.resources(typ)
			if len(rs) != 1 {
				p.add("%s: want one %s (count: the accounts secret), found %d", with, typ, len(rs))
				continue
			}
			if n, _ := mm.num(attr(rs[0], "count")); n != c.secrets {
				p.add("%s: %s.%s count %v, want %v", with, typ, rs[0].Labels[1], mm.eval(attr(rs[0], "count")), c.secrets)
			}
			if typ == "aws_secretsmanager_secret_version" {
				if got, want := mm.eval(attr(rs[0], "secret_string")), toGo(memberAccounts(c.ids...)); !reflect.DeepEqual(got, want) || !strings.HasPrefix(mm.text(attr(rs[0], "secret_string")), "jsonencode(") {
					p.add("%s: %s.%s secret_string is %v, want jsonencode(var.member_accounts) = %v", with, typ, rs[0].Labels[1], got, want)
				}
			}
		}
		td := only(mm, &p, "aws_ecs_task_definition")
		if td == nil {
			return p
		}
		_, env, secrets := container(mm, td, &p)
		if _, ok := env["IAMJIT_ACCOUNTS"]; ok {
			p.add("%s: container iamjit: IAMJIT_ACCOUNTS is in the plain environment; use secrets", with)
		}
		want := any(nil)
		if len(c.ids) > 0 {
			want = accountsSecret + ":::" + accountsVersion
		}
		if got := secrets["IAMJIT_ACCOUNTS"]; got != want {
			p.add("%s: container iamjit: secret IAMJIT_ACCOUNTS from %v, want %v (the accounts secret, at its version)", with, got, want)
		}
		// The task role may assume exactly the chains' first hops; the
		// execution role may read the external id and the accounts secret.
		wantAssume, wantRead := []string{homeConnector}, []string{externalIDParam}
		for _, id := range c.ids {
			wantAssume = append(wantAssume, fmt.Sprintf(memberConnector, id))
		}
		if len(c.ids) > 0 {
			wantRead = append(wantRead, accountsSecret)
		}
		for _, r := range []struct {
			role, what, of string
			actions        []string
			want           []string
		}{
			{"task_role_arn", "the task role may sts:AssumeRole", "the connectors", []string{"sts:AssumeRole"}, wantAssume},
			{"execution_role_arn", "the execution role may read the secrets", "the container's", []string{"secretsmanager:GetSecretValue", "ssm:GetParameters"}, wantRead},
		} {
			_, perms, _ := mm.role(roleOf(mm, attr(td, r.role)))
			got := []string{}
			for _, s := range perms {
				if s.off || !s.allow() || !slices.ContainsFunc(r.actions, s.hasAction) {
					continue
				}
				if s.resolved == nil {
					p.add("%s: %s: %v on %v, not known offline", with, s.where, s.actions, s.resources)
				}
				got = append(got, s.resolved...)
			}
			slices.Sort(got)
			slices.Sort(r.want)
			if !slices.Equal(got, r.want) {
				p.add("%s: %s %v, want exactly %s %v", with, r.what, got, r.of, r.want)
			}
		}
	}
	return p
}

// --- modules/member_account ----------------------------------------------------------

// deepDoc returns the statements of data "aws_iam_policy_document" name of
// the module call at address module ("module.connector."), as deep
// instantiates it in insts.
func deepDoc(m *tfModule, insts []instance, module, name string) []statement {
	for _, i := range insts {
		if i.module == module && i.Labels[0] == "aws_iam_policy_document" && i.Labels[1] == name {
			return m.docOf(i.Block, module+name)
		}
	}
	return nil
}

// checkMemberAccount: a member account's chain is the home account's
// modules, wired as the home account wires them. Its connector (module
// connector) trusts the home task role (var.task_role_arn) only with the
// external id (var.external_id); its IAM modifier (module iam_modifier)
// trusts only that connector and may change only groups under var.group_path
// and role policies under var.role_path, where every target group (module
// iam_target_group) and its roles live. The trusts and rights are checked
// as the calls instantiate them. Output accounts_entry is this account's
// IAMJIT_ACCOUNTS entry, sensitive.
func checkMemberAccount(m *tfModule) problems {
	var p problems
	_, bySource := calls(m, &p)
	connector, modifier := one(&p, bySource, "connector"), one(&p, bySource, "iam_modifier")
	if connector.block == nil || modifier.block == nil {
		return p
	}
	conn, mod := connector.block.Labels[0], modifier.block.Labels[0]
	if len(bySource["iam_target_group"]) == 0 {
		p.add("no module iam_target_group: the account's groups")
	}
	for _, tg := range bySource["iam_target_group"] {
		for arg, want := range map[string]string{"path": "var.group_path", "role_path": "var.role_path"} {
			if got := m.text(tg.arg(arg)); got != want {
				p.add("module.%s: %s = %s, want %s (the IAM modifier's)", tg.block.Labels[0], arg, got, want)
			}
		}
	}
	if v := m.variable("external_id"); v == nil {
		p.add("variable external_id not declared")
	} else if s, _ := m.boolean(attr(v, "sensitive")); !s {
		p.add("variable external_id: not sensitive")
	}

	insts, err := m.deep("data", "aws_iam_policy_document")
	if err != nil {
		p.add("%v", err)
		return p
	}
	trustedBy := func(what string, ss []statement, principal string, externalID bool) {
		if len(ss) == 0 {
			p.add("%s: no trust policy", what)
		}
		for _, s := range ss {
			if !s.allow() {
				continue
			}
			if len(s.principals) != 1 || s.principals[0].typ != "AWS" || !slices.Equal(s.principals[0].ids, []string{principal}) {
				p.add("%s: %s trusts %v; want only AWS %s", s.where, what, s.principals, principal)
			}
			if c := s.condition("StringEquals", "sts:ExternalId"); externalID && (c == nil || !slices.Equal(c.values, []string{"var.external_id"})) {
				p.add("%s: %s does not require StringEquals sts:ExternalId = var.external_id", s.where, what)
			}
		}
	}
	connTrust := "module." + conn + "."
	trustedBy("the connector", deepDoc(m, insts, connTrust, "trust"), "var.task_role_arn", true)
	modAddr := "module." + mod + "."
	trustedBy("the IAM modifier", deepDoc(m, insts, modAddr, "trust"), "module."+conn+".role_arn", false)
	perms := deepDoc(m, insts, modAddr, "modify_groups")
	if len(perms) == 0 {
		p.add("%smodify_groups: the IAM modifier's rights not found", modAddr)
	}
	p = append(p, modifierRights(m, perms)...)

	out := m.top("output", "accounts_entry")
	if len(out) == 0 {
		p.add("no output accounts_entry (this account's IAMJIT_ACCOUNTS entry)")
		return p
	}
	if s, _ := m.boolean(attr(out[0], "sensitive")); !s {
		p.add("output accounts_entry: not sensitive; it holds the external id")
	}
	entry, ok := attr(out[0], "value").(*hclsyntax.ObjectConsExpr)
	if !ok || len(entry.Items) != 1 || !strings.HasSuffix(m.text(entry.Items[0].KeyExpr), "aws_caller_identity.current.account_id)") {
		p.add("output accounts_entry: want {(data.aws_caller_identity.current.account_id) = {...}}, got %s", m.text(attr(out[0], "value")))
		return p
	}
	// The chain, and (merged in, with the backstop only) backstop_role_arn
	// and backstop_dlq_arn.
	got, optional := map[string]string{}, map[string]string{}
	keys := func(into map[string]string, e hclsyntax.Expression) {
		if obj, ok := e.(*hclsyntax.ObjectConsExpr); ok {
			for _, it := range obj.Items {
				k, _ := m.objectKey(it.KeyExpr)
				into[k] = m.text(it.ValueExpr)
			}
		}
	}
	switch chain := entry.Items[0].ValueExpr.(type) {
	case *hclsyntax.ObjectConsExpr:
		keys(got, chain)
	case *hclsyntax.FunctionCallExpr:
		if chain.Name == "merge" && len(chain.Args) == 2 {
			keys(got, chain.Args[0])
			if c, ok := chain.Args[1].(*hclsyntax.ConditionalExpr); ok && m.text(c.Condition) == "var.backstop" {
				keys(optional, c.TrueResult)
				keys(optional, c.FalseResult)
			}
		}
	}
	want := map[string]string{
		"connector_role_arn": "module." + conn + ".role_arn",
		"external_id":        "var.external_id",
		"iam_role_arn":       "module." + mod + ".role_arn",
	}
	if !reflect.DeepEqual(got, want) {
		p.add("output accounts_entry: the chain is %v, want %v (the keys iamjit reads: %v)", got, want, accountsEntryKeys)
	}
	if len(optional) > 0 || len(bySource["backstop"]) > 0 {
		bs := "module." + labelOf(one(&p, bySource, "backstop").block) + "[0]."
		wantOptional := map[string]string{"backstop_role_arn": bs + "role_arn", "backstop_dlq_arn": bs + "dlq_arn"}
		if !reflect.DeepEqual(optional, wantOptional) {
			p.add("output accounts_entry: with var.backstop, merges %v, want %v (%v)", optional, wantOptional, accountsEntryOptionalKeys)
		}
	}
	// On by default: the iamjit image reads both keys.
	if d, ok := m.boolean(attr(m.variable("backstop"), "default")); !ok || !d {
		p.add("variable backstop: default %s, want true (the expiry backstop on)", m.text(attr(m.variable("backstop"), "default")))
	}
	return p
}

// --- environments/prod: the member account -----------------------------------------

// memberOutputsOnly: e (what is named where) is made of the outputs outputs
// of the member_account calls members, and of nothing else: every reference
// in it is one of those calls (as a whole, to iterate) or a for expression's
// symbol reading one of outputs; each call is referred to.
func memberOutputsOnly(m *tfModule, where string, e hclsyntax.Expression, members []call, outputs ...string) problems {
	var p problems
	if e == nil {
		p.add("%s: not set; want the member accounts' %v", where, outputs)
		return p
	}
	calls := map[string]bool{}
	for _, c := range members {
		calls[c.block.Labels[0]] = false
	}
	symbols := map[string]bool{}
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		if f, ok := n.(*hclsyntax.ForExpr); ok {
			symbols[f.KeyVar], symbols[f.ValVar] = true, true
		}
		return nil
	})
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		t, ok := n.(*hclsyntax.ScopeTraversalExpr)
		if !ok {
			return nil
		}
		root, steps := t.Traversal.RootName(), t.Traversal[1:]
		var names []string
		for _, s := range steps {
			if a, ok := s.(hcl.TraverseAttr); ok {
				names = append(names, a.Name)
			}
		}
		switch {
		case root == "module" && len(names) > 0:
			if _, ok := calls[names[0]]; !ok {
				p.add("%s: refers to module.%s, which is not a member_account call", where, names[0])
				return nil
			}
			calls[names[0]] = true
			if len(names) > 1 && !slices.Contains(outputs, names[1]) {
				p.add("%s: reads module.%s.%s; want only %v", where, names[0], names[1], outputs)
			}
		case symbols[root]:
			if len(names) > 0 && !slices.Contains(outputs, names[0]) {
				p.add("%s: reads %s; want only the member accounts' %v", where, traversalString(t.Traversal), outputs)
			}
		default:
			p.add("%s: refers to %s; want only the member accounts' %v", where, traversalString(t.Traversal), outputs)
		}
		return nil
	})
	for name, used := range calls {
		if !used {
			p.add("%s: leaves out module.%s", where, name)
		}
	}
	return p
}

// checkProdMembers: each member account (a member_account call) is created
// through its own provider, an alias that assumes a role (in that account);
// its connector trusts this environment's iamjit task role, with an external
// id other than this account's; its groups and roles are under the paths
// iamjit manages; iamjit's member_accounts is exactly the member accounts'
// accounts_entry, so the task role may assume exactly their connectors and
// IAMJIT_ACCOUNTS names each.
func checkProdMembers(m *tfModule, bySource map[string][]call, iamjit call, groupPath, rolePath string) problems {
	var p problems
	members := bySource["member_account"]
	if len(members) == 0 {
		p.add("no module member_account: the environment shows how a second account is added")
	}
	homeExternalID := ""
	for _, c := range bySource["connector"] {
		homeExternalID = m.text(c.arg("external_id"))
	}
	for _, c := range members {
		name := "module." + c.block.Labels[0]
		var alias string
		if prov, ok := attr(c.block, "providers").(*hclsyntax.ObjectConsExpr); ok {
			for _, it := range prov.Items {
				if hcl.ExprAsKeyword(it.KeyExpr) == "aws" {
					alias, _ = strings.CutPrefix(m.text(it.ValueExpr), "aws.")
				}
			}
		}
		var config *hclsyntax.Block
		for _, b := range m.top("provider", "aws") {
			if a, _ := m.str(attr(b, "alias")); alias != "" && a == alias {
				config = b
			}
		}
		switch {
		case alias == "" || alias == "aws":
			p.add("%s: providers = %s; want aws = aws.<alias>, the member account's provider", name, m.text(attr(c.block, "providers")))
		case config == nil:
			p.add("%s: provider aws.%s is not declared", name, alias)
		case len(nested(config, "assume_role")) == 0 || attr(nested1(config, "assume_role"), "role_arn") == nil:
			p.add("provider aws.%s: no assume_role with a role_arn: %s would be created in this account", alias, name)
		}
		if mod, out, ok := moduleOutput(c.arg("task_role_arn")); !ok || mod != labelOf(iamjit.block) || out != "task_role_arn" {
			p.add("%s: task_role_arn %s, want module.%s.task_role_arn", name, m.text(c.arg("task_role_arn")), labelOf(iamjit.block))
		}
		if got := m.text(c.arg("external_id")); got == "" || got == homeExternalID {
			p.add("%s: external_id %q: want its own, not this account's connector's", name, got)
		}
		for arg, want := range map[string]string{"group_path": groupPath, "role_path": rolePath} {
			if got := m.text(c.arg(arg)); got != want {
				p.add("%s: %s = %s, the IAM modifier's is %s", name, arg, got, want)
			}
		}
	}
	return append(p, memberOutputsOnly(m, "module iamjit: member_accounts", iamjit.arg("member_accounts"), members, "accounts_entry")...)
}
