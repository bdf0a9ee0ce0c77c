variable "name" {
  description = "Name of the Kinesis data stream Sym's log destination writes to; prefix of the other resources."
  type        = string
  default     = "sym-log"
}

variable "event_bus_name" {
  description = "Name of the EventBridge bus Sym events are put on (created here)."
  type        = string
  default     = "sym-events"
}

variable "event_source" {
  description = "Source of the events the pipe puts (iamjit's IAMJIT_SOURCES and its rule filter expect \"sym\")."
  type        = string
  default     = "sym"
}

variable "detail_type" {
  description = "detail-type of the events the pipe puts."
  type        = string
  default     = "SymLogEntry"
}

variable "stream_retention_hours" {
  description = "Retention of the stream (records can be re-read within it)."
  type        = number
  default     = 168
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the stream; null uses the AWS-managed key alias/aws/kinesis."
  type        = string
  default     = null
}

variable "producer_role_names" {
  description = "Roles allowed to write to the stream: the Sym runtime connector role (the role of the sym_integration your sym_log_destination uses)."
  type        = list(string)
  default     = []
}

variable "batch_size" {
  description = "Records per pipe invocation."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10
    error_message = "batch_size must be between 1 and 10 (one PutEvents call)."
  }
}

variable "maximum_retry_attempts" {
  description = "Pipe retries of a failing batch before it goes to the pipe DLQ."
  type        = number
  default     = 10
}

variable "maximum_record_age_in_seconds" {
  description = "Records older than this are sent to the pipe DLQ instead of the bus."
  type        = number
  default     = 86400
}

variable "archive_retention_days" {
  description = "Retention of the archive of the Sym bus (replayable with EventBridge replay). 0 keeps events indefinitely."
  type        = number
  default     = 30
}

variable "alarm_actions" {
  description = "ARNs (e.g. SNS topics) notified when an alarm fires or clears."
  type        = list(string)
  default     = []
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when the pipe lags the stream by more than this."
  type        = number
  default     = 600000
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
