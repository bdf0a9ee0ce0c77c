# The IAM modifier: the last hop of iamjit's role chain. It may add users to
# and remove users from groups under var.group_path, read those groups, and
# read users and their tags (email -> IAM user mapping, reconciliation).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  iam_prefix = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}"
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "ConnectorRoleOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [var.connector_role_arn]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  path                 = "/sym/"
  description          = "iamjit IAM modifier: add/remove users to/from groups under ${var.group_path}; assumed only by the iamjit connector role."
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
  tags                 = var.tags
}

data "aws_iam_policy_document" "modify_groups" {
  statement {
    sid    = "MembershipOfGroupsUnderPath"
    effect = "Allow"
    actions = [
      "iam:AddUserToGroup",
      "iam:GetGroup",
      "iam:RemoveUserFromGroup",
    ]
    resources = ["${local.iam_prefix}:group${var.group_path}*"]
  }

  statement {
    sid    = "ReadUsersAndTheirTags"
    effect = "Allow"
    actions = [
      "iam:GetUser",
      "iam:ListUserTags",
    ]
    resources = ["${local.iam_prefix}:user/*"]
  }

  # iam:ListUsers and iam:ListGroups support no resource-level permissions:
  # "*" is the only resource IAM accepts for them. They only list names.
  statement {
    sid    = "ListForReconciliation"
    effect = "Allow"
    actions = [
      "iam:ListGroups",
      "iam:ListUsers",
    ]
    resources = ["*"]
  }
}

# Session revocation: when a membership ends, iamjit reads which roles the
# group lets its members assume and puts its own inline policy
# (iamjit-session-revocation) on those under var.role_path, denying sessions
# issued before the revocation. IAM has no condition key for an inline
# policy's name, so Put/DeleteRolePolicy are scoped by path only.
data "aws_iam_policy_document" "revoke_sessions" {
  statement {
    sid    = "ReadWhatGroupsMayAssume"
    effect = "Allow"
    actions = [
      "iam:GetGroupPolicy",
      "iam:ListAttachedGroupPolicies",
      "iam:ListGroupPolicies",
    ]
    resources = ["${local.iam_prefix}:group${var.group_path}*"]
  }

  statement {
    sid    = "ReadManagedPolicies"
    effect = "Allow"
    actions = [
      "iam:GetPolicy",
      "iam:GetPolicyVersion",
    ]
    resources = [
      "${local.iam_prefix}:policy/*",
      "arn:${data.aws_partition.current.partition}:iam::aws:policy/*",
    ]
  }

  statement {
    sid    = "ReadRoles"
    effect = "Allow"
    actions = [
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListRolePolicies",
    ]
    resources = ["${local.iam_prefix}:role/*"]
  }

  # iam:ListRoles supports no resource-level permissions; it resolves
  # wildcards in group policies against the roles that exist.
  statement {
    sid       = "ListRoles"
    effect    = "Allow"
    actions   = ["iam:ListRoles"]
    resources = ["*"]
  }

  statement {
    sid    = "RevocationPolicyOnRolesUnderPath"
    effect = "Allow"
    actions = [
      "iam:DeleteRolePolicy",
      "iam:PutRolePolicy",
    ]
    resources = ["${local.iam_prefix}:role${var.role_path}*"]
  }
}

resource "aws_iam_role_policy" "revoke_sessions" {
  name   = "revoke-sessions-under-role-path"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.revoke_sessions.json
}

resource "aws_iam_role_policy" "modify_groups" {
  name   = "modify-groups-under-path"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.modify_groups.json
}
