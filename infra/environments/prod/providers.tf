terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 7.0"
    }
  }

  # State holds the external id (it is in the connector role's trust policy):
  # keep it in an encrypted, access-controlled backend. Example:
  #
  # backend "s3" {
  #   bucket       = "example-terraform-state"
  #   key          = "iamjit/prod/terraform.tfstate"
  #   region       = "us-east-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      app         = "iamjit"
      environment = var.environment
      managed-by  = "terraform"
    }
  }
}
