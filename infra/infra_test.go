package infra

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/iamjit/iamjit/events"
)

// Which checks apply to which module directory.
var moduleChecks = map[string][]func(*tfModule) problems{
	"modules/connector":        {checkConnector, checkStarResources},
	"modules/iam_modifier":     {checkIAMModifier, checkModifierIdentityCenter, checkModifierBackstop, checkStarResources},
	"modules/backstop":         {checkBackstop, checkStarResources},
	"modules/iam_target_group": {checkTargetGroup},
	"modules/alarms":           {}, // through its callers: their checkAlarms sees the alarms it makes
	"modules/member_account":   {checkMemberAccount},
	"modules/iamjit":           {checkQueues, checkRule, checkTable, checkService, checkTaskRoles, checkMemberAccounts, checkIdentityCenterEnvironment, checkAlarms, checkStarResources},
	"modules/sym_log_pipe":     {checkPipe, checkQueueSSE, checkAlarms, checkStarResources},
	"modules/sym_runtime":      {checkSymRuntime, checkStarResources},
	"modules/sym_flow":         {checkSymFlow},
	"environments/prod":        {checkProd, checkStarResources},
}

// Checks that apply everywhere.
var everywhere = []func(*tfModule) problems{checkPoliciesAreDocuments, checkNoWildcardActions, checkDocsReferenced, checkRequiredProviders, checkSymSchema}

// checkDocsReferenced: every module is checked with checkReferences.
func checkDocsReferenced(m *tfModule) problems { return checkReferences(m, loadDir) }

func report(t *testing.T, where string, p problems) {
	t.Helper()
	for _, s := range p {
		t.Errorf("%s: %s", where, s)
	}
}

// TestEveryTerraformDirectoryIsChecked: a new module or environment cannot
// escape the checks.
func TestEveryTerraformDirectoryIsChecked(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".tf") {
			if _, ok := moduleChecks[filepath.ToSlash(filepath.Dir(path))]; !ok {
				t.Errorf("%s: directory not in moduleChecks", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestModulesHaveTheirFiles(t *testing.T) {
	for dir := range moduleChecks {
		want := []string{"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"}
		if strings.HasPrefix(dir, "environments/") {
			want = []string{"main.tf", "variables.tf", "outputs.tf", "providers.tf", "terraform.tfvars.example"}
		}
		for _, f := range want {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", dir, err)
			}
		}
	}
}

func TestTerraformInvariants(t *testing.T) {
	for dir, checks := range moduleChecks {
		t.Run(dir, func(t *testing.T) {
			m, err := loadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range append(slices.Clone(everywhere), checks...) {
				report(t, dir, c(m))
			}
		})
	}
}

// formerAddresses are resources deployments hold in state under an address
// the configuration no longer declares: each keeps its moved block (whose
// target checkMoved checks), or the next `terraform apply` destroys and
// recreates it.
var formerAddresses = map[string][]string{
	"modules/iamjit": {
		"aws_cloudwatch_metric_alarm.dlq_not_empty", "aws_cloudwatch_metric_alarm.rule_dlq_not_empty",
		"aws_cloudwatch_metric_alarm.queue_oldest_message", "aws_cloudwatch_metric_alarm.no_running_task",
		"aws_sqs_queue_policy.main", "aws_sqs_queue_policy.rule_dlq",
	},
	"modules/sym_log_pipe": {"aws_cloudwatch_metric_alarm.pipe_dlq_not_empty", "aws_cloudwatch_metric_alarm.pipe_lag"},
}

func TestFormerAddressesAreMoved(t *testing.T) {
	for dir, addrs := range formerAddresses {
		m, err := loadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		from := map[string]bool{}
		for _, b := range m.top("moved") {
			if f, _, ok := movedAddr(attr(b, "from")); ok {
				from[f] = true
			}
		}
		for _, a := range addrs {
			if !from[a] {
				t.Errorf("%s: %s is in deployed state: keep its moved block", dir, a)
			}
		}
	}
}

// symRuntimeGrant is the one grant of Sym's runtime role (modules/sym_runtime).
const symRuntimeGrant = `    actions   = ["sts:AssumeRole"]
    resources = [local.role_arn]`

// TestChecksCatchBrokenInvariants breaks each invariant in a copy of the real
// files and expects the matching check to say so: every check can fail.
func TestChecksCatchBrokenInvariants(t *testing.T) {
	cases := []catchCase{
		{"connector without external id", "modules/connector", edit{"main.tf": {{`"sts:ExternalId"`, `"aws:PrincipalTag/x"`}}},
			checkConnector, "sts:ExternalId"},
		{"connector external id with StringLike", "modules/connector", edit{"main.tf": {{`"StringEquals"`, `"StringLike"`}}},
			checkConnector, "sts:ExternalId"},
		{"connector trusts everyone", "modules/connector", edit{"main.tf": {{`identifiers = [var.task_role_arn]`, `identifiers = ["*"]`}}},
			checkConnector, "task role only"},
		{"connector assumes any role", "modules/connector", edit{"main.tf": {{`:role/sym/*"]`, `:role/*"]`}}},
			checkConnector, "only arn:<partition>:iam::<account>:role/sym/*"},
		{"connector assumes and more", "modules/connector", edit{"main.tf": {{`actions   = ["sts:AssumeRole"]
    resources`, `actions   = ["sts:AssumeRole", "iam:PassRole"]
    resources`}}},
			checkConnector, `"iam:PassRole"`},
		{"connector outside /sym/", "modules/connector", edit{"main.tf": {{`path                 = "/sym/"`, `path = "/"`}}},
			checkConnector, `want "/sym/"`},
		{"connector with managed policy", "modules/connector", edit{"main.tf": {{`resource "aws_iam_role_policy" "assume_sym_roles" {`, `resource "aws_iam_role_policy_attachment" "admin" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:aws:iam::aws:policy/AdministratorAccess"
}

resource "aws_iam_role_policy" "assume_sym_roles" {`}}},
			checkConnector, "managed policy"},
		{"modifier on every group", "modules/iam_modifier", edit{"main.tf": {{`:group${var.group_path}*"]`, `:group/*"]`}}},
			checkIAMModifier, "only groups under the group path"},
		{"modifier on *", "modules/iam_modifier", edit{"main.tf": {{`resources = ["${local.iam_prefix}:group${var.group_path}*"]`, `resources = ["*"]`}}},
			checkIAMModifier, "only groups under the group path"},
		{"modifier may create users", "modules/iam_modifier", edit{"main.tf": {{`"iam:GetUser",`, `"iam:GetUser", "iam:CreateUser",`}}},
			checkIAMModifier, `"iam:CreateUser"`},
		{"modifier trusted by the account", "modules/iam_modifier", edit{"main.tf": {{`identifiers = [var.connector_role_arn]`, `identifiers = ["arn:aws:iam::123456789012:root"]`}}},
			checkIAMModifier, "connector role only"},
		{"modifier group path may be /", "modules/iam_modifier", edit{"variables.tf": {{`regex("^/([[:alnum:]_+=,.@-]+/)+$", var.group_path)`, `startswith(var.group_path, "/")`}}},
			checkIAMModifier, `reject "/"`},
		{"modifier user reads on *", "modules/iam_modifier", edit{"main.tf": {{`resources = ["${local.iam_prefix}:user/*"]`, `resources = ["*"]`}}},
			checkStarResources, `iam:GetUser on resource "*"`},
		{"modifier writes policies of every role", "modules/iam_modifier", edit{"main.tf": {{`:role${var.role_path}*"]`, `:role/*"]`}}},
			checkIAMModifier, "iam:PutRolePolicy on \"${local.iam_prefix}:role/*\"; only roles under the role path"},
		{"modifier writes policies of any resource", "modules/iam_modifier", edit{"main.tf": {{`resources = ["${local.iam_prefix}:role${var.role_path}*"]`, `resources = ["*"]`}}},
			checkIAMModifier, "iam:DeleteRolePolicy on \"*\"; only roles under the role path"},
		{"modifier writes policies under /sym/", "modules/iam_modifier", edit{"main.tf": {{`:role${var.role_path}*"]`, `:role/sym/*"]`}}},
			checkIAMModifier, "PutRolePolicy on \"${local.iam_prefix}:role/sym/*\""},
		{"modifier role path may be /", "modules/iam_modifier", edit{"variables.tf": {{`can(regex("^/([[:alnum:]_+=,.@-]+/)+$", var.role_path)) && `, `startswith(var.role_path, "/") && `}}},
			checkIAMModifier, `variable role_path must reject "/"`},
		{"modifier role path may be /sym/", "modules/iam_modifier", edit{"variables.tf": {{` && !startswith(var.role_path, "/sym/")`, ``}}},
			checkIAMModifier, `variable role_path must reject "/sym/"`},
		{"modifier role path default", "modules/iam_modifier", edit{"variables.tf": {{`default     = "/jit/"`, `default     = "/roles/"`}}},
			checkIAMModifier, `want "/jit/"`},
		{"modifier reads policies of every group", "modules/iam_modifier", edit{"main.tf": {{`"iam:ListGroupPolicies",
    ]
    resources = ["${local.iam_prefix}:group${var.group_path}*"]`, `"iam:ListGroupPolicies",
    ]
    resources = ["${local.iam_prefix}:group/*"]`}}},
			checkIAMModifier, "iam:GetGroupPolicy on \"${local.iam_prefix}:group/*\"; only groups under the group path"},
		{"modifier reads policies on *", "modules/iam_modifier", edit{"main.tf": {{`"arn:${data.aws_partition.current.partition}:iam::aws:policy/*",`, `"*",`}}},
			checkIAMModifier, `iam:GetPolicy on "*"; only policy ARNs`},
		{"modifier gets every resource", "modules/iam_modifier", edit{"main.tf": {{`resources = ["${local.iam_prefix}:role/*"]`, `resources = ["*"]`}}},
			checkIAMModifier, `iam:GetRole on "*"; only role ARNs`},
		{"modifier may change a role's trust", "modules/iam_modifier", edit{"main.tf": {{`"iam:PutRolePolicy",`, `"iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy",`}}},
			checkIAMModifier, `"iam:UpdateAssumeRolePolicy"`},
		{"modifier cannot write revocations", "modules/iam_modifier", edit{"main.tf": {{`"iam:PutRolePolicy",`, ``}}},
			checkIAMModifier, "iam:PutRolePolicy not granted"},
		{"modifier cannot list roles", "modules/iam_modifier", edit{"main.tf": {{`"iam:ListRoles",`, ``}}},
			checkIAMModifier, "iam:ListRoles not granted"},
		{"target roles without source identity by default", "modules/iam_target_group", edit{"variables.tf": {{`  type        = bool
  default     = true`, `  type        = bool
  default     = false`}}},
			checkTargetGroup, "require_source_identity: default false"},
		{"target roles accept any source identity", "modules/iam_target_group", edit{"main.tf": {{`own_source_identity = { test = "StringEquals", variable = "sts:SourceIdentity", values = ["$${aws:username}"] }`, `own_source_identity = { test = "StringLike", variable = "sts:SourceIdentity", values = ["*"] }`}}},
			checkTargetGroup, "lacks StringEquals sts:SourceIdentity"},
		{"target roles accept one fixed source identity", "modules/iam_target_group", edit{"main.tf": {{`values = ["$${aws:username}"] }`, `values = ["alice"] }`}}},
			checkTargetGroup, "the trust of aws_iam_role.this lacks StringEquals sts:SourceIdentity"},
		{"target roles without the source identity condition", "modules/iam_target_group", edit{"main.tf": {{`var.require_source_identity ? { source_identity = local.own_source_identity } : {},`, `{},`}}},
			checkTargetGroup, "lacks StringEquals sts:SourceIdentity"},
		{"target roles do not allow setting it", "modules/iam_target_group", edit{"main.tf": {{`["sts:AssumeRole", "sts:SetSourceIdentity"] : ["sts:AssumeRole"]`, `["sts:AssumeRole"] : ["sts:AssumeRole"]`}}},
			checkTargetGroup, "does not allow sts:SetSourceIdentity"},
		{"members may claim any source identity", "modules/iam_target_group", edit{"main.tf": {{`test     = local.own_source_identity.test`, `test     = "StringLike"`}}},
			checkTargetGroup, "a member could claim another's name"},
		{"execution role trust with the task role's conditions", "modules/iamjit", edit{"iam.tf": {{`{ task = true, execution = false }`, `{ task = true, execution = true }`}}},
			checkTaskRoles, "the execution role's trust has conditions"},
		{"task role trust without its conditions", "modules/iamjit", edit{"iam.tf": {{`{ task = true, execution = false }`, `{ task = false, execution = false }`}}},
			checkTaskRoles, "the task role's trust lacks"},
		{"role path not passed to iamjit", "modules/iamjit", edit{"ecs.tf": {{`IAMJIT_ROLE_PATH          = var.role_path`, ``}}},
			checkService, "lacks IAMJIT_ROLE_PATH"},
		{"session revocation off by default", "modules/iamjit", edit{"variables.tf": {{`default     = "user"`, `default     = "off"`}}},
			checkService, `IAMJIT_SESSION_REVOCATION off by default, want "user"`},
		{"session revocation unvalidated", "modules/iamjit", edit{"variables.tf": {{`contains(["user", "role", "off"], var.session_revocation)`, `var.session_revocation != ""`}}},
			checkService, "must reject values other than user, role, off"},
		{"ListRoles scoped to nothing", "modules/iam_modifier", edit{"main.tf": {{`resources = ["${local.iam_prefix}:user/*"]`, `resources = ["*"]`}}},
			checkStarResources, `iam:GetUser on resource "*"`},
		// Providers: declared where used, one major version everywhere.
		{"flow module without the sym provider", "modules/sym_flow", edit{"versions.tf": {{`    sym = { source = "symopsio/sym", version = "~> 3.0" }
`, ``}}},
			checkRequiredProviders, "provider sym is used but not in terraform.required_providers"},
		{"a module on two majors", "modules/connector", edit{"versions.tf": {{`version = "~> 5.100"`, `version = ">= 5.70, < 7.0"`}}},
			checkRequiredProviders, `want source "hashicorp/aws" version "~> 5.100"`},
		{"environment on another major", "environments/prod", edit{"providers.tf": {{`version = "~> 5.100"`, `version = "~> 6.0"`}}},
			checkRequiredProviders, `want source "hashicorp/aws" version "~> 5.100"`},
		// The Sym provider's documented schema (it cannot be installed here).
		{"flow with the template removed in 2.0", "modules/sym_flow", edit{"main.tf": {{`  label          = var.label
`, `  label          = var.label
  template       = "sym:template:approval:1.0.0"
`}}},
			checkSymSchema, "sym_flow.this: template is not an argument"},
		{"flow params as a map (provider 1.x)", "modules/sym_flow", edit{"main.tf": {{`  params {
    strategy_id`, `  params = {}
  not_params {
    strategy_id`}}},
			checkSymSchema, "sym_flow.this: params is not an argument"},
		{"prompt field of an unknown type", "modules/sym_flow", edit{"main.tf": {{`type     = "string"`, `type     = "list"`}}},
			checkSymSchema, `type "list" is not one of`},
		{"log destination without its type", "modules/sym_runtime", edit{"main.tf": {{`  type           = "kinesis_data_stream"
`, ``}}},
			checkSymSchema, "sym_log_destination.iamjit: required argument type not set"},
		// Sym's runtime role and its wiring.
		{"Sym's role without the external id", "modules/sym_runtime", edit{"main.tf": {{`variable = "sts:ExternalId"`, `variable = "aws:PrincipalAccount"`}}},
			checkSymRuntime, "Sym's account trusted without StringEquals sts:ExternalId"},
		{"Sym's role trusted by anyone in the account", "modules/sym_runtime", edit{"main.tf": {{`variable = "aws:PrincipalArn"`, `variable = "aws:PrincipalTag/x"`}}},
			checkSymRuntime, "the account trusted without ArnEquals aws:PrincipalArn"},
		{"Sym's role may assume iamjit's roles", "modules/sym_runtime", edit{"main.tf": {{`    resources = [local.role_arn]`, `    resources = ["arn:aws:iam::123456789012:role/sym/*"]`}}},
			checkSymRuntime, "only itself (local.role_arn)"},
		{"Sym's role may change groups", "modules/sym_runtime", edit{"main.tf": {{symRuntimeGrant, strings.Replace(symRuntimeGrant, `"sts:AssumeRole"`, `"sts:AssumeRole", "iam:AddUserToGroup"`, 1)}}},
			checkSymRuntime, "the runtime role may iam:AddUserToGroup"},
		{"permission context on another role", "modules/sym_runtime", edit{"main.tf": {{`role_arn    = aws_iam_role.runtime.arn`, `role_arn    = "arn:aws:iam::123456789012:role/sym/SymIAMProd"`}}},
			checkSymRuntime, "settings.role_arn"},
		{"permission context with another external id", "modules/sym_runtime", edit{"main.tf": {{`external_id = var.external_id`, `external_id = "x"`}}},
			checkSymRuntime, "settings.external_id"},
		{"log destination to Firehose", "modules/sym_runtime", edit{"main.tf": {{`type           = "kinesis_data_stream"`, `type           = "kinesis_firehose"`}}},
			checkSymRuntime, "want kinesis_data_stream"},
		{"log destination to another stream", "modules/sym_runtime", edit{"main.tf": {{`stream_name = var.log_stream_name`, `stream_name = "sym-log"`}}},
			checkSymRuntime, "settings.stream_name"},
		{"environment logs nowhere", "modules/sym_runtime", edit{"main.tf": {{`log_destination_ids = [sym_log_destination.iamjit.id]`, `log_destination_ids = []`}}},
			checkSymRuntime, "log_destination_ids lacks"},
		// Sym's flow: who changes IAM.
		{"Sym's own aws_iam strategy", "modules/sym_flow", edit{"main.tf": {{`  type           = "custom"
  name           = var.name
  integration_id`, `  type           = "aws_iam"
  name           = var.name
  integration_id`}}},
			checkSymFlow, `type "aws_iam"`},
		{"strategy integration with an AWS role", "modules/sym_flow", edit{"main.tf": {{`  type        = "custom"
  name        = var.name
  external_id = var.account_id`, `  type        = "permission_context"
  name        = var.name
  external_id = var.account_id`}}},
			checkSymFlow, `type "permission_context"`},
		{"strategy from a file that is not there", "modules/sym_flow", edit{"main.tf": {{`implementation = "${path.module}/strategy.py"`, `implementation = "${path.module}/custom_strategy.py"`}}},
			checkSymFlow, "no such file"},
		{"targets of Sym's aws_iam type", "modules/sym_flow", edit{"main.tf": {{`  type  = "custom"`, `  type  = "aws_iam_group"`}}},
			checkSymFlow, `sym_target.group: type "aws_iam_group"`},
		{"targets without the group", "modules/sym_flow", edit{"main.tf": {{`iam_group = each.value.group_name`, `identifier = each.value.group_name`}}},
			checkSymFlow, "no settings.iam_group"},
		{"duration chosen freely", "modules/sym_flow", edit{"main.tf": {{`type           = "duration"`, `type           = "string"`}}},
			checkSymFlow, `prompt_field duration has type "string"`},
		{"durations unchecked against the maximum", "modules/sym_flow", edit{"main.tf": {{`local.seconds[d] <= local.seconds[var.max_duration]`, `local.seconds[d] > 0`}}},
			checkSymFlow, "no precondition holding var.durations to var.max_duration"},
		// The two halves agree (environments/prod).
		{"Sym offers a group nobody manages", "environments/prod", edit{"main.tf": {{`readonly        = { group_name = module.readonly.group_name`, `readonly        = { group_name = "Admins"`}}},
			checkProd, `sym_flow target "readonly"`},
		{"a target group outside the managed path", "environments/prod", edit{"main.tf": {{`  name        = "sym-readonly"
  path        = var.group_path`, `  name        = "sym-readonly"
  path        = "/other/"`}}},
			checkProd, "module.readonly: path"},
		{"a target group's roles outside the role path", "environments/prod", edit{"main.tf": {{`  name      = "sym-cloudwatch-logs"
  path      = var.group_path
  role_path = var.role_path`, `  name      = "sym-cloudwatch-logs"
  path      = var.group_path
  role_path = "/other/"`}}},
			checkProd, "module.cloudwatch_logs: role_path"},
		{"iamjit on another role path", "environments/prod", edit{"main.tf": {{`  role_path                 = var.role_path`, `  role_path                 = "/other/"`}}},
			checkProd, "module iamjit: role_path"},
		{"Sym logs to another stream", "environments/prod", edit{"main.tf": {{`log_stream_name    = module.sym_log_pipe.stream_name`, `log_stream_name    = "sym-log"`}}},
			checkProd, "module sym_runtime: log_stream_name"},
		{"the pipe reads another stream", "environments/prod", edit{"../../modules/sym_log_pipe/main.tf": {{`source      = aws_kinesis_stream.this.arn`, `source      = var.kms_key_arn`}}},
			checkProd, "is not the stream its pipe reads"},
		{"Sym's role may not write the stream", "environments/prod", edit{"main.tf": {{`var.manage_sym ? [module.sym_runtime[0].role_name] :`, `var.manage_sym ? [] :`}}},
			checkProd, "does not give Sym's runtime role"},
		{"a duration longer than iamjit's maximum", "environments/prod", edit{"variables.tf": {{`default     = ["30m", "1h", "4h", "12h"]`, `default     = ["30m", "24h"]`}}},
			checkProd, "duration choice 24h exceeds"},
		{"another module changes groups", "environments/prod", edit{"../../modules/sym_runtime/main.tf": {{symRuntimeGrant, strings.Replace(symRuntimeGrant, `"sts:AssumeRole"`, `"sts:AssumeRole", "iam:RemoveUserFromGroup"`, 1)}}},
			checkProd, "grants iam:RemoveUserFromGroup: only the IAM modifier changes IAM"},
		{"alarm topic on the AWS-managed key", "environments/prod", edit{"main.tf": {{`kms_master_key_id = aws_kms_key.alarms.arn`, `kms_master_key_id = "alias/aws/sns"`}}},
			checkProd, "is not a customer-managed aws_kms_key"},
		{"alarm key CloudWatch may not use", "environments/prod", edit{"main.tf": {{`identifiers = ["cloudwatch.amazonaws.com"]`, `identifiers = ["events.amazonaws.com"]`}}},
			checkProd, "does not let Service cloudwatch.amazonaws.com"},
		{"alarm key CloudWatch may only decrypt", "environments/prod", edit{"main.tf": {{`actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]`, `actions   = ["kms:Decrypt"]`}}},
			checkProd, "does not let Service cloudwatch.amazonaws.com"},
		{"alarm key not rotated", "environments/prod", edit{"main.tf": {{`enable_key_rotation = true`, `enable_key_rotation = false`}}},
			checkProd, "enable_key_rotation is not true"},
		{"key policy statements are not exempt elsewhere", "environments/prod", edit{"main.tf": {{`resource "aws_kms_key" "alarms" {`, `data "aws_iam_policy_document" "wide" {
  statement {
    actions   = ["sns:Publish"]
    resources = ["*"]
  }
}

resource "aws_kms_key" "alarms" {`}}},
			checkStarResources, `sns:Publish on resource "*"`},
		{"iam:* anywhere", "modules/iam_modifier", edit{"main.tf": {{`"iam:ListGroups",`, `"iam:*",`}}},
			checkNoWildcardActions, `wildcard action "iam:*"`},
		{"sts:* anywhere", "modules/connector", edit{"main.tf": {{`actions   = ["sts:AssumeRole"]
    resources`, `actions   = ["sts:*"]
    resources`}}},
			checkNoWildcardActions, `wildcard action "sts:*"`},
		{"* in a dynamic statement", "modules/iamjit", edit{"iam.tf": {{`actions   = ["kms:Decrypt"]`, `actions   = ["*"]`}}},
			checkNoWildcardActions, `wildcard action "*"`},
		{"* on one branch of a conditional", "modules/iamjit", edit{"iam.tf": {{`["secretsmanager:GetSecretValue"]`, `["*"]`}}},
			checkNoWildcardActions, `wildcard action "*"`},
		{"policy as jsonencode", "modules/connector", edit{"main.tf": {{`policy = data.aws_iam_policy_document.assume_sym_roles.json`, `policy = jsonencode({ Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }] })`}}},
			checkPoliciesAreDocuments, "must be data.aws_iam_policy_document"},
		{"target group roles under /sym/", "modules/iam_target_group", edit{"variables.tf": {{`default     = "/jit/"`, `default     = "/sym/"`}}},
			checkTargetGroup, "must not be under /sym/"},
		{"target group allows iam:*", "modules/iam_target_group", edit{"variables.tf": {{`!contains(["*", "iam:*", "sts:*"], lower(a))`, `!contains(["*"], lower(a))`}}},
			checkTargetGroup, `reject action "iam:*"`},
		{"queue without redrive", "modules/iamjit", edit{"main.tf": {{`redrive_policy = jsonencode({`, `not_redrive = jsonencode({`}}},
			checkQueues, "no aws_sqs_queue with a redrive_policy"},
		{"redrive without maxReceiveCount", "modules/iamjit", edit{"main.tf": {{`maxReceiveCount     = var.max_receive_count`, ``}}},
			checkQueues, "maxReceiveCount"},
		{"max receive count 10", "modules/iamjit", edit{"variables.tf": {{"default     = 5\n", "default     = 10\n"}}},
			checkQueues, "want 5"},
		{"DLQ keeps 4 days", "modules/iamjit", edit{"main.tf": {{`message_retention_seconds = 1209600 # 14 days`, `message_retention_seconds = 345600 # 4 days`}}},
			checkQueues, "want 1209600"},
		{"queue unencrypted", "modules/iamjit", edit{"main.tf": {{`  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true`, `  receive_wait_time_seconds  = 20`}}},
			checkQueues, "not encrypted"},
		{"queue policy without source arn", "modules/iamjit", edit{"main.tf": {{`test     = "ArnEquals"`, `test     = "ArnLike"`}}},
			checkQueues, "aws:SourceArn"},
		{"queue policy lets anyone send", "modules/iamjit", edit{"main.tf": {{`identifiers = ["events.amazonaws.com"]`, `identifiers = ["sns.amazonaws.com"]`}}},
			checkQueues, "want Service events.amazonaws.com"},
		{"rule without target DLQ", "modules/iamjit", edit{"main.tf": {{`dead_letter_config {
    arn = aws_sqs_queue.rule_dlq.arn
  }`, ``}}},
			checkRule, "no dead_letter_config"},
		{"rule without retry policy", "modules/iamjit", edit{"main.tf": {{`retry_policy {`, `not_retry_policy {`}}},
			checkRule, "no retry_policy"},
		{"rule catches every step", "modules/iamjit", edit{"main.tf": {{`type = ["escalate", "deescalate"]`, `type = ["escalate"]`}}},
			checkRule, "want escalate and deescalate"},
		{"rule on another source", "modules/iamjit", edit{"variables.tf": {{`default     = ["sym"]`, `default     = ["aws.events"]`}}},
			checkRule, `want ["sym"]`},
		{"table without ttl", "modules/iamjit", edit{"main.tf": {{`attribute_name = "ttl"`, `attribute_name = "expires"`}}},
			checkTable, "ttl.attribute_name"},
		{"table without pitr", "modules/iamjit", edit{"main.tf": {{`point_in_time_recovery {
    enabled = true`, `point_in_time_recovery {
    enabled = false`}}},
			checkTable, "point_in_time_recovery"},
		{"table without due index", "modules/iamjit", edit{"main.tf": {{`name            = "due"`, `name            = "expiry"`}}},
			checkTable, `no global_secondary_index "due"`},
		{"table with range key", "modules/iamjit", edit{"main.tf": {{`hash_key                    = "pk"`, `hash_key                    = "pk"
  range_key                   = "sk"`}}},
			checkTable, "range_key"},
		{"one task", "modules/iamjit", edit{"variables.tf": {{`default     = 2
`, `default     = 1
`}}},
			checkService, "desired_count"},
		{"desired count unvalidated", "modules/iamjit", edit{"variables.tf": {{`condition     = var.desired_count >= 2`, `condition     = var.desired_count >= 1`}}},
			checkService, "must reject 1"},
		{"stop timeout below drain", "modules/iamjit", edit{"variables.tf": {{`default     = 40`, `default     = 20`}}},
			checkService, "stopTimeout"},
		{"external id in plain env", "modules/iamjit", edit{"ecs.tf": {{`IAMJIT_LOG_FORMAT         = "json"`, `IAMJIT_LOG_FORMAT = "json"
    IAMJIT_EXTERNAL_ID = "x"`}}},
			checkService, "plain environment"},
		{"external id not a secret", "modules/iamjit", edit{"ecs.tf": {{`      IAMJIT_EXTERNAL_ID = { sid = "ReadExternalId", arn = var.external_id_parameter_arn, value_from = var.external_id_parameter_arn }
`, ``}}},
			checkService, "not in secrets"},
		{"queue url missing", "modules/iamjit", edit{"ecs.tf": {{`IAMJIT_QUEUE_URL          = aws_sqs_queue.main.url`, ``}}},
			checkService, "lacks IAMJIT_QUEUE_URL"},
		{"region missing", "modules/iamjit", edit{"ecs.tf": {{`AWS_REGION                = local.region`, ``}}},
			checkService, "lacks AWS_REGION"},
		{"health check", "modules/iamjit", edit{"ecs.tf": {{`"/iamjit", "healthcheck"`, `"/iamjit", "version"`}}},
			checkService, "healthCheck.command"},
		{"writable root fs", "modules/iamjit", edit{"ecs.tf": {{`readonlyRootFilesystem = true`, `readonlyRootFilesystem = false`}}},
			checkService, "readonlyRootFilesystem"},
		{"root user", "modules/iamjit", edit{"ecs.tf": {{`user                   = "65532:65532"`, `user = "0"`}}},
			checkService, "non-root"},
		{"task role may do anything in IAM", "modules/iamjit", edit{"iam.tf": {{`"events:PutEvents"`, `"iam:AddUserToGroup"`}}},
			checkTaskRoles, `"iam:AddUserToGroup"`},
		{"task role assumes another role", "modules/iamjit", edit{"iam.tf": {{`concat([var.connector_role_arn], local.member_connector_role_arns)`, `concat([var.iam_role_arn], local.member_connector_role_arns)`}}},
			checkMemberAccounts, "with member accounts []: the task role may sts:AssumeRole [" + homeIAMModifier + "], want exactly the connectors"},
		{"task role reads the external id", "modules/iamjit", edit{"iam.tf": {{`"sqs:SendMessage",
    ]`, `"sqs:SendMessage", "ssm:GetParameters",
    ]`}}},
			checkTaskRoles, `"ssm:GetParameters"`},
		{"DLQ without alarm", "modules/iamjit", edit{"alarms.tf": {{`queue_name  = aws_sqs_queue.dlq.name`, `queue_name  = "x"`}}},
			checkAlarms, "DLQ aws_sqs_queue.dlq"},
		{"rule DLQ without alarm", "modules/iamjit", edit{"alarms.tf": {{`queue_name  = aws_sqs_queue.rule_dlq.name`, `queue_name  = "x"`}}},
			checkAlarms, "DLQ aws_sqs_queue.rule_dlq"},
		{"alarms module ignores a DLQ", "modules/iamjit", edit{"../alarms/main.tf": {{`dimensions          = { QueueName = dlq.queue_name }`, `dimensions          = { QueueName = "x" }`}}},
			checkAlarms, "DLQ aws_sqs_queue.dlq"},
		{"DLQ alarm waits for two messages", "modules/sym_log_pipe", edit{"../alarms/main.tf": {{`threshold           = 0`, `threshold           = 1`}}},
			checkAlarms, `module.alarms.aws_cloudwatch_metric_alarm.this["pipe-dlq-not-empty"]: want ApproximateNumberOfMessagesVisible > 0`},
		{"no age alarm", "modules/iamjit", edit{"alarms.tf": {{`metric_name        = "ApproximateAgeOfOldestMessage"`, `metric_name        = "NumberOfMessagesSent"`}}},
			checkAlarms, "ApproximateAgeOfOldestMessage"},
		{"pipe detail is the record data as one placeholder", "modules/sym_log_pipe", edit{"main.tf": {{`input_template = local.input_template`, `input_template = "<$.data>"`}}},
			checkPipe, "not a JSON object"},
		{"pipe detail wrapped in a key", "modules/sym_log_pipe", edit{"main.tf": {{`input_template = local.input_template`, `input_template = "{\"data\": <$.data>}"`}}},
			checkPipe, `input_template key "data" is not <$.data.data>`},
		{"pipe detail lacks fields", "modules/sym_log_pipe", edit{"main.tf": {{`"actor", "fields", "type"]`, `"actor", "type"]`}}},
			checkPipe, `lacks "fields"`},
		{"pipe detail key from another key", "modules/sym_log_pipe", edit{"main.tf": {{`: <$.data.${k}>`, `: <$.data.run>`}}},
			checkPipe, `input_template key "id" is not <$.data.id>`},
		{"pipe subscribes to shards of the stream", "modules/sym_log_pipe", edit{"main.tf": {{`"kinesis:ListShards",
    ]
    resources = [aws_kinesis_stream.this.arn]
  }

  # kinesis:ListStreams`, `"kinesis:ListShards", "kinesis:SubscribeToShard",
    ]
    resources = [aws_kinesis_stream.this.arn]
  }

  # kinesis:ListStreams`}}},
			checkPipe, "kinesis:SubscribeToShard on \"aws_kinesis_stream.this.arn\" grants nothing"},
		{"pipe lists streams on the stream", "modules/sym_log_pipe", edit{"main.tf": {{`actions   = ["kinesis:ListStreams"]
    resources = ["*"]`, `actions   = ["kinesis:ListStreams"]
    resources = [aws_kinesis_stream.this.arn]`}}},
			checkPipe, "kinesis:ListStreams on \"aws_kinesis_stream.this.arn\""},
		{"pipe reads every stream", "modules/sym_log_pipe", edit{"main.tf": {{`actions   = ["kinesis:ListStreams"]`, `actions   = ["kinesis:ListStreams", "kinesis:GetRecords"]`}}},
			checkPipe, `kinesis:GetRecords on "*"`},
		{"producer writes every stream", "modules/sym_log_pipe", edit{"main.tf": {{`"kinesis:PutRecords",
    ]
    resources = [aws_kinesis_stream.this.arn]`, `"kinesis:PutRecords",
    ]
    resources = ["*"]`}}},
			checkPipe, `kinesis:PutRecords on "*"`},
		{"pipe source", "modules/sym_log_pipe", edit{"variables.tf": {{`default     = "sym"`, `default     = "sym.log"`}}},
			checkPipe, `want "sym"`},
		{"stream unencrypted", "modules/sym_log_pipe", edit{"main.tf": {{`encryption_type  = "KMS"`, `encryption_type  = "NONE"`}}},
			checkPipe, "not KMS-encrypted"},
		{"pipe role too broad", "modules/sym_log_pipe", edit{"main.tf": {{`"kinesis:ListShards",
    ]`, `"kinesis:ListShards", "kinesis:DeleteStream",
    ]`}}},
			checkPipe, `"kinesis:DeleteStream"`},
		{"pipe DLQ without alarm", "modules/sym_log_pipe", edit{"main.tf": {{`queue_name  = aws_sqs_queue.pipe_dlq.name`, `queue_name  = "x"`}}},
			checkAlarms, "pipe_dlq"},
		{"moved to an undeclared instance", "modules/iamjit", edit{"alarms.tf": {{`to   = module.alarms.aws_cloudwatch_metric_alarm.this["no-running-task"]`, `to   = module.alarms.aws_cloudwatch_metric_alarm.this["no-task"]`}}},
			checkDocsReferenced, `moved to module.alarms.aws_cloudwatch_metric_alarm.this["no-task"], which is not declared`},
		{"moved from a declared instance", "modules/iamjit", edit{"main.tf": {{`from = aws_sqs_queue_policy.main`, `from = aws_sqs_queue_policy.rule_may_send["main"]`}}},
			checkDocsReferenced, `moved from aws_sqs_queue_policy.rule_may_send["main"], which is still declared`},
		{"moved to another type", "modules/sym_log_pipe", edit{"main.tf": {{`from = aws_cloudwatch_metric_alarm.pipe_lag`, `from = aws_sqs_queue.pipe_lag`}}},
			checkDocsReferenced, "moved from type aws_sqs_queue to type aws_cloudwatch_metric_alarm"},
		{"moved twice", "modules/iamjit", edit{"main.tf": {{`from = aws_sqs_queue_policy.rule_dlq`, `from = aws_sqs_queue_policy.main`}}},
			checkDocsReferenced, "aws_sqs_queue_policy.main moved twice"},
		{"undeclared variable", "modules/iamjit", edit{"ecs.tf": {{`var.http_addr`, `var.http_address`}}},
			checkDocsReferenced, "var.http_address is not declared"},
		{"unknown module output", "environments/prod", edit{"main.tf": {{`= module.iam_modifier.role_arn
  external_id_parameter_arn`, `= module.iam_modifier.arn
  external_id_parameter_arn`}}},
			checkDocsReferenced, "has no output arn"},
		{"missing module input", "environments/prod", edit{"main.tf": {{`  connector_role_arn = module.connector.role_arn
  group_path`, `  group_path`}}},
			checkDocsReferenced, "required variable connector_role_arn not set"},
		// One iamjit, many accounts: module iamjit's member_accounts.
		{"task role assumes any member role", "modules/iamjit", edit{"iam.tf": {{`[var.connector_role_arn], local.member_connector_role_arns)`, `[var.connector_role_arn], ["arn:aws:iam::*:role/sym/*"])`}}},
			checkMemberAccounts, "want exactly the connectors"},
		{"task role assumes the members' IAM modifiers", "modules/iamjit", edit{"accounts.tf": {{`nonsensitive(var.member_accounts[id].connector_role_arn)`, `nonsensitive(var.member_accounts[id].iam_role_arn)`}}},
			checkMemberAccounts, "want exactly the connectors"},
		{"member accounts in the plain environment", "modules/iamjit", edit{"ecs.tf": {{`IAMJIT_LOG_FORMAT         = "json"`, `IAMJIT_LOG_FORMAT = "json"
    IAMJIT_ACCOUNTS   = jsonencode(var.member_accounts)`}}},
			checkMemberAccounts, "IAMJIT_ACCOUNTS is in the plain environment"},
		{"member accounts not a secret", "modules/iamjit", edit{"ecs.tf": {{`local.has_members ? {
      IAMJIT_ACCOUNTS`, `false ? {
      IAMJIT_ACCOUNTS`}}},
			checkMemberAccounts, "secret IAMJIT_ACCOUNTS from <nil>, want " + accountsSecret},
		{"member accounts secret not pinned to its version", "modules/iamjit", edit{"ecs.tf": {{`value_from = "${aws_secretsmanager_secret.accounts[0].arn}:::${aws_secretsmanager_secret_version.accounts[0].version_id}"`, `value_from = aws_secretsmanager_secret.accounts[0].arn`}}},
			checkMemberAccounts, "(the accounts secret, at its version)"},
		{"execution role reads every secret", "modules/iamjit", edit{"iam.tf": {{`resources = [statement.value.arn]`, `resources = ["arn:aws:secretsmanager:us-east-1:123456789012:secret:*"]`}}},
			checkMemberAccounts, "the execution role may read the secrets"},
		{"execution role cannot read the external id", "modules/iamjit", edit{"iam.tf": {{`for_each = local.secrets`, `for_each = {}`}}},
			checkMemberAccounts, "with member accounts []: the execution role may read the secrets [], want exactly the container's [" + externalIDParam + "]"},
		{"accounts secret holds something else", "modules/iamjit", edit{"accounts.tf": {{`secret_string = jsonencode({ for id, a in var.member_accounts : id => { for k, v in a : k => v if v != null } })`, `secret_string = jsonencode({ for id, a in var.member_accounts : id => a.connector_role_arn })`}}},
			checkMemberAccounts, "secret_string is"},
		{"accounts secret without member accounts", "modules/iamjit", edit{"accounts.tf": {{`count = local.has_members ? 1 : 0`, `count = 1`}}},
			checkMemberAccounts, "with member accounts []: aws_secretsmanager_secret.accounts count 1, want 0"},
		{"member accounts through extra_environment", "modules/iamjit", edit{"variables.tf": {{` && !contains(keys(var.extra_environment), "IAMJIT_ACCOUNTS")`, ``}}},
			checkMemberAccounts, "must reject IAMJIT_ACCOUNTS"},
		{"member accounts not sensitive", "modules/iamjit", edit{"variables.tf": {{`  nullable  = false
  sensitive = true`, `  nullable  = false`}}},
			checkMemberAccounts, "variable member_accounts: not sensitive"},
		{"a member's connector in another account", "modules/iamjit", edit{"variables.tf": {{`can(regex("^arn:[^:]+:iam::${id}:role/", a.connector_role_arn))`, `can(regex("^arn:[^:]+:iam::[0-9]{12}:role/", a.connector_role_arn))`}}},
			checkMemberAccounts, "must reject a connector in another account"},
		{"member accounts' chain under other keys", "modules/iamjit", edit{"variables.tf": {{`    connector_role_arn = string
    external_id        = string`, `    connector_arn = string
    external_id   = string`}}},
			checkMemberAccounts, "an account's chain has keys [backstop_dlq_arn backstop_role_arn connector_arn external_id iam_role_arn]"},
		// Module member_account: the home account's modules, wired as at home.
		{"member connector without external id", "modules/member_account", edit{"../connector/main.tf": {{`"sts:ExternalId"`, `"aws:PrincipalTag/x"`}}},
			checkMemberAccount, "the connector does not require StringEquals sts:ExternalId = var.external_id"},
		{"member connector with another external id", "modules/member_account", edit{"main.tf": {{`external_id   = var.external_id`, `external_id   = "0123456789abcdef0123"`}}},
			checkMemberAccount, "the connector does not require StringEquals sts:ExternalId = var.external_id"},
		{"member connector trusted by another role", "modules/member_account", edit{"main.tf": {{`task_role_arn = var.task_role_arn`, `task_role_arn = "arn:aws:iam::210987654321:role/admin"`}}},
			checkMemberAccount, "the connector trusts"},
		{"member IAM modifier trusted by the task role", "modules/member_account", edit{"main.tf": {{`connector_role_arn = module.connector.role_arn`, `connector_role_arn = var.task_role_arn`}}},
			checkMemberAccount, "the IAM modifier trusts"},
		{"member IAM modifier on every group", "modules/member_account", edit{"main.tf": {{`  group_path         = var.group_path`, `  group_path         = "/"`}}},
			checkMemberAccount, `iam:AddUserToGroup on "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:group/*"; only groups under the group path`},
		{"member IAM modifier writes policies under /sym/", "modules/member_account", edit{"main.tf": {{`  role_path          = var.role_path`, `  role_path          = "/sym/"`}}},
			checkMemberAccount, `:role/sym/*"; only roles under the role path`},
		{"member target group outside the path", "modules/member_account", edit{"main.tf": {{`  path                    = var.group_path`, `  path                    = "/other/"`}}},
			checkMemberAccount, "module.target_group: path = /other/"},
		{"member's IAMJIT_ACCOUNTS entry not sensitive", "modules/member_account", edit{"outputs.tf": {{`  sensitive   = true
  value = {`, `  value = {`}}},
			checkMemberAccount, "output accounts_entry: not sensitive"},
		{"member's IAMJIT_ACCOUNTS entry under another key", "modules/member_account", edit{"outputs.tf": {{`      connector_role_arn = module.connector.role_arn`, `      connector_arn = module.connector.role_arn`}}},
			checkMemberAccount, "output accounts_entry: the chain is"},
		{"member external id not sensitive", "modules/member_account", edit{"variables.tf": {{`  type        = string
  sensitive   = true`, `  type        = string`}}},
			checkMemberAccount, "variable external_id: not sensitive"},
		// environments/prod: the member account.
		{"member account on the home provider", "environments/prod", edit{"main.tf": {{`providers = { aws = aws.member }`, `providers = { aws = aws }`}}},
			checkProd, "want aws = aws.<alias>"},
		{"member provider assumes no role", "environments/prod", edit{"providers.tf": {{`  dynamic "assume_role" {`, `  dynamic "not_assume_role" {`}}},
			checkProd, "provider aws.member: no assume_role"},
		{"member provider undeclared", "environments/prod", edit{"main.tf": {{`providers = { aws = aws.member }`, `providers = { aws = aws.other }`}}},
			checkDocsReferenced, "aws = aws.other, which no provider block declares"},
		{"member connector trusts another role", "environments/prod", edit{"main.tf": {{`  task_role_arn = module.iamjit.task_role_arn
  external_id   = data.aws_ssm_parameter.member_external_id[0].value`, `  task_role_arn = "arn:aws:iam::123456789012:role/admin"
  external_id   = data.aws_ssm_parameter.member_external_id[0].value`}}},
			checkProd, "module.member_account: task_role_arn"},
		{"member with the home external id", "environments/prod", edit{"main.tf": {{`external_id   = data.aws_ssm_parameter.member_external_id[0].value`, `external_id   = data.aws_ssm_parameter.external_id.value`}}},
			checkProd, "want its own, not this account's connector's"},
		{"member groups outside the managed path", "environments/prod", edit{"main.tf": {{`  group_path    = var.group_path
  role_path     = var.role_path

  target_groups`, `  group_path    = "/other/"
  role_path     = var.role_path

  target_groups`}}},
			checkProd, "module.member_account: group_path = /other/"},
		{"iamjit leaves the member out", "environments/prod", edit{"main.tf": {{`member_accounts           = merge([for m in module.member_account : m.accounts_entry]...)`, `member_accounts           = {}`}}},
			checkProd, "module iamjit: member_accounts: leaves out module.member_account"},
		{"iamjit's member accounts from elsewhere", "environments/prod", edit{"main.tf": {{`member_accounts           = merge([for m in module.member_account : m.accounts_entry]...)`, `member_accounts           = merge(var.extra_accounts, [for m in module.member_account : m.accounts_entry]...)`}}},
			checkProd, "module iamjit: member_accounts: refers to var.extra_accounts"},
		{"Sym offers a member's roles as groups", "environments/prod", edit{"main.tf": {{`for name, arn in m.group_arns`, `for name, arn in m.role_arns`}}},
			checkProd, "local.member_target_groups: reads m.role_arns"},
		{"unknown module input", "environments/prod", edit{"main.tf": {{`  desired_count      = var.desired_count`, `  replicas           = var.desired_count`}}},
			checkDocsReferenced, "replicas is not a variable"},
	}
	runCatches(t, cases)
}

// TestSymStrategyCallsOutToNothing: a strategy.py that could reach another
// system (Sym's custom strategy quickstart calls an API with requests and
// the integration's secrets) fails checkSymFlow; the real one passes.
func TestSymStrategyCallsOutToNothing(t *testing.T) {
	for _, tc := range []struct{ name, code, want string }{
		{"requests", "import requests\n", `"import requests"`},
		{"boto3", "from boto3 import client\n", `"from boto3"`},
		{"integration secrets", "        key = self.integration.settings[\"secrets\"]\n", `"self.integration"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files, err := filepath.Glob("modules/sym_flow/*")
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if filepath.Base(f) == "strategy.py" {
					b = append([]byte(tc.code), b...)
				}
				if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m, err := loadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			p := checkSymFlow(m)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Errorf("want a problem containing %s, got %q", tc.want, p)
			}
		})
	}
}

// TestChecksOnSnippets feeds small hand-written modules to the checks.
func TestChecksOnSnippets(t *testing.T) {
	cases := []struct {
		name  string
		hcl   string
		check func(*tfModule) problems
		want  string // "" : no problem expected
	}{
		{"admin policy", `
data "aws_iam_policy_document" "x" {
  statement {
    actions   = ["*"]
    resources = ["*"]
  }
}`, checkNoWildcardActions, `wildcard action "*"`},
		{"not_actions", `
data "aws_iam_policy_document" "x" {
  statement {
    not_actions = ["iam:CreateUser"]
    resources   = ["*"]
  }
}`, checkNoWildcardActions, "not_actions"},
		{"public principal", `
data "aws_iam_policy_document" "x" {
  statement {
    actions = ["sqs:SendMessage"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
  }
}`, checkNoWildcardActions, `principal "*"`},
		{"wildcard through for_each", `
locals {
  queues = {
    a = { actions = ["sqs:SendMessage"] }
    b = { actions = ["sqs:*"] }
  }
}
data "aws_iam_policy_document" "x" {
  for_each = local.queues
  statement {
    actions   = each.value.actions
    resources = ["arn:aws:sqs:us-east-1:123456789012:q"]
  }
}`, checkNoWildcardActions, `data.aws_iam_policy_document.x["b"] statement 0: wildcard action "sqs:*"`},
		{"scoped policy is fine", `
data "aws_iam_policy_document" "x" {
  statement {
    actions   = ["sqs:SendMessage", "logs:Describe*"]
    resources = [aws_sqs_queue.q.arn]
  }
}`, checkNoWildcardActions, ""},
		{"inline role policy", `
resource "aws_iam_role" "r" {
  name               = "r"
  assume_role_policy = "{}"
}`, checkPoliciesAreDocuments, "must be data.aws_iam_policy_document"},
		{"missing document", `
resource "aws_iam_role_policy" "r" {
  role   = "r"
  policy = data.aws_iam_policy_document.nope.json
}`, checkPoliciesAreDocuments, "undeclared"},
		{"unscoped write", `
data "aws_iam_policy_document" "x" {
  statement {
    actions   = ["sqs:DeleteMessage"]
    resources = ["*"]
  }
}`, checkStarResources, `sqs:DeleteMessage on resource "*"`},
		{"connector without condition", `
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [var.task_role_arn]
    }
  }
}
data "aws_iam_policy_document" "p" {
  statement {
    actions   = ["sts:AssumeRole"]
    resources = ["arn:aws:iam::123456789012:role/sym/*"]
  }
}
resource "aws_iam_role" "c" {
  path               = "/sym/"
  assume_role_policy = data.aws_iam_policy_document.trust.json
}
resource "aws_iam_role_policy" "c" {
  role   = aws_iam_role.c.id
  policy = data.aws_iam_policy_document.p.json
}`, checkConnector, "sts:ExternalId"},
		{"table with a literal bad ttl", `
resource "aws_dynamodb_table" "t" {
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  ttl {
    attribute_name = "ttl"
    enabled        = false
  }
}`, checkTable, "ttl.enabled"},
		{"container definition not jsonencode", `
resource "aws_ecs_service" "s" {
  desired_count = 2
  launch_type   = "FARGATE"
  network_configuration {}
}
resource "aws_ecs_task_definition" "t" {
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  container_definitions    = file("defs.json")
}`, checkService, "readable offline"},
		{"undeclared resource", `
output "x" { value = aws_sqs_queue.nope.url }`, func(m *tfModule) problems { return checkReferences(m, loadDir) }, "aws_sqs_queue.nope.url is not declared"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := parseModule("snippet", map[string]string{"main.tf": c.hcl})
			if err != nil {
				t.Fatal(err)
			}
			p := c.check(m)
			if c.want == "" {
				if len(p) > 0 {
					t.Errorf("want no problem, got %q", p)
				}
				return
			}
			for _, s := range p {
				if strings.Contains(s, c.want) {
					return
				}
			}
			t.Errorf("want a problem containing %q, got %q", c.want, p)
		})
	}
}

// fixture reads an SQS body of events/testdata and returns it with its
// envelope.
func fixture(t *testing.T, name string) ([]byte, events.Envelope) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../events/testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var env events.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	return b, env
}

// pipeTarget returns module sym_log_pipe's pipe's target_parameters and
// the source and detail-type it puts events with.
func pipeTarget(t *testing.T) (tp *hclsyntax.Block, source, detailType string, pipe *tfModule) {
	t.Helper()
	pipe, err := loadDir("modules/sym_log_pipe")
	if err != nil {
		t.Fatal(err)
	}
	tp = nested1(pipe.resources("aws_pipes_pipe")[0], "target_parameters")
	eb := nested1(tp, "eventbridge_event_bus_parameters")
	source, _ = pipe.str(attr(eb, "source"))
	detailType, _ = pipe.str(attr(eb, "detail_type"))
	return tp, source, detailType, pipe
}

// TestPipeEnvelopeFixture: the SQS body the pipe -> bus -> rule -> queue path
// produces (events/testdata/pipe_envelope_escalate.json) agrees with the
// Terraform: the pipe's source and detail-type, the rule's pattern, and a
// detail that is a SymLogEntry for an IAM group target.
func TestPipeEnvelopeFixture(t *testing.T) {
	b, env := fixture(t, "pipe_envelope_escalate.json")
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("fixture envelope lacks %q", k)
		}
		delete(keys, k)
	}
	for k := range keys {
		t.Errorf("fixture envelope has %q, which EventBridge does not send", k)
	}
	_, src, dt, _ := pipeTarget(t)
	if env.Source != src || env.DetailType != dt {
		t.Errorf("fixture source/detail-type %q/%q, pipe puts %q/%q", env.Source, env.DetailType, src, dt)
	}
	if env.Version != "0" || env.ID == "" || env.Account == "" || env.Time == "" || env.Region == "" {
		t.Errorf("fixture envelope incomplete: %+v", env)
	}
	if len(env.Resources) != 1 || !regexp.MustCompile(`^arn:aws:pipes:[a-z0-9-]+:[0-9]{12}:pipe/.+-to-eventbridge$`).MatchString(env.Resources[0]) {
		t.Errorf("fixture resources %v, want [the pipe ARN]", env.Resources)
	}
	iamjit, err := loadDir("modules/iamjit")
	if err != nil {
		t.Fatal(err)
	}
	var d events.SymLogEntry
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		t.Fatal(err)
	}
	pat, _ := iamjit.eval(attr(iamjit.resources("aws_cloudwatch_event_rule")[0], "event_pattern")).(map[string]any)
	if s, _ := pat["source"].([]any); !slices.Contains(s, any(env.Source)) {
		t.Errorf("the rule (source %v) would not match the fixture's source %q", pat["source"], env.Source)
	}
	types := pat["detail"].(map[string]any)["event"].(map[string]any)["type"].([]any)
	if !slices.Contains(types, any(d.Event.Type)) {
		t.Errorf("the rule (types %v) would not match event.type %q", types, d.Event.Type)
	}
	var duration int
	if err := json.Unmarshal(d.Fields.Duration, &duration); err != nil {
		t.Errorf("fixture duration %s: %v", d.Fields.Duration, err)
	}
	if d.ID == "" || d.Event.Type != "escalate" || d.Fields.Target == nil || d.Fields.Target.Type != "aws_iam_group" ||
		d.Fields.Target.Settings["iam_group"] != "sym-readonly" || d.Fields.TargetID == "" || duration <= 0 ||
		d.Run.SRN == "" || d.Run.Actors["request"].Username == "" {
		t.Errorf("fixture detail is not an escalate SymLogEntry for IAM group sym-readonly: %+v", d)
	}
}

// TestCustomTargetFixture: the SQS body a request of module sym_flow's flow
// produces (events/testdata/pipe_envelope_custom_escalate.json) agrees with
// the Terraform: its target is of the type and has the settings sym_flow's
// targets have, its detail has only keys the pipe's template delivers, and
// iamjit decodes it as an aws_iam_group request for settings.iam_group.
func TestCustomTargetFixture(t *testing.T) {
	b, env := fixture(t, "pipe_envelope_custom_escalate.json")
	var detail map[string]json.RawMessage
	if err := json.Unmarshal(env.Detail, &detail); err != nil {
		t.Fatal(err)
	}
	var fields events.SymFields
	if err := json.Unmarshal(detail["fields"], &fields); err != nil {
		t.Fatal(err)
	}
	if fields.Target == nil {
		t.Fatal("fixture has no fields.target")
	}
	flow, err := loadDir("modules/sym_flow")
	if err != nil {
		t.Fatal(err)
	}
	target := flow.resources("sym_target")[0]
	if typ, _ := flow.str(attr(target, "type")); fields.Target.Type != typ {
		t.Errorf("fixture target type %q, sym_flow's targets are %q", fields.Target.Type, typ)
	}
	var keys []string
	for _, it := range attr(target, "settings").(*hclsyntax.ObjectConsExpr).Items {
		k, _ := flow.objectKey(it.KeyExpr)
		keys = append(keys, k)
	}
	if got := slices.Sorted(maps.Keys(fields.Target.Settings)); !slices.Equal(got, keys) {
		t.Errorf("fixture target settings %v, sym_flow's targets have %v", got, keys)
	}
	if name := toGo(flow.vars["name"]); !strings.HasPrefix(fields.Target.Name, fmt.Sprint(name)+"-") {
		t.Errorf("fixture target name %q is not <%v>-<key>", fields.Target.Name, name)
	}
	tp, src, _, pipe := pipeTarget(t)
	it, _ := pipe.str(attr(tp, "input_template"))
	for k := range detail {
		if !strings.Contains(it, `"`+k+`": <$.data.`+k+`>`) {
			t.Errorf("fixture detail key %q is not one the pipe delivers (%s)", k, it)
		}
	}
	if env.Source != src {
		t.Errorf("fixture source %q, the pipe puts %q", env.Source, src)
	}
	req, err := events.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if req.TargetType != events.TargetIAMGroup || req.Group != fields.Target.Settings["iam_group"] {
		t.Errorf("iamjit decodes the fixture as %q target %q; want %q target %q", req.TargetType, req.Group, events.TargetIAMGroup, fields.Target.Settings["iam_group"])
	}
}

// edit is what a case changes: file -> (old, new) replacements.
type edit = map[string][][2]string

// catchCase is a module directory broken by one edit and the problem its
// check must then report.
type catchCase struct {
	name  string
	dir   string
	edit  edit
	check func(*tfModule) problems
	want  string
}

// runCatches fails each case whose check does not report its problem.
func runCatches(t *testing.T, cases []catchCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := loadDirEdited(c.dir, c.edit)
			if err != nil {
				t.Fatal(err)
			}
			p := c.check(m)
			for _, s := range p {
				if strings.Contains(s, c.want) {
					return
				}
			}
			t.Errorf("broken %s: want a problem containing %q, got %q", c.dir, c.want, p)
		})
	}
}
