variable "region" {
  description = "AWS region of the deployment."
  type        = string
  default     = "us-east-1"
}

variable "environment" {
  description = "Environment name (tags, resource names)."
  type        = string
  default     = "prod"
}

variable "vpc_id" {
  description = "VPC for the iamjit tasks."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (with NAT or VPC endpoints) for the iamjit tasks, in at least two AZs."
  type        = list(string)
}

variable "image_tag" {
  description = "Tag of the iamjit image in the ECR repository created here (immutable tags: e.g. v1.2.3)."
  type        = string
}

variable "external_id_parameter_name" {
  description = "SSM SecureString holding the connector external id; create it before `terraform apply` (see infra/README.md)."
  type        = string
  default     = "/iamjit/prod/external-id"
}

variable "sym_runtime_role_name" {
  description = "Name of Sym's runtime connector role (from Sym's runtime-connector module): it gets the policy to write to the Sym log stream. null to attach it yourself."
  type        = string
  default     = null
}

variable "desired_count" {
  description = "iamjit tasks (at least 2)."
  type        = number
  default     = 2
}

variable "group_path" {
  description = "IAM path of the groups iamjit manages."
  type        = string
  default     = "/sym/"
}

variable "role_path" {
  description = "IAM path of the roles the groups' members may assume; iamjit ends their sessions when a membership ends."
  type        = string
  default     = "/jit/"
}

variable "max_duration" {
  description = "Longest grant."
  type        = string
  default     = "12h"
}

variable "alarm_email" {
  description = "Email subscribed to the alarms topic (null: no subscription)."
  type        = string
  default     = null
}
