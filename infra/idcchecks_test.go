package infra

// Checks of Identity Center (issue 22) and of the expiry backstop (issue 23):
// the IAM modifier's sso:, identitystore: and scheduler: rights, each on
// exactly the resources it is meant for, the backstop's schedule group,
// execution role (its trust and its removals) and dead-letter queue, iamjit's
// IAMJIT_SSO_* and IAMJIT_BACKSTOP_* settings, and their wiring in
// member_account and environments/prod. The modules are configured as a
// deployment would configure them (tfModule.with), with the provider's data
// sources known, so every ARN a statement names is compared as AWS sees it.

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// One deployment's Identity Center and backstop, as the checks configure them.
const (
	icRegion     = "us-east-1"
	icAccount    = "123456789012"
	icInstance   = "arn:aws:sso:::instance/ssoins-1111111111111111"
	icStore      = "d-1234567890"
	icPS1        = "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-2222222222222222"
	icPS2        = "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-3333333333333333"
	icAssignee1  = "210987654321"
	icAssignee2  = "310987654321"
	icGroup      = "9067c4d8-1234-4abc-9def-0123456789ab"
	icKey        = "arn:aws:kms:us-east-1:123456789012:key/0000aaaa-bbbb-cccc-dddd-eeeeffff0000"
	bsGroup      = "iamjit"
	bsRole       = "arn:aws:iam::123456789012:role/iamjit-backstop/iamjit-backstop"
	bsGroupARN   = "arn:aws:scheduler:us-east-1:123456789012:schedule-group/iamjit"
	bsDLQ        = "arn:aws:sqs:us-east-1:123456789012:iamjit-backstop-dlq"
	icStoreARN   = "arn:aws:identitystore::123456789012:identitystore/" + icStore
	icGroupARN   = "arn:aws:identitystore:::group/" + icGroup
	icUsers      = "arn:aws:identitystore:::user/*"
	icMembership = "arn:aws:identitystore:::membership/*"
)

func strs(ss ...string) cty.Value {
	if len(ss) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	var vs []cty.Value
	for _, s := range ss {
		vs = append(vs, cty.StringVal(s))
	}
	return cty.ListVal(vs)
}

// identityCenter is module iam_modifier's (and backstop's) identity_center.
func identityCenter(kms bool) cty.Value {
	key := cty.NullVal(cty.String)
	if kms {
		key = cty.StringVal(icKey)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"instance_arn":        cty.StringVal(icInstance),
		"identity_store_id":   cty.StringVal(icStore),
		"permission_set_arns": strs(icPS1, icPS2),
		"account_ids":         strs(icAssignee1, icAssignee2),
		"group_ids":           strs(icGroup),
		"kms_key_arn":         key,
	})
}

// knownAWS is what the provider's data sources and the backstop's resources
// would be in account icAccount, region icRegion.
func knownAWS() map[string]cty.Value {
	current := func(k, v string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"current": cty.ObjectVal(map[string]cty.Value{k: cty.StringVal(v)})})
	}
	return map[string]cty.Value{
		"data": cty.ObjectVal(map[string]cty.Value{
			"aws_partition":       current("partition", "aws"),
			"aws_caller_identity": current("account_id", icAccount),
			"aws_region":          current("name", icRegion),
		}),
		"aws_scheduler_schedule_group": cty.ObjectVal(map[string]cty.Value{"this": cty.ObjectVal(map[string]cty.Value{"arn": cty.StringVal(bsGroupARN), "name": cty.StringVal(bsGroup)})}),
		"aws_sqs_queue":                cty.ObjectVal(map[string]cty.Value{"dlq": cty.ObjectVal(map[string]cty.Value{"arn": cty.StringVal(bsDLQ), "name": cty.StringVal("iamjit-backstop-dlq")})}),
	}
}

func ssoAccount(id string) string { return "arn:aws:sso:::account/" + id }

// exactGrants: in perms, the actions of the services prefixes are exactly the
// keys of want, each allowed on exactly want's resources (the union over the
// statements that allow it, resolved offline). A resource more (a wildcard
// where an ARN belongs, another account, another group) or less is reported.
func exactGrants(perms []statement, prefixes []string, want map[string][]string) problems {
	var p problems
	got := map[string][]string{}
	for _, s := range perms {
		if !s.allow() || s.off {
			continue
		}
		for _, a := range s.actions {
			if !slices.ContainsFunc(prefixes, func(pre string) bool { return strings.HasPrefix(a, pre) }) {
				continue
			}
			if s.resolved == nil {
				p.add("%s: %s on %v, not known offline", s.where, a, s.resources)
			}
			got[a] = append(got[a], s.resolved...)
		}
	}
	for _, a := range slices.Sorted(maps.Keys(got)) {
		w, ok := want[a]
		if !ok {
			p.add("%s is granted; it is none of the actions iamjit needs there %v", a, slices.Sorted(maps.Keys(want)))
			continue
		}
		g := slices.Compact(slices.Sorted(slices.Values(got[a])))
		w = slices.Sorted(slices.Values(w))
		if !slices.Equal(g, w) {
			p.add("%s on %v, want exactly %v", a, g, w)
		}
	}
	for _, a := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[a]; !ok {
			p.add("%s not granted", a)
		}
	}
	return p
}

// modifierIdentityCenterGrants: what the Identity Center account's modifier
// may do, by action (the Service Authorization Reference's required resource
// types of each, identity_center.tf).
func modifierIdentityCenterGrants() map[string][]string {
	assign := []string{icInstance, icPS1, icPS2, ssoAccount(icAssignee1), ssoAccount(icAssignee2)}
	permissionSets := []string{icInstance, icPS1, icPS2}
	users := []string{icStoreARN, icUsers}
	return map[string][]string{
		"sso:ListInstances":                           {"*"},
		"organizations:DescribeOrganization":          {"*"},
		"sso:CreateAccountAssignment":                 assign,
		"sso:DeleteAccountAssignment":                 assign,
		"sso:ListAccountAssignments":                  assign,
		"sso:ProvisionPermissionSet":                  assign,
		"sso:DescribePermissionSet":                   permissionSets,
		"sso:GetInlinePolicyForPermissionSet":         permissionSets,
		"sso:PutInlinePolicyToPermissionSet":          permissionSets,
		"sso:DescribeAccountAssignmentCreationStatus": {icInstance},
		"sso:DescribeAccountAssignmentDeletionStatus": {icInstance},
		"sso:DescribePermissionSetProvisioningStatus": {icInstance},
		"sso:ListAccountAssignmentsForPrincipal":      {icInstance},
		"identitystore:DescribeGroup":                 {icStoreARN, icGroupARN},
		"identitystore:ListGroupMemberships":          {icStoreARN, icMembership, icGroupARN},
		"identitystore:CreateGroupMembership":         {icStoreARN, icUsers, icGroupARN},
		"identitystore:DeleteGroupMembership":         {icStoreARN, icUsers, icMembership, icGroupARN},
		"identitystore:DescribeUser":                  users,
		"identitystore:GetUserId":                     users,
		"identitystore:ListUsers":                     users,
		"identitystore:ListGroupMembershipsForMember": {icStoreARN, icUsers, icMembership},
		"kms:Decrypt": {icKey},
	}
}

// modifierPerms is the IAM modifier (module iam_modifier) configured with
// vars, and its permissions.
func modifierPerms(m *tfModule, vars map[string]cty.Value) ([]statement, problems) {
	all := map[string]cty.Value{"connector_role_arn": cty.StringVal(homeConnector)}
	maps.Copy(all, vars)
	mm, err := m.with(all, knownAWS())
	if err != nil {
		return nil, problems{err.Error()}
	}
	_, perms, p := mm.role("this")
	return perms, p
}

// checkModifierIdentityCenter: without identity_center the IAM modifier has
// no sso:, identitystore: or kms: right; with it, exactly
// modifierIdentityCenterGrants: the instance, the allowed permission sets,
// the allowed accounts, the identity store, the allowed groups, users and
// memberships (only with an allowed group where AWS requires one), and
// kms:Decrypt on the instance's key. identity_center refuses wildcards.
func checkModifierIdentityCenter(m *tfModule) problems {
	prefixes := []string{"sso:", "identitystore:", "kms:", "organizations:"}
	perms, p := modifierPerms(m, nil)
	p = append(p, exactGrants(perms, prefixes, map[string][]string{})...)
	for _, kms := range []bool{true, false} {
		perms, pp := modifierPerms(m, map[string]cty.Value{"identity_center": identityCenter(kms)})
		p = append(p, pp...)
		want := modifierIdentityCenterGrants()
		if !kms {
			delete(want, "kms:Decrypt")
		}
		for _, s := range exactGrants(perms, prefixes, want) {
			p.add("with identity_center: %s", s)
		}
	}
	bad := map[string]cty.Value{
		"group_ids":           strs("*"),
		"account_ids":         strs("*"),
		"permission_set_arns": strs("arn:aws:sso:::permissionSet/*"),
		"instance_arn":        cty.StringVal("arn:aws:sso:::instance/*"),
	}
	for _, k := range slices.Sorted(maps.Keys(bad)) {
		v := identityCenter(false).AsValueMap()
		v[k] = bad[k]
		if rejected, err := m.validationRejects("identity_center", cty.ObjectVal(v)); err != nil || !rejected {
			p.add("variable identity_center must reject %s = %v: %v", k, toGo(bad[k]), err)
		}
	}
	return p
}

// checkModifierBackstop: without backstop the IAM modifier has no scheduler:
// right and passes no role; with it, it may create, update, read and delete
// schedules of the backstop group only, read that group, list schedules
// (which takes no resource), and pass the backstop role only, to
// scheduler.amazonaws.com only.
func checkModifierBackstop(m *tfModule) problems {
	perms, p := modifierPerms(m, nil)
	p = append(p, exactGrants(perms, []string{"scheduler:", "iam:PassRole"}, map[string][]string{})...)
	backstop := cty.ObjectVal(map[string]cty.Value{"schedule_group_name": cty.StringVal(bsGroup), "role_arn": cty.StringVal(bsRole)})
	perms, pp := modifierPerms(m, map[string]cty.Value{"backstop": backstop})
	p = append(p, pp...)
	schedules := []string{"arn:aws:scheduler:us-east-1:123456789012:schedule/" + bsGroup + "/*"}
	for _, s := range exactGrants(perms, []string{"scheduler:", "iam:PassRole"}, map[string][]string{
		"scheduler:CreateSchedule":   schedules,
		"scheduler:UpdateSchedule":   schedules,
		"scheduler:DeleteSchedule":   schedules,
		"scheduler:GetSchedule":      schedules,
		"scheduler:GetScheduleGroup": {bsGroupARN},
		"scheduler:ListSchedules":    {"*"},
		"iam:PassRole":               {bsRole},
	}) {
		p.add("with backstop: %s", s)
	}
	for _, s := range perms {
		if s.allow() && !s.off && s.hasAction("iam:PassRole") {
			if c := s.condition("StringEquals", "iam:PassedToService"); c == nil || !slices.Equal(c.resolved, []string{"scheduler.amazonaws.com"}) {
				p.add("with backstop: %s: iam:PassRole without StringEquals iam:PassedToService = scheduler.amazonaws.com", s.where)
			}
		}
	}
	return p
}

// --- modules/backstop ------------------------------------------------------------

// checkBackstop: the schedule group (not "default"); the execution role,
// outside /sym/ and /jit/, trusted only by scheduler.amazonaws.com with
// aws:SourceAccount this account and aws:SourceArn the group's ARN, allowed
// only to remove members of groups under group_path, and with
// identity_center only the allowed assignments and group memberships, and to
// send to its dead-letter queue, which is encrypted, keeps 14 days and has a
// not-empty alarm.
func checkBackstop(m *tfModule) problems {
	var p problems
	if rejected, err := m.validationRejects("schedule_group_name", cty.StringVal("default")); err != nil || !rejected {
		p.add("variable schedule_group_name must reject \"default\": %v", err)
	}
	if d := toGo(m.vars["schedule_group_name"]); d != "iamjit" {
		p.add("variable schedule_group_name: default %v, want \"iamjit\" (IAMJIT_BACKSTOP_GROUP's)", d)
	}
	removals := func(ic bool) map[string][]string {
		want := map[string][]string{
			"iam:RemoveUserFromGroup": {"arn:aws:iam::123456789012:group/sym/*"},
			"sqs:SendMessage":         {bsDLQ},
		}
		if ic {
			want["sso:DeleteAccountAssignment"] = []string{icInstance, icPS1, icPS2, ssoAccount(icAssignee1), ssoAccount(icAssignee2)}
			want["identitystore:DeleteGroupMembership"] = []string{icStoreARN, icUsers, icMembership, icGroupARN}
			want["kms:Decrypt"] = []string{icKey}
		}
		return want
	}
	for _, ic := range []bool{false, true} {
		vars := map[string]cty.Value{}
		if ic {
			vars["identity_center"] = identityCenter(true)
		}
		mm, err := m.with(vars, knownAWS())
		if err != nil {
			p.add("%v", err)
			return p
		}
		roles := mm.resources("aws_iam_role")
		if len(roles) != 1 {
			p.add("want one aws_iam_role (the execution role), found %d", len(roles))
			return p
		}
		name := roles[0].Labels[1]
		if path, _ := mm.str(attr(roles[0], "path")); path == "" || path == "/" || strings.HasPrefix(path, "/sym/") || strings.HasPrefix(path, "/jit/") {
			p.add("aws_iam_role.%s: path %q: not /, /sym/ (the connector may assume roles there) nor /jit/ (the IAM modifier writes policies there)", name, path)
		}
		trust, perms, rp := mm.role(name)
		p = append(p, rp...)
		if len(trust) == 0 {
			p.add("aws_iam_role.%s: no trust", name)
		}
		for _, s := range trust {
			if !s.allow() {
				continue
			}
			if !slices.Equal(s.actions, []string{"sts:AssumeRole"}) {
				p.add("%s: the execution role's trust grants %v, want only sts:AssumeRole", s.where, s.actions)
			}
			if len(s.principals) != 1 || s.principals[0].typ != "Service" || !slices.Equal(s.principals[0].ids, []string{`scheduler.amazonaws.com`}) {
				p.add("%s: the execution role trusts %v, want only Service scheduler.amazonaws.com", s.where, s.principals)
			}
			if c := s.condition("StringEquals", "aws:SourceAccount"); c == nil || !slices.Equal(c.resolved, []string{icAccount}) {
				p.add("%s: the execution role's trust lacks StringEquals aws:SourceAccount = this account", s.where)
			}
			arn := s.condition("ArnEquals", "aws:SourceArn")
			if arn == nil {
				arn = s.condition("StringEquals", "aws:SourceArn")
			}
			if arn == nil || !slices.Equal(arn.resolved, []string{bsGroupARN}) {
				p.add("%s: the execution role's trust lacks aws:SourceArn = the schedule group's ARN (ArnEquals or StringEquals, no wildcard)", s.where)
			}
			for _, c := range s.conditions {
				if strings.Contains(c.test, "Like") {
					p.add("%s: condition %s %s: no pattern in the execution role's trust", s.where, c.test, c.variable)
				}
			}
		}
		for _, s := range exactGrants(perms, []string{""}, removals(ic)) {
			p.add("the execution role (identity_center %v): %s", ic, s)
		}
	}
	p = append(p, checkQueueSSE(m)...)
	if q := m.resource("aws_sqs_queue", "dlq"); q == nil {
		p.add("no aws_sqs_queue.dlq: the schedules' dead-letter queue")
	} else if r, _ := m.num(attr(q, "message_retention_seconds")); r != 1209600 {
		p.add("aws_sqs_queue.dlq: retention %v, want 1209600 (14 days)", r)
	}
	alarms, err := m.deepResources("aws_cloudwatch_metric_alarm")
	if err != nil {
		p.add("%v", err)
	}
	alarmed := false
	for _, a := range alarms {
		mn, _ := m.str(attr(a.Block, "metric_name"))
		th, ok := m.num(attr(a.Block, "threshold"))
		alarmed = alarmed || (mn == "ApproximateNumberOfMessagesVisible" && ok && th == 0 && refersTo(attr(a.Block, "dimensions"), "aws_sqs_queue.dlq"))
	}
	if !alarmed {
		p.add("aws_sqs_queue.dlq has no ApproximateNumberOfMessagesVisible > 0 alarm (module alarms)")
	}
	return p
}

// --- modules/iamjit: IAMJIT_SSO_*, IAMJIT_BACKSTOP_* -------------------------------

// checkIdentityCenterEnvironment: unset, no IAMJIT_SSO_* nor IAMJIT_BACKSTOP_*
// setting reaches the container; set, each has its value (lists
// comma-separated); the variables refuse what iamjit would refuse.
func checkIdentityCenterEnvironment(m *tfModule) problems {
	var p problems
	names := []string{"IAMJIT_SSO_INSTANCE_ARN", "IAMJIT_SSO_ACCOUNT", "IAMJIT_SSO_REGION", "IAMJIT_SSO_PERMISSION_SETS",
		"IAMJIT_SSO_ASSIGNMENT_ACCOUNTS", "IAMJIT_SSO_GROUPS", "IAMJIT_BACKSTOP_ROLE_ARN", "IAMJIT_BACKSTOP_GROUP", "IAMJIT_BACKSTOP_GRACE",
		"IAMJIT_BACKSTOP_DLQ_ARN"}
	env := func(vars map[string]cty.Value) map[string]any {
		mm, err := withMembers(m)
		if err == nil && len(vars) > 0 {
			all := map[string]cty.Value{
				"connector_role_arn":        cty.StringVal(homeConnector),
				"iam_role_arn":              cty.StringVal(homeIAMModifier),
				"external_id_parameter_arn": cty.StringVal(externalIDParam),
				"member_accounts":           memberAccounts(),
			}
			maps.Copy(all, vars)
			mm, err = m.with(all, nil)
		}
		if err != nil {
			p.add("%v", err)
			return nil
		}
		td := only(mm, &p, "aws_ecs_task_definition")
		if td == nil {
			return nil
		}
		_, e, _ := container(mm, td, &p)
		return e
	}
	off := env(nil)
	for _, n := range names {
		if v, ok := off[n]; ok {
			p.add("container iamjit: %s = %v by default; unset, it must be absent (off)", n, v)
		}
	}
	on := env(map[string]cty.Value{
		"identity_center": cty.ObjectVal(map[string]cty.Value{
			"instance_arn": cty.StringVal(icInstance), "account_id": cty.StringVal(icAccount), "region": cty.StringVal(icRegion),
			"permission_set_arns": strs(icPS1, icPS2), "assignment_account_ids": strs(icAssignee1, icAssignee2), "group_ids": strs(icGroup),
		}),
		"backstop": homeBackstop(bsDLQ),
	})
	want := map[string]string{
		"IAMJIT_SSO_INSTANCE_ARN": icInstance, "IAMJIT_SSO_ACCOUNT": icAccount, "IAMJIT_SSO_REGION": icRegion,
		"IAMJIT_SSO_PERMISSION_SETS": icPS1 + "," + icPS2, "IAMJIT_SSO_ASSIGNMENT_ACCOUNTS": icAssignee1 + "," + icAssignee2,
		"IAMJIT_SSO_GROUPS": icGroup, "IAMJIT_BACKSTOP_ROLE_ARN": bsRole, "IAMJIT_BACKSTOP_GROUP": bsGroup, "IAMJIT_BACKSTOP_GRACE": "2m",
		"IAMJIT_BACKSTOP_DLQ_ARN": bsDLQ,
	}
	for _, n := range names {
		if on[n] != want[n] {
			p.add("container iamjit: %s = %v, want %q", n, on[n], want[n])
		}
	}
	// A backstop without a dead-letter queue: the rest on, no
	// IAMJIT_BACKSTOP_DLQ_ARN (iamjit warns).
	noDLQ := env(map[string]cty.Value{"backstop": homeBackstop("")})
	for _, n := range names {
		if w := want[n]; strings.HasPrefix(n, "IAMJIT_BACKSTOP_") && n != "IAMJIT_BACKSTOP_DLQ_ARN" && noDLQ[n] != w {
			p.add("container iamjit: backstop without dlq_arn: %s = %v, want %q", n, noDLQ[n], w)
		}
	}
	if v, ok := noDLQ["IAMJIT_BACKSTOP_DLQ_ARN"]; ok {
		p.add("container iamjit: backstop without dlq_arn: IAMJIT_BACKSTOP_DLQ_ARN = %v; unset, it must be absent", v)
	}
	for _, c := range []struct{ variable, key, value string }{
		{"identity_center", "instance_arn", "arn:aws:sso:::instance/*"},
		{"identity_center", "account_id", "12345"},
		{"identity_center", "region", "*"},
		{"identity_center", "permission_set_arns", "arn:aws:sso:::permissionSet/*"},
		{"identity_center", "assignment_account_ids", "*"},
		{"identity_center", "group_ids", "*"},
		{"backstop", "role_arn", "*"},
		{"backstop", "grace", "2 minutes"},
		{"backstop", "dlq_arn", "*"},
		{"backstop", "dlq_arn", bsDLQ + ".fifo"},
	} {
		v := cty.StringVal(c.value)
		if strings.HasSuffix(c.key, "s") && c.key != "grace" {
			v = strs(c.value)
		}
		if rejected, err := m.validationRejects(c.variable, cty.ObjectVal(map[string]cty.Value{c.key: v})); err != nil || !rejected {
			p.add("variable %s must reject %s = %q: %v", c.variable, c.key, c.value, err)
		}
	}
	// The home account's role with its own queue is accepted; a queue of
	// another account than the role's is not (Scheduler sends with the role).
	if rejected, err := m.validationRejects("backstop", homeBackstop(bsDLQ)); err != nil || rejected {
		p.add("variable backstop must accept role_arn %s with dlq_arn %s: rejected %v, %v", bsRole, bsDLQ, rejected, err)
	}
	if rejected, err := m.validationRejects("backstop", homeBackstop(strings.Replace(bsDLQ, icAccount, "999999999999", 1))); err != nil || !rejected {
		p.add("variable backstop must reject a dlq_arn of another account than role_arn's: %v", err)
	}
	// A member account's backstop role and queue reach IAMJIT_ACCOUNTS; a
	// null one has no key (checkMemberAccounts: exactly the chain without).
	memberDLQ := fmt.Sprintf("arn:aws:sqs:%s:%s:iamjit-backstop-dlq", icRegion, icAssignee1)
	member := func(role, dlq cty.Value) cty.Value {
		withBackstop := memberAccounts(icAssignee1).AsValueMap()
		entry := withBackstop[icAssignee1].AsValueMap()
		entry["backstop_role_arn"], entry["backstop_dlq_arn"] = role, dlq
		withBackstop[icAssignee1] = cty.ObjectVal(entry)
		return cty.MapVal(withBackstop)
	}
	memberRole := cty.StringVal(fmt.Sprintf("arn:aws:iam::%s:role/iamjit-backstop/iamjit-backstop", icAssignee1))
	for _, c := range []struct {
		role, dlq cty.Value
		want      map[string]any // the entry's backstop keys
	}{
		{memberRole, cty.StringVal(memberDLQ), map[string]any{"backstop_role_arn": memberRole.AsString(), "backstop_dlq_arn": memberDLQ}},
		{memberRole, cty.NullVal(cty.String), map[string]any{"backstop_role_arn": memberRole.AsString()}},
		{cty.NullVal(cty.String), cty.NullVal(cty.String), map[string]any{}},
	} {
		accounts := member(c.role, c.dlq)
		if rejected, err := m.validationRejects("member_accounts", accounts); err != nil || rejected {
			p.add("variable member_accounts must accept backstop keys %v: rejected %v, %v", c.want, rejected, err)
		}
		mm, err := withMembers(m, icAssignee1)
		if err == nil {
			mm, err = mm.with(map[string]cty.Value{
				"connector_role_arn": cty.StringVal(homeConnector), "iam_role_arn": cty.StringVal(homeIAMModifier),
				"external_id_parameter_arn": cty.StringVal(externalIDParam), "member_accounts": accounts,
			}, mm.known)
		}
		if err != nil {
			p.add("%v", err)
			return p
		}
		sv := mm.resources("aws_secretsmanager_secret_version")
		if len(sv) != 1 {
			p.add("IAMJIT_ACCOUNTS: want one aws_secretsmanager_secret_version, found %d", len(sv))
			continue
		}
		got, _ := mm.eval(attr(sv[0], "secret_string")).(map[string]any)
		e, _ := got[icAssignee1].(map[string]any)
		backstopKeys := map[string]any{}
		for k, v := range e {
			if strings.HasPrefix(k, "backstop_") {
				backstopKeys[k] = v
			}
		}
		if !maps.Equal(backstopKeys, c.want) {
			p.add("IAMJIT_ACCOUNTS: a member's backstop keys are %v, want %v (a null one left out)", backstopKeys, c.want)
		}
	}
	for _, c := range []struct{ key, value, what string }{
		{"backstop_role_arn", "arn:aws:iam::999999999999:role/x", "a backstop_role_arn of another account"},
		{"backstop_dlq_arn", "arn:aws:sqs:us-east-1:999999999999:iamjit-backstop-dlq", "a backstop_dlq_arn of another account"},
		{"backstop_dlq_arn", fmt.Sprintf("arn:aws:sns:us-east-1:%s:iamjit-backstop-dlq", icAssignee1), "a backstop_dlq_arn not of SQS"},
	} {
		role, dlq := memberRole, cty.StringVal(memberDLQ)
		if c.key == "backstop_role_arn" {
			role = cty.StringVal(c.value)
		} else {
			dlq = cty.StringVal(c.value)
		}
		if rejected, err := m.validationRejects("member_accounts", member(role, dlq)); err != nil || !rejected {
			p.add("variable member_accounts must reject %s (%s): %v", c.what, c.value, err)
		}
	}
	return p
}

// homeBackstop is module iamjit's backstop, on, with dlq_arn ("": none).
func homeBackstop(dlq string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"role_arn": cty.StringVal(bsRole), "group": cty.StringVal(bsGroup), "grace": cty.StringVal("2m"), "dlq_arn": cty.StringVal(dlq)})
}

// --- environments/prod: the Identity Center flow and the backstop ---------------------

// prodIdentityCenter is environments/prod's identity_center: one permission
// set assignment target and one group target, Identity Center in this
// account or (inMember) in the member account.
func prodIdentityCenter(inMember bool) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"instance_arn":      cty.StringVal(icInstance),
		"identity_store_id": cty.StringVal(icStore),
		"in_member_account": cty.BoolVal(inMember),
		"region":            cty.NullVal(cty.String),
		"kms_key_arn":       cty.NullVal(cty.String),
		"permission_set_targets": cty.MapVal(map[string]cty.Value{
			"readonly": cty.ObjectVal(map[string]cty.Value{"permission_set_arn": cty.StringVal(icPS1), "account_id": cty.StringVal(icAssignee1), "label": cty.StringVal("Read-only")}),
			"admin":    cty.ObjectVal(map[string]cty.Value{"permission_set_arn": cty.StringVal(icPS2), "account_id": cty.StringVal(icAssignee2), "label": cty.StringVal("Admin")}),
		}),
		"group_targets": cty.MapVal(map[string]cty.Value{
			"oncall": cty.ObjectVal(map[string]cty.Value{"group_id": cty.StringVal(icGroup), "label": cty.StringVal("On-call")}),
		}),
	})
}

// checkProdIdentityCenter: the Identity Center flow offers identity_center's
// targets; the modifier of the account holding Identity Center (and no other)
// and its backstop may act on exactly those permission sets, accounts and
// groups, and iamjit's IAMJIT_SSO_* allow-lists are the same, so Sym offers
// nothing iamjit may not grant and iamjit may grant nothing Sym does not
// offer. Every account's modifier gets its own account's backstop, iamjit the
// home one's, the member account its own.
func checkProdIdentityCenter(m *tfModule, bySource map[string][]call) problems {
	var p problems
	idcFlows := 0
	for _, c := range bySource["sym_flow"] {
		if c.arg("targets") != nil {
			continue
		}
		idcFlows++
		name := "module." + c.block.Labels[0]
		for arg, want := range map[string]string{"sso_permission_set_targets": "local.ic.permission_set_targets", "sso_group_targets": "local.ic.group_targets"} {
			if got := m.text(c.arg(arg)); got != want {
				p.add("%s: %s = %s, want %s (the targets iamjit's allow-lists are made of)", name, arg, got, want)
			}
		}
	}
	if idcFlows != 1 {
		p.add("want one Identity Center flow (module sym_flow without targets), found %d", idcFlows)
	}
	args := []struct {
		source, arg, want string
	}{
		{"iam_modifier", "identity_center", "local.home_identity_center"},
		{"member_account", "identity_center", "local.member_identity_center"},
		{"backstop", "identity_center", "local.home_identity_center"},
		{"iamjit", "identity_center", "local.iamjit_identity_center"},
		{"iam_modifier", "backstop", "local.home_modifier_backstop"},
		{"member_account", "backstop", "var.backstop"},
		{"iamjit", "backstop", "local.iamjit_backstop"},
	}
	for _, a := range args {
		for _, c := range bySource[a.source] {
			if got := m.text(c.arg(a.arg)); got != a.want {
				p.add("module.%s: %s = %s, want %s", c.block.Labels[0], a.arg, got, a.want)
			}
		}
	}
	for _, c := range bySource["backstop"] {
		for _, mod := range bySource["iam_modifier"] {
			if got, want := m.text(c.arg("group_path")), m.text(mod.arg("group_path")); got != want {
				p.add("module.%s: group_path = %s, the IAM modifier's is %s", c.block.Labels[0], got, want)
			}
		}
	}
	p = append(p, checkProdBackstopSettings(m, bySource)...)
	want := map[string][]string{
		"permission_set_arns": {icPS1, icPS2}, "account_ids": {icAssignee1, icAssignee2}, "group_ids": {icGroup},
	}
	for _, inMember := range []bool{false, true} {
		mm, err := m.with(map[string]cty.Value{"identity_center": prodIdentityCenter(inMember)}, nil)
		if err != nil {
			p.add("%v", err)
			return p
		}
		ev := func(local string) map[string]any {
			v, _ := toGo(mm.locals[local]).(map[string]any)
			return v
		}
		holder, other := "home_identity_center", "member_identity_center"
		if inMember {
			holder, other = other, holder
		}
		if ev(other) != nil {
			p.add("in_member_account %v: local.%s = %v: only the account holding Identity Center gets its rights", inMember, other, ev(other))
		}
		rights, env := ev(holder), ev("iamjit_identity_center")
		envKeys := map[string]string{"permission_set_arns": "permission_set_arns", "account_ids": "assignment_account_ids", "group_ids": "group_ids"}
		for k, w := range want {
			for what, got := range map[string]any{"local." + holder + "." + k: rights[k], "local.iamjit_identity_center." + envKeys[k]: env[envKeys[k]]} {
				var g []string
				l, _ := got.([]any)
				for _, x := range l {
					g = append(g, toString(x))
				}
				if slices.Sort(g); !slices.Equal(g, w) {
					p.add("in_member_account %v: %s = %v, want the targets' %v", inMember, what, got, w)
				}
			}
		}
		if rights["instance_arn"] != icInstance || rights["identity_store_id"] != icStore || env["instance_arn"] != icInstance {
			p.add("in_member_account %v: the instance or identity store is not identity_center's: %v, %v", inMember, rights, env)
		}
	}
	return p
}

// checkProdBackstopSettings: the backstop is on by default (the iamjit image
// reads every IAMJIT_BACKSTOP_* setting and both backstop keys of
// IAMJIT_ACCOUNTS), and with it iamjit's backstop is the home module
// backstop's execution role and dead-letter queue (IAMJIT_BACKSTOP_ROLE_ARN,
// IAMJIT_BACKSTOP_DLQ_ARN), with the environment's group and grace.
func checkProdBackstopSettings(m *tfModule, bySource map[string][]call) problems {
	var p problems
	if d, ok := m.boolean(attr(m.variable("backstop"), "default")); !ok || !d {
		p.add("variable backstop: default %s, want true (the expiry backstop on)", m.text(attr(m.variable("backstop"), "default")))
	}
	bs := "module." + labelOf(one(&p, bySource, "backstop").block) + "[0]."
	want := map[string]string{"role_arn": bs + "role_arn", "dlq_arn": bs + "dlq_arn", "group": "var.backstop_group", "grace": "var.backstop_grace"}
	got := map[string]string{}
	c, ok := m.localExpr("iamjit_backstop").(*hclsyntax.ConditionalExpr)
	if ok && m.text(c.Condition) == "var.backstop" {
		if obj, ok := c.TrueResult.(*hclsyntax.ObjectConsExpr); ok {
			for _, it := range obj.Items {
				k, _ := m.objectKey(it.KeyExpr)
				got[k] = m.text(it.ValueExpr)
			}
		}
	}
	if !maps.Equal(got, want) {
		p.add("local.iamjit_backstop: with var.backstop, %v, want %v (IAMJIT_BACKSTOP_ROLE_ARN, _DLQ_ARN, _GROUP, _GRACE)", got, want)
	}
	return p
}

// TestIdentityCenterAndBackstopChecksCatch widens each scope above once in a
// copy of the real files, and expects the check to say so.
func TestIdentityCenterAndBackstopChecksCatch(t *testing.T) {
	const groupsOfAdd = `actions   = ["identitystore:CreateGroupMembership"]
      resources = concat([local.identity_store_arn, "${local.ids_prefix}user/*"], [for g in statement.value.group_ids : "${local.ids_prefix}group/${g}"])`
	cases := []catchCase{
		// The Identity Center account's modifier.
		{"modifier assigns in every account", "modules/iam_modifier", edit{"identity_center.tf": {{`"${local.sso_prefix}account/${id}"`, `"${local.sso_prefix}account/*"`}}},
			checkModifierIdentityCenter, "with identity_center: sso:CreateAccountAssignment on [arn:aws:sso:::account/* "},
		{"modifier writes every permission set's policy", "modules/iam_modifier", edit{"identity_center.tf": {{`resources = concat([statement.value.instance_arn], statement.value.permission_set_arns)`, `resources = concat([statement.value.instance_arn], ["arn:aws:sso:::permissionSet/*"])`}}},
			checkModifierIdentityCenter, "sso:PutInlinePolicyToPermissionSet on [arn:aws:sso:::instance/ssoins-1111111111111111 arn:aws:sso:::permissionSet/*]"},
		{"modifier adds members to every group", "modules/iam_modifier", edit{"identity_center.tf": {{groupsOfAdd, strings.Replace(groupsOfAdd, `[for g in statement.value.group_ids : "${local.ids_prefix}group/${g}"]`, `["${local.ids_prefix}group/*"]`, 1)}}},
			checkModifierIdentityCenter, "identitystore:CreateGroupMembership on [arn:aws:identitystore::123456789012:identitystore/d-1234567890 arn:aws:identitystore:::group/* arn:aws:identitystore:::user/*]"},
		{"modifier reads any instance's requests", "modules/iam_modifier", edit{"identity_center.tf": {{`resources = [statement.value.instance_arn]`, `resources = ["arn:aws:sso:::instance/*"]`}}},
			checkModifierIdentityCenter, "sso:DescribeAccountAssignmentCreationStatus on [arn:aws:sso:::instance/*]"},
		{"modifier may create permission sets", "modules/iam_modifier", edit{"identity_center.tf": {{`"sso:DescribePermissionSet",`, `"sso:DescribePermissionSet", "sso:CreatePermissionSet",`}}},
			checkModifierIdentityCenter, "sso:CreatePermissionSet is granted"},
		{"modifier's identity_center takes any group", "modules/iam_modifier", edit{"variables.tf": {{`alltrue([for g in var.identity_center.group_ids : can(regex(`, `alltrue([for g in var.identity_center.group_ids : g != "" || can(regex(`}}},
			checkModifierIdentityCenter, "variable identity_center must reject group_ids"},
		// The modifier's backstop rights.
		{"modifier manages every schedule", "modules/iam_modifier", edit{"backstop.tf": {{`:schedule/${statement.value.schedule_group_name}/*"]`, `:schedule/*"]`}}},
			checkModifierBackstop, "with backstop: scheduler:CreateSchedule on [arn:aws:scheduler:us-east-1:123456789012:schedule/*]"},
		{"modifier reads every schedule group", "modules/iam_modifier", edit{"backstop.tf": {{`:schedule-group/${statement.value.schedule_group_name}"]`, `:schedule-group/*"]`}}},
			checkModifierBackstop, "scheduler:GetScheduleGroup on [arn:aws:scheduler:us-east-1:123456789012:schedule-group/*]"},
		{"modifier passes any role", "modules/iam_modifier", edit{"backstop.tf": {{`resources = [statement.value.role_arn]`, `resources = ["arn:aws:iam::123456789012:role/*"]`}}},
			checkModifierBackstop, "iam:PassRole on [arn:aws:iam::123456789012:role/*]"},
		{"modifier passes the role to any service", "modules/iam_modifier", edit{"backstop.tf": {{`test     = "StringEquals"`, `test     = "StringLike"`}}},
			checkModifierBackstop, "iam:PassRole without StringEquals iam:PassedToService = scheduler.amazonaws.com"},
		// The backstop: schedule group, execution role, dead-letter queue.
		{"backstop role trusted by every group's schedules", "modules/backstop", edit{"main.tf": {{`values   = [aws_scheduler_schedule_group.this.arn]`, `values   = ["arn:aws:scheduler:us-east-1:123456789012:schedule-group/*"]`}}},
			checkBackstop, "lacks aws:SourceArn = the schedule group's ARN"},
		{"backstop trust with a pattern", "modules/backstop", edit{"main.tf": {{`test     = "ArnEquals"`, `test     = "ArnLike"`}}},
			checkBackstop, "condition ArnLike aws:SourceArn"},
		{"backstop trust without the source account", "modules/backstop", edit{"main.tf": {{`variable = "aws:SourceAccount"`, `variable = "aws:PrincipalAccount"`}}},
			checkBackstop, "lacks StringEquals aws:SourceAccount"},
		{"backstop role trusted by EventBridge", "modules/backstop", edit{"main.tf": {{`identifiers = ["scheduler.amazonaws.com"]`, `identifiers = ["events.amazonaws.com"]`}}},
			checkBackstop, "want only Service scheduler.amazonaws.com"},
		{"backstop removes from every group", "modules/backstop", edit{"main.tf": {{`:group${var.group_path}*"]`, `:group/*"]`}}},
			checkBackstop, "iam:RemoveUserFromGroup on [arn:aws:iam::123456789012:group/*]"},
		{"backstop may add members", "modules/backstop", edit{"main.tf": {{`actions   = ["iam:RemoveUserFromGroup"]`, `actions   = ["iam:RemoveUserFromGroup", "iam:AddUserToGroup"]`}}},
			checkBackstop, "iam:AddUserToGroup is granted"},
		{"backstop deletes assignments in every account", "modules/backstop", edit{"main.tf": {{`[for id in statement.value.account_ids : "arn:${local.partition}:sso:::account/${id}"]`, `["arn:${local.partition}:sso:::account/*"]`}}},
			checkBackstop, "sso:DeleteAccountAssignment on [arn:aws:sso:::account/* "},
		{"backstop deletes memberships of every group", "modules/backstop", edit{"main.tf": {{`[for g in statement.value.group_ids : "arn:${local.partition}:identitystore:::group/${g}"]`, `["arn:${local.partition}:identitystore:::group/*"]`}}},
			checkBackstop, "identitystore:DeleteGroupMembership on [arn:aws:identitystore::123456789012:identitystore/d-1234567890 arn:aws:identitystore:::group/* arn:aws:identitystore:::membership/*"},
		{"backstop sends to any queue", "modules/backstop", edit{"main.tf": {{`resources = [aws_sqs_queue.dlq.arn]`, `resources = ["arn:aws:sqs:us-east-1:123456789012:*"]`}}},
			checkBackstop, "sqs:SendMessage on [arn:aws:sqs:us-east-1:123456789012:*]"},
		{"backstop role under /sym/", "modules/backstop", edit{"main.tf": {{`path               = "/iamjit-backstop/"`, `path               = "/sym/"`}}},
			checkBackstop, `path "/sym/"`},
		{"backstop DLQ without alarm", "modules/backstop", edit{"main.tf": {{`queue_name  = aws_sqs_queue.dlq.name`, `queue_name  = "x"`}}},
			checkBackstop, "aws_sqs_queue.dlq has no ApproximateNumberOfMessagesVisible > 0 alarm"},
		{"backstop in the default group", "modules/backstop", edit{"variables.tf": {{` && var.schedule_group_name != "default"`, ``}}},
			checkBackstop, `must reject "default"`},
		// iamjit's settings.
		{"SSO settings set when empty", "modules/iamjit", edit{"identity_center.tf": {{`} : k => v if v != ""`, `} : k => v`}}},
			checkIdentityCenterEnvironment, "IAMJIT_SSO_GROUPS =  by default; unset, it must be absent (off)"},
		{"SSO groups unvalidated", "modules/iamjit", edit{"variables.tf": {{`for g in try(var.identity_center.group_ids, []) : can(`, `for g in try(var.identity_center.group_ids, []) : g != "" || can(`}}},
			checkIdentityCenterEnvironment, `variable identity_center must reject group_ids = "*"`},
		{"backstop role of another account in IAMJIT_ACCOUNTS", "modules/iamjit", edit{"variables.tf": {{`can(regex("^arn:[^:]+:iam::${id}:role/", try(a.backstop_role_arn, "")))`, `true`}}},
			checkIdentityCenterEnvironment, "must reject a backstop_role_arn of another account"},
		{"backstop without its grace", "modules/iamjit", edit{"identity_center.tf": {{`    IAMJIT_BACKSTOP_GRACE    = var.backstop.grace
`, ``}}},
			checkIdentityCenterEnvironment, `IAMJIT_BACKSTOP_GRACE = <nil>, want "2m"`},
		{"backstop without its dead-letter queue", "modules/iamjit", edit{"identity_center.tf": {{`      IAMJIT_BACKSTOP_DLQ_ARN  = var.backstop.dlq_arn
`, ``}}},
			checkIdentityCenterEnvironment, `IAMJIT_BACKSTOP_DLQ_ARN = <nil>, want "` + bsDLQ + `"`},
		{"backstop dead-letter queue set when empty", "modules/iamjit", edit{"identity_center.tf": {{`    } : k => v if v != ""
  }
}`, `    } : k => v
  }
}`}}},
			checkIdentityCenterEnvironment, "backstop without dlq_arn: IAMJIT_BACKSTOP_DLQ_ARN = ; unset, it must be absent"},
		{"backstop dead-letter queue of another account", "modules/iamjit", edit{"variables.tf": {{`${try(regex("^arn:[^:]+:iam::([0-9]{12}):", var.backstop.role_arn)[0], "[0-9]{12}")}`, `[0-9]{12}`}}},
			checkIdentityCenterEnvironment, "variable backstop must reject a dlq_arn of another account than role_arn's"},
		{"member's dead-letter queue left out of IAMJIT_ACCOUNTS", "modules/iamjit", edit{"accounts.tf": {{`k => v if v != null }`, `k => v if v != null && k != "backstop_dlq_arn" }`}}},
			checkIdentityCenterEnvironment, "IAMJIT_ACCOUNTS: a member's backstop keys are map[backstop_role_arn:arn:aws:iam::210987654321:role/iamjit-backstop/iamjit-backstop], want"},
		{"member's null dead-letter queue kept in IAMJIT_ACCOUNTS", "modules/iamjit", edit{"accounts.tf": {{`k => v if v != null }`, `k => v if v != null || k == "backstop_dlq_arn" }`}}},
			checkIdentityCenterEnvironment, "IAMJIT_ACCOUNTS: a member's backstop keys are map[backstop_dlq_arn:<nil> backstop_role_arn:"},
		{"member's dead-letter queue of another account in IAMJIT_ACCOUNTS", "modules/iamjit", edit{"variables.tf": {{`:sqs:[a-z0-9-]+:${id}:`, `:sqs:[a-z0-9-]+:[0-9]{12}:`}}},
			checkIdentityCenterEnvironment, "must reject a backstop_dlq_arn of another account"},
		// The member account and the environment.
		{"member's backstop role is another", "modules/member_account", edit{"outputs.tf": {{`{ backstop_role_arn = module.backstop[0].role_arn,`, `{ backstop_role_arn = module.iam_modifier.role_arn,`}}},
			checkMemberAccount, "output accounts_entry: with var.backstop, merges"},
		{"member's backstop queue left out", "modules/member_account", edit{"outputs.tf": {{`, backstop_dlq_arn = module.backstop[0].dlq_arn }`, ` }`}}},
			checkMemberAccount, "output accounts_entry: with var.backstop, merges map[backstop_role_arn:module.backstop[0].role_arn], want"},
		{"member's backstop off by default", "modules/member_account", edit{"variables.tf": {{`  default     = true`, `  default     = false`}}},
			checkMemberAccount, "variable backstop: default false, want true"},
		{"Identity Center flow offers its own targets", "environments/prod", edit{"identity_center.tf": {{`sso_group_targets          = local.ic.group_targets`, `sso_group_targets          = var.extra_groups`}}},
			checkProd, "sso_group_targets = var.extra_groups, want local.ic.group_targets"},
		{"iamjit may assign in every account", "environments/prod", edit{"identity_center.tf": {{`assignment_account_ids = local.ic_allowed.account_ids`, `assignment_account_ids = concat(local.ic_allowed.account_ids, ["999999999999"])`}}},
			checkProd, "local.iamjit_identity_center.assignment_account_ids = [210987654321 310987654321 999999999999], want the targets'"},
		{"both accounts' modifiers get Identity Center", "environments/prod", edit{"identity_center.tf": {{`member_identity_center = local.ic == null ? null : (local.ic.in_member_account ? local.ic_allowed : null)`, `member_identity_center = local.ic_allowed`}}},
			checkProd, "local.member_identity_center = map["},
		{"home modifier passes the member's backstop role", "environments/prod", edit{"main.tf": {{`backstop           = local.home_modifier_backstop`, `backstop           = one(module.member_account[*].backstop)`}}},
			checkProd, "backstop = one(module.member_account[*].backstop), want local.home_modifier_backstop"},
		{"iamjit's backstop without the queue", "environments/prod", edit{"backstop.tf": {{`, dlq_arn = module.backstop[0].dlq_arn }`, ` }`}}},
			checkProd, "local.iamjit_backstop: with var.backstop, map[grace:var.backstop_grace group:var.backstop_group role_arn:module.backstop[0].role_arn], want"},
		{"iamjit's backstop queue is the member's", "environments/prod", edit{"backstop.tf": {{`dlq_arn = module.backstop[0].dlq_arn }`, `dlq_arn = one(module.member_account[*].backstop.dlq_arn) }`}}},
			checkProd, "dlq_arn:one(module.member_account[*].backstop.dlq_arn)"},
		{"backstop off by default", "environments/prod", edit{"backstop.tf": {{`  default     = true`, `  default     = false`}}},
			checkProd, "variable backstop: default false, want true"},
	}
	runCatches(t, cases)
}
