// Package consumer drains the SQS queue of Sym events: long-polling receives
// of up to ten messages, a bounded pool of workers, visibility extended for
// slow work, backoff by changing visibility on transient failures, and
// deletion in batches only after a message's effect and its result events are
// durable. Poison messages move to the dead-letter queue with their reason as
// message attributes. On shutdown it stops receiving and finishes in-flight
// work within a deadline.
package consumer
