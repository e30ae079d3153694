package feed_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"userapi/feed"
	"userapi/store"
	"userapi/store/storetest"
)

// running starts a feed over a fresh log and stops it when the test ends.
func running(t *testing.T, opts feed.Options) (*feed.Feed, *store.Users) {
	t.Helper()
	pool := storetest.Pool(t, storetest.QuietDB(t), 4)
	opts.Logger = slog.New(slog.NewTextHandler(tlog{t}, nil))
	f := feed.New(store.NewEvents(pool), opts)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { f.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return f, store.NewUsers(pool).WithCommitted(f.Committed)
}

// subscribe waits for the feed's first read of the log, then subscribes.
func subscribe(t *testing.T, f *feed.Feed, key string) *feed.Sub {
	t.Helper()
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		s, err := f.Subscribe(key, true)
		if err == nil {
			return s
		}
		if !errors.Is(err, feed.ErrNotReady) || time.Since(start) > time.Minute {
			t.Fatalf("Subscribe() error = %v", err)
		}
	}
}

// A stream that does not take its events is ended once its buffer is
// full, and only it: the others get every event.
func TestFeed_SlowStreamIsEnded(t *testing.T) {
	t.Parallel()
	f, users := running(t, feed.Options{Buffer: 3})
	slow, fast := subscribe(t, f, "a"), subscribe(t, f, "b")

	// One event at a time, each taken by the fast stream before the next:
	// the slow one holds three, and the fourth ends it.
	for i := range 4 {
		if _, err := users.Create(context.Background(), store.NewUser{Name: "U", Email: fmt.Sprintf("u%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-fast.Ready():
			fast.Take(nil)
		case <-fast.Done():
			t.Fatalf("the stream that keeps up was ended: %v", fast.Err())
		}
	}
	<-slow.Done()
	if !errors.Is(slow.Err(), feed.ErrSlow) {
		t.Errorf("slow stream ended with %v, want ErrSlow", slow.Err())
	}
	select {
	case <-fast.Done():
		t.Errorf("the stream that kept up was ended too: %v", fast.Err())
	default:
	}
	if n := f.Open(); n != 1 {
		t.Errorf("Open() = %d after the slow one ended, want 1", n)
	}
	fast.Close()
}

// A stream taking its events in batches, reusing each batch's slice for
// the next, gets every event once, in id order.
func TestFeed_TakeGivesEveryEventOnceInOrder(t *testing.T) {
	t.Parallel()
	f, users := running(t, feed.Options{})
	s := subscribe(t, f, "a")
	defer s.Close()
	const n = 40
	for i := range n {
		if _, err := users.Create(context.Background(), store.NewUser{Name: "U", Email: fmt.Sprintf("u%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []int64
	var batch []*feed.Item
	for len(ids) < n {
		select {
		case <-s.Ready():
			batch = s.Take(batch)
			for _, it := range batch {
				ids = append(ids, it.Event.ID)
			}
		case <-s.Done():
			t.Fatalf("stream ended after %d events: %v", len(ids), s.Err())
		case <-time.After(time.Minute):
			t.Fatalf("got %d events of %d", len(ids), n)
		}
	}
	for i := range ids {
		if ids[i] <= s.From || i > 0 && ids[i] <= ids[i-1] {
			t.Fatalf("event ids %v: want %d rising ids after %d", ids, n, s.From)
		}
	}
	if len(ids) != n {
		t.Errorf("got %d events, want %d", len(ids), n)
	}
}

// Close ends every stream with ErrClosed and refuses new ones.
func TestFeed_Close(t *testing.T) {
	t.Parallel()
	f, _ := running(t, feed.Options{PerKey: 1})
	s := subscribe(t, f, "a")
	if _, err := f.Subscribe("a", true); !errors.Is(err, feed.ErrTooMany) {
		t.Errorf("second Subscribe(a) error = %v, want ErrTooMany", err)
	}
	f.Close()
	<-s.Done()
	if !errors.Is(s.Err(), feed.ErrClosed) {
		t.Errorf("stream ended with %v, want ErrClosed", s.Err())
	}
	if _, err := f.Subscribe("b", true); !errors.Is(err, feed.ErrClosed) {
		t.Errorf("Subscribe() after Close error = %v, want ErrClosed", err)
	}
}

// Wait holds shutdown until every stream, ended by Close, has closed its
// subscription, however long after its end the stream does.
func TestFeed_WaitForStreamsToClose(t *testing.T) {
	t.Parallel()
	f, _ := running(t, feed.Options{})
	s := subscribe(t, f, "a")
	f.Close()
	<-s.Done()
	soon, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := f.Wait(soon); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait() with a stream still writing = %v, want the context's error", err)
	}
	s.Close()
	s.Close() // twice, as a stream may
	if err := f.Wait(context.Background()); err != nil {
		t.Errorf("Wait() once the stream closed = %v", err)
	}
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }
