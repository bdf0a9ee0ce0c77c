output "environment_id" {
  description = "The Sym environment (module sym_flow's environment_id)."
  value       = sym_environment.this.id
}

output "role_name" {
  description = "The runtime role: module sym_log_pipe attaches the stream's producer policy to it (producer_role_names)."
  value       = aws_iam_role.runtime.name
}

output "role_arn" {
  description = "ARN of the runtime role (the permission context's role_arn)."
  value       = aws_iam_role.runtime.arn
}

output "log_destination_id" {
  description = "The Sym log destination writing to the stream."
  value       = sym_log_destination.iamjit.id
}
