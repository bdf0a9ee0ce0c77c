variable "name" {
  description = "Name of the IAM-modifier role (created under the /sym/ path)."
  type        = string
  default     = "iamjit-iam-modifier"
}

variable "connector_role_arn" {
  description = "ARN of the iamjit connector role: the only principal that may assume this role."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:iam::[0-9]{12}:role/", var.connector_role_arn))
    error_message = "connector_role_arn must be an IAM role ARN."
  }
}

variable "group_path" {
  description = "IAM path of the groups iamjit may change (IAMJIT_GROUP_PATH)."
  type        = string
  default     = "/sym/"

  validation {
    condition     = can(regex("^/([[:alnum:]_+=,.@-]+/)+$", var.group_path))
    error_message = "group_path must start and end with / and not be / itself, e.g. /sym/."
  }
}

variable "role_path" {
  description = "IAM path of the roles whose sessions iamjit may end (IAMJIT_ROLE_PATH): it may read, write and delete inline policies on roles under it, and on no other role. Never /sym/, where the iamjit roles themselves live."
  type        = string
  default     = "/jit/"

  validation {
    condition     = can(regex("^/([[:alnum:]_+=,.@-]+/)+$", var.role_path)) && !startswith(var.role_path, "/sym/")
    error_message = "role_path must be a path like /jit/, not / and not under /sym/ (where the connector and this role live)."
  }
}

variable "max_session_duration" {
  description = "Maximum session duration of the role, in seconds."
  type        = number
  default     = 3600
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

# --- Identity Center (IAMJIT_SSO_*) ------------------------------------------

variable "identity_center" {
  description = "Set only on the modifier of the account that holds IAM Identity Center (IAMJIT_SSO_ACCOUNT): its instance, its identity store, and iamjit's allow-lists (IAMJIT_SSO_PERMISSION_SETS, IAMJIT_SSO_ASSIGNMENT_ACCOUNTS, IAMJIT_SSO_GROUPS). The modifier may then assign only those permission sets in only those accounts, change memberships of only those groups, and write the inline policy of only those permission sets. kms_key_arn: the instance's customer managed KMS key, if it has one. null (the default): no Identity Center right."
  type = object({
    instance_arn        = string
    identity_store_id   = string
    permission_set_arns = optional(list(string), [])
    account_ids         = optional(list(string), [])
    group_ids           = optional(list(string), [])
    kms_key_arn         = optional(string)
  })
  default = null

  validation {
    condition = var.identity_center == null ? true : (
      can(regex("^arn:aws[a-z-]*:sso:::instance/(sso)?ins-[a-zA-Z0-9.-]{16}$", var.identity_center.instance_arn)) &&
      can(regex("^(d-[0-9a-z]{10}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", var.identity_center.identity_store_id)) &&
      alltrue([for ps in var.identity_center.permission_set_arns : can(regex("^arn:aws[a-z-]*:sso:::(permissionSet|instance)/(sso)?ins-[a-zA-Z0-9.-]{16}/ps-[a-zA-Z0-9./-]{16}$", ps))]) &&
      alltrue([for id in var.identity_center.account_ids : can(regex("^[0-9]{12}$", id))]) &&
      alltrue([for g in var.identity_center.group_ids : can(regex("^([0-9a-f]{10}-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", g))])
    )
    error_message = "identity_center: instance_arn arn:aws:sso:::instance/ssoins-<16>; identity_store_id d-<10> or a UUID; permission_set_arns arn:aws:sso:::permissionSet/ssoins-<16>/ps-<16>; account_ids of 12 digits; group_ids Identity Store group ids (a UUID, optionally after 10 hex digits and a dash). No \"*\" anywhere."
  }
}

# --- the expiry backstop (IAMJIT_BACKSTOP_*) ---------------------------------

variable "backstop" {
  description = "This account's expiry backstop (module backstop): the EventBridge Scheduler group iamjit's schedules live in (IAMJIT_BACKSTOP_GROUP) and the execution role they run with. The modifier may then create, update, read and delete schedules of that group only, read the group, and pass that role, to scheduler.amazonaws.com only. null (the default): no Scheduler right."
  type = object({
    schedule_group_name = string
    role_arn            = string
  })
  default = null

  validation {
    condition     = var.backstop == null ? true : (can(regex("^[0-9a-zA-Z-_.]{1,64}$", var.backstop.schedule_group_name)) && can(regex("^arn:[^:]+:iam::[0-9]{12}:role/", var.backstop.role_arn)))
    error_message = "backstop: schedule_group_name is a Scheduler group name ([0-9a-zA-Z-_.], at most 64), role_arn an IAM role ARN."
  }
}
