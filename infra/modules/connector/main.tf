# The runtime connector: the first hop of iamjit's role chain
# (task role -> connector -> IAM modifier). It can do one thing: assume roles
# under /sym/ in this account, and only the iamjit task role presenting the
# external id may assume it.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "IamjitTaskRoleWithExternalId"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [var.task_role_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  path                 = "/sym/"
  description          = "iamjit runtime connector: assumed by the iamjit task role with an external id; may only assume roles under /sym/."
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
  tags                 = var.tags
}

data "aws_iam_policy_document" "assume_sym_roles" {
  statement {
    sid       = "AssumeRolesUnderSymPathOnly"
    effect    = "Allow"
    actions   = ["sts:AssumeRole"]
    resources = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/sym/*"]
  }
}

resource "aws_iam_role_policy" "assume_sym_roles" {
  name   = "assume-sym-roles"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.assume_sym_roles.json
}
