# Identity Center targets: custom targets like the IAM ones (main.tf), read by
# iamjit by their settings (events: a custom target is the one type its
# settings name): permission_set_arn and account_id -> aws_sso_permission_set,
# an assignment of the permission set in the account; group_id ->
# aws_sso_group, a membership of the Identity Store group. The strategy
# (changes nothing) is the same.

resource "sym_target" "permission_set" {
  for_each = var.sso_permission_set_targets

  type  = "custom"
  name  = "${var.name}-${each.key}"
  label = each.value.label

  settings = {
    permission_set_arn = each.value.permission_set_arn
    account_id         = each.value.account_id
  }
}

resource "sym_target" "sso_group" {
  for_each = var.sso_group_targets

  type  = "custom"
  name  = "${var.name}-${each.key}"
  label = each.value.label

  settings = {
    group_id = each.value.group_id
  }
}
