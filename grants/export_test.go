package grants

import "sort"

// PendingKeys lists the armed timers (kind#id…), for tests that check which
// timer a grant got.
func (t *Timers) PendingKeys() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.pending))
	for k := range t.pending {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
