variable "name" {
  description = "Prefix of this account's backstop resources: the execution role <name>-backstop and the queue <name>-backstop-dlq."
  type        = string
  default     = "iamjit"
}

variable "schedule_group_name" {
  description = "Name of the EventBridge Scheduler group iamjit's backstop schedules live in (IAMJIT_BACKSTOP_GROUP). The execution role trusts Scheduler for this group only."
  type        = string
  default     = "iamjit"

  validation {
    condition     = can(regex("^[0-9a-zA-Z-_.]{1,64}$", var.schedule_group_name)) && var.schedule_group_name != "default"
    error_message = "schedule_group_name must be 1 to 64 of [0-9a-zA-Z-_.], and not \"default\" (every schedule without a group is there)."
  }
}

variable "group_path" {
  description = "IAM path of the groups iamjit manages in this account (IAMJIT_GROUP_PATH): the only groups a schedule may remove a user from."
  type        = string
  default     = "/sym/"

  validation {
    condition     = can(regex("^/([[:alnum:]_+=,.@-]+/)+$", var.group_path))
    error_message = "group_path must start and end with / and not be / itself, e.g. /sym/."
  }
}

variable "identity_center" {
  description = "Set in the account holding IAM Identity Center only, as module iam_modifier's identity_center: the schedules may then also delete assignments of the allowed permission sets in the allowed accounts and memberships of the allowed Identity Store groups. null: IAM groups only."
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

variable "alarm_actions" {
  description = "ARNs (an SNS topic of this account) notified when the backstop's dead-letter queue is not empty."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
