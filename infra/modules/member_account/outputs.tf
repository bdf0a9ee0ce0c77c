output "account_id" {
  description = "This account's id: its key in IAMJIT_ACCOUNTS."
  value       = data.aws_caller_identity.current.account_id
}

output "connector_role_arn" {
  description = "This account's connector role: the home task role may assume it (module iamjit's member_accounts)."
  value       = module.connector.role_arn
}

output "iam_role_arn" {
  description = "This account's IAM-modifier role."
  value       = module.iam_modifier.role_arn
}

output "group_arns" {
  description = "ARN of each target group, by name: the settings.iam_group of a Sym target for this account's group."
  value       = { for name, g in module.target_group : name => g.group_arn }
}

output "role_arns" {
  description = "ARNs of the target groups' roles, by group name and role name."
  value       = { for name, g in module.target_group : name => g.role_arns }
}

output "accounts_entry" {
  description = "This account's entry of IAMJIT_ACCOUNTS, {<account id> = {connector_role_arn, external_id, iam_role_arn, backstop_role_arn, backstop_dlq_arn}} (backstop_role_arn and backstop_dlq_arn, the backstop's execution role and dead-letter queue, with backstop only): merge every member account's into module iamjit's member_accounts. Sensitive: it holds the external id."
  sensitive   = true
  value = {
    (data.aws_caller_identity.current.account_id) = merge(
      {
        connector_role_arn = module.connector.role_arn
        external_id        = var.external_id
        iam_role_arn       = module.iam_modifier.role_arn
      },
      var.backstop ? { backstop_role_arn = module.backstop[0].role_arn, backstop_dlq_arn = module.backstop[0].dlq_arn } : {},
    )
  }
}

output "backstop" {
  description = "This account's expiry backstop (with backstop): its execution role, schedule group and dead-letter queue; null without."
  value = var.backstop ? {
    role_arn            = module.backstop[0].role_arn
    schedule_group_name = module.backstop[0].schedule_group_name
    dlq_arn             = module.backstop[0].dlq_arn
    dlq_url             = module.backstop[0].dlq_url
  } : null
}
