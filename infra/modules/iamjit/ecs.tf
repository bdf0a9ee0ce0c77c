# The iamjit service on ECS Fargate.

locals {
  # Everything `iamjit run` needs, except the secrets (below).
  # merge() order: nothing in extra_environment overrides these.
  environment = merge(var.extra_environment, {
    AWS_REGION                = local.region
    IAMJIT_QUEUE_URL          = aws_sqs_queue.main.url
    IAMJIT_DLQ_URL            = aws_sqs_queue.dlq.url
    IAMJIT_TABLE              = aws_dynamodb_table.this.name
    IAMJIT_EVENT_BUS          = aws_cloudwatch_event_bus.results.name
    IAMJIT_CONNECTOR_ROLE_ARN = var.connector_role_arn
    IAMJIT_IAM_ROLE_ARN       = var.iam_role_arn
    IAMJIT_GROUP_PATH         = var.group_path
    IAMJIT_ROLE_PATH          = var.role_path
    IAMJIT_SESSION_REVOCATION = var.session_revocation
    IAMJIT_MAX_DURATION       = var.max_duration
    IAMJIT_HTTP_ADDR          = var.http_addr
    IAMJIT_SOURCES            = join(",", var.event_sources)
    IAMJIT_SHUTDOWN_TIMEOUT   = "${var.shutdown_timeout_seconds}s"
    IAMJIT_LOG_LEVEL          = var.log_level
    IAMJIT_LOG_FORMAT         = "json"
    IAMJIT_RECONCILE_INTERVAL = var.reconcile_interval
  }, local.identity_center_environment, local.backstop_environment)

  # The container's secrets, by variable, never in environment: the SSM
  # parameter or Secrets Manager secret each is read from (arn: what the
  # execution role may read, iam.tf) and the ECS valueFrom. IAMJIT_ACCOUNTS
  # names the secret's version, so a change of the member accounts makes a
  # new task definition and ECS rolls the tasks.
  secrets = merge(
    {
      IAMJIT_EXTERNAL_ID = { sid = "ReadExternalId", arn = var.external_id_parameter_arn, value_from = var.external_id_parameter_arn }
    },
    local.has_members ? {
      IAMJIT_ACCOUNTS = {
        sid        = "ReadMemberAccounts"
        arn        = aws_secretsmanager_secret.accounts[0].arn
        value_from = "${aws_secretsmanager_secret.accounts[0].arn}:::${aws_secretsmanager_secret_version.accounts[0].version_id}"
      }
    } : {},
  )
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_security_group" "task" {
  name_prefix = "${var.name}-task-"
  description = "iamjit tasks: no inbound; HTTPS out to AWS APIs only."
  vpc_id      = var.vpc_id

  egress {
    description = "AWS APIs (SQS, DynamoDB, EventBridge, STS, IAM, ECR, S3, Logs, SSM)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    {
      name                   = "iamjit"
      image                  = var.image
      essential              = true
      command                = ["run"]
      user                   = "65532:65532" # distroless "nonroot"
      readonlyRootFilesystem = true
      stopTimeout            = var.stop_timeout

      environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]

      secrets = [for k in sort(keys(local.secrets)) : { name = k, valueFrom = local.secrets[k].value_from }]

      healthCheck = {
        command     = ["CMD", "/iamjit", "healthcheck"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }

      linuxParameters = {
        initProcessEnabled = true
        capabilities       = { drop = ["ALL"] }
      }

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "iamjit"
        }
      }
    },
  ])

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.stop_timeout > var.shutdown_timeout_seconds
      error_message = "stop_timeout must exceed shutdown_timeout_seconds, or ECS kills iamjit while it drains."
    }

    precondition {
      condition     = try(var.identity_center.account_id, "") == "" || try(var.identity_center.account_id, "") == local.account_id || contains(local.member_account_ids, try(var.identity_center.account_id, ""))
      error_message = "identity_center.account_id (IAMJIT_SSO_ACCOUNT) must be this account or one of member_accounts: iamjit reaches Identity Center through that account's chain."
    }
  }
}

resource "aws_ecs_service" "this" {
  name                               = var.name
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = concat([aws_security_group.task.id], var.security_group_ids)
    assign_public_ip = var.assign_public_ip
  }

  tags = var.tags
}
