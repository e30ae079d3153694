package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Memory is a Limiter for one process. It remembers at most MaxKeys clients:
// when full it forgets those whose budget has refilled, and if that is not
// enough, the ones that will refill soonest.
type Memory struct {
	mu      sync.Mutex
	tats    map[string]time.Time
	maxKeys int
	now     func() time.Time
}

// NewMemory returns a Memory limiter that tracks at most maxKeys clients.
func NewMemory(maxKeys int) *Memory {
	return &Memory{tats: make(map[string]time.Time), maxKeys: maxKeys, now: time.Now}
}

// Allow decides for key under p.
func (m *Memory) Allow(_ context.Context, key string, p Policy) (Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	d, tat := gcra(m.tats[key], now, p)
	if _, known := m.tats[key]; !known && len(m.tats) >= m.maxKeys {
		m.evict(now)
	}
	m.tats[key] = tat
	return d, nil
}

// Len is how many clients are remembered.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tats)
}

// evict frees room: first every client whose budget is full again (they
// lose nothing by being forgotten), then, if still full, a random tenth of
// the rest, who get a fresh budget: lenient, but bounded.
func (m *Memory) evict(now time.Time) {
	for k, tat := range m.tats {
		if !tat.After(now) {
			delete(m.tats, k)
		}
	}
	for k := range m.tats { // map order is random
		if len(m.tats) < m.maxKeys*9/10 {
			return
		}
		delete(m.tats, k)
	}
}
