package lazydeadline

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The lazy deadline behaves as context.WithDeadline: Done closes at the
// deadline, with the parent, or once stopped, and Err says which.
func TestLazyDeadline(t *testing.T) {
	t.Parallel()
	ctx, stop := With(context.Background(), time.Now().Add(20*time.Millisecond))
	defer stop()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > 20*time.Millisecond {
		t.Errorf("Deadline() = %v, %v", d, ok)
	}
	if ctx.Err() != nil {
		t.Fatalf("Err() = %v before the deadline", ctx.Err())
	}
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("Err() = %v after the deadline, want DeadlineExceeded", ctx.Err())
	}

	parent, cancelParent := context.WithCancel(context.Background())
	ctx, stop = With(parent, time.Now().Add(time.Hour))
	defer stop()
	done := ctx.Done()
	cancelParent()
	<-done
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("Err() = %v after the parent's cancel, want Canceled", ctx.Err())
	}

	for _, waitFirst := range []bool{false, true} {
		ctx, stop = With(context.Background(), time.Now().Add(time.Hour))
		if waitFirst {
			_ = ctx.Done()
		}
		stop()
		<-ctx.Done()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("waited first %v: Err() = %v once stopped, want Canceled", waitFirst, ctx.Err())
		}
	}
	ctx, stop = With(context.WithValue(context.Background(), ctxKey{}, 7), time.Now().Add(time.Hour))
	defer stop()
	if ctx.Value(ctxKey{}) != 7 {
		t.Errorf("Value() = %v, want the parent's 7", ctx.Value(ctxKey{}))
	}
}

type ctxKey struct{}
