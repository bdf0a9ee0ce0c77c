variable "name" {
  description = "Name of the IAM group. This is the value of the Sym target's settings.iam_group."
  type        = string
}

variable "path" {
  description = "IAM path of the group. Must be under iamjit's IAMJIT_GROUP_PATH (default /sym/) or iamjit cannot manage it."
  type        = string
  default     = "/sym/"

  validation {
    condition     = can(regex("^/([[:alnum:]_+=,.@-]+/)+$", var.path))
    error_message = "path must start and end with / and not be / itself, e.g. /sym/."
  }
}

variable "policy_arns" {
  description = "Managed policies attached to the group (what a member may do while the grant lasts)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "statements" {
  description = "Inline policy statements for the group. Never \"*\", \"iam:*\" or \"sts:*\": those would let a temporary member make access permanent."
  type = list(object({
    sid       = optional(string)
    actions   = list(string)
    resources = list(string)
  }))
  default  = []
  nullable = false

  validation {
    condition = alltrue([
      for s in var.statements : alltrue([
        for a in s.actions : !contains(["*", "iam:*", "sts:*"], lower(a))
      ])
    ])
    error_message = "statements must not grant \"*\", \"iam:*\" or \"sts:*\"."
  }
}

variable "roles" {
  description = "Roles members of the group may assume, created by this module under role_path (never /sym/: the iamjit connector may assume anything there)."
  type = map(object({
    policy_arns          = list(string)
    max_session_duration = optional(number, 3600)
  }))
  default  = {}
  nullable = false
}

variable "assumable_role_arns" {
  description = "Existing roles members of the group may assume."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "role_path" {
  description = "IAM path of the roles created from var.roles."
  type        = string
  default     = "/jit/"

  validation {
    condition     = can(regex("^/([[:alnum:]_+=,.@-]+/)+$", var.role_path)) && !startswith(var.role_path, "/sym/")
    error_message = "role_path must be a path like /jit/ and must not be under /sym/ (the iamjit connector may assume roles there)."
  }
}

variable "require_source_identity" {
  description = "Roles created here accept a member's session only with sts:SourceIdentity equal to their IAM user name (aws sts assume-role --source-identity <user>): CloudTrail shows the person behind every role session, and iamjit can end one person's sessions instead of the role's. Turn off only for clients that cannot set a source identity."
  type        = bool
  default     = true
  nullable    = false
}

variable "require_mfa" {
  description = "Require MFA to assume the roles created from var.roles."
  type        = bool
  default     = false
  nullable    = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
