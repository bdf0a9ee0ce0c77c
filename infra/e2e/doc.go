// Package e2e proves the deployment: `make infra-e2e` applies
// infra/environments/prod (its AWS half, manage_sym = false) against the
// project's moto, then runs iamjit on what Terraform made, with the ECS task
// definition's environment and the task role's credentials, IAM access
// control on, through the Terraform-made path (Sym bus, rule, queue, role
// chain, groups, results bus, DLQ), and destroys it. docs/infra-e2e.md
// says what is applied, what is only validated, and every emulator gap.
//
// The test has the build tag infrae2e, so `go test ./...` (make test) does
// not run it: `go test -tags infrae2e -v ./infra/e2e/`.
package e2e
