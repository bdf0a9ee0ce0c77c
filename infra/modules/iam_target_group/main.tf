# A target of a Sym aws_iam_group flow: an IAM group under /sym/ whose
# membership iamjit grants for a limited time, with what its members may do
# (managed policies, inline statements, roles they may assume).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  iam_prefix = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}"
  role_policy_attachments = {
    for pair in flatten([
      for role, spec in var.roles : [
        for arn in spec.policy_arns : { key = "${role}|${arn}", role = role, arn = arn }
      ]
    ]) : pair.key => pair
  }
  assumable_role_arns = concat([for r in aws_iam_role.this : r.arn], var.assumable_role_arns)

  # A session's source identity is the member's own IAM user name: the roles'
  # trust requires it (require_source_identity), and the group lets members
  # set no other.
  own_source_identity = { test = "StringEquals", variable = "sts:SourceIdentity", values = ["$${aws:username}"] }

  # The conditions of the roles' trust: IAM users only, their own name as
  # source identity, MFA.
  role_trust_conditions = merge(
    { users = { test = "ArnLike", variable = "aws:PrincipalArn", values = ["${local.iam_prefix}:user/*"] } },
    var.require_source_identity ? { source_identity = local.own_source_identity } : {},
    var.require_mfa ? { mfa = { test = "Bool", variable = "aws:MultiFactorAuthPresent", values = ["true"] } } : {},
  )
}

resource "aws_iam_group" "this" {
  name = var.name
  path = var.path
}

resource "aws_iam_group_policy_attachment" "this" {
  for_each   = toset(var.policy_arns)
  group      = aws_iam_group.this.name
  policy_arn = each.value
}

data "aws_iam_policy_document" "group" {
  dynamic "statement" {
    for_each = var.statements
    content {
      sid       = statement.value.sid
      effect    = "Allow"
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }

  dynamic "statement" {
    for_each = length(local.assumable_role_arns) > 0 ? [1] : []
    content {
      sid       = "AssumeTargetRoles"
      effect    = "Allow"
      actions   = ["sts:AssumeRole"]
      resources = local.assumable_role_arns
    }
  }

  # A member may name only themselves as the session's source identity: the
  # roles' trust (below) requires it, and CloudTrail then shows the person.
  dynamic "statement" {
    for_each = length(local.assumable_role_arns) > 0 && var.require_source_identity ? [1] : []
    content {
      sid       = "SetOwnSourceIdentity"
      effect    = "Allow"
      actions   = ["sts:SetSourceIdentity"]
      resources = local.assumable_role_arns

      condition {
        test     = local.own_source_identity.test
        variable = local.own_source_identity.variable
        values   = local.own_source_identity.values
      }
    }
  }
}

resource "aws_iam_group_policy" "this" {
  count  = length(var.statements) + length(local.assumable_role_arns) > 0 ? 1 : 0
  name   = "${var.name}-inline"
  group  = aws_iam_group.this.name
  policy = data.aws_iam_policy_document.group.json
}

# Roles members may assume: trusted by the account, but only for IAM users
# (so no role, the iamjit connector included, can chain into them); the
# group policy above is what actually lets a member assume them. With
# require_source_identity (the default) a session must carry the member's own
# IAM user name as its SourceIdentity, so every action taken with the role is
# attributable in CloudTrail and iamjit can end one person's sessions
# (IAMJIT_SESSION_REVOCATION=user) rather than every session of the role.
data "aws_iam_policy_document" "role_trust" {
  statement {
    sid     = "IamUsersAllowedByGroupPolicy"
    effect  = "Allow"
    actions = var.require_source_identity ? ["sts:AssumeRole", "sts:SetSourceIdentity"] : ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["${local.iam_prefix}:root"]
    }

    dynamic "condition" {
      for_each = local.role_trust_conditions
      content {
        test     = condition.value.test
        variable = condition.value.variable
        values   = condition.value.values
      }
    }
  }
}

resource "aws_iam_role" "this" {
  for_each             = var.roles
  name                 = each.key
  path                 = var.role_path
  description          = "Assumable by members of IAM group ${var.name} while iamjit grants them membership."
  assume_role_policy   = data.aws_iam_policy_document.role_trust.json
  max_session_duration = each.value.max_session_duration
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "this" {
  for_each   = local.role_policy_attachments
  role       = aws_iam_role.this[each.value.role].name
  policy_arn = each.value.arn
}
