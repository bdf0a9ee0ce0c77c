output "role_arn" {
  description = "The execution role of the backstop schedules: IAMJIT_BACKSTOP_ROLE_ARN (home account), backstop_role_arn of the account's IAMJIT_ACCOUNTS entry (member), module iam_modifier's backstop.role_arn."
  value       = aws_iam_role.execution.arn
}

output "schedule_group_name" {
  description = "The schedule group (IAMJIT_BACKSTOP_GROUP)."
  value       = aws_scheduler_schedule_group.this.name
}

output "schedule_group_arn" {
  description = "ARN of the schedule group (the execution role's aws:SourceArn)."
  value       = aws_scheduler_schedule_group.this.arn
}

output "dlq_arn" {
  description = "The schedules' dead-letter queue: IAMJIT_BACKSTOP_DLQ_ARN (home account, module iamjit's backstop.dlq_arn), backstop_dlq_arn of the account's IAMJIT_ACCOUNTS entry (member)."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "URL of the schedules' dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}
