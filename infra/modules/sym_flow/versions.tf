terraform {
  required_version = ">= 1.5"
  required_providers {
    sym = { source = "symopsio/sym", version = "~> 3.0" }
  }
}
