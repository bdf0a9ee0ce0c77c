# The expiry backstop of one account: if iamjit does not end a membership it
# granted, EventBridge Scheduler does, at the expiry plus a grace
# (IAMJIT_BACKSTOP_GRACE). iamjit, through this account's IAM modifier, puts
# one one-time schedule a membership in the group below, running as the
# execution role below, whose target is the removal call itself (a universal
# target: aws-sdk:iam:removeUserFromGroup, aws-sdk:ssoadmin:deleteAccountAssignment,
# aws-sdk:identitystore:deleteGroupMembership). A schedule lives in the
# account of the membership it ends (IAM: the group's account; Identity
# Center: the account holding Identity Center), so every account iamjit
# serves gets this module.
#
# The dead-letter queue is this account's too. EventBridge Scheduler delivers
# a dead-letter event with the schedule's execution role ("Configuring a
# dead-letter queue", EventBridge Scheduler User Guide: the execution role
# needs sqs:SendMessage on the queue): a queue in the role's own account needs
# no queue policy, where a queue in the home account would need one trusting
# every member account's role, and the Scheduler documentation describes no
# cross-account dead-letter queue. Its depth alarm (module alarms) is here too.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  ic         = var.identity_center == null ? [] : [var.identity_center]
}

resource "aws_scheduler_schedule_group" "this" {
  name = var.schedule_group_name
  tags = var.tags
}

# Removals Scheduler could not make. Retention 14 days, the maximum.
resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-backstop-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# Trusted only by EventBridge Scheduler acting for this account's backstop
# group: the confused-deputy conditions of "Set up the execution role"
# (EventBridge Scheduler User Guide, "Setting up Amazon EventBridge
# Scheduler"): aws:SourceAccount and aws:SourceArn = the schedule group's ARN.
data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "SchedulerForTheBackstopGroupOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_scheduler_schedule_group.this.arn]
    }
  }
}

# Not under /sym/ (the connector may assume roles there) nor under the IAM
# modifier's role_path (it may write their inline policies, and it passes
# this role).
resource "aws_iam_role" "execution" {
  name               = "${var.name}-backstop"
  path               = "/iamjit-backstop/"
  description        = "iamjit expiry backstop: EventBridge Scheduler (group ${var.schedule_group_name}) removes expired memberships with it; nothing else."
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

# Only removals, only of what iamjit manages. The resource types of each
# action are those of the Service Authorization Reference (IAM:
# RemoveUserFromGroup on a group; IAM Identity Center and Identity Store as in
# module iam_modifier, identity_center.tf).
data "aws_iam_policy_document" "removals" {
  statement {
    sid       = "RemoveUsersFromGroupsUnderPath"
    effect    = "Allow"
    actions   = ["iam:RemoveUserFromGroup"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:group${var.group_path}*"]
  }

  dynamic "statement" {
    for_each = local.ic
    content {
      sid     = "DeleteAssignmentsOfAllowedPermissionSets"
      effect  = "Allow"
      actions = ["sso:DeleteAccountAssignment"]
      resources = concat(
        [statement.value.instance_arn],
        statement.value.permission_set_arns,
        [for id in statement.value.account_ids : "arn:${local.partition}:sso:::account/${id}"],
      )
    }
  }

  dynamic "statement" {
    for_each = local.ic
    content {
      sid     = "DeleteMembershipsOfAllowedGroups"
      effect  = "Allow"
      actions = ["identitystore:DeleteGroupMembership"]
      resources = concat(
        [
          "arn:${local.partition}:identitystore::${local.account_id}:identitystore/${statement.value.identity_store_id}",
          "arn:${local.partition}:identitystore:::user/*",
          "arn:${local.partition}:identitystore:::membership/*",
        ],
        [for g in statement.value.group_ids : "arn:${local.partition}:identitystore:::group/${g}"],
      )
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

  statement {
    sid       = "SendDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }
}

resource "aws_iam_role_policy" "removals" {
  name   = "expiry-backstop-removals"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.removals.json
}

module "alarms" {
  source = "../alarms"

  name    = "${var.name}-backstop"
  actions = var.alarm_actions
  tags    = var.tags

  dead_letter_queues = {
    dlq = {
      queue_name  = aws_sqs_queue.dlq.name
      description = "EventBridge Scheduler could not remove an expired membership (account ${local.account_id}); the dead-letter events are in ${aws_sqs_queue.dlq.name}. iamjit's expiry sweep should have removed it first: check both."
    }
  }
}
