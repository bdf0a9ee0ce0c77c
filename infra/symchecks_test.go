package infra

// Checks of Sym's half (modules sym_runtime and sym_flow), of the providers
// every module declares, and of environments/prod, where the two halves
// must agree: the stream Sym writes to, the groups Sym offers, the role Sym
// uses, who changes IAM, and the alarm topic's key. The symopsio/sym
// provider cannot be installed here, so `terraform validate` never sees the
// Sym resources: checkSymSchema holds them to the provider's documented
// schema instead.

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// --- providers -------------------------------------------------------------------

// providerPins: one source and one version constraint (one major version) per
// provider, the same in every module and environment.
var providerPins = map[string]struct{ source, version string }{
	"aws": {"hashicorp/aws", "~> 5.100"},
	"sym": {"symopsio/sym", "~> 3.0"},
}

// checkRequiredProviders: the module declares, in terraform.required_providers,
// every provider its resources and data sources use, each pinned as in
// providerPins.
func checkRequiredProviders(m *tfModule) problems {
	var p problems
	declared := map[string]map[string]any{}
	for _, tb := range m.top("terraform") {
		for _, rp := range nested(tb, "required_providers") {
			for name, a := range rp.Body.Attributes {
				spec, _ := m.eval(a.Expr).(map[string]any)
				declared[name] = spec
			}
		}
	}
	used := map[string]bool{}
	for _, b := range m.blocks {
		if b.Type == "resource" || b.Type == "data" {
			prov, _, _ := strings.Cut(b.Labels[0], "_")
			used[prov] = true
		}
	}
	for prov := range used {
		spec, ok := declared[prov]
		if !ok {
			p.add("provider %s is used but not in terraform.required_providers", prov)
			continue
		}
		if pin, known := providerPins[prov]; known && (spec["source"] != pin.source || spec["version"] != pin.version) {
			p.add("required_providers.%s = %v, want source %q version %q (one major version, the same everywhere)", prov, spec, pin.source, pin.version)
		}
	}
	for prov := range declared {
		if _, known := providerPins[prov]; !known {
			p.add("required_providers.%s: not one of the pinned providers %v", prov, slices.Sorted(maps.Keys(providerPins)))
		}
	}
	return p
}

// --- the Sym provider's schema ------------------------------------------------------

// symArgs is a Sym resource's documented schema (terraform-provider-sym
// docs/resources/*.md, provider 3.x): required and optional arguments, and
// nested blocks with theirs.
type symArgs struct {
	required, optional []string
	blocks             map[string]symArgs
}

var symSchema = map[string]symArgs{
	"sym_integration":     {required: []string{"type", "name", "external_id"}, optional: []string{"label", "settings"}},
	"sym_runtime":         {required: []string{"name"}, optional: []string{"context_id", "label"}},
	"sym_environment":     {required: []string{"name"}, optional: []string{"error_logger_id", "integrations", "label", "log_destination_ids", "runtime_id"}},
	"sym_error_logger":    {required: []string{"integration_id", "destination"}},
	"sym_log_destination": {required: []string{"type"}, optional: []string{"integration_id", "settings"}},
	"sym_target":          {required: []string{"type", "name"}, optional: []string{"label", "settings", "field_bindings"}},
	"sym_strategy":        {required: []string{"type", "name", "targets"}, optional: []string{"implementation", "integration_id", "label", "settings"}},
	"sym_flow": {
		required: []string{"name", "implementation", "environment_id"},
		optional: []string{"label", "vars"},
		blocks: map[string]symArgs{"params": {
			optional: []string{"additional_header_text", "allow_guest_interaction", "allow_revoke", "allowed_sources", "schedule_deescalation", "strategy_id"},
			blocks: map[string]symArgs{"prompt_field": {
				required: []string{"name", "type"},
				optional: []string{"allowed_values", "default", "label", "prefetch", "required"},
			}},
		}},
	},
}

// promptFieldTypes are the documented values of prompt_field.type.
var promptFieldTypes = []string{"string", "int", "bool", "duration", "slack_user", "slack_user_list"}

var resourceMetaArgs = []string{"count", "for_each", "depends_on", "provider", "lifecycle"}

// checkSymSchema: every sym_* resource uses only arguments and blocks its
// documented schema has, and sets the required ones.
func checkSymSchema(m *tfModule) problems {
	var p problems
	var walk func(where string, body *hclsyntax.Body, s symArgs, top bool)
	walk = func(where string, body *hclsyntax.Body, s symArgs, top bool) {
		for name := range body.Attributes {
			if !slices.Contains(s.required, name) && !slices.Contains(s.optional, name) && !(top && slices.Contains(resourceMetaArgs, name)) {
				p.add("%s: %s is not an argument of the Sym provider's schema", where, name)
			}
		}
		for _, name := range s.required {
			if _, ok := body.Attributes[name]; !ok {
				p.add("%s: required argument %s not set", where, name)
			}
		}
		for _, b := range body.Blocks {
			if top && (b.Type == "lifecycle" || b.Type == "dynamic") {
				continue
			}
			sub, ok := s.blocks[b.Type]
			if !ok {
				p.add("%s: %s is not a block of the Sym provider's schema", where, b.Type)
				continue
			}
			walk(where+"."+b.Type, b.Body, sub, false)
			if b.Type == "prompt_field" {
				if t, _ := m.str(attr(b, "type")); !slices.Contains(promptFieldTypes, t) {
					p.add("%s.prompt_field: type %q is not one of %v", where, t, promptFieldTypes)
				}
			}
		}
	}
	for _, b := range m.blocks {
		if b.Type != "resource" || !strings.HasPrefix(b.Labels[0], "sym_") {
			continue
		}
		where := b.Labels[0] + "." + b.Labels[1]
		s, ok := symSchema[b.Labels[0]]
		if !ok {
			p.add("%s: not a resource type the Sym provider documents", where)
			continue
		}
		walk(where, b.Body, s, true)
	}
	return p
}

// --- modules/sym_runtime -------------------------------------------------------------

// only returns the one resource of typ, or adds a problem.
func only(m *tfModule, p *problems, typ string) *hclsyntax.Block {
	bs := m.resources(typ)
	if len(bs) != 1 {
		p.add("want one %s, found %d", typ, len(bs))
		return nil
	}
	return bs[0]
}

// settingsRef is the text of settings.key of a resource (or of a block).
func settingsRef(m *tfModule, b *hclsyntax.Block, key string) string {
	obj, ok := attr(b, "settings").(*hclsyntax.ObjectConsExpr)
	if !ok {
		return ""
	}
	for _, it := range obj.Items {
		if k, _ := m.objectKey(it.KeyExpr); k == key {
			return m.text(it.ValueExpr)
		}
	}
	return ""
}

// checkSymRuntime: the role Sym assumes is trusted by Sym's account with an
// external id (and by itself), may assume only itself, holds no IAM right;
// the permission context names that role and that external id; the runtime,
// log destination (a Kinesis data stream, by the stream name given) and
// environment are wired to one another.
func checkSymRuntime(m *tfModule) problems {
	var p problems
	name, rp := onlyRole(m)
	p = append(p, rp...)
	if name == "" {
		return p
	}
	roleAddr := "aws_iam_role." + name
	if got := m.text(attr(m.resource("aws_iam_role", name), "name")); got != "local.role_name" {
		p.add("%s: name %s, want local.role_name (its self ARN, local.role_arn, is built from it)", roleAddr, got)
	}
	if !strings.HasSuffix(m.text(m.localExpr("role_arn")), ":role/sym/${local.role_name}") {
		p.add("local.role_arn %q is not this role's ARN (role/sym/${local.role_name})", m.text(m.localExpr("role_arn")))
	}
	if d := toGo(m.vars["sym_account_id"]); d != "803477428605" {
		p.add("variable sym_account_id: default %v, want Sym's production account 803477428605", d)
	}
	trust, perms, rp := m.role(name)
	p = append(p, rp...)
	fromSym := false
	for _, s := range trust {
		if !s.allow() {
			continue
		}
		if !slices.Equal(s.actions, []string{"sts:AssumeRole"}) {
			p.add("%s: trust grants %v, want only sts:AssumeRole", s.where, s.actions)
		}
		for _, pr := range s.principals {
			switch {
			case pr.typ == "AWS" && slices.Equal(pr.ids, []string{"arn:${data.aws_partition.current.partition}:iam::${var.sym_account_id}:root"}):
				if c := s.condition("StringEquals", "sts:ExternalId"); c == nil || !slices.Equal(c.values, []string{"var.external_id"}) {
					p.add("%s: Sym's account trusted without StringEquals sts:ExternalId = var.external_id", s.where)
				} else {
					fromSym = true
				}
			case pr.typ == "AWS" && slices.Equal(pr.ids, []string{"arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"}):
				if c := s.condition("ArnEquals", "aws:PrincipalArn"); c == nil || !slices.Equal(c.values, []string{"local.role_arn"}) {
					p.add("%s: the account trusted without ArnEquals aws:PrincipalArn = local.role_arn (the role itself)", s.where)
				}
			default:
				p.add("%s: the runtime role trusts %s %v; only Sym's account (with the external id) and itself", s.where, pr.typ, pr.ids)
			}
		}
	}
	if !fromSym {
		p.add("%s: not trusted by Sym's account with the external id", roleAddr)
	}
	for _, s := range perms {
		if !s.allow() {
			continue
		}
		for _, a := range s.actions {
			if a != "sts:AssumeRole" {
				p.add("%s: the runtime role may %s; it may only assume itself (its stream rights come from sym_log_pipe's producer policy)", s.where, a)
			}
		}
		if !slices.Equal(s.resources, []string{"local.role_arn"}) {
			p.add("%s: the runtime role may assume %v; only itself (local.role_arn), so Sym reaches no role under /sym/", s.where, s.resources)
		}
	}
	var ctx *hclsyntax.Block
	for _, i := range m.resources("sym_integration") {
		if t, _ := m.str(attr(i, "type")); t == "permission_context" {
			ctx = i
		}
	}
	if ctx == nil {
		p.add("no sym_integration of type permission_context")
		return p
	}
	ctxAddr := "sym_integration." + ctx.Labels[1]
	if got := settingsRef(m, ctx, "role_arn"); got != roleAddr+".arn" {
		p.add("%s: settings.role_arn %q, want %s.arn (the runtime role this module creates)", ctxAddr, got, roleAddr)
	}
	if got := settingsRef(m, ctx, "external_id"); got != "var.external_id" {
		p.add("%s: settings.external_id %q, want var.external_id (the one the role's trust requires)", ctxAddr, got)
	}
	rt := only(m, &p, "sym_runtime")
	if rt != nil && !refersTo(attr(rt, "context_id"), ctxAddr) {
		p.add("sym_runtime.%s: context_id is not %s", rt.Labels[1], ctxAddr)
	}
	ld := only(m, &p, "sym_log_destination")
	if ld != nil {
		if t, _ := m.str(attr(ld, "type")); t != "kinesis_data_stream" {
			p.add("sym_log_destination.%s: type %q, want kinesis_data_stream (the stream sym_log_pipe reads)", ld.Labels[1], t)
		}
		if !refersTo(attr(ld, "integration_id"), ctxAddr) {
			p.add("sym_log_destination.%s: integration_id is not %s: Sym would write with another role than the one the producer policy is attached to", ld.Labels[1], ctxAddr)
		}
		if got := settingsRef(m, ld, "stream_name"); got != "var.log_stream_name" {
			p.add("sym_log_destination.%s: settings.stream_name %q, want var.log_stream_name", ld.Labels[1], got)
		}
	}
	env := only(m, &p, "sym_environment")
	if env != nil && rt != nil && !refersTo(attr(env, "runtime_id"), "sym_runtime."+rt.Labels[1]) {
		p.add("sym_environment.%s: runtime_id is not sym_runtime.%s", env.Labels[1], rt.Labels[1])
	}
	if env != nil && ld != nil && !refersTo(attr(env, "log_destination_ids"), "sym_log_destination."+ld.Labels[1]) {
		p.add("sym_environment.%s: log_destination_ids lacks sym_log_destination.%s: Sym would log nowhere iamjit reads", env.Labels[1], ld.Labels[1])
	}
	for _, o := range []struct{ name, want string }{{"role_name", roleAddr + ".name"}, {"environment_id", "sym_environment." + labelOf(env) + ".id"}} {
		if ob := m.top("output", o.name); len(ob) == 0 || m.text(attr(ob[0], "value")) != o.want {
			p.add("output %s must be %s", o.name, o.want)
		}
	}
	return p
}

func labelOf(b *hclsyntax.Block) string {
	if b == nil {
		return ""
	}
	return b.Labels[len(b.Labels)-1]
}

// --- modules/sym_flow -------------------------------------------------------------------

// callsOut finds what would let a strategy reach another system: an HTTP or
// AWS client, or the integration's settings (secrets).
var callsOut = regexp.MustCompile(`(?m)^\s*(import|from)\s+(requests|boto3?|botocore|urllib|http)\b|self\.integration\b`)

// checkSymFlow: Sym runs the approval and changes nothing itself. Its one
// strategy is custom, on a custom integration (no AWS role), with an
// implementation that calls out to nothing; its targets are custom targets
// naming an IAM group in settings.iam_group (what iamjit's decoder reads as an
// aws_iam_group target); the flow asks for a duration among fixed choices,
// checked against iamjit's maximum before apply; the module creates no AWS
// resource.
func checkSymFlow(m *tfModule) problems {
	var p problems
	for _, b := range m.blocks {
		if (b.Type == "resource" || b.Type == "data") && strings.HasPrefix(b.Labels[0], "aws_") {
			p.add("%s.%s: the flow module holds no AWS resource", b.Labels[0], b.Labels[1])
		}
	}
	st := only(m, &p, "sym_strategy")
	if st == nil {
		return p
	}
	stAddr := "sym_strategy." + st.Labels[1]
	if t, _ := m.str(attr(st, "type")); t != "custom" {
		p.add("%s: type %q; Sym's own strategies (aws_iam: Sym moves users in and out of the groups itself) would change IAM beside iamjit", stAddr, t)
	}
	var integ *hclsyntax.Block
	for _, r := range refs(attr(st, "integration_id")) {
		if n, ok := strings.CutPrefix(r, "sym_integration."); ok {
			integ = m.resource("sym_integration", n)
		}
	}
	if integ == nil {
		p.add("%s: integration_id is not a sym_integration of this module", stAddr)
	} else {
		if t, _ := m.str(attr(integ, "type")); t != "custom" {
			p.add("sym_integration.%s: type %q; the strategy's integration must be custom (a permission_context hands Sym an AWS role)", integ.Labels[1], t)
		}
		if attr(integ, "settings") != nil {
			p.add("sym_integration.%s: has settings; it holds no role and no secret", integ.Labels[1])
		}
	}
	impl := m.text(attr(st, "implementation"))
	if file, ok := strings.CutPrefix(impl, "${path.module}/"); !ok {
		p.add("%s: implementation %q, want \"${path.module}/<file>\" (provider 3.x reads the strategy's file by path)", stAddr, impl)
	} else if b, err := os.ReadFile(filepath.Join(m.dir, file)); err != nil {
		p.add("%s: implementation: %v", stAddr, err)
	} else {
		if bad := callsOut.FindString(string(b)); bad != "" {
			p.add("%s: %s has %q: the strategy must call out to nothing (iamjit changes IAM)", stAddr, file, bad)
		}
	}
	for _, t := range m.resources("sym_target") {
		if !refersTo(attr(st, "targets"), "sym_target."+t.Labels[1]) {
			p.add("%s: targets leave out this module's sym_target.%s", stAddr, t.Labels[1])
		}
		if typ, _ := m.str(attr(t, "type")); typ != "custom" {
			p.add("sym_target.%s: type %q; a custom strategy's targets are custom", t.Labels[1], typ)
		}
		p = append(p, customTargetSettings(m, t)...)
	}
	if !refersTo(attr(st, "targets"), "sym_target.group") {
		p.add("%s: targets are not this module's sym_target.group", stAddr)
	}
	fl := only(m, &p, "sym_flow")
	if fl == nil {
		return p
	}
	flAddr := "sym_flow." + fl.Labels[1]
	if impl := m.text(attr(fl, "implementation")); impl != `file("${path.module}/impl.py")` {
		p.add("%s: implementation %s, want file(\"${path.module}/impl.py\") (provider 3.x takes the file's contents)", flAddr, impl)
	} else if _, err := os.Stat(filepath.Join(m.dir, "impl.py")); err != nil {
		p.add("%s: %v", flAddr, err)
	}
	params := nested1(fl, "params")
	if !refersTo(attr(params, "strategy_id"), stAddr) {
		p.add("%s: params.strategy_id is not %s", flAddr, stAddr)
	}
	var duration *hclsyntax.Block
	for _, f := range nested(params, "prompt_field") {
		if n, _ := m.str(attr(f, "name")); n == "duration" {
			duration = f
		}
	}
	if duration == nil {
		p.add("%s: no prompt_field \"duration\" (fields.duration, iamjit's grant length)", flAddr)
	} else {
		if t, _ := m.str(attr(duration, "type")); t != "duration" {
			p.add("%s: prompt_field duration has type %q, want duration", flAddr, t)
		}
		if m.text(attr(duration, "allowed_values")) != "var.durations" {
			p.add("%s: prompt_field duration: allowed_values %q, want var.durations (checked against var.max_duration)", flAddr, m.text(attr(duration, "allowed_values")))
		}
	}
	guarded := false
	for _, lc := range nested(fl, "lifecycle") {
		for _, pc := range nested(lc, "precondition") {
			c := attr(pc, "condition")
			guarded = guarded || (refersTo(c, "var.durations") && refersTo(c, "var.max_duration"))
		}
	}
	if !guarded {
		p.add("%s: no precondition holding var.durations to var.max_duration", flAddr)
	}
	return p
}

// customTargetKinds are the settings of a custom target iamjit reads, each
// set as the one target type it names (events: aws_iam_group,
// aws_sso_permission_set, aws_sso_group).
var customTargetKinds = map[string][]string{
	"aws_iam_group":          {"iam_group"},
	"aws_sso_permission_set": {"account_id", "permission_set_arn"},
	"aws_sso_group":          {"group_id"},
}

// customTargetSettings: target t's settings are exactly one kind's keys, each
// set.
func customTargetSettings(m *tfModule, t *hclsyntax.Block) problems {
	var p problems
	obj, _ := attr(t, "settings").(*hclsyntax.ObjectConsExpr)
	var keys []string
	if obj != nil {
		for _, it := range obj.Items {
			k, _ := m.objectKey(it.KeyExpr)
			keys = append(keys, k)
			if m.text(it.ValueExpr) == "" {
				p.add("sym_target.%s: settings.%s is empty", t.Labels[1], k)
			}
		}
	}
	slices.Sort(keys)
	for _, want := range customTargetKinds {
		if slices.Equal(keys, want) {
			return p
		}
	}
	if !slices.Contains(keys, "iam_group") && len(keys) <= 1 {
		p.add("sym_target.%s: no settings.iam_group: iamjit reads the group from it", t.Labels[1])
	}
	p.add("sym_target.%s: settings %v are none of %v: iamjit could not tell what it grants", t.Labels[1], keys, customTargetKinds)
	return p
}

// --- environments/prod --------------------------------------------------------------------

// call is a module call of the environment, with the module it loads.
type call struct {
	block *hclsyntax.Block
	mod   *tfModule
}

func (c call) arg(name string) hclsyntax.Expression {
	if c.block == nil {
		return nil
	}
	return attr(c.block, name)
}

// calls loads the modules m calls by name, and those by source (the
// directory's base name), reporting any it cannot load.
func calls(m *tfModule, p *problems) (byName, bySource map[string][]call) {
	byName, bySource = map[string][]call{}, map[string][]call{}
	for _, b := range m.top("module") {
		src, _ := m.str(attr(b, "source"))
		child, err := m.child(filepath.Join(m.dir, src))
		if err != nil {
			p.add("module.%s: %v", b.Labels[0], err)
			continue
		}
		c := call{b, child}
		byName[b.Labels[0]] = append(byName[b.Labels[0]], c)
		bySource[filepath.Base(src)] = append(bySource[filepath.Base(src)], c)
	}
	return byName, bySource
}

func one(p *problems, cs map[string][]call, key string) call {
	if len(cs[key]) != 1 {
		p.add("want one module %s, found %d", key, len(cs[key]))
		return call{}
	}
	return cs[key][0]
}

// moduleOutput returns (module, output) when e is module.X.O or module.X[i].O.
func moduleOutput(e hclsyntax.Expression) (string, string, bool) {
	t, ok := e.(*hclsyntax.ScopeTraversalExpr)
	if !ok || t.Traversal.RootName() != "module" {
		return "", "", false
	}
	var names []string
	for _, s := range t.Traversal[1:] {
		if a, ok := s.(hcl.TraverseAttr); ok {
			names = append(names, a.Name)
		}
	}
	if len(names) != 2 {
		return "", "", false
	}
	return names[0], names[1], true
}

// outputOf is the text of a module's output value.
func outputOf(c call, name string) string {
	if c.mod == nil {
		return ""
	}
	if o := c.mod.top("output", name); len(o) > 0 {
		return c.mod.text(attr(o[0], "value"))
	}
	return ""
}

// checkProd: the two halves agree.
func checkProd(m *tfModule) problems {
	var p problems
	byName, bySource := calls(m, &p)
	runtime, pipe := one(&p, bySource, "sym_runtime"), one(&p, bySource, "sym_log_pipe")
	// The IAM flow (module sym_flow, targets); the others offer Identity
	// Center (checkProdIdentityCenter). Each runs in Sym's environment with
	// durations held to iamjit's maximum.
	var flow call
	var flows []call
	for _, c := range bySource["sym_flow"] {
		flows = append(flows, c)
		if c.arg("targets") != nil {
			if flow.block != nil {
				p.add("module.%s and module.%s both offer IAM groups: want one IAM flow", flow.block.Labels[0], c.block.Labels[0])
			}
			flow = c
		}
	}
	if flow.block == nil {
		p.add("no module sym_flow with targets: the IAM flow")
	}
	modifier, iamjit := one(&p, bySource, "iam_modifier"), one(&p, bySource, "iamjit")

	// Paths: the groups Sym offers are under the one path iamjit and the IAM
	// modifier manage; the roles their members assume under the one role path.
	groupPath, rolePath := m.text(modifier.arg("group_path")), m.text(modifier.arg("role_path"))
	if groupPath == "" || rolePath == "" {
		p.add("module iam_modifier: group_path and role_path must be set")
	}
	for _, c := range []struct {
		mod        call
		arg, want  string
		what, name string
	}{
		{iamjit, "group_path", groupPath, "IAMJIT_GROUP_PATH", "iamjit"},
		{iamjit, "role_path", rolePath, "IAMJIT_ROLE_PATH", "iamjit"},
	} {
		if got := m.text(c.mod.arg(c.arg)); got != c.want {
			p.add("module %s: %s = %s, the IAM modifier's is %s (%s)", c.name, c.arg, got, c.want, c.what)
		}
	}
	for _, tg := range bySource["iam_target_group"] {
		if got := m.text(tg.arg("path")); got != groupPath {
			p.add("module.%s: path %s, want %s: a group iamjit may not change", tg.block.Labels[0], got, groupPath)
		}
		if got := m.text(tg.arg("role_path")); got != rolePath {
			p.add("module.%s: role_path %s, want %s: iamjit could not end its roles' sessions", tg.block.Labels[0], got, rolePath)
		}
	}

	// Every flow target is a group an iam_target_group of this environment
	// manages, or (by ARN) one of a member account's groups.
	var items []item
	targetLocals, ok := localsOf(flow.arg("targets"))
	for _, name := range targetLocals {
		if its, known := m.items(m.localExpr(name)); known {
			items = append(items, its...)
		} else {
			p = append(p, memberOutputsOnly(m, "local."+name, m.localExpr(name), bySource["member_account"], "group_arns", "account_id")...)
		}
	}
	if !ok || len(items) == 0 {
		p.add("module sym_flow: targets %q is not a local map of groups known offline (or merge() of such and the member accounts' groups)", m.text(flow.arg("targets")))
	}
	for _, it := range items {
		obj, _ := it.val.(*hclsyntax.ObjectConsExpr)
		var group hclsyntax.Expression
		if obj != nil {
			group = project(obj, hcl.Traversal{hcl.TraverseAttr{Name: "group_name"}}, obj.SrcRange)
		}
		mod, out, isOut := moduleOutput(group)
		cs := byName[mod]
		if !isOut || out != "group_name" || len(cs) != 1 || !slices.Contains(bySource["iam_target_group"], cs[0]) {
			p.add("sym_flow target %q: group_name %q is not module.<iam_target_group>.group_name: Sym would offer a group iamjit does not manage", it.key, m.text(group))
		}
	}

	// Sym's log destination names the stream the pipe reads, and Sym writes
	// with the role the producer policy is attached to.
	if mod, out, isOut := moduleOutput(runtime.arg("log_stream_name")); !isOut || mod != pipe.block.Labels[0] || out != "stream_name" {
		p.add("module sym_runtime: log_stream_name %q, want module.%s.stream_name", m.text(runtime.arg("log_stream_name")), labelOf(pipe.block))
	}
	if pipe.mod != nil {
		stream := strings.TrimSuffix(outputOf(pipe, "stream_name"), ".name")
		if pp := pipe.mod.resources("aws_pipes_pipe"); stream == "" || len(pp) != 1 || !refersTo(attr(pp[0], "source"), stream) {
			p.add("module sym_log_pipe: output stream_name (%s) is not the stream its pipe reads", outputOf(pipe, "stream_name"))
		}
	}
	producer := false
	for _, r := range refs(pipe.arg("producer_role_names")) {
		producer = producer || r == "module."+labelOf(runtime.block)
	}
	if !producer || !strings.Contains(m.text(pipe.arg("producer_role_names")), "module."+labelOf(runtime.block)+"[0].role_name") {
		p.add("module sym_log_pipe: producer_role_names %q does not give Sym's runtime role (module.%s[0].role_name) the right to write the stream", m.text(pipe.arg("producer_role_names")), labelOf(runtime.block))
	}
	maxD, err := time.ParseDuration(toString(m.eval(iamjit.arg("max_duration"))))
	if err != nil {
		p.add("module iamjit: max_duration is not a duration known offline: %v", err)
	}
	for _, flow := range flows {
		name := "module." + flow.block.Labels[0]
		if !strings.Contains(m.text(flow.arg("environment_id")), "module."+labelOf(runtime.block)) {
			p.add("%s: environment_id is not module.%s's environment", name, labelOf(runtime.block))
		}
		// Durations: no choice longer than iamjit's maximum.
		if got, want := m.text(flow.arg("max_duration")), m.text(iamjit.arg("max_duration")); got != want {
			p.add("%s: max_duration %s, iamjit's is %s", name, got, want)
		}
		durations, _ := m.eval(flow.arg("durations")).([]any)
		if len(durations) == 0 {
			p.add("%s: durations not known offline", name)
		}
		for _, d := range durations {
			if dd, err := time.ParseDuration(toString(d)); err != nil || dd > maxD {
				p.add("%s: duration choice %v exceeds iamjit's max_duration %v (or is no duration): iamjit would refuse the grant", name, d, maxD)
			}
		}
	}

	// Only the IAM modifier may change group membership: no other module of
	// the environment grants it, and Sym's strategy is checked by checkSymFlow.
	// The expiry backstop's role may remove (never add) a member: the
	// schedule's target is the removal (checkBackstop holds it to that).
	for name, cs := range byName {
		for _, c := range cs {
			source := filepath.Base(m.text(c.arg("source")))
			if source == "iam_modifier" {
				continue
			}
			for _, s := range c.mod.allStatements() {
				for _, a := range s.actions {
					if source == "backstop" && a == "iam:RemoveUserFromGroup" {
						continue
					}
					if s.allow() && (slices.Contains(groupActions[:2], a) || a == "iam:PutRolePolicy") {
						p.add("module.%s: %s grants %s: only the IAM modifier changes IAM", name, s.where, a)
					}
				}
			}
		}
	}

	p = append(p, checkProdMembers(m, bySource, iamjit, groupPath, rolePath)...)
	p = append(p, checkProdIdentityCenter(m, bySource)...)

	// The alarm topic's key lets CloudWatch publish.
	p = append(p, checkAlarmTopicKey(m)...)
	return p
}

// localsOf returns the names of the locals e is (local.x) or merges
// (merge(local.x, local.y)).
func localsOf(e hclsyntax.Expression) ([]string, bool) {
	args := []hclsyntax.Expression{e}
	if f, ok := e.(*hclsyntax.FunctionCallExpr); ok && f.Name == "merge" && !f.ExpandFinal {
		args = f.Args
	}
	var out []string
	for _, a := range args {
		t, ok := a.(*hclsyntax.ScopeTraversalExpr)
		if !ok || len(t.Traversal) != 2 || t.Traversal.RootName() != "local" {
			return nil, false
		}
		attr, ok := t.Traversal[1].(hcl.TraverseAttr)
		if !ok {
			return nil, false
		}
		out = append(out, attr.Name)
	}
	return out, len(out) > 0
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

// checkAlarmTopicKey: each SNS topic an alarm notifies is encrypted with a
// customer-managed key of this module whose policy lets CloudWatch use it
// (an AWS-managed alias/aws/sns key does not, and alarms then notify nobody).
func checkAlarmTopicKey(m *tfModule) problems {
	var p problems
	topics := m.resources("aws_sns_topic")
	if len(topics) == 0 {
		p.add("no aws_sns_topic for the alarms")
	}
	for _, t := range topics {
		var key *hclsyntax.Block
		for _, r := range refs(attr(t, "kms_master_key_id")) {
			if n, ok := strings.CutPrefix(r, "aws_kms_key."); ok {
				key = m.resource("aws_kms_key", n)
			}
		}
		if key == nil {
			p.add("aws_sns_topic.%s: kms_master_key_id %q is not a customer-managed aws_kms_key of this module", t.Labels[1], m.text(attr(t, "kms_master_key_id")))
			continue
		}
		if rot, _ := m.boolean(attr(key, "enable_key_rotation")); !rot {
			p.add("aws_kms_key.%s: enable_key_rotation is not true", key.Labels[1])
		}
		d, ok := docRef(attr(key, "policy"))
		if !ok {
			p.add("aws_kms_key.%s: policy is not a policy document", key.Labels[1])
			continue
		}
		ss, _ := m.doc(d)
		cloudwatch := false
		for _, s := range ss {
			for _, pr := range s.principals {
				if s.allow() && pr.typ == "Service" && slices.Contains(pr.ids, "cloudwatch.amazonaws.com") &&
					s.hasAction("kms:Decrypt") && s.hasAction("kms:GenerateDataKey*") {
					cloudwatch = true
				}
			}
		}
		if !cloudwatch {
			p.add("aws_kms_key.%s: its policy does not let Service cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*: alarms could not publish to aws_sns_topic.%s", key.Labels[1], t.Labels[1])
		}
	}
	return p
}
