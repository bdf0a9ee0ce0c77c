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
