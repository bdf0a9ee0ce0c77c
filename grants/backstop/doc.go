// Package backstop gives every membership iamjit creates an AWS-native
// backstop: one EventBridge Scheduler one-time schedule, in the schedule
// group of the account that holds the membership, that removes the
// membership by itself should iamjit not do it in time (a crashed or
// partitioned deployment, a lost timer). It is the adapter beneath the
// domain, as grants/iamgroups is for IAM groups: grants decides when to
// arm, move and disarm; this package keeps the schedule right.
//
// # One schedule per membership
//
// The schedule's name is derived from the membership (Name), so every
// grant of the same membership, from any replica, finds the same schedule:
// an overlapping grant moves it later, the end of the last grant deletes it
// (Disarm), and a schedule left behind by a killed replica is found and
// moved by the next grant of the membership. Each schedule calls a
// universal target with the exact request of the removal:
//
//   - IAM user in a group: arn:aws:scheduler:::aws-sdk:iam:removeUserFromGroup
//     with {"GroupName": …, "UserName": …}
//   - Identity Center account assignment:
//     arn:aws:scheduler:::aws-sdk:ssoadmin:deleteAccountAssignment with
//     {"InstanceArn", "PermissionSetArn", "PrincipalId", "PrincipalType":
//     "USER", "TargetId": the account, "TargetType": "AWS_ACCOUNT"}
//   - Identity Store group membership:
//     arn:aws:scheduler:::aws-sdk:identitystore:deleteGroupMembership with
//     {"IdentityStoreId", "MembershipId"}; the membership id exists only once
//     the user was added, so such a membership is armed after the add
//     (ErrNoMembership before).
//
// It fires at(latest expiry + grace) in UTC, rounded up to the second,
// with FlexibleTimeWindow OFF, ActionAfterCompletion DELETE (a fired
// schedule deletes itself), a retry policy (185 attempts within an hour:
// see MaxEventAge) and, when configured, a dead-letter queue. For an
// Identity Center kind "the account that holds the membership" is the one
// that holds the instance, where the Identity Center APIs are called;
// Name includes the kind and the account assigned, so assignments of one
// permission set in two accounts have two schedules there.
//
// # Never early
//
// A backstop that fires inside an active grant cuts access early, which is
// worse than none. So:
//
//   - Arm only ever moves a schedule later: it is given the membership's
//     latest expiry, and a schedule found firing later (another grant's) is
//     kept. Move is the one call that moves earlier, for when the longest
//     grant ended and a shorter one remains; it is given the latest expiry
//     of the grants still active, and moves exactly there.
//   - Every write sends the whole definition: UpdateSchedule replaces every
//     field, and one left out would go back to its default.
//   - Arm before the membership is added where the removal does not depend
//     on it (IAM, permission sets): a schedule left behind by a killed
//     replica is then moved before the membership it would end exists.
//   - Concurrent writers. EventBridge Scheduler has no conditional update,
//     so two replicas arming one membership can interleave: A reads,
//     B reads, B writes a later time, A writes its earlier one. A create
//     that finds the name taken (ConflictException) reads again. After
//     every write Arm checks it: with Options.Latest it reads the store's
//     latest expiry of the membership and writes again if that is later
//     than what it wrote; without it, it reads the schedule back. The store
//     check closes the race whenever every grant is recorded in the store
//     before its Arm starts and the store's reads are strongly consistent:
//     take the last schedule write W (value v) and its writer's store read
//     R after it. A grant whose expiry needs more than v was either recorded
//     before R (R sees it, and W's writer writes again: W was not last) or
//     after R, hence after W: its own Arm reads after W, finds v and
//     writes (W was not last). So the last write is never too early. The
//     read-back alone only catches a stale write that lands before the
//     read-back; without Latest the caller must not arm one membership
//     from two places at once.
//   - Disarm only deletes. A grant recorded after the caller decided to
//     disarm and armed before the delete loses its schedule, so the caller
//     must notice the grant and arm again: grants' converge disarms between
//     its read of the membership item and MarkSynced, which fails when
//     any grant was recorded since the read (the item's token moved); its
//     next round reads the grant and arms. A grant recorded after
//     MarkSynced arms after the delete. A replica killed between its
//     delete and that next round leaves the schedule to the sweep's
//     backstop check (CheckBackstops), as any schedule write a kill
//     interrupts; iamjit's own expiry still ends the grant. (Disarm used to
//     re-read the store's latest expiry itself, right after the delete: one
//     read more per removal, for a case the token already catches.)
//   - A time already past (or less than MinLead away) is set MinLead from
//     now: AWS then accepts and fires it, and later is never early.
//
// # Start-up
//
// Check verifies that the group exists (never creating it) and that the
// role can be passed, by creating, reading, updating and deleting a
// disabled probe schedule a year away; its errors name IAMJIT_BACKSTOP_GROUP
// or the role's setting, and the caller exits 2.
//
// # moto 5.2.1
//
// The tests run against moto 5.2.1, which stores schedules but never fires
// them: a test fires a due schedule itself, by making its target call with
// its input as the execution role (backstoptest.Fire). Other quirks, each
// confirmed by a test in moto_test.go, and how iamjit avoids them:
//
//   - CreateScheduleGroup on an existing name silently replaces the group
//     with an empty one (its schedules vanish): iamjit never creates the
//     group, Check only reads it.
//   - UpdateSchedule ignores ActionAfterCompletion (the value given at
//     creation stays): iamjit creates with DELETE, so DELETE stays.
//   - CreateSchedule into a missing group answers HTTP 500
//     (InternalServerError, retryable), not ResourceNotFound: a failed write
//     asks GetScheduleGroup and returns a permanent GroupMissingError.
//   - Any ScheduleExpression is accepted unchecked: iamjit writes only
//     at() expressions it formats itself, and a schedule whose expression it
//     cannot read is rewritten (its At is zero, earlier than any time).
//   - ListSchedules answers summaries (no expression, input or role), as
//     AWS does: List reads each schedule.
//   - With IAM access control on, plain moto refuses every signed
//     scheduler GET (SignatureDoesNotMatch) and checks every scheduler call
//     against "*"; the project's launcher (internal/motoserver) fixes both,
//     so the backstop runs under its access control. moto never checks
//     iam:PassRole.
package backstop
