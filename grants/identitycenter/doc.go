// Package identitycenter changes and reads AWS IAM Identity Center for
// grants: account assignments of a permission set to a user
// (aws_sso_permission_set targets), memberships of Identity Store groups
// (aws_sso_group targets), the user behind a requester's email, and the
// permission sets themselves. It is the adapter beneath the domain, as
// grants/iamgroups is for IAM groups: idempotent writes that return the AWS
// request id when they changed something and "" when nothing needed to
// change, errors wrapped with what was being done and classified by
// internal/awsx (throttling is retryable by its error code, decided with
// errors.As, never by a message's text).
//
// Identity Center's account assignment calls are asynchronous: Assign and
// Unassign poll the request's status with backoff and return only once AWS
// confirms it, or with an error.
//
// Every write reads first. AWS is idempotent about most of them, but moto
// 5.2.1, which the integration tests and the dev stack run against, is not:
// it stores a second copy of an existing assignment or membership (and a
// delete removes one copy), so removals delete every copy. validate.go and
// each method name the moto quirks they work around, so that iamjit runs
// unchanged against plain moto.
package identitycenter
