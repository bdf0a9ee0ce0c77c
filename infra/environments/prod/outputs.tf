output "ecr_repository_url" {
  description = "Push the iamjit image here."
  value       = aws_ecr_repository.iamjit.repository_url
}

output "sym_log_stream_name" {
  description = "settings.stream_name of Sym's kinesis_data_stream log destination."
  value       = module.sym_log_pipe.stream_name
}

output "sym_log_producer_policy_arn" {
  description = "Attach to the role Sym writes to the stream with (done for you with manage_sym, or when sym_runtime_role_name is set)."
  value       = module.sym_log_pipe.producer_policy_arn
}

output "sym_event_bus_name" {
  description = "Bus Sym events are put on."
  value       = module.sym_log_pipe.event_bus_name
}

output "queue_url" {
  description = "IAMJIT_QUEUE_URL."
  value       = module.iamjit.queue_url
}

output "dlq_url" {
  description = "IAMJIT_DLQ_URL."
  value       = module.iamjit.dlq_url
}

output "table_name" {
  description = "IAMJIT_TABLE."
  value       = module.iamjit.table_name
}

output "results_bus_name" {
  description = "IAMJIT_EVENT_BUS."
  value       = module.iamjit.results_bus_name
}

output "connector_role_arn" {
  description = "IAMJIT_CONNECTOR_ROLE_ARN."
  value       = module.connector.role_arn
}

output "iam_role_arn" {
  description = "IAMJIT_IAM_ROLE_ARN."
  value       = module.iam_modifier.role_arn
}

output "cluster_name" {
  description = "ECS cluster."
  value       = module.iamjit.cluster_name
}

output "service_name" {
  description = "ECS service."
  value       = module.iamjit.service_name
}

output "log_group_name" {
  description = "iamjit logs."
  value       = module.iamjit.log_group_name
}

output "target_groups" {
  description = "IAM groups iamjit grants (settings.iam_group of the Sym targets): names in this account, ARNs in the member account."
  value       = [for g in merge(local.target_groups, local.member_target_groups) : g.group_name]
}

output "member_account" {
  description = "The member account (member_account): its id, connector and IAM-modifier roles, and groups by name; null without one. Its IAMJIT_ACCOUNTS entry is in the secret accounts_secret_arn."
  value = var.member_account == null ? null : {
    account_id         = module.member_account[0].account_id
    connector_role_arn = module.member_account[0].connector_role_arn
    iam_role_arn       = module.member_account[0].iam_role_arn
    group_arns         = module.member_account[0].group_arns
  }
}

output "accounts_secret_arn" {
  description = "The Secrets Manager secret holding IAMJIT_ACCOUNTS (null without a member account)."
  value       = module.iamjit.accounts_secret_arn
}

output "sym_runtime_role_arn" {
  description = "The role Sym assumes in this account (manage_sym): it may only write to the log stream."
  value       = var.manage_sym ? module.sym_runtime[0].role_arn : null
}

output "sym_flow_id" {
  description = "The Sym flow (manage_sym)."
  value       = var.manage_sym ? module.sym_flow[0].flow_id : null
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify (encrypted with a key CloudWatch may use)."
  value       = aws_sns_topic.alarms.arn
}
