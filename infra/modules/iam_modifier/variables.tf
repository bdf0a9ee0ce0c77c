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
