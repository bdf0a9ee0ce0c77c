# The member accounts (IAMJIT_ACCOUNTS): other AWS accounts whose groups
# iamjit changes through their own chain (module member_account there):
# task role -> that account's connector (its external id) -> its IAM modifier.
# The whole map, external ids included, is one secret the container gets
# through ECS secrets; the task role may assume exactly the connectors in it.

locals {
  # Account ids and role ARNs are no secret, only the external ids are: the
  # ids and connectors are taken out of the sensitive map for the task role's
  # policy and for count.
  member_account_ids         = nonsensitive(sort(keys(var.member_accounts)))
  member_connector_role_arns = [for id in local.member_account_ids : nonsensitive(var.member_accounts[id].connector_role_arn)]
  has_members                = length(local.member_account_ids) > 0
}

resource "aws_secretsmanager_secret" "accounts" {
  count = local.has_members ? 1 : 0

  name_prefix = "${var.name}-accounts-"
  description = "IAMJIT_ACCOUNTS of ${var.name}: each member account's connector role, external id and IAM-modifier role."
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "accounts" {
  count = local.has_members ? 1 : 0

  secret_id = aws_secretsmanager_secret.accounts[0].id
  # An entry without a backstop has no backstop_role_arn nor backstop_dlq_arn
  # key (not null): an iamjit that does not know a key refuses an entry that
  # has it.
  secret_string = jsonencode({ for id, a in var.member_accounts : id => { for k, v in a : k => v if v != null } })
}
