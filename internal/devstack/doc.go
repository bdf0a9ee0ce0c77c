// Package devstack is what `iamjit dev` does: it creates the whole iamjit
// stack (queues, buses and rules, table, IAM group, user and role chain,
// Identity Center user, group and permission set, the backstop's schedule
// group, role and DLQ) in a local emulator, idempotently, and renders the
// settings as shell export lines. CheckEndpoint and Create refuse any
// endpoint that is real AWS.
//
// The stack, for prefix p:
//
//	p-sym bus --rule {"source":["sym"]}--> p-queue --(RedrivePolicy)--> p-dlq
//	p-results bus --rule {"source":["iamjit"]}--> p-results-queue
//	p-grants table: hash pk (S); GSI "due" (due_pk S, due_at S, ALL); TTL on ttl
//	group /sym/<Group>; user <User> tagged email=<User>
//	role /sym/p-connector: trusted by the account root (or Options.Trust)
//	  with StringEquals sts:ExternalId; may sts:AssumeRole role/sym/*;
//	  the external id is kept in its tag iamjit:external-id for reruns
//	role /sym/p-iam-modifier: trusted by the connector role; may
//	  Add/RemoveUserFromGroup and GetGroup on group<GroupPath>*, and
//	  GetUser, ListUsers, ListUserTags, GetAccountAuthorizationDetails,
//	  ListGroups on *; the sso: and identitystore: calls iamjit makes
//	  (SSOActions, IdentityStoreActions) on *; scheduler:* on
//	  schedule/p/*, scheduler:GetScheduleGroup on schedule-group/p, and
//	  iam:PassRole on role/sym/p-backstop if iam:PassedToService is
//	  scheduler.amazonaws.com
//	role /jit/p-jit-readonly: the group may assume it (session revocation)
//	backstop: schedule group p; queue p-backstop-dlq (14 days); role
//	  /sym/p-backstop trusted by scheduler.amazonaws.com with
//	  aws:SourceAccount = the account and aws:SourceArn like
//	  arn:aws:scheduler:*:ACCOUNT:schedule/p/*; may iam:RemoveUserFromGroup
//	  on group<GroupPath>* of its account, sso:DeleteAccountAssignment and
//	  identitystore:DeleteGroupMembership on *, sqs:SendMessage on the DLQ
//	Identity Center (home account, the instance ListInstances names first):
//	  permission set <Group> (cut to 32 characters), session PT1H, a small
//	  inline policy written only while it has none; Identity Store group
//	  <Group>; user <User> with <User> as its primary email; the group
//	  assigned the permission set in the home account. No user assignment
//	  and no membership: those are what iamjit grants.
//
// Each member account (Options.MemberAccounts, `--member-account ID`) gets,
// in that account: the same connector role (trusted by the same principal:
// Options.Trust or the HOME account root; its own external id, kept in its
// own tag), the same IAM-modifier role and rights, a group of the same
// name and path, a user <local part>-<ID> tagged email=<User> (so the email
// maps to a different user in each account, by tag), the JIT role, and its
// own backstop (schedule group, DLQ, role trusted for that account's
// schedules). Exports adds IAMJIT_ACCOUNTS (with backstop_role_arn) and
// IAMJIT_DEV_MEMBER_GROUP_ARN_<ID>.
//
// Member accounts in moto: Create acts in account ID with credentials from
// AssumeRole(arn:aws:iam::ID:role/OrganizationAccountAccessRole). moto
// documents this (docs "Multi-Account support"): the role need not exist,
// and moto derives the account of every later call from the access key it
// issued. Create checks with GetCallerIdentity that they act in ID. The
// other documented way, the x-moto-account-id header, is not used: moto
// then looks the caller's key up in that account, so with access control
// on the home credentials are refused (InvalidClientTokenId), and an
// emulator that ignores the header would silently build in the home
// account.
//
// moto 5.2 behaviours observed while writing this package (tests pin the
// ones iamjit relies on):
//
//   - EventBridge rules deliver to SQS synchronously within PutEvents,
//     without checking the queue policy (Create sets one anyway, as real SQS
//     needs it). Pattern matching on source works.
//   - The delivered envelope has id, time, version "0", detail-type,
//     source, region, resources and detail (as a JSON object), but NO
//     "account" key: a decoder must not require it.
//   - CreateQueue on an existing queue compares only the attributes sent
//     and, on a difference, answers error code QueueAlreadyExists, which
//     the SDK does not map to its typed *types.QueueNameExists. Create
//     therefore calls CreateQueue with the name only and then
//     SetQueueAttributes, which converges on reruns with other options.
//   - Redrive: with maxReceiveCount N, the message is returned N times and
//     moved to the DLQ by the next receive (which returns nothing).
//   - DynamoDB tables are ACTIVE at once; DescribeTimeToLive reports
//     ENABLED right after UpdateTimeToLive; TTL never deletes items.
//   - STS: with access control off (the default) nothing is checked: any
//     role can be assumed with any or no ExternalId.
//   - Access control is turned on by INITIAL_NO_AUTH_ACTION_COUNT at start
//     or motoserver.ResetAuth at run time. Credentials used once it is on
//     must be issued by moto before (CreateAccessKey; AssumeRole while
//     calls are still free). The rest of this list is with it on.
//   - A wrong ExternalId is denied (AccessDenied); a missing one is let
//     through. Only the StringEquals condition is evaluated.
//   - Trust-policy principals are matched by exact ARN: the account root
//     ("arn:aws:iam::ACCOUNT:root") matches no caller, and a role ARN does
//     not match that role's sessions (arn:aws:sts::ACCOUNT:assumed-role/
//     NAME/SESSION). So the chain's second hop (connector -> iam-modifier)
//     is always denied by moto, although it is right for AWS.
//   - Plain moto evaluates a role's trust policy only when the role is in
//     the caller's own account (it looks the role up there), so AssumeRole
//     into a member connector from the home account would succeed with a
//     wrong ExternalId. The project's launcher (internal/motoserver) looks
//     the role up in the account its ARN names: the cross-account hop is
//     checked, and a wrong ExternalId is denied.
//   - IAM identity policies are evaluated against resource "*" for every
//     IAM action except those naming a RoleName: a statement scoped to
//     arn:aws:iam::*:group/sym/* never matches, so the modifier role's
//     (correct) policy cannot add members there under moto.
//   - EventBridge Scheduler: CreateScheduleGroup on an existing name
//     replaces the group with an empty one, and its schedules vanish (AWS
//     answers ConflictException). Create calls GetScheduleGroup first.
//   - Identity Center: one instance per account and region exists from the
//     start (no CreateInstance, no DescribeInstance). CreatePermissionSet,
//     CreateAccountAssignment and CreateGroupMembership store a second copy
//     when called twice, so Create lists before it creates; CreateUser and
//     CreateGroup refuse a duplicate name (ConflictException) as AWS does. A
//     permission set made without SessionDuration is stored as the number
//     3600, which the SDK cannot decode (DescribePermissionSet fails), so
//     Create always gives one. Assignments are SUCCEEDED at once.
//   - Access control covers sso: and identitystore: actions against
//     resource "*" (the modifier's statements on * are enforced).
//   - An IAM denial is HTTP 403 that the SDK reports as "UnknownError";
//     an SQS denial is 403 with an XML body the JSON protocol cannot
//     decode. Classify denials by status in tests, not by code.
//
// DynamoDB (found by the chaos test): moto 5 runs TransactWriteItems without
// a lock and, when a transaction fails a condition, restores a copy of the
// whole table taken when it started, undoing writes other requests made
// meanwhile. Real DynamoDB does neither. Tests that run concurrent
// conditional transactions against one moto must serialise DynamoDB calls
// (tools/chaos/proxy.go does).
package devstack
