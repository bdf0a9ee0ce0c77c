# A member account of iamjit: what iamjit, running in the home account, needs
# to change IAM here. Call it with the member account's provider
# (providers = { aws = aws.<alias> }): everything below is created in that
# account, by the same modules that build the home account's chain.
#
#   home task role --(external id)--> connector --> IAM modifier --> groups here
#
# The connector trusts only the home account's task role, presenting the
# external id; the IAM modifier trusts only that connector and may change
# only groups under group_path and iamjit's inline policy on roles under
# role_path; the target groups live under those paths.

data "aws_caller_identity" "current" {}

module "connector" {
  source = "../connector"

  name          = "${var.name}-connector"
  task_role_arn = var.task_role_arn
  external_id   = var.external_id
  tags          = var.tags
}

module "iam_modifier" {
  source = "../iam_modifier"

  name               = "${var.name}-iam-modifier"
  connector_role_arn = module.connector.role_arn
  group_path         = var.group_path
  role_path          = var.role_path
  identity_center    = var.identity_center
  backstop           = var.backstop ? { schedule_group_name = var.backstop_group, role_arn = module.backstop[0].role_arn } : null
  tags               = var.tags
}

# The expiry backstop of this account (IAMJIT_BACKSTOP_*): schedules that end
# this account's memberships run here, with this account's role.
module "backstop" {
  source = "../backstop"
  count  = var.backstop ? 1 : 0

  name                = var.name
  schedule_group_name = var.backstop_group
  group_path          = var.group_path
  identity_center     = var.identity_center
  alarm_actions       = var.backstop_alarm_actions
  tags                = var.tags
}

# An attribute left out of a target group takes iam_target_group's default.
module "target_group" {
  source   = "../iam_target_group"
  for_each = var.target_groups

  name                    = each.key
  path                    = var.group_path
  role_path               = var.role_path
  policy_arns             = each.value.policy_arns
  statements              = each.value.statements
  roles                   = each.value.roles
  assumable_role_arns     = each.value.assumable_role_arns
  require_source_identity = each.value.require_source_identity
  require_mfa             = each.value.require_mfa
  tags                    = var.tags
}
