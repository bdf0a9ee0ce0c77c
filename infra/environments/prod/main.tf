# iamjit in production, both halves in one apply: Sym (runtime, environment,
# log destination, targets, strategy, flow) and AWS (Sym log stream -> pipe ->
# Sym bus -> rule -> SQS -> iamjit on Fargate -> role chain -> IAM groups
# under /sym/, results on the iamjit-results bus). manage_sym = false leaves
# Sym to be managed elsewhere: then only the AWS half is created.
# member_account adds a second AWS account, its own chain and groups created
# there through provider aws.member (IAMJIT_ACCOUNTS).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_ssm_parameter" "external_id" {
  name            = var.external_id_parameter_name
  with_decryption = true
}

data "aws_ssm_parameter" "member_external_id" {
  count           = var.member_account == null ? 0 : 1
  name            = var.member_account.external_id_parameter_name
  with_decryption = true
}

data "aws_ssm_parameter" "sym_external_id" {
  count           = var.manage_sym ? 1 : 0
  name            = var.sym_external_id_parameter_name
  with_decryption = true
}

locals {
  name = "iamjit-${var.environment}"

  # The groups iamjit grants and Sym offers: each an iam_target_group below.
  target_groups = {
    readonly        = { group_name = module.readonly.group_name, label = "AWS read-only" }
    cloudwatch_logs = { group_name = module.cloudwatch_logs.group_name, label = "CloudWatch Logs read" }
  }

  # The member account's groups, offered by ARN: the ARN names the account
  # whose group iamjit changes.
  member_target_groups = merge([for m in module.member_account : {
    for name, arn in m.group_arns : "${name}-${m.account_id}" => { group_name = arn, label = "${name} in ${m.account_id}" }
  }]...)
}

# --- image ------------------------------------------------------------------------

resource "aws_ecr_repository" "iamjit" {
  name                 = "iamjit"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

# --- alarms -------------------------------------------------------------------------

# The topic's key must let CloudWatch use it: the AWS-managed alias/aws/sns
# key's policy does not, and every alarm would then fail to notify ("CloudWatch
# Alarms does not have authorization to access the SNS topic encryption key").
data "aws_iam_policy_document" "alarms_key" {
  # The account administers and uses the key through IAM policies (the key
  # policy's usual delegation to the account, its actions listed).
  statement {
    sid    = "AccountAdministersAndUsesTheKey"
    effect = "Allow"
    actions = [
      "kms:CancelKeyDeletion", "kms:Create*", "kms:Decrypt", "kms:Delete*", "kms:Describe*", "kms:Disable*",
      "kms:Enable*", "kms:Encrypt", "kms:GenerateDataKey*", "kms:Get*", "kms:List*", "kms:Put*",
      "kms:ReEncrypt*", "kms:Revoke*", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
      "kms:TagResource", "kms:UntagResource", "kms:Update*",
    ]
    resources = ["*"] # in a key policy, "*" is this key

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublishToTheEncryptedTopic"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "alarms" {
  description         = "${local.name} alarm topic: lets CloudWatch alarms publish to the encrypted topic."
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.alarms_key.json
}

resource "aws_kms_alias" "alarms" {
  name          = "alias/${local.name}-alarms"
  target_key_id = aws_kms_key.alarms.key_id
}

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.alarms.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- Sym: runtime, environment, log destination; targets, strategy, flow ----------

module "sym_runtime" {
  count  = var.manage_sym ? 1 : 0
  source = "../../modules/sym_runtime"

  name               = var.environment
  external_id        = data.aws_ssm_parameter.sym_external_id[0].value
  slack_workspace_id = var.slack_workspace_id
  error_channel      = var.sym_error_channel
  log_stream_name    = module.sym_log_pipe.stream_name
}

module "sym_flow" {
  count  = var.manage_sym ? 1 : 0
  source = "../../modules/sym_flow"

  environment_id  = module.sym_runtime[0].environment_id
  account_id      = data.aws_caller_identity.current.account_id
  targets         = merge(local.target_groups, local.member_target_groups)
  durations       = var.sym_durations
  max_duration    = var.max_duration
  request_channel = var.sym_request_channel
  approvers       = var.sym_approvers
}

# --- Sym -> EventBridge -------------------------------------------------------------

module "sym_log_pipe" {
  source = "../../modules/sym_log_pipe"

  name           = "sym-log-${var.environment}"
  event_bus_name = "sym-${var.environment}"
  # The role Sym writes the log with: the runtime role created above, or
  # (manage_sym = false) the one named by sym_runtime_role_name.
  producer_role_names = var.manage_sym ? [module.sym_runtime[0].role_name] : (var.sym_runtime_role_name == null ? [] : [var.sym_runtime_role_name])
  alarm_actions       = [aws_sns_topic.alarms.arn]
}

# --- the groups iamjit grants ----------------------------------------------------------

module "readonly" {
  source = "../../modules/iam_target_group"

  name        = "sym-readonly"
  path        = var.group_path
  role_path   = var.role_path
  policy_arns = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
}

module "cloudwatch_logs" {
  source = "../../modules/iam_target_group"

  name      = "sym-cloudwatch-logs"
  path      = var.group_path
  role_path = var.role_path
  statements = [
    {
      sid       = "ReadLogs"
      actions   = ["logs:Describe*", "logs:FilterLogEvents", "logs:Get*", "logs:StartQuery", "logs:StopQuery"]
      resources = ["*"]
    },
  ]
}

# --- the role chain: task role -> connector -> IAM modifier -----------------------------

module "connector" {
  source = "../../modules/connector"

  name          = "${local.name}-connector"
  task_role_arn = module.iamjit.task_role_arn
  external_id   = data.aws_ssm_parameter.external_id.value
}

module "iam_modifier" {
  source = "../../modules/iam_modifier"

  name               = "${local.name}-iam-modifier"
  connector_role_arn = module.connector.role_arn
  group_path         = var.group_path
  role_path          = var.role_path
  identity_center    = local.home_identity_center   # identity_center.tf
  backstop           = local.home_modifier_backstop # backstop.tf
}

# --- a member account: its chain and groups, created there (provider aws.member) ---

module "member_account" {
  count     = var.member_account == null ? 0 : 1
  source    = "../../modules/member_account"
  providers = { aws = aws.member }

  name          = local.name
  task_role_arn = module.iamjit.task_role_arn
  external_id   = data.aws_ssm_parameter.member_external_id[0].value
  group_path    = var.group_path
  role_path     = var.role_path

  target_groups = {
    sym-readonly = { policy_arns = ["arn:aws:iam::aws:policy/ReadOnlyAccess"] }
  }

  identity_center        = local.member_identity_center # identity_center.tf
  backstop               = var.backstop                 # backstop.tf
  backstop_group         = var.backstop_group
  backstop_alarm_actions = var.member_backstop_alarm_actions
}

# --- iamjit ------------------------------------------------------------------------

module "iamjit" {
  source = "../../modules/iamjit"

  name               = local.name
  image              = "${aws_ecr_repository.iamjit.repository_url}:${var.image_tag}"
  ecr_repository_arn = aws_ecr_repository.iamjit.arn
  vpc_id             = var.vpc_id
  subnet_ids         = var.subnet_ids
  desired_count      = var.desired_count

  sym_event_bus_name = module.sym_log_pipe.event_bus_name
  event_sources      = [module.sym_log_pipe.event_source]
  results_bus_name   = "${local.name}-results"
  table_name         = local.name

  table_deletion_protection = var.table_deletion_protection

  connector_role_arn        = module.connector.role_arn
  iam_role_arn              = module.iam_modifier.role_arn
  external_id_parameter_arn = data.aws_ssm_parameter.external_id.arn
  member_accounts           = merge([for m in module.member_account : m.accounts_entry]...)
  group_path                = var.group_path
  role_path                 = var.role_path
  session_revocation        = var.session_revocation
  max_duration              = var.max_duration
  identity_center           = local.iamjit_identity_center # identity_center.tf
  backstop                  = local.iamjit_backstop        # backstop.tf

  extra_environment = {
    IAMJIT_IDENTITY = "username,tag:email"
  }

  alarm_actions = [aws_sns_topic.alarms.arn]
}
