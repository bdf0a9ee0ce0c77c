output "role_arn" {
  description = "ARN of the IAM-modifier role (IAMJIT_IAM_ROLE_ARN)."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the IAM-modifier role."
  value       = aws_iam_role.this.name
}

output "group_path" {
  description = "The group path this role may change (IAMJIT_GROUP_PATH)."
  value       = var.group_path
}

output "role_path" {
  description = "The role path whose roles' inline policies this role may change (IAMJIT_ROLE_PATH)."
  value       = var.role_path
}
