# The AWS-run expiry backstop (IAMJIT_BACKSTOP_*): in this account and in the
# member account, a schedule group, an execution role Scheduler may use for
# that group only, allowed only the removals, and a dead-letter queue with its
# alarm; each account's IAM modifier may manage schedules of its group and
# pass its role. The member account's role and queue reach iamjit as
# backstop_role_arn and backstop_dlq_arn of its IAMJIT_ACCOUNTS entry, this
# account's as IAMJIT_BACKSTOP_ROLE_ARN and IAMJIT_BACKSTOP_DLQ_ARN.

variable "backstop" {
  description = "Create the expiry backstop in every account (module backstop) and turn it on in iamjit (IAMJIT_BACKSTOP_*, and backstop_role_arn and backstop_dlq_arn of the member account's IAMJIT_ACCOUNTS entry). On by default: deploy an image_tag that reads them (an older iamjit refuses an IAMJIT_ACCOUNTS entry holding either key). false: no backstop in any account."
  type        = bool
  default     = true
  nullable    = false
}

variable "backstop_group" {
  description = "IAMJIT_BACKSTOP_GROUP: the schedule group, the same name in every account."
  type        = string
  default     = "iamjit"
}

variable "backstop_grace" {
  description = "IAMJIT_BACKSTOP_GRACE: how long after a grant's expiry a schedule removes what iamjit has not (Go duration)."
  type        = string
  default     = "2m"
}

variable "member_backstop_alarm_actions" {
  description = "ARNs in the member account (an SNS topic there) that its backstop dead-letter-queue alarm notifies."
  type        = list(string)
  default     = []
}

module "backstop" {
  count  = var.backstop ? 1 : 0
  source = "../../modules/backstop"

  name                = local.name
  schedule_group_name = var.backstop_group
  group_path          = var.group_path
  identity_center     = local.home_identity_center
  alarm_actions       = [aws_sns_topic.alarms.arn]
}

locals {
  home_modifier_backstop = var.backstop ? { schedule_group_name = var.backstop_group, role_arn = module.backstop[0].role_arn } : null

  iamjit_backstop = var.backstop ? { role_arn = module.backstop[0].role_arn, group = var.backstop_group, grace = var.backstop_grace, dlq_arn = module.backstop[0].dlq_arn } : null
}

output "backstop" {
  description = "This account's expiry backstop (backstop): its execution role, schedule group and dead-letter queue; the member account's is member_account.backstop."
  value = var.backstop ? {
    role_arn            = module.backstop[0].role_arn
    schedule_group_name = module.backstop[0].schedule_group_name
    dlq_arn             = module.backstop[0].dlq_arn
    dlq_url             = module.backstop[0].dlq_url
  } : null
}
