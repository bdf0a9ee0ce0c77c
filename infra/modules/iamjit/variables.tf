variable "name" {
  description = "Name prefix of every resource (cluster, service, queues, roles, log group)."
  type        = string
  default     = "iamjit"
}

# --- image and network ------------------------------------------------------

variable "image" {
  description = "Container image of iamjit, e.g. <account>.dkr.ecr.<region>.amazonaws.com/iamjit:v1.2.3 (prefer an immutable tag or a digest)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository the image is pulled from (the execution role may pull only from it). null for a public image."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC of the tasks."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks (private subnets with a NAT gateway or VPC endpoints for ECR, S3, Logs, SSM, SQS, DynamoDB, EventBridge, STS, IAM)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Extra security groups for the tasks (the module adds one allowing only HTTPS egress)."
  type        = list(string)
  default     = []
}

variable "assign_public_ip" {
  description = "Give tasks a public IP (only for public subnets without NAT)."
  type        = bool
  default     = false
}

# --- service ----------------------------------------------------------------

variable "desired_count" {
  description = "Number of iamjit tasks. At least 2: replicas are safe (design invariant 6) and one must survive a deployment or an AZ failure."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 2
    error_message = "desired_count must be at least 2."
  }
}

variable "cpu" {
  description = "Task CPU units."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Task memory (MiB)."
  type        = number
  default     = 512
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64 (the image must be built for it)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "shutdown_timeout_seconds" {
  description = "IAMJIT_SHUTDOWN_TIMEOUT in seconds: how long iamjit drains in-flight messages after SIGTERM."
  type        = number
  default     = 25
}

variable "stop_timeout" {
  description = "Seconds ECS waits after SIGTERM before SIGKILL. Must exceed shutdown_timeout_seconds; Fargate allows at most 120."
  type        = number
  default     = 40

  validation {
    condition     = var.stop_timeout > 25 && var.stop_timeout <= 120
    error_message = "stop_timeout must be above iamjit's default drain time (25s) and at most 120."
  }
}

variable "log_retention_days" {
  description = "Retention of the container log group."
  type        = number
  default     = 90
}

# --- iamjit settings --------------------------------------------------------

variable "connector_role_arn" {
  description = "IAMJIT_CONNECTOR_ROLE_ARN: the connector role (module connector)."
  type        = string
}

variable "iam_role_arn" {
  description = "IAMJIT_IAM_ROLE_ARN: the IAM-modifier role (module iam_modifier)."
  type        = string
}

variable "external_id_parameter_arn" {
  description = "ARN of the SSM Parameter Store SecureString (arn:...:ssm:...:parameter/...) or Secrets Manager secret holding IAMJIT_EXTERNAL_ID. Injected through the container's secrets, never as plain environment."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:(ssm|secretsmanager):", var.external_id_parameter_arn))
    error_message = "external_id_parameter_arn must be an SSM parameter or Secrets Manager secret ARN."
  }
}

variable "external_id_kms_key_arn" {
  description = "Customer-managed KMS key encrypting the external id parameter, if any (null: the AWS-managed key)."
  type        = string
  default     = null
}

variable "member_accounts" {
  description = "IAMJIT_ACCOUNTS: the other AWS accounts iamjit serves, by account id, each with its role chain (connector_role_arn, external_id, iam_role_arn) and, with its expiry backstop, backstop_role_arn and backstop_dlq_arn (the execution role and dead-letter queue of that account): merge module member_account's accounts_entry of each. The task role may assume exactly these connectors besides connector_role_arn; the map, as JSON, is one Secrets Manager secret created here, reaching the container through its secrets, never its environment. Empty (the default): this account only."
  type = map(object({
    connector_role_arn = string
    external_id        = string
    iam_role_arn       = string
    backstop_role_arn  = optional(string)
    backstop_dlq_arn   = optional(string)
  }))
  default   = {}
  nullable  = false
  sensitive = true

  validation {
    condition = alltrue([
      for id, a in var.member_accounts : can(regex("^[0-9]{12}$", id)) &&
      can(regex("^arn:[^:]+:iam::${id}:role/", a.connector_role_arn)) && can(regex("^arn:[^:]+:iam::${id}:role/", a.iam_role_arn)) &&
      (try(a.backstop_role_arn, null) == null || can(regex("^arn:[^:]+:iam::${id}:role/", try(a.backstop_role_arn, "")))) &&
      (try(a.backstop_dlq_arn, null) == null || can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:${id}:[a-zA-Z0-9_-]{1,80}$", try(a.backstop_dlq_arn, ""))))
    ])
    error_message = "member_accounts: each key must be a 12-digit account id, its connector_role_arn, iam_role_arn and backstop_role_arn (if any) roles of that account, its backstop_dlq_arn (if any) a standard SQS queue of that account."
  }
}

variable "group_path" {
  description = "IAMJIT_GROUP_PATH: only groups under this IAM path may change."
  type        = string
  default     = "/sym/"
}

variable "role_path" {
  description = "IAMJIT_ROLE_PATH: only roles under this IAM path get session-revocation statements (the IAM modifier's role_path; iam_target_group creates its roles there)."
  type        = string
  default     = "/jit/"
}

variable "session_revocation" {
  description = "IAMJIT_SESSION_REVOCATION: when a membership ends, deny the member's older role sessions (user, where the role requires sts:SourceIdentity; role-wide where it does not), every older session of the role (role), or nothing (off)."
  type        = string
  default     = "user"

  validation {
    condition     = contains(["user", "role", "off"], var.session_revocation)
    error_message = "session_revocation must be user, role or off."
  }
}

variable "max_duration" {
  description = "IAMJIT_MAX_DURATION: the longest grant (Go duration)."
  type        = string
  default     = "12h"
}

variable "http_addr" {
  description = "IAMJIT_HTTP_ADDR: health and metrics listener (the container health check uses it)."
  type        = string
  default     = ":8080"
}

variable "reconcile_interval" {
  description = "How often iamjit run compares IAM group members with active grants and repairs drift (Go duration; \"0\" turns it off). On by default: it closes the one gap the membership protocol leaves, an IAM call from a killed task landing late."
  type        = string
  default     = "15m"
}

variable "log_level" {
  description = "IAMJIT_LOG_LEVEL."
  type        = string
  default     = "info"
}

variable "event_sources" {
  description = "EventBridge sources of Sym events: the rule's source filter and IAMJIT_SOURCES. sym_log_pipe puts Sym events with source \"sym\"."
  type        = list(string)
  default     = ["sym"]
}

variable "extra_environment" {
  description = "More IAMJIT_* settings (e.g. IAMJIT_IDENTITY). Cannot override the ones this module sets, and never IAMJIT_EXTERNAL_ID or IAMJIT_ACCOUNTS (secrets)."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.extra_environment), "IAMJIT_EXTERNAL_ID") && !contains(keys(var.extra_environment), "IAMJIT_ACCOUNTS")
    error_message = "IAMJIT_EXTERNAL_ID and IAMJIT_ACCOUNTS are secrets: set external_id_parameter_arn and member_accounts, never extra_environment."
  }
}

# --- events, queues, table --------------------------------------------------

variable "sym_event_bus_name" {
  description = "EventBridge bus Sym events arrive on (module sym_log_pipe's event_bus_name)."
  type        = string
}

variable "results_bus_name" {
  description = "Name of the EventBridge bus iamjit publishes results to (IAMJIT_EVENT_BUS). Created here."
  type        = string
  default     = "iamjit-results"
}

variable "table_name" {
  description = "Name of the DynamoDB table (IAMJIT_TABLE)."
  type        = string
  default     = "iamjit"
}

variable "table_deletion_protection" {
  description = "Protect the DynamoDB table from deletion."
  type        = bool
  default     = true
}

variable "max_receive_count" {
  description = "Receives before a message moves to the DLQ."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the queue."
  type        = number
  default     = 120
}

variable "message_retention_seconds" {
  description = "Retention of the main queue (the DLQ keeps 14 days, the maximum)."
  type        = number
  default     = 345600
}

variable "rule_maximum_event_age_seconds" {
  description = "How long EventBridge retries delivering to the queue before using the rule's DLQ."
  type        = number
  default     = 86400
}

variable "rule_maximum_retry_attempts" {
  description = "EventBridge delivery retries before using the rule's DLQ."
  type        = number
  default     = 185
}

# --- alarms -----------------------------------------------------------------

variable "alarm_actions" {
  description = "ARNs (e.g. SNS topics) notified when an alarm fires or clears."
  type        = list(string)
  default     = []
}

variable "oldest_message_alarm_seconds" {
  description = "Alarm when the oldest message in the queue is older than this."
  type        = number
  default     = 600
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

# --- Identity Center and the expiry backstop ----------------------------------

variable "identity_center" {
  description = "IAMJIT_SSO_*: instance_arn (IAMJIT_SSO_INSTANCE_ARN), account_id (IAMJIT_SSO_ACCOUNT, the account holding Identity Center: the home one or one of member_accounts), region (IAMJIT_SSO_REGION), and the allow-lists permission_set_arns (IAMJIT_SSO_PERMISSION_SETS), assignment_account_ids (IAMJIT_SSO_ASSIGNMENT_ACCOUNTS), group_ids (IAMJIT_SSO_GROUPS), comma-separated in the environment. Each optional: an empty one is not set (off); null (the default): all off."
  type = object({
    instance_arn           = optional(string, "")
    account_id             = optional(string, "")
    region                 = optional(string, "")
    permission_set_arns    = optional(list(string), [])
    assignment_account_ids = optional(list(string), [])
    group_ids              = optional(list(string), [])
  })
  default = null

  validation {
    condition = (
      try(var.identity_center.instance_arn, "") == "" || can(regex("^arn:aws[a-z-]*:sso:::instance/(sso)?ins-[a-zA-Z0-9.-]{16}$", var.identity_center.instance_arn))
      ) && (
      try(var.identity_center.account_id, "") == "" || can(regex("^[0-9]{12}$", try(var.identity_center.account_id, "")))
      ) && (
      try(var.identity_center.region, "") == "" || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", try(var.identity_center.region, "")))
      ) && alltrue([
        for ps in try(var.identity_center.permission_set_arns, []) : can(regex("^arn:aws[a-z-]*:sso:::(permissionSet|instance)/(sso)?ins-[a-zA-Z0-9.-]{16}/ps-[a-zA-Z0-9./-]{16}$", ps))
        ]) && alltrue([
        for id in try(var.identity_center.assignment_account_ids, []) : can(regex("^[0-9]{12}$", id))
        ]) && alltrue([
        for g in try(var.identity_center.group_ids, []) : can(regex("^([0-9a-f]{10}-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", g))
    ])
    error_message = "identity_center: instance_arn arn:aws:sso:::instance/ssoins-<16>; account_id and assignment_account_ids of 12 digits; region a region name (us-east-1); permission_set_arns arn:aws:sso:::permissionSet/ssoins-<16>/ps-<16> (moto's arn:aws:sso:::instance/ssoins-<16>/ps-<16> too); group_ids Identity Store group ids (a UUID, optionally after 10 hex digits and a dash)."
  }
}

variable "backstop" {
  description = "The home account's expiry backstop (module backstop): role_arn (IAMJIT_BACKSTOP_ROLE_ARN; empty: off), group (IAMJIT_BACKSTOP_GROUP, the schedule group, default iamjit), grace (IAMJIT_BACKSTOP_GRACE: how long after a grant's expiry the schedule removes what iamjit has not, default 2m), dlq_arn (IAMJIT_BACKSTOP_DLQ_ARN: the dead-letter queue of the schedules' removals that kept failing, module backstop's dlq_arn, a queue of role_arn's account; empty: none, iamjit warns); null (the default): off. A member account's role and queue are its backstop_role_arn and backstop_dlq_arn in member_accounts."
  type = object({
    role_arn = optional(string, "")
    group    = optional(string, "iamjit")
    grace    = optional(string, "2m")
    dlq_arn  = optional(string, "")
  })
  default = null

  validation {
    condition = (
      try(var.backstop.role_arn, "") == "" || can(regex("^arn:[^:]+:iam::[0-9]{12}:role/", try(var.backstop.role_arn, "")))
      ) && can(regex("^[0-9a-zA-Z-_.]{1,64}$", try(var.backstop.group, "iamjit"))) && (
      can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$", try(var.backstop.grace, "2m")))
      ) && (
      try(var.backstop.dlq_arn, "") == "" || can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:${try(regex("^arn:[^:]+:iam::([0-9]{12}):", var.backstop.role_arn)[0], "[0-9]{12}")}:[a-zA-Z0-9_-]{1,80}$", try(var.backstop.dlq_arn, "")))
    )
    error_message = "backstop: role_arn an IAM role ARN (or empty: off), group a Scheduler group name ([0-9a-zA-Z-_.], at most 64), grace a Go duration (2m), dlq_arn a standard SQS queue ARN of role_arn's account (or empty: none)."
  }
}
