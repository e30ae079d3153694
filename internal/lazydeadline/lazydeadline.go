// Package lazydeadline gives a context a deadline whose timer starts only
// when something waits for it.
package lazydeadline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lazyDeadline is its parent with a deadline whose timer starts only when
// something waits on Done. Most Redis calls, and most requests, are
// answered from this process's memory and never wait: a timer each was a
// tenth of a cached read's cost.
type lazyDeadline struct {
	context.Context
	deadline time.Time
	once     sync.Once
	timed    context.Context
	cancel   context.CancelFunc
	stopped  atomic.Bool
}

// With is context.WithDeadline(parent, d), but for when its timer starts.
func With(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	c := &lazyDeadline{Context: parent, deadline: d}
	return c, c.stop
}

func (c *lazyDeadline) start() {
	c.once.Do(func() { c.timed, c.cancel = context.WithDeadline(c.Context, c.deadline) })
}

func (c *lazyDeadline) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *lazyDeadline) Done() <-chan struct{} {
	c.start()
	return c.timed.Done()
}

func (c *lazyDeadline) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if c.stopped.Load() {
		return context.Canceled
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// stop releases the timer, if it started; from then on the context is
// canceled, as one from WithDeadline is by its cancel function.
func (c *lazyDeadline) stop() {
	c.stopped.Store(true)
	c.once.Do(func() { c.timed, c.cancel = canceled, func() {} })
	c.cancel()
}

// canceled is a context canceled from the start.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
