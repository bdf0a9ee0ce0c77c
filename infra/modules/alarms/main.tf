# The CloudWatch alarms of a module, said once: each is named <name>-<key>,
# evaluated over one-minute periods, and notifies var.actions both when it
# fires and when it clears. A dead-letter queue alarms on its first visible
# message: nothing in it is retried, so any message there needs a human.

locals {
  dead_letter_alarms = {
    for key, dlq in var.dead_letter_queues : "${key}-not-empty" => {
      description         = dlq.description
      namespace           = "AWS/SQS"
      metric_name         = "ApproximateNumberOfMessagesVisible"
      dimensions          = { QueueName = dlq.queue_name }
      statistic           = "Maximum"
      evaluation_periods  = 1
      threshold           = 0
      comparison_operator = "GreaterThanThreshold"
      treat_missing_data  = "notBreaching"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = merge(local.dead_letter_alarms, var.alarms)

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 60
  evaluation_periods  = each.value.evaluation_periods
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison_operator
  treat_missing_data  = each.value.treat_missing_data
  alarm_actions       = var.actions
  ok_actions          = var.actions
  tags                = var.tags
}
