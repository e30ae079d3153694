package main

import (
	"testing"
	"time"
)

// Each figure is its own median: the round of median throughput here has
// the worst p99, which is not the median one.
func TestMedian_EachFigureOnItsOwn(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	got := median([]result{
		{rps: 1400, p50: 10 * ms, p99: 42 * ms},
		{rps: 1200, p50: 12 * ms, p99: 39 * ms, errors: 2},
		{rps: 1380, p50: 11 * ms, p99: 52 * ms},
	})
	want := result{rps: 1380, p50: 11 * ms, p99: 42 * ms, errors: 2}
	if got != want {
		t.Errorf("median = %+v, want %+v", got, want)
	}
}
