// Package chaos proves iamjit's invariants (docs/design.md 1–9) under
// at-least-once delivery, reordering, overlapping grants, several replicas,
// AWS faults and SIGKILL, in two accounts at once (the home one and a
// member account with the same group names), each invariant per account,
// and on Identity Center targets beside them: permission sets assigned in
// both accounts and Identity Store groups, each such space checked as an
// account is (its memberships read back as USER assignments or group
// memberships; exactly one copy of each at rest, where moto keeps one per
// create; results naming the target in its kind's fields only).
// Its test runs the real binary as separate processes against one
// moto_server behind a fault-injecting proxy.
//
// The helpers are plain code so that they can be tested on their own:
//   - Proxy: an HTTP reverse proxy in front of moto that throttles, fails
//     with 500, holds and drops requests, or forwards them and drops the
//     response (the effect happened, the caller sees an error); and answers
//     TransactWriteItems as a busy DynamoDB does (cancelled on a
//     TransactionConflict or ThrottlingError, ProvisionedThroughputExceeded),
//     counting which of those the same replica sent again at once, and
//     counting calls and faults by the account of the credentials that
//     signed them (learnt from the AssumeRole answers it forwards);
//   - Cast: the accounts, their users (one email, another name in each
//     account), groups (the same names) and decoys;
//   - Workload: a seeded plan of Sym events (escalates, duplicates,
//     deescalates before escalates, overlapping grants, short and already
//     passed expiries, noise and poison bodies) and when to send them, and
//     scripts (overlaps, reorders) whose events the test sends as the
//     table's state allows, so that every scenario happens however slow
//     the emulator is;
//   - Check: the invariant checker over what the test read back from IAM
//     (each account's own), DynamoDB, the results queue and the dead-letter
//     queue, per (account, group), with RequireExercised failing a run that
//     left an account unexercised; beside it
//     (ended_test.go) the session-revocation check (every ended membership
//     of the /jit/ group denied in the role's policy and its item) and the
//     late adds the test injects after iamjit's removals, all undone.
package chaos
