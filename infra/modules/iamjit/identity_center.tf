# Identity Center and the expiry backstop in the container's environment:
# each setting only when set (empty = off), so a deployment without them
# renders the task definition it did before.

locals {
  identity_center_environment = {
    for k, v in {
      IAMJIT_SSO_INSTANCE_ARN        = try(var.identity_center.instance_arn, "")
      IAMJIT_SSO_ACCOUNT             = try(var.identity_center.account_id, "")
      IAMJIT_SSO_REGION              = try(var.identity_center.region, "")
      IAMJIT_SSO_PERMISSION_SETS     = join(",", try(var.identity_center.permission_set_arns, []))
      IAMJIT_SSO_ASSIGNMENT_ACCOUNTS = join(",", try(var.identity_center.assignment_account_ids, []))
      IAMJIT_SSO_GROUPS              = join(",", try(var.identity_center.group_ids, []))
    } : k => v if v != ""
  }

  # The home account's backstop role turns the backstop on; the group, the
  # grace and the dead-letter queue (only when set) go with it (a member
  # account's role and queue are in IAMJIT_ACCOUNTS).
  backstop_environment = try(var.backstop.role_arn, "") == "" ? {} : {
    for k, v in {
      IAMJIT_BACKSTOP_ROLE_ARN = var.backstop.role_arn
      IAMJIT_BACKSTOP_GROUP    = var.backstop.group
      IAMJIT_BACKSTOP_GRACE    = var.backstop.grace
      IAMJIT_BACKSTOP_DLQ_ARN  = var.backstop.dlq_arn
    } : k => v if v != ""
  }
}
