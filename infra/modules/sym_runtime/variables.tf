variable "name" {
  description = "Name of the Sym environment and runtime (e.g. prod); the role is SymRuntime<Name> under /sym/."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{0,31}$", var.name))
    error_message = "name must be 1 to 32 characters of a-z, 0-9, _ and -."
  }
}

variable "sym_account_id" {
  description = "The AWS account of Sym's platform, the only outside principal of the runtime role (Sym's production account, as in symopsio/runtime-connector/aws)."
  type        = string
  default     = "803477428605"

  validation {
    condition     = can(regex("^[0-9]{12}$", var.sym_account_id))
    error_message = "sym_account_id must be a 12-digit AWS account id."
  }
}

variable "external_id" {
  description = "External id Sym presents when it assumes the runtime role (sts:ExternalId); also given to Sym in the permission context. A secret: keep it out of code (environments/prod reads it from SSM)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.external_id) >= 16 && length(var.external_id) <= 1224 && can(regex("^[[:alnum:]+=,.@:/_-]+$", var.external_id))
    error_message = "external_id must be 16 to 1224 characters of [A-Za-z0-9+=,.@:/_-] (a UUID works)."
  }
}

variable "slack_workspace_id" {
  description = "Slack workspace id (T...) of Sym's Slack integration."
  type        = string
  nullable    = false
}

variable "error_channel" {
  description = "Slack channel for Sym's flow errors (e.g. #sym-errors); null for none."
  type        = string
  default     = null
}

variable "log_stream_name" {
  description = "Kinesis data stream Sym writes its log entries to: module sym_log_pipe's stream_name."
  type        = string
}

variable "tags" {
  description = "Tags for the AWS resources."
  type        = map(string)
  default     = {}
}
