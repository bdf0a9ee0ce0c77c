terraform {
  required_version = ">= 1.5"

  # One major version of each provider, the same constraint in every module.
  # No lock file is committed (see infra/README.md, "Provider versions").
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.100" }
    sym = { source = "symopsio/sym", version = "~> 3.0" }
  }

  # State holds the external ids (they are in the connector roles' trust
  # policies): keep it in an encrypted, access-controlled backend. Example:
  #
  # backend "s3" {
  #   bucket       = "example-terraform-state"
  #   key          = "iamjit/prod/terraform.tfstate"
  #   region       = "us-east-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

locals {
  default_tags = {
    app         = "iamjit"
    environment = var.environment
    managed-by  = "terraform"
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.default_tags
  }
}

# The member account (var.member_account): Terraform creates its connector,
# IAM modifier and groups with a role it assumes there. Without one, this
# provider is the home account's and nothing uses it.
provider "aws" {
  alias  = "member"
  region = var.region

  dynamic "assume_role" {
    for_each = var.member_account == null ? [] : [var.member_account.terraform_role_arn]
    content {
      role_arn     = assume_role.value
      session_name = "terraform-iamjit-${var.environment}"
    }
  }

  default_tags {
    tags = local.default_tags
  }
}

# Terraform configures this provider even when manage_sym = false leaves it
# nothing to manage; it then needs only SYM_JWT set to any value (the provider
# reads the token at configuration and calls Sym only for resources).
provider "sym" {
  org = coalesce(var.sym_org_slug, "unused")
}
