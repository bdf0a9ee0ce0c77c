# iamjit's consumer side: the EventBridge rule that routes Sym's escalate and
# deescalate events to SQS (with a DLQ on each hop), the results bus, the
# DynamoDB table and, in ecs.tf / iam.tf / alarms.tf, the Fargate service,
# its roles and its alarms.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
}

# --- SQS: the queue iamjit consumes, its DLQ, and the rule's delivery DLQ ---

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum: time to fix the cause and `iamjit replay`
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "main" {
  name                       = var.name
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.main.arn]
  })
}

# Events EventBridge could not deliver to the main queue (after its retry policy).
resource "aws_sqs_queue" "rule_dlq" {
  name                      = "${var.name}-rule-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# The rule delivers to the main queue, and what it cannot deliver to its DLQ:
# only the rule may send to either.
locals {
  rule_queues = {
    main     = aws_sqs_queue.main
    rule_dlq = aws_sqs_queue.rule_dlq
  }
}

data "aws_iam_policy_document" "rule_may_send" {
  for_each = local.rule_queues

  statement {
    sid       = "OnlyTheSymRuleMaySend"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [each.value.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.sym.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "rule_may_send" {
  for_each = local.rule_queues

  queue_url = each.value.id
  policy    = data.aws_iam_policy_document.rule_may_send[each.key].json
}

# The queue policies were one resource each before rule_may_send.
moved {
  from = aws_sqs_queue_policy.main
  to   = aws_sqs_queue_policy.rule_may_send["main"]
}

moved {
  from = aws_sqs_queue_policy.rule_dlq
  to   = aws_sqs_queue_policy.rule_may_send["rule_dlq"]
}

# --- EventBridge: Sym bus -> rule -> queue; results bus ----------------------

resource "aws_cloudwatch_event_rule" "sym" {
  name           = "${var.name}-sym-escalations"
  description    = "Sym escalate and deescalate events, to iamjit's queue."
  event_bus_name = var.sym_event_bus_name

  event_pattern = jsonencode({
    source = var.event_sources
    detail = {
      event = {
        type = ["escalate", "deescalate"]
      }
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "queue" {
  rule           = aws_cloudwatch_event_rule.sym.name
  event_bus_name = var.sym_event_bus_name
  target_id      = "${var.name}-queue"
  arn            = aws_sqs_queue.main.arn

  dead_letter_config {
    arn = aws_sqs_queue.rule_dlq.arn
  }

  retry_policy {
    maximum_event_age_in_seconds = var.rule_maximum_event_age_seconds
    maximum_retry_attempts       = var.rule_maximum_retry_attempts
  }

  # Deliveries fail until the queue policies allow the rule.
  depends_on = [aws_sqs_queue_policy.rule_may_send]
}

resource "aws_cloudwatch_event_bus" "results" {
  name = var.results_bus_name
  tags = var.tags
}

# --- DynamoDB: grants, memberships, processed events, expiry index ----------

resource "aws_dynamodb_table" "this" {
  name                        = var.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "due_pk"
    type = "S"
  }

  attribute {
    name = "due_at"
    type = "S"
  }

  # The expiry index: active grants ordered by expiry, so the sweeper reads
  # only what is due.
  global_secondary_index {
    name            = "due"
    hash_key        = "due_pk"
    range_key       = "due_at"
    projection_type = "ALL"
  }

  # Cleans history lazily; never used to revoke.
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}
