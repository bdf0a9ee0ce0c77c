output "flow_id" {
  description = "The Sym flow."
  value       = sym_flow.this.id
}

output "strategy_id" {
  description = "The custom strategy (no IAM rights: iamjit changes IAM)."
  value       = sym_strategy.iamjit.id
}

output "target_groups" {
  description = "IAM group offered, by target key (settings.iam_group)."
  value       = { for key, target in var.targets : key => target.group_name }
}

output "sso_targets" {
  description = "Identity Center targets offered, by target key: {permission_set_arn, account_id} or {group_id}."
  value = merge(
    { for key, t in var.sso_permission_set_targets : key => { permission_set_arn = t.permission_set_arn, account_id = t.account_id } },
    { for key, t in var.sso_group_targets : key => { group_id = t.group_id } },
  )
}
