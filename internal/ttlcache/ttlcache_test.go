package ttlcache

import (
	"testing"
	"time"
)

func TestExpiresAndStartsOverAtItsBound(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New[string, int](time.Minute, 2, func() time.Time { return now })
	if _, ok := c.Get("a"); ok {
		t.Fatal("empty cache returned a value")
	}
	c.Put("a", 1)
	now = now.Add(59 * time.Second)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("within ttl: %d %v", v, ok)
	}
	now = now.Add(time.Second)
	if _, ok := c.Get("a"); ok {
		t.Fatal("an entry ttl old is still trusted")
	}
	c.Put("a", 1)
	c.Put("b", 2)
	c.Put("c", 3) // the bound: the cache starts over
	if _, ok := c.Get("a"); ok {
		t.Fatal("the cache grew past its bound")
	}
	if v, ok := c.Get("c"); !ok || v != 3 {
		t.Fatalf("the entry put at the bound: %d %v", v, ok)
	}
}
