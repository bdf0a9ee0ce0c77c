# The IAM modifier: the last hop of iamjit's role chain. It may add users to
# and remove users from groups under var.group_path, read those groups and
# their policies (which roles a membership lets its members assume), read
# users and their tags (email -> IAM user mapping, reconciliation), list and
# read roles, and write the one inline policy iamjit owns on roles under
# var.role_path (the Deny that ends a revoked member's older sessions).

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
  description          = "iamjit IAM modifier: add/remove users to/from groups under ${var.group_path}, revocation policies on roles under ${var.role_path}; assumed only by the iamjit connector role."
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

  # Which roles a group lets its members assume: its inline and attached
  # policies, read on the managed groups only.
  statement {
    sid    = "ReadPoliciesOfGroupsUnderPath"
    effect = "Allow"
    actions = [
      "iam:GetGroupPolicy",
      "iam:ListAttachedGroupPolicies",
      "iam:ListGroupPolicies",
    ]
    resources = ["${local.iam_prefix}:group${var.group_path}*"]
  }

  # The managed policies attached to those groups: customer-managed ones of
  # this account and AWS-managed ones (account "aws").
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

  # GetRole on every role: a group's policy may name roles outside the path,
  # which iamjit reports (and never changes). It reveals no more than
  # ListRoles below already does (both return the trust policy).
  statement {
    sid       = "ReadRoles"
    effect    = "Allow"
    actions   = ["iam:GetRole"]
    resources = ["${local.iam_prefix}:role/*"]
  }

  # The only writes outside group membership: iamjit's own inline policy on
  # roles under the role path. ListRolePolicies lets it see how close a role
  # is to IAM's inline-policy size limit before it writes; it, GetRolePolicy
  # and ListAttachedRolePolicies read which roles a role under the path may
  # assume in turn (role chaining), whose sessions end too.
  statement {
    sid    = "SessionRevocationPolicyOnRolesUnderPath"
    effect = "Allow"
    actions = [
      "iam:DeleteRolePolicy",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListRolePolicies",
      "iam:PutRolePolicy",
    ]
    resources = ["${local.iam_prefix}:role${var.role_path}*"]
  }

  # ListGroupsForUser: the read-back of every removal (a late add undone,
  # README "A late add is undone in seconds") lists the user's groups.
  statement {
    sid    = "ReadUsersAndTheirTags"
    effect = "Allow"
    actions = [
      "iam:GetUser",
      "iam:ListGroupsForUser",
      "iam:ListUserTags",
    ]
    resources = ["${local.iam_prefix}:user/*"]
  }

  # iam:ListUsers, iam:ListGroups and iam:ListRoles support no resource-level
  # permissions: "*" is the only resource IAM accepts for them. ListRoles
  # resolves a group policy's wildcard role ARNs against the roles that exist.
  statement {
    sid    = "ListForReconciliation"
    effect = "Allow"
    actions = [
      "iam:ListGroups",
      "iam:ListRoles",
      "iam:ListUsers",
    ]
    resources = ["*"]
  }

  # The email -> IAM user index by tag: 1,000 users and their tags a call,
  # where ListUsers + ListUserTags cost a call per user (IAM throttling in a
  # large account). Read-only, and it takes no resource. Without it iamjit
  # falls back to the per-user calls above.
  statement {
    sid       = "ReadUsersWithTheirTagsInBulk"
    effect    = "Allow"
    actions   = ["iam:GetAccountAuthorizationDetails"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "modify_groups" {
  name   = "modify-groups-under-path"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.modify_groups.json
}
