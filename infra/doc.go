// Package infra holds iamjit's Terraform (modules/ and environments/) and
// the tests that check its security invariants offline: they parse every .tf
// file with HCL, never need providers or network, and run in `go test ./...`.
package infra
