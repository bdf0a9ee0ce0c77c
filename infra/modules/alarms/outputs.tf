output "alarm_arns" {
  description = "ARN of each alarm, by key (<key>-not-empty for a dead-letter queue)."
  value       = { for key, alarm in aws_cloudwatch_metric_alarm.this : key => alarm.arn }
}
