// Package replay moves dead letters back to a queue once their cause is
// fixed, and lists them without moving for an operator to read.
//
// A run receives the DLQ ten letters at a time with every message and system
// attribute, keeps those that match a Filter, sends them to the target queue
// with SendMessageBatch (body and attributes kept, iamjit's reason attributes
// replaced by iamjit.replayed_from) and deletes from the DLQ only the entries
// whose send succeeded. A crash between send and delete leaves a message in
// both queues; the consumer's processed-event record per Sym id makes the
// second delivery harmless, so replay prefers a duplicate to a loss.
//
// Letters a run does not move stay invisible (Mover.Hold, extended while the
// scan goes on) until the scan ends and are then made visible again at once.
// Holding them is what lets one run see every letter once: a letter released
// immediately would be the first one the next receive returns. A killed run
// leaves them to reappear when Hold runs out.
//
// The scan ends after two consecutive receives (long-polled, Mover.Wait)
// bring no letter it has not seen.
package replay
