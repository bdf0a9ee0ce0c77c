# Identity Center: what the modifier of the account holding IAM Identity Center
# may do for iamjit's aws_sso_permission_set and aws_sso_group grants, only
# with var.identity_center set.
#
# Each action on the resources the Service Authorization Reference lists for
# it ("Actions, resources, and condition keys for AWS IAM Identity Center",
# docs.aws.amazon.com/service-authorization/latest/reference/list_awsiamidentitycenter.html,
# and "... for AWS Identity Store", .../list_awsidentitystore.html), each
# statement one set of required resource types:
#
#   sso:ListInstances                                   no resource type: "*"
#   sso:CreateAccountAssignment, DeleteAccountAssignment,
#       ListAccountAssignments, ProvisionPermissionSet  Account*, Instance*, PermissionSet*
#   sso:DescribePermissionSet, GetInlinePolicyForPermissionSet,
#       PutInlinePolicyToPermissionSet                  Instance*, PermissionSet*
#   sso:DescribeAccountAssignmentCreationStatus, DescribeAccountAssignmentDeletionStatus,
#       DescribePermissionSetProvisioningStatus,
#       ListAccountAssignmentsForPrincipal              Instance*
#   identitystore:DescribeGroup                         Group*, Identitystore*
#   identitystore:ListGroupMemberships                  AllGroupMemberships*, Group*, Identitystore*
#   identitystore:CreateGroupMembership                 Group*, Identitystore*, User*
#   identitystore:DeleteGroupMembership                 Group*, GroupMembership*, Identitystore*, User*
#   identitystore:GetUserId, DescribeUser               Identitystore*, User*
#   identitystore:ListUsers                             AllUsers*, Identitystore*
#   identitystore:ListGroupMembershipsForMember         AllGroupMemberships*, Identitystore*, User*
#
# ARNs: instance arn:<p>:sso:::instance/<id>, PermissionSet
# arn:<p>:sso:::permissionSet/<instance id>/<ps id>, Account
# arn:<p>:sso:::account/<id>, Identitystore
# arn:<p>:identitystore::<account>:identitystore/<id>, Group
# arn:<p>:identitystore:::group/<id>, User .../user/<id> (AllUsers user/*),
# GroupMembership .../membership/<id> (AllGroupMemberships membership/*).
# Users and memberships are not known in advance: user/* and membership/*;
# every membership write also requires one of the allowed groups, so no
# other group's membership can change.
#
# What CreateAccountAssignment and ProvisionPermissionSet also need: in a
# member account of the organisation, nothing of the caller: IAM Identity
# Center creates and updates the AWSReservedSSO_* roles there with its own
# service-linked role AWSServiceRoleForSSO (IAM Identity Center User Guide,
# "Using service-linked roles for IAM Identity Center": iam:CreateRole,
# iam:AttachRolePolicy, iam:PutRolePolicy, ... on roles under
# /aws-reserved/sso.amazonaws.com/ named AWSReservedSSO_*). In the
# organisation's management account it needs the caller's own IAM rights
# ("Delegate who can assign single sign-on access to users and groups in the
# management account": AWSSSOMasterAccountAdministrator and IAMFullAccess):
# this modifier gets none, so do not list the management account in
# account_ids (AWS denies the assignment). The reference lists kms:Decrypt as
# a dependent action of these calls on an instance encrypted with a customer
# managed KMS key: granted on kms_key_arn when it is set. The Identity Store
# calls list sso-directory:* dependents, which take no resource (they would
# be "*", every group of the directory): not granted; iamjit reads and writes
# through identitystore only.

locals {
  # 0 or 1 element: the dynamic statements below, and the role policy.
  identity_center = var.identity_center == null ? [] : [var.identity_center]

  sso_prefix = "arn:${data.aws_partition.current.partition}:sso:::"
  ids_prefix = "arn:${data.aws_partition.current.partition}:identitystore:::"
}

data "aws_iam_policy_document" "identity_center" {
  # ListInstances takes no resource: "*" is the only resource IAM accepts.
  # DescribeOrganization (no resource either) lets iamjit warn at start when
  # an assignment account is the organisation's management account; without
  # it iamjit only notes that it could not tell.
  dynamic "statement" {
    for_each = local.identity_center
    content {
      sid       = "FindTheInstance"
      effect    = "Allow"
      actions   = ["sso:ListInstances", "organizations:DescribeOrganization"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = local.identity_center
    content {
      sid    = "AssignAllowedPermissionSetsInAllowedAccounts"
      effect = "Allow"
      actions = [
        "sso:CreateAccountAssignment",
        "sso:DeleteAccountAssignment",
        "sso:ListAccountAssignments",
        "sso:ProvisionPermissionSet",
      ]
      resources = concat(
        [statement.value.instance_arn],
        statement.value.permission_set_arns,
        [for id in statement.value.account_ids : "${local.sso_prefix}account/${id}"],
      )
    }
  }

  # PutInlinePolicyToPermissionSet: the Deny iamjit writes to end sessions of
  # an ended assignment, on the allowed permission sets only.
  dynamic "statement" {
    for_each = local.identity_center
    content {
      sid    = "ReadAndRevokeOnAllowedPermissionSets"
      effect = "Allow"
      actions = [
        "sso:DescribePermissionSet",
        "sso:GetInlinePolicyForPermissionSet",
        "sso:PutInlinePolicyToPermissionSet",
      ]
      resources = concat([statement.value.instance_arn], statement.value.permission_set_arns)
    }
  }

  dynamic "statement" {
    for_each = local.identity_center
    content {
      sid    = "StatusAndUserAssignmentsOnTheInstance"
      effect = "Allow"
      actions = [
        "sso:DescribeAccountAssignmentCreationStatus",
        "sso:DescribeAccountAssignmentDeletionStatus",
        "sso:DescribePermissionSetProvisioningStatus",
        "sso:ListAccountAssignmentsForPrincipal",
      ]
      resources = [statement.value.instance_arn]
    }
  }

  dynamic "statement" {
    for_each = local.identity_center
    content {
      sid       = "DescribeAllowedGroups"
      effect    = "Allow"
      actions   = ["identitystore:DescribeGroup"]
      resources = concat([local.identity_store_arn], [for g in statement.value.group_ids : "${local.ids_prefix}group/${g}"])
    }
  }

  dynamic "statement" {
    for_each = local.identity_center
    content {
      sid       = "ListMembersOfAllowedGroups"
      effect    = "Allow"
      actions   = ["identitystore:ListGroupMemberships"]
      resources = concat([local.identity_store_arn, "${local.ids_prefix}membership/*"], [for g in statement.value.group_ids : "${local.ids_prefix}group/${g}"])
    }
  }

  dynamic "statement" {
    for_each = local.identity_center
    content {
      sid       = "AddUsersToAllowedGroups"
      effect    = "Allow"
      actions   = ["identitystore:CreateGroupMembership"]
      resources = concat([local.identity_store_arn, "${local.ids_prefix}user/*"], [for g in statement.value.group_ids : "${local.ids_prefix}group/${g}"])
    }
  }

  dynamic "statement" {
    for_each = local.identity_center
    content {
      sid       = "RemoveUsersFromAllowedGroups"
      effect    = "Allow"
      actions   = ["identitystore:DeleteGroupMembership"]
      resources = concat([local.identity_store_arn, "${local.ids_prefix}user/*", "${local.ids_prefix}membership/*"], [for g in statement.value.group_ids : "${local.ids_prefix}group/${g}"])
    }
  }

  # The requester's user (by email) and the groups they are in.
  dynamic "statement" {
    for_each = local.identity_center
    content {
      sid       = "FindUsers"
      effect    = "Allow"
      actions   = ["identitystore:DescribeUser", "identitystore:GetUserId", "identitystore:ListUsers"]
      resources = [local.identity_store_arn, "${local.ids_prefix}user/*"]
    }
  }

  dynamic "statement" {
    for_each = local.identity_center
    content {
      sid       = "ListMembershipsOfUsers"
      effect    = "Allow"
      actions   = ["identitystore:ListGroupMembershipsForMember"]
      resources = [local.identity_store_arn, "${local.ids_prefix}user/*", "${local.ids_prefix}membership/*"]
    }
  }

  dynamic "statement" {
    for_each = try(var.identity_center.kms_key_arn, null) == null ? [] : [var.identity_center.kms_key_arn]
    content {
      sid       = "DecryptWithTheInstanceKey"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

locals {
  identity_store_arn = var.identity_center == null ? "" : "arn:${data.aws_partition.current.partition}:identitystore::${data.aws_caller_identity.current.account_id}:identitystore/${var.identity_center.identity_store_id}"
}

resource "aws_iam_role_policy" "identity_center" {
  for_each = var.identity_center == null ? {} : { identity_center = true }

  name   = "identity-center"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.identity_center.json
}
