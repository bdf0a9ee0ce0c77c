# iamjit in production: Sym log stream -> pipe -> Sym bus -> rule -> SQS ->
# iamjit on Fargate -> role chain -> IAM groups under /sym/, results on the
# iamjit-results bus.

data "aws_ssm_parameter" "external_id" {
  name            = var.external_id_parameter_name
  with_decryption = true
}

locals {
  name = "iamjit-${var.environment}"
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

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- Sym -> EventBridge -------------------------------------------------------------

module "sym_log_pipe" {
  source = "../../modules/sym_log_pipe"

  name                = "sym-log-${var.environment}"
  event_bus_name      = "sym-${var.environment}"
  producer_role_names = var.sym_runtime_role_name == null ? [] : [var.sym_runtime_role_name]
  alarm_actions       = [aws_sns_topic.alarms.arn]
}

# --- the groups iamjit grants ----------------------------------------------------------

module "readonly" {
  source = "../../modules/iam_target_group"

  name        = "sym-readonly"
  path        = var.group_path
  policy_arns = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
}

module "cloudwatch_logs" {
  source = "../../modules/iam_target_group"

  name = "sym-cloudwatch-logs"
  path = var.group_path
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

  connector_role_arn        = module.connector.role_arn
  iam_role_arn              = module.iam_modifier.role_arn
  external_id_parameter_arn = data.aws_ssm_parameter.external_id.arn
  group_path                = var.group_path
  role_path                 = var.role_path
  max_duration              = var.max_duration

  extra_environment = {
    IAMJIT_IDENTITY = "username,tag:email"
  }

  alarm_actions = [aws_sns_topic.alarms.arn]
}
