variable "name" {
  description = "Name of the runtime connector role (created under the /sym/ path)."
  type        = string
  default     = "iamjit-connector"
}

variable "task_role_arn" {
  description = "ARN of the iamjit ECS task role: the only principal that may assume the connector role."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:iam::[0-9]{12}:role/", var.task_role_arn))
    error_message = "task_role_arn must be an IAM role ARN."
  }
}

variable "external_id" {
  description = "External id the task role must present (sts:ExternalId). Same value as iamjit's IAMJIT_EXTERNAL_ID."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.external_id) >= 16 && length(var.external_id) <= 1224 && can(regex("^[[:alnum:]+=,.@:/_-]+$", var.external_id))
    error_message = "external_id must be 16 to 1224 characters of [A-Za-z0-9+=,.@:/_-] (a UUID works)."
  }
}

variable "max_session_duration" {
  description = "Maximum session duration of the connector role, in seconds."
  type        = number
  default     = 3600
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
