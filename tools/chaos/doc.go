// Package chaos proves iamjit's invariants (DESIGN.md 1–6) under
// at-least-once delivery, reordering, overlapping grants, several replicas,
// AWS faults and SIGKILL. Its test runs the real binary as separate
// processes against one moto_server behind a fault-injecting proxy.
//
// The helpers are plain code so that they can be tested on their own:
//   - Proxy: an HTTP reverse proxy in front of moto that throttles, fails
//     with 500, holds and drops requests, or forwards them and drops the
//     response (the effect happened, the caller sees an error);
//   - Workload: a seeded plan of Sym events (escalates, duplicates,
//     deescalates before escalates, overlapping grants, short and already
//     passed expiries, noise and poison bodies) and when to send them;
//   - Check: the invariant checker over what the test read back from IAM,
//     DynamoDB, the results queue and the dead-letter queue.
package chaos
