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

variable "member_account" {
  description = "A second AWS account iamjit serves (IAMJIT_ACCOUNTS): terraform_role_arn, a role there that Terraform assumes to create its connector, IAM modifier and groups (e.g. OrganizationAccountAccessRole); external_id_parameter_name, the SSM SecureString in this account holding the external id iamjit presents to that account's connector (create it first, as the home one). null: this account only."
  type = object({
    terraform_role_arn         = string
    external_id_parameter_name = optional(string, "/iamjit/prod/member-external-id")
  })
  default = null
}

# --- Sym ---------------------------------------------------------------------------

variable "manage_sym" {
  description = "The switch between the two halves. true: create Sym's half here too (runtime role, environment, log destination, targets, strategy, flow). false: the AWS half alone, nothing of Sym is created or read (the sym provider is still configured: set SYM_JWT to any value), for teams that manage Sym elsewhere (set sym_runtime_role_name) and for infra/e2e, which applies the AWS half against the emulator (docs/infra-e2e.md); Sym's half is then checked by terraform validate and the HCL checks only."
  type        = bool
  default     = true
}

variable "sym_org_slug" {
  description = "Your Sym organisation (provider sym's org). Required with manage_sym."
  type        = string
  default     = null
}

variable "sym_external_id_parameter_name" {
  description = "SSM SecureString holding the external id Sym presents to assume its runtime role (manage_sym); create it before `terraform apply`."
  type        = string
  default     = "/iamjit/prod/sym-external-id"
}

variable "slack_workspace_id" {
  description = "Slack workspace id (T...) Sym posts requests in (manage_sym)."
  type        = string
  default     = null
}

variable "sym_request_channel" {
  description = "Slack channel where access requests are posted for approval (manage_sym)."
  type        = string
  default     = "#access-requests"
}

variable "sym_error_channel" {
  description = "Slack channel for Sym's flow errors; null for none (manage_sym)."
  type        = string
  default     = null
}

variable "sym_approvers" {
  description = "Emails of the people who may approve requests; empty: anyone in sym_request_channel but the requester (manage_sym)."
  type        = list(string)
  default     = []
}

variable "sym_durations" {
  description = "Durations a requester may choose (<n>m or <n>h), each at most max_duration (manage_sym)."
  type        = list(string)
  default     = ["30m", "1h", "4h", "12h"]
}

variable "sym_runtime_role_name" {
  description = "With manage_sym = false: name of the role Sym writes its log entries with (your Sym runtime connector role); it gets the policy to write to the Sym log stream. null to attach it yourself."
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
  description = "IAM path of the roles members of the groups assume (iam_target_group's role_path), and the only roles whose inline policies iamjit may change (IAMJIT_ROLE_PATH)."
  type        = string
  default     = "/jit/"
}

variable "session_revocation" {
  description = "IAMJIT_SESSION_REVOCATION: user, role or off."
  type        = string
  default     = "user"
}

variable "max_duration" {
  description = "Longest grant (IAMJIT_MAX_DURATION), as <n>m or <n>h: Sym's duration choices are checked against it."
  type        = string
  default     = "12h"
}

variable "table_deletion_protection" {
  description = "Protect the grants table (DynamoDB) from deletion. Keep true in production; false only for an environment meant to be destroyed whole, such as the emulator run of infra/e2e (`terraform destroy` stops at a protected table)."
  type        = bool
  default     = true
}

variable "alarm_email" {
  description = "Email subscribed to the alarms topic (null: no subscription)."
  type        = string
  default     = null
}
