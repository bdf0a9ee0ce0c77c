// Package ttlcache is the small cache the IAM adapters keep of what IAM
// said (a group's path, a user's existence, the roles a group may assume):
// each entry is trusted for a fixed time, and the whole cache starts over
// when it reaches its bound. Written here because the adapters need no
// more than this (no eviction order, no loader), and one copy serves both.
package ttlcache

import (
	"sync"
	"time"
)

// Cache maps K to V for ttl. The zero value is not usable: call New.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[K]entry[V]
}

type entry[V any] struct {
	v  V
	at time.Time
}

// New returns a cache whose entries are trusted for ttl on the clock now,
// holding at most max entries before it starts over.
func New[K comparable, V any](ttl time.Duration, max int, now func() time.Time) *Cache[K, V] {
	return &Cache[K, V]{ttl: ttl, max: max, now: now, m: map[K]entry[V]{}}
}

// Get returns the value for k if it was put less than ttl ago.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || c.now().Sub(e.at) >= c.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v for k as of now.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = entry[V]{v: v, at: c.now()}
}
