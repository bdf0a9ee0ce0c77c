# Sym's log destinations are Kinesis Data Streams, Firehose or HTTP, not
# EventBridge. This module bridges: Sym writes each SymLogEntry to an
# encrypted Kinesis stream; an EventBridge Pipe puts each record on the Sym
# bus with source "sym" and detail-type "SymLogEntry", the record's
# SymLogEntry becoming the event's detail (see local.input_template).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  pipe_name  = "${var.name}-to-eventbridge"
  # Known before the pipe exists: used in the role's trust and as the events' resources.
  pipe_arn   = "arn:${local.partition}:pipes:${local.region}:${local.account_id}:pipe/${local.pipe_name}"
  kms_key_id = var.kms_key_arn == null ? "alias/aws/kinesis" : var.kms_key_arn

  # The detail is the SymLogEntry, rebuilt key by key from the record's data.
  # Pipes parses a Kinesis record's base64 data as JSON ("implicit body data
  # parsing"), so <$.data.id> is the entry's id; but a template of <$.data>
  # alone delivers the object as a string with its quotes removed
  # ({"key": "value"} becomes "{key: value}"), which is no event detail.
  # Strings are quoted by Pipes, objects are not. The keys are every
  # top-level property of Sym's SymLogEntry schema (all required there).
  sym_log_entry_keys = ["id", "meta", "state", "run", "event", "actor", "fields", "type"]
  input_template     = "{${join(", ", [for k in local.sym_log_entry_keys : "\"${k}\": <$.data.${k}>"])}}"
}

resource "aws_kinesis_stream" "this" {
  name             = var.name
  retention_period = var.stream_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = local.kms_key_id

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }

  tags = var.tags
}

resource "aws_cloudwatch_event_bus" "sym" {
  name = var.event_bus_name
  tags = var.tags
}

resource "aws_cloudwatch_event_archive" "sym" {
  name             = "${var.event_bus_name}-archive"
  description      = "Every Sym event, for EventBridge replay."
  event_source_arn = aws_cloudwatch_event_bus.sym.arn
  retention_days   = var.archive_retention_days
}

# Batches the pipe gave up on (metadata: shard and sequence numbers; re-read
# the records from the stream within its retention).
resource "aws_sqs_queue" "pipe_dlq" {
  name                      = "${var.name}-pipe-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# --- pipe role -----------------------------------------------------------------

data "aws_iam_policy_document" "pipe_trust" {
  statement {
    sid     = "ThisPipeOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["pipes.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.pipe_arn]
    }
  }
}

resource "aws_iam_role" "pipe" {
  name               = "${var.name}-pipe"
  description        = "EventBridge Pipe ${local.pipe_name}: read the Sym log stream, put events on ${var.event_bus_name}."
  assume_role_policy = data.aws_iam_policy_document.pipe_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "pipe" {
  # Stream-level actions on the stream. The pipe polls with GetRecords
  # (shared throughput): it registers no enhanced fan-out consumer, so
  # kinesis:SubscribeToShard (whose resource is a consumer ARN) is not granted.
  statement {
    sid    = "ReadSymLogStream"
    effect = "Allow"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [aws_kinesis_stream.this.arn]
  }

  # kinesis:ListStreams takes no resource: "*" is the only one it accepts.
  # It lists stream names only; Pipes' Kinesis source documentation asks for it.
  statement {
    sid       = "ListStreams"
    effect    = "Allow"
    actions   = ["kinesis:ListStreams"]
    resources = ["*"]
  }

  statement {
    sid       = "PutOnSymBus"
    effect    = "Allow"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.sym.arn]
  }

  statement {
    sid       = "DeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.pipe_dlq.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptStream"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "pipe" {
  name   = "sym-log-pipe"
  role   = aws_iam_role.pipe.id
  policy = data.aws_iam_policy_document.pipe.json
}

# --- the pipe --------------------------------------------------------------------

resource "aws_pipes_pipe" "this" {
  name        = local.pipe_name
  description = "Sym log entries (Kinesis) to the ${var.event_bus_name} bus."
  role_arn    = aws_iam_role.pipe.arn
  source      = aws_kinesis_stream.this.arn
  target      = aws_cloudwatch_event_bus.sym.arn

  source_parameters {
    kinesis_stream_parameters {
      starting_position             = "TRIM_HORIZON"
      batch_size                    = var.batch_size
      maximum_retry_attempts        = var.maximum_retry_attempts
      maximum_record_age_in_seconds = var.maximum_record_age_in_seconds

      dead_letter_config {
        arn = aws_sqs_queue.pipe_dlq.arn
      }
    }
  }

  target_parameters {
    input_template = local.input_template

    eventbridge_event_bus_parameters {
      source      = var.event_source
      detail_type = var.detail_type
      resources   = [local.pipe_arn]
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.pipe]
}

# --- what Sym's runtime connector role may do -------------------------------------

data "aws_iam_policy_document" "producer" {
  statement {
    sid    = "WriteSymLogStream"
    effect = "Allow"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:ListShards",
      "kinesis:PutRecord",
      "kinesis:PutRecords",
    ]
    resources = [aws_kinesis_stream.this.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "EncryptStream"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_policy" "producer" {
  name        = "${var.name}-producer"
  path        = "/sym/"
  description = "Write Sym log entries to the ${var.name} Kinesis stream (for Sym's runtime connector role)."
  policy      = data.aws_iam_policy_document.producer.json
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "producer" {
  for_each   = toset(var.producer_role_names)
  role       = each.value
  policy_arn = aws_iam_policy.producer.arn
}

# --- alarms -------------------------------------------------------------------------

module "alarms" {
  source = "../alarms"

  name    = var.name
  actions = var.alarm_actions
  tags    = var.tags

  dead_letter_queues = {
    pipe-dlq = {
      queue_name  = aws_sqs_queue.pipe_dlq.name
      description = "The pipe could not put Sym log records on ${var.event_bus_name}: see ${aws_sqs_queue.pipe_dlq.name}."
    }
  }

  alarms = {
    pipe-lag = {
      description        = "The pipe is behind the Sym log stream by more than ${var.iterator_age_alarm_ms}ms."
      namespace          = "AWS/Kinesis"
      metric_name        = "GetRecords.IteratorAgeMilliseconds"
      dimensions         = { StreamName = aws_kinesis_stream.this.name }
      evaluation_periods = 5
      threshold          = var.iterator_age_alarm_ms
    }
  }
}

# The alarms were resources of this module before module.alarms.
moved {
  from = aws_cloudwatch_metric_alarm.pipe_dlq_not_empty
  to   = module.alarms.aws_cloudwatch_metric_alarm.this["pipe-dlq-not-empty"]
}

moved {
  from = aws_cloudwatch_metric_alarm.pipe_lag
  to   = module.alarms.aws_cloudwatch_metric_alarm.this["pipe-lag"]
}
