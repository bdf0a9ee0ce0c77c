output "stream_name" {
  description = "Kinesis stream: settings.stream_name of the sym_log_destination."
  value       = aws_kinesis_stream.this.name
}

output "stream_arn" {
  description = "ARN of the stream."
  value       = aws_kinesis_stream.this.arn
}

output "event_bus_name" {
  description = "The bus Sym events are put on (iamjit module's sym_event_bus_name)."
  value       = aws_cloudwatch_event_bus.sym.name
}

output "event_bus_arn" {
  description = "ARN of the Sym bus."
  value       = aws_cloudwatch_event_bus.sym.arn
}

output "event_source" {
  description = "Source of the events on the bus."
  value       = var.event_source
}

output "pipe_arn" {
  description = "ARN of the pipe (the events' resources)."
  value       = aws_pipes_pipe.this.arn
}

output "pipe_dlq_url" {
  description = "Batches the pipe gave up on."
  value       = aws_sqs_queue.pipe_dlq.url
}

output "producer_policy_arn" {
  description = "Policy to attach to whatever role Sym writes to the stream with."
  value       = aws_iam_policy.producer.arn
}
