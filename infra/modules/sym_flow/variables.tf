variable "name" {
  description = "Name (slug) of the flow, its strategy and integration; targets are <name>-<key>."
  type        = string
  default     = "iamjit"
}

variable "label" {
  description = "Label of the flow in Slack."
  type        = string
  default     = "AWS access"
}

variable "environment_id" {
  description = "The Sym environment the flow runs in (module sym_runtime's environment_id)."
  type        = string
}

variable "account_id" {
  description = "AWS account of the groups: the external_id of the strategy's custom integration."
  type        = string
}

variable "targets" {
  description = "The IAM groups the flow offers, by key: group_name (an iam_target_group's group_name, under iamjit's IAMJIT_GROUP_PATH) and the label Slack shows."
  type = map(object({
    group_name = string
    label      = string
  }))

  validation {
    condition     = length(var.targets) > 0
    error_message = "targets must name at least one group."
  }
}

variable "durations" {
  description = "The durations a requester may choose, as <n>m or <n>h; each at most max_duration."
  type        = list(string)
  default     = ["30m", "1h", "4h"]

  validation {
    condition     = length(var.durations) > 0 && alltrue([for d in var.durations : can(regex("^[1-9][0-9]*[mh]$", d))])
    error_message = "durations must be a non-empty list of <n>m or <n>h, e.g. 30m, 1h."
  }
}

variable "max_duration" {
  description = "iamjit's IAMJIT_MAX_DURATION, as <n>m or <n>h (e.g. 12h): no duration choice may exceed it."
  type        = string

  validation {
    condition     = can(regex("^[1-9][0-9]*[mh]$", var.max_duration))
    error_message = "max_duration must be <n>m or <n>h, e.g. 12h."
  }
}

variable "request_channel" {
  description = "Slack channel where requests are posted for approval (e.g. #access-requests)."
  type        = string
  nullable    = false
}

variable "approvers" {
  description = "Emails of the people who may approve; empty: anyone in request_channel."
  type        = list(string)
  default     = []
}

variable "allow_self_approval" {
  description = "Whether a requester may approve their own request."
  type        = bool
  default     = false
}
