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
  description = "The IAM groups the flow offers, by key: group_name (an iam_target_group's group_name, under iamjit's IAMJIT_GROUP_PATH) and the label Slack shows. With sso_permission_set_targets and sso_group_targets, at least one target in all."
  type = map(object({
    group_name = string
    label      = string
  }))
  default  = {}
  nullable = false
}

variable "sso_permission_set_targets" {
  description = "IAM Identity Center permission set assignments the flow offers, by key: permission_set_arn and account_id (one of iamjit's IAMJIT_SSO_PERMISSION_SETS, and of its IAMJIT_SSO_ASSIGNMENT_ACCOUNTS), and the label Slack shows. A custom target with settings permission_set_arn and account_id: iamjit reads it as aws_sso_permission_set."
  type = map(object({
    permission_set_arn = string
    account_id         = string
    label              = string
  }))
  default  = {}
  nullable = false

  validation {
    condition = alltrue([for t in values(var.sso_permission_set_targets) :
      can(regex("^arn:aws[a-z-]*:sso:::(permissionSet|instance)/(sso)?ins-[a-zA-Z0-9.-]{16}/ps-[a-zA-Z0-9./-]{16}$", t.permission_set_arn)) && can(regex("^[0-9]{12}$", t.account_id))
    ])
    error_message = "sso_permission_set_targets: permission_set_arn arn:aws:sso:::permissionSet/ssoins-<16>/ps-<16>, account_id 12 digits."
  }
}

variable "sso_group_targets" {
  description = "Identity Store groups the flow offers, by key: group_id (one of iamjit's IAMJIT_SSO_GROUPS) and the label Slack shows. A custom target with settings group_id: iamjit reads it as aws_sso_group."
  type = map(object({
    group_id = string
    label    = string
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for t in values(var.sso_group_targets) : can(regex("^([0-9a-f]{10}-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", t.group_id))])
    error_message = "sso_group_targets: group_id is an Identity Store group id (a UUID, optionally after 10 hex digits and a dash)."
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
