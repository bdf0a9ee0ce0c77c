# Something needs a human: a message gave up (DLQ), EventBridge could not
# deliver (rule DLQ), the queue is not being drained, or no task is running.

module "alarms" {
  source = "../alarms"

  name    = var.name
  actions = var.alarm_actions
  tags    = var.tags

  dead_letter_queues = {
    dlq = {
      queue_name  = aws_sqs_queue.dlq.name
      description = "Messages iamjit gave up on are in ${aws_sqs_queue.dlq.name}. Fix the cause, then `iamjit replay`."
    }
    rule-dlq = {
      queue_name  = aws_sqs_queue.rule_dlq.name
      description = "EventBridge could not deliver Sym events to ${aws_sqs_queue.main.name}; they are in ${aws_sqs_queue.rule_dlq.name}."
    }
  }

  alarms = {
    queue-oldest-message = {
      description        = "The oldest message in ${aws_sqs_queue.main.name} is older than ${var.oldest_message_alarm_seconds}s: iamjit is not consuming."
      namespace          = "AWS/SQS"
      metric_name        = "ApproximateAgeOfOldestMessage"
      dimensions         = { QueueName = aws_sqs_queue.main.name }
      evaluation_periods = 3
      threshold          = var.oldest_message_alarm_seconds
    }
    no-running-task = {
      description         = "No iamjit task is running: grants are neither applied nor revoked."
      namespace           = "ECS/ContainerInsights"
      metric_name         = "RunningTaskCount"
      dimensions          = { ClusterName = aws_ecs_cluster.this.name, ServiceName = aws_ecs_service.this.name }
      statistic           = "Minimum"
      evaluation_periods  = 3
      threshold           = 1
      comparison_operator = "LessThanThreshold"
      treat_missing_data  = "breaching"
    }
  }
}

# The alarms were resources of this module before module.alarms.
moved {
  from = aws_cloudwatch_metric_alarm.dlq_not_empty
  to   = module.alarms.aws_cloudwatch_metric_alarm.this["dlq-not-empty"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rule_dlq_not_empty
  to   = module.alarms.aws_cloudwatch_metric_alarm.this["rule-dlq-not-empty"]
}

moved {
  from = aws_cloudwatch_metric_alarm.queue_oldest_message
  to   = module.alarms.aws_cloudwatch_metric_alarm.this["queue-oldest-message"]
}

moved {
  from = aws_cloudwatch_metric_alarm.no_running_task
  to   = module.alarms.aws_cloudwatch_metric_alarm.this["no-running-task"]
}
