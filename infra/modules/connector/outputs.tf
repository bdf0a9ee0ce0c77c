output "role_arn" {
  description = "ARN of the connector role (IAMJIT_CONNECTOR_ROLE_ARN)."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the connector role."
  value       = aws_iam_role.this.name
}
