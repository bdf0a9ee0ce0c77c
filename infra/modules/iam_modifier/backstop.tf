# The expiry backstop: iamjit (through this modifier) puts, for each
# membership it grants, a one-time EventBridge Scheduler schedule that
# removes the membership at its expiry plus a grace, should iamjit not have
# done it. Only with var.backstop set.
#
# Service Authorization Reference, "Actions, resources, and condition keys for
# Amazon EventBridge Scheduler" (list_amazoneventbridgescheduler.html):
# CreateSchedule, UpdateSchedule, DeleteSchedule, GetSchedule take a schedule
# (arn:<p>:scheduler:<region>:<account>:schedule/<group>/<name>), and
# CreateSchedule and UpdateSchedule depend on iam:PassRole; GetScheduleGroup
# takes a schedule-group (...:schedule-group/<group>); ListSchedules takes no
# resource type: "*" is the only resource IAM accepts for it (it lists
# schedule names and states, no target). iam:PassRole of the backstop role
# only, and only to scheduler.amazonaws.com (iam:PassedToService).

locals {
  backstop = var.backstop == null ? [] : [var.backstop]

  scheduler_prefix = "arn:${data.aws_partition.current.partition}:scheduler:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}"
}

data "aws_region" "current" {}

data "aws_iam_policy_document" "backstop" {
  dynamic "statement" {
    for_each = local.backstop
    content {
      sid    = "ManageSchedulesOfTheBackstopGroup"
      effect = "Allow"
      actions = [
        "scheduler:CreateSchedule",
        "scheduler:DeleteSchedule",
        "scheduler:GetSchedule",
        "scheduler:UpdateSchedule",
      ]
      resources = ["${local.scheduler_prefix}:schedule/${statement.value.schedule_group_name}/*"]
    }
  }

  dynamic "statement" {
    for_each = local.backstop
    content {
      sid       = "ReadTheBackstopGroup"
      effect    = "Allow"
      actions   = ["scheduler:GetScheduleGroup"]
      resources = ["${local.scheduler_prefix}:schedule-group/${statement.value.schedule_group_name}"]
    }
  }

  dynamic "statement" {
    for_each = local.backstop
    content {
      sid       = "ListSchedules"
      effect    = "Allow"
      actions   = ["scheduler:ListSchedules"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = local.backstop
    content {
      sid       = "PassTheBackstopRoleToSchedulerOnly"
      effect    = "Allow"
      actions   = ["iam:PassRole"]
      resources = [statement.value.role_arn]

      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["scheduler.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "backstop" {
  for_each = var.backstop == null ? {} : { backstop = true }

  name   = "expiry-backstop"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.backstop.json
}
