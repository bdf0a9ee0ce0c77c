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

output "role_path" {
  description = "IAM path of the roles created here: iamjit's IAMJIT_ROLE_PATH (and the IAM modifier's role_path) must contain it."
  value       = var.role_path
}

output "requires_source_identity" {
  description = "Whether the roles created here require sts:SourceIdentity = the member's IAM user name."
  value       = var.require_source_identity
}
