# Sym's runtime in this account, both halves: the AWS role Sym's platform
# assumes (its runtime connector), and the Sym resources that use it: the
# permission context integration, the runtime, Slack, the log destination
# that writes every SymLogEntry to iamjit's Kinesis stream, and the
# environment the flow runs in.
#
# The role is Sym's runtime-connector module (symopsio/runtime-connector/aws)
# less its reach: that module lets Sym assume any role under /sym/, which here
# holds iamjit's own connector and IAM modifier. This one may assume only
# itself ("self-assumption due to Sym engine internals", as that module says);
# its only other right is writing to the log stream (the producer policy
# module sym_log_pipe attaches). Sym never holds IAM rights: iamjit alone
# changes IAM (infra/README.md, "Who changes IAM").

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  role_name  = "SymRuntime${title(var.name)}"
  # Known before the role exists: used in its own trust and permissions.
  role_arn = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:role/sym/${local.role_name}"
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "SymPlatformWithExternalId"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${var.sym_account_id}:root"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id]
    }
  }

  # The role assuming itself: the account may delegate only to this role's
  # own sessions (a role cannot name itself as principal before it exists).
  statement {
    sid     = "SelfAssumption"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = [local.role_arn]
    }
  }
}

resource "aws_iam_role" "runtime" {
  name               = local.role_name
  path               = "/sym/"
  description        = "Sym runtime connector (${var.name}): assumed by Sym with an external id; writes Sym's log entries to iamjit's stream; holds no IAM rights."
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "runtime" {
  statement {
    sid       = "AssumeItselfOnly"
    effect    = "Allow"
    actions   = ["sts:AssumeRole"]
    resources = [local.role_arn]
  }
}

resource "aws_iam_role_policy" "runtime" {
  name   = "assume-itself-only"
  role   = aws_iam_role.runtime.id
  policy = data.aws_iam_policy_document.runtime.json
}

# --- Sym ---------------------------------------------------------------------------

# The permissions the runtime has in this account: the role above.
resource "sym_integration" "runtime_context" {
  type        = "permission_context"
  name        = "${var.name}-runtime"
  external_id = local.account_id

  settings = {
    cloud       = "aws"
    region      = data.aws_region.current.name
    role_arn    = aws_iam_role.runtime.arn
    external_id = var.external_id
    account_id  = local.account_id
  }
}

resource "sym_runtime" "this" {
  name       = var.name
  context_id = sym_integration.runtime_context.id
}

resource "sym_integration" "slack" {
  type        = "slack"
  name        = "${var.name}-slack"
  external_id = var.slack_workspace_id
}

resource "sym_error_logger" "slack" {
  count          = var.error_channel == null ? 0 : 1
  integration_id = sym_integration.slack.id
  destination    = var.error_channel
}

# Every SymLogEntry of the environment, written with the runtime's role to
# the stream module sym_log_pipe reads.
resource "sym_log_destination" "iamjit" {
  type           = "kinesis_data_stream"
  integration_id = sym_integration.runtime_context.id

  settings = {
    stream_name = var.log_stream_name
  }
}

resource "sym_environment" "this" {
  name                = var.name
  runtime_id          = sym_runtime.this.id
  log_destination_ids = [sym_log_destination.iamjit.id]
  error_logger_id     = var.error_channel == null ? null : sym_error_logger.slack[0].id

  integrations = {
    slack_id = sym_integration.slack.id
  }
}
