// Package grants decides what an approved request does and keeps three
// records consistent: the grant (DynamoDB), the membership of an IAM user in
// an IAM group (IAM), and the set of active grants that explains it.
//
// The rule that keeps IAM right under retries, reordering and many replicas:
// the membership item in the Store holds the set of active grant ids and a
// token that every write replaces. Whoever changes the set then makes IAM
// agree with it (Add when the set is non-empty, Remove when empty) and clears
// the item's dirty mark only if the token is still the one it acted on. If the
// token moved, someone wrote after it: it reads again and converges again.
// The last IAM call therefore always reflects the last write. A process that
// dies in between leaves the item dirty; the sweeper converges dirty items,
// and a redelivered message converges again.
//
// A deescalate for an unknown grant leaves a tombstone, so the escalate that
// arrives late is refused. Expiry is the sweeper's: it reads the store's
// expiry index, never DynamoDB TTL, which only cleans history.
package grants
