variable "name" {
  description = "Prefix of the alarm names: <name>-<key>."
  type        = string
}

variable "actions" {
  description = "ARNs (e.g. SNS topics) notified when an alarm fires or clears."
  type        = list(string)
  default     = []
}

variable "dead_letter_queues" {
  description = "Dead-letter queues by key: each gets the alarm <name>-<key>-not-empty, firing on the first visible message."
  type = map(object({
    queue_name  = string
    description = string
  }))
  default = {}
}

variable "alarms" {
  description = "Any other alarm by key (<name>-<key>): metric_name of namespace with dimensions, its statistic over a minute compared with threshold, evaluation_periods minutes running. By default an alarm is a minute's Maximum above threshold, and missing data is fine. Keys must not end in -not-empty (the dead-letter queues' alarms)."
  type = map(object({
    description         = string
    namespace           = string
    metric_name         = string
    dimensions          = map(string)
    threshold           = number
    statistic           = optional(string, "Maximum")
    evaluation_periods  = optional(number, 1)
    comparison_operator = optional(string, "GreaterThanThreshold")
    treat_missing_data  = optional(string, "notBreaching")
  }))
  default = {}

  validation {
    condition     = alltrue([for k in keys(var.alarms) : !endswith(k, "-not-empty")])
    error_message = "alarms keys ending in -not-empty are the dead-letter queues' alarms."
  }
}

variable "tags" {
  description = "Tags for every alarm."
  type        = map(string)
  default     = {}
}
