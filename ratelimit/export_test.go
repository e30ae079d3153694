package ratelimit

// Waiting is how many requests of key under p wait for the call in flight.
func (r *Redis) Waiting(key string, p Policy) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.pending[slotKey{key, p}]; s != nil {
		return len(s.waiting)
	}
	return 0
}
