# The task role (what iamjit itself may do) and the execution role (what ECS
# may do to start it). IAM is changed only through the role chain:
# task role -> connector (with external id) -> IAM modifier.

# Each role's trust exactly as AWS documents it: the task role with the
# confused-deputy conditions (aws:SourceAccount, aws:SourceArn) of "Amazon ECS
# task IAM role"; the execution role without them, as in "Amazon ECS task
# execution IAM role" (ECS does not document sending them for that role, and
# a trust it does not satisfy starts no task).
data "aws_iam_policy_document" "ecs_tasks_trust" {
  for_each = { task = true, execution = false }

  statement {
    sid     = "EcsTasksOfThisAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    dynamic "condition" {
      for_each = each.value ? [local.account_id] : []
      content {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [condition.value]
      }
    }

    dynamic "condition" {
      for_each = each.value ? ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"] : []
      content {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = [condition.value]
      }
    }
  }
}

# --- task role ---------------------------------------------------------------

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  description        = "iamjit task role: SQS, DynamoDB, results bus, and assuming the connector role."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust["task"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid    = "ConsumeQueueAndReplayDlq"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = [aws_sqs_queue.main.arn, aws_sqs_queue.dlq.arn]
  }

  # DynamoDB authorizes TransactWriteItems per item action: Put/Update/Delete
  # below, plus ConditionCheckItem for condition-only items. There is no
  # "dynamodb:TransactWriteItems" IAM action.
  statement {
    sid    = "GrantsTable"
    effect = "Allow"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:UpdateItem",
    ]
    resources = [aws_dynamodb_table.this.arn, "${aws_dynamodb_table.this.arn}/index/*"]
  }

  statement {
    sid       = "PublishResults"
    effect    = "Allow"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.results.arn]
  }

  # This account's connector and each member account's (accounts.tf), by ARN:
  # no other role.
  statement {
    sid       = "AssumeConnectorOnly"
    effect    = "Allow"
    actions   = ["sts:AssumeRole"]
    resources = concat([var.connector_role_arn], local.member_connector_role_arns)
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "iamjit"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- execution role ----------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  description        = "ECS execution role of iamjit: pull the image, write logs, read the external id."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust["execution"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  # ecr:GetAuthorizationToken supports no resource-level permissions.
  statement {
    sid       = "EcrLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [var.ecr_repository_arn]
    content {
      sid    = "PullIamjitImage"
      effect = "Allow"
      actions = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "WriteContainerLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # The container's secrets (ecs.tf), each where it is: no other.
  dynamic "statement" {
    for_each = local.secrets
    content {
      sid       = statement.value.sid
      effect    = "Allow"
      actions   = can(regex("^arn:[^:]+:ssm:", statement.value.arn)) ? ["ssm:GetParameters"] : ["secretsmanager:GetSecretValue"]
      resources = [statement.value.arn]
    }
  }

  dynamic "statement" {
    for_each = var.external_id_kms_key_arn == null ? [] : [var.external_id_kms_key_arn]
    content {
      sid       = "DecryptExternalId"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "iamjit-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}
