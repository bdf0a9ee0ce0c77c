# The Sym flow that asks for iamjit's groups: Sym's approval template
# (sym:template:approval:1.0.0, the only template of the sym_flow resource
# since provider 2.0), one target per IAM group, and a custom strategy.
#
# Why custom and not Sym's aws_iam strategy: that strategy moves users in and
# out of IAM groups itself, through an IAM role it assumes (Sym's
# iam-connector). iamjit does the same from the log stream; with both, two
# systems would change one membership. The custom strategy (strategy.py) does
# nothing on escalate and deescalate: its only integration is a custom one
# holding no AWS role, so Sym holds no IAM rights and iamjit alone changes IAM.
# Its targets are custom targets whose settings.iam_group names the group;
# iamjit's decoder reads them as aws_iam_group targets (events.TargetCustom).
# Identity Center targets (targets_sso.tf) are custom targets too, read by
# their settings: permission_set_arn and account_id as aws_sso_permission_set,
# group_id as aws_sso_group.

locals {
  # Seconds of an "<n>m" or "<n>h" duration (Sym's duration choices, and
  # iamjit's IAMJIT_MAX_DURATION in the same form).
  seconds = {
    for d in distinct(concat(var.durations, [var.max_duration])) :
    d => tonumber(trimsuffix(trimsuffix(d, "h"), "m")) * (endswith(d, "h") ? 3600 : 60)
  }
}

resource "sym_target" "group" {
  for_each = var.targets

  type  = "custom"
  name  = "${var.name}-${each.key}"
  label = each.value.label

  settings = {
    iam_group = each.value.group_name
  }
}

# A custom strategy needs an integration (the provider refuses one without):
# this one is custom, names this AWS account, and holds no secret and no role.
resource "sym_integration" "iamjit" {
  type        = "custom"
  name        = var.name
  external_id = var.account_id
}

resource "sym_strategy" "iamjit" {
  type           = "custom"
  name           = var.name
  integration_id = sym_integration.iamjit.id
  targets = concat(
    [for key in sort(keys(var.targets)) : sym_target.group[key].id],
    [for key in sort(keys(var.sso_permission_set_targets)) : sym_target.permission_set[key].id],
    [for key in sort(keys(var.sso_group_targets)) : sym_target.sso_group[key].id],
  )
  implementation = "${path.module}/strategy.py"

  lifecycle {
    precondition {
      condition     = length(var.targets) + length(var.sso_permission_set_targets) + length(var.sso_group_targets) > 0
      error_message = "The flow must offer at least one target: targets, sso_permission_set_targets or sso_group_targets."
    }
  }
}

resource "sym_flow" "this" {
  name           = var.name
  label          = var.label
  implementation = file("${path.module}/impl.py")
  environment_id = var.environment_id

  vars = {
    request_channel     = var.request_channel
    approvers           = join(",", var.approvers)
    allow_self_approval = tostring(var.allow_self_approval)
  }

  params {
    strategy_id           = sym_strategy.iamjit.id
    allow_revoke          = true
    schedule_deescalation = true

    prompt_field {
      name     = "reason"
      label    = "Why do you need access?"
      type     = "string"
      required = true
    }

    # fields.duration of the SymLogEntry, in seconds: iamjit's grant length.
    prompt_field {
      name           = "duration"
      label          = "For how long?"
      type           = "duration"
      allowed_values = var.durations
      required       = true
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for d in var.durations : local.seconds[d] <= local.seconds[var.max_duration]])
      error_message = "Every duration choice must be at most max_duration (iamjit's IAMJIT_MAX_DURATION): iamjit refuses a longer grant."
    }
  }
}
