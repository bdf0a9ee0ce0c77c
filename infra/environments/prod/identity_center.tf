# IAM Identity Center beside IAM (IAMJIT_SSO_*): with identity_center set,
# iamjit assigns permission sets and changes Identity Store group memberships,
# and Sym offers them in a second flow beside the IAM one.
#
# The allow-lists are the flow's targets: IAMJIT_SSO_PERMISSION_SETS is every
# target's permission set, IAMJIT_SSO_ASSIGNMENT_ACCOUNTS every target's
# account, IAMJIT_SSO_GROUPS every group target's group; the IAM modifier of
# the account holding Identity Center (this one, or the member account with
# in_member_account) may act on exactly those, and the backstop there may
# remove exactly those. Sym cannot offer what iamjit may not grant.

variable "identity_center" {
  description = "IAM Identity Center (IAMJIT_SSO_*), null for none: instance_arn and identity_store_id (IAM Identity Center console, Settings); in_member_account: Identity Center is in member_account's account (the organisation's management or delegated administrator account), not this one; region (IAMJIT_SSO_REGION, default region); kms_key_arn, the instance's customer managed key if any; permission_set_targets, {key = {permission_set_arn, account_id, label}}: the assignments the Sym flow offers (never the management account: assigning there needs IAM rights iamjit does not get); group_targets, {key = {group_id, label}}: the Identity Store groups it offers."
  type = object({
    instance_arn      = string
    identity_store_id = string
    in_member_account = optional(bool, false)
    region            = optional(string)
    kms_key_arn       = optional(string)
    permission_set_targets = optional(map(object({
      permission_set_arn = string
      account_id         = string
      label              = string
    })), {})
    group_targets = optional(map(object({
      group_id = string
      label    = string
    })), {})
  })
  default = null

  validation {
    condition     = var.identity_center == null ? true : length(var.identity_center.permission_set_targets) + length(var.identity_center.group_targets) > 0
    error_message = "identity_center: offer at least one permission_set_targets or group_targets entry."
  }
}

locals {
  ic = var.identity_center

  # What iamjit may do in Identity Center: exactly what the flow offers.
  ic_allowed = local.ic == null ? null : {
    instance_arn        = local.ic.instance_arn
    identity_store_id   = local.ic.identity_store_id
    permission_set_arns = sort(distinct([for t in values(local.ic.permission_set_targets) : t.permission_set_arn]))
    account_ids         = sort(distinct([for t in values(local.ic.permission_set_targets) : t.account_id]))
    group_ids           = sort(distinct([for t in values(local.ic.group_targets) : t.group_id]))
    kms_key_arn         = local.ic.kms_key_arn
  }

  # The modifier (and the backstop) of the account holding Identity Center.
  home_identity_center   = local.ic == null ? null : (local.ic.in_member_account ? null : local.ic_allowed)
  member_identity_center = local.ic == null ? null : (local.ic.in_member_account ? local.ic_allowed : null)

  # IAMJIT_SSO_*; null (off) without identity_center.
  iamjit_identity_center = local.ic == null ? null : {
    instance_arn           = local.ic.instance_arn
    account_id             = local.ic.in_member_account ? one(module.member_account[*].account_id) : data.aws_caller_identity.current.account_id
    region                 = coalesce(local.ic.region, var.region)
    permission_set_arns    = local.ic_allowed.permission_set_arns
    assignment_account_ids = local.ic_allowed.account_ids
    group_ids              = local.ic_allowed.group_ids
  }
}

# The Identity Center flow, beside module.sym_flow (IAM groups): the same
# custom strategy that changes nothing, custom targets iamjit reads by their
# settings, durations held to iamjit's maximum.
module "sym_identity_center_flow" {
  count  = var.manage_sym && var.identity_center != null ? 1 : 0
  source = "../../modules/sym_flow"

  name                       = "iamjit-identity-center"
  label                      = "AWS Identity Center access"
  environment_id             = module.sym_runtime[0].environment_id
  account_id                 = local.iamjit_identity_center.account_id
  sso_permission_set_targets = local.ic.permission_set_targets
  sso_group_targets          = local.ic.group_targets
  durations                  = var.sym_durations
  max_duration               = var.max_duration
  request_channel            = var.sym_request_channel
  approvers                  = var.sym_approvers
}

output "sym_identity_center_flow_id" {
  description = "The Sym flow offering Identity Center (manage_sym and identity_center)."
  value       = one(module.sym_identity_center_flow[*].flow_id)
}
