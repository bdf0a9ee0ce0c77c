output "group_name" {
  description = "Name of the group: the Sym target's settings.iam_group."
  value       = aws_iam_group.this.name
}

output "group_arn" {
  description = "ARN of the group."
  value       = aws_iam_group.this.arn
}

output "role_arns" {
  description = "ARNs of the roles created from var.roles, by name."
  value       = { for k, r in aws_iam_role.this : k => r.arn }
}
