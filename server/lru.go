package server

import "container/list"

// lru is a map of at most max entries that forgets the least recently
// used entry to make room: the bound of the per-association caches, which
// a client fills with whatever destinations it likes. Not safe for
// concurrent use.
type lru[K comparable, V any] struct {
	max   int
	m     map[K]*list.Element
	order list.List // front: most recently used; values are *lruEntry
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, m: make(map[K]*list.Element)}
}

// get returns the value of k and marks it used.
func (c *lru[K, V]) get(k K) (V, bool) {
	e, ok := c.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry[K, V]).val, true
}

// put sets k to v, forgetting the least recently used entry when full.
func (c *lru[K, V]) put(k K, v V) {
	if e, ok := c.m[k]; ok {
		e.Value.(*lruEntry[K, V]).val = v
		c.order.MoveToFront(e)
		return
	}
	if len(c.m) >= c.max {
		if old := c.order.Back(); old != nil {
			delete(c.m, old.Value.(*lruEntry[K, V]).key)
			c.order.Remove(old)
		}
	}
	c.m[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v})
}

func (c *lru[K, V]) len() int { return len(c.m) }
