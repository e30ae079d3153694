package replica

import (
	"testing"
	"time"
)

func TestParseLSN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"0/0", 0, false},
		{"0/3000060", 0x3000060, false},
		{"16/B374D848", 0x16<<32 | 0xB374D848, false},
		{"", 0, true},
		{"B374D848", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLSN(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseLSN(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// A replica's lag is the age of the newest primary position it has
// replayed; none of them replayed is beyond the max lag.
func TestLagOf(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s := &Set{opts: Options{MaxLag: 5 * time.Second}, samples: []sample{
		{now.Add(-6 * time.Second), 100},
		{now.Add(-3 * time.Second), 200},
		{now.Add(-time.Second), 300},
	}}
	tests := []struct {
		replay   uint64
		min, max time.Duration
	}{
		{300, 0, 0},                             // has the newest sample
		{400, 0, 0},                             // past it
		{250, 3 * time.Second, 4 * time.Second}, // has the one of 3s ago, not the one of 1s ago
		{100, 6 * time.Second, 7 * time.Second}, // only the oldest
		{50, 6 * time.Second, 7 * time.Second},  // none: at least the window, beyond the max lag
	}
	for _, tt := range tests {
		if got := s.lagOf(tt.replay); got < tt.min || got > tt.max {
			t.Errorf("lagOf(%d) = %v, want from %v to %v", tt.replay, got, tt.min, tt.max)
		}
	}
}
