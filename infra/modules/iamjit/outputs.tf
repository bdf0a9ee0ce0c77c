output "queue_url" {
  description = "IAMJIT_QUEUE_URL."
  value       = aws_sqs_queue.main.url
}

output "queue_arn" {
  description = "ARN of the queue."
  value       = aws_sqs_queue.main.arn
}

output "dlq_url" {
  description = "IAMJIT_DLQ_URL (`iamjit replay` moves it back to the queue)."
  value       = aws_sqs_queue.dlq.url
}

output "rule_dlq_url" {
  description = "Events EventBridge failed to deliver to the queue."
  value       = aws_sqs_queue.rule_dlq.url
}

output "table_name" {
  description = "IAMJIT_TABLE."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the table."
  value       = aws_dynamodb_table.this.arn
}

output "results_bus_name" {
  description = "IAMJIT_EVENT_BUS: where Access Granted/Revoked/Rejected/Failed are published."
  value       = aws_cloudwatch_event_bus.results.name
}

output "results_bus_arn" {
  description = "ARN of the results bus."
  value       = aws_cloudwatch_event_bus.results.arn
}

output "rule_arn" {
  description = "ARN of the rule routing Sym events to the queue."
  value       = aws_cloudwatch_event_rule.sym.arn
}

output "cluster_name" {
  description = "ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "ECS service."
  value       = aws_ecs_service.this.name
}

output "task_role_arn" {
  description = "The task role: the only principal the connector role trusts."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "The execution role."
  value       = aws_iam_role.execution.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the containers."
  value       = aws_cloudwatch_log_group.this.name
}

output "security_group_id" {
  description = "Security group of the tasks."
  value       = aws_security_group.task.id
}

output "accounts_secret_arn" {
  description = "The Secrets Manager secret holding IAMJIT_ACCOUNTS (null without member accounts)."
  value       = one(aws_secretsmanager_secret.accounts[*].arn)
}
