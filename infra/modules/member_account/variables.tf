variable "name" {
  description = "Prefix of this account's iamjit roles: <name>-connector and <name>-iam-modifier, under /sym/."
  type        = string
  default     = "iamjit"
}

variable "task_role_arn" {
  description = "The home account's iamjit task role (module iamjit's task_role_arn): the only principal this account's connector trusts."
  type        = string
}

variable "external_id" {
  description = "External id the home task role presents to this account's connector (sts:ExternalId): this account's external_id in IAMJIT_ACCOUNTS. Use another value than the home account's."
  type        = string
  sensitive   = true
}

variable "group_path" {
  description = "IAM path of the groups iamjit may change here (the IAM modifier's group_path); the target groups are created under it. The same as the home account's IAMJIT_GROUP_PATH."
  type        = string
  default     = "/sym/"
}

variable "role_path" {
  description = "IAM path of the roles whose sessions iamjit may end here (the IAM modifier's role_path); the target groups' roles are created under it. The same as the home account's IAMJIT_ROLE_PATH."
  type        = string
  default     = "/jit/"
}

variable "target_groups" {
  description = "The groups iamjit grants in this account, by group name: module iam_target_group's inputs (policy_arns, statements, roles, assumable_role_arns, require_source_identity, require_mfa), each defaulting as there."
  type = map(object({
    policy_arns = optional(list(string))
    statements = optional(list(object({
      sid       = optional(string)
      actions   = list(string)
      resources = list(string)
    })))
    roles = optional(map(object({
      policy_arns          = list(string)
      max_session_duration = optional(number)
    })))
    assumable_role_arns     = optional(list(string))
    require_source_identity = optional(bool)
    require_mfa             = optional(bool)
  }))
  default = {}
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "identity_center" {
  description = "Set when this account holds IAM Identity Center (IAMJIT_SSO_ACCOUNT): module iam_modifier's identity_center (the instance, the identity store, iamjit's allow-lists). null: IAM groups only."
  type = object({
    instance_arn        = string
    identity_store_id   = string
    permission_set_arns = optional(list(string), [])
    account_ids         = optional(list(string), [])
    group_ids           = optional(list(string), [])
    kms_key_arn         = optional(string)
  })
  default = null
}

variable "backstop" {
  description = "Create this account's expiry backstop (module backstop) and let its IAM modifier manage the backstop schedules: its execution role and dead-letter queue become backstop_role_arn and backstop_dlq_arn of accounts_entry. On by default (the iamjit image must read both keys: an older one refuses an IAMJIT_ACCOUNTS entry holding them); false: no backstop in this account, and neither key."
  type        = bool
  default     = true
  nullable    = false
}

variable "backstop_group" {
  description = "The backstop's schedule group: the home account's IAMJIT_BACKSTOP_GROUP (the same name in every account)."
  type        = string
  default     = "iamjit"
}

variable "backstop_alarm_actions" {
  description = "ARNs of this account (an SNS topic) the backstop's dead-letter-queue alarm notifies."
  type        = list(string)
  default     = []
}
