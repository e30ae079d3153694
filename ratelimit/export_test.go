package ratelimit

import "time"

// Waiting is how many requests of key under p wait for the call in flight.
func (r *Redis) Waiting(key string, p Policy) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.pending[slotKey{key, p}]; s != nil {
		return len(s.waiting)
	}
	return 0
}

// Leased is how many requests of key under p the lease holds.
func (r *Redis) Leased(key string, p Policy) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.leases[slotKey{key, p}]; l != nil {
		return l.n
	}
	return 0
}

// AwaitLeasesReturned waits until every lease has expired and its unused
// requests are back in Redis.
func (r *Redis) AwaitLeasesReturned() {
	for {
		r.mu.Lock()
		n := len(r.leases)
		r.mu.Unlock()
		if n == 0 {
			r.givingBack.Wait()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
