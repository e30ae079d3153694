package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"userapi/feed"
	"userapi/store"
)

// memLog is an event log in memory, for the feed and the stream alike.
type memLog struct {
	mu     sync.Mutex
	events []store.Event
}

func (l *memLog) add(id int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, store.Event{ID: id, Type: "user.created", UserID: id, Data: json.RawMessage(`{}`)})
}

func (l *memLog) After(_ context.Context, f store.EventFilter) (store.EventPage, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	page := store.EventPage{Next: f.After}
	for _, ev := range l.events {
		if ev.ID > f.After && len(page.Events) < f.Limit {
			page.Events = append(page.Events, ev)
			page.Next = ev.ID
		}
	}
	return page, nil
}

func (l *memLog) Get(context.Context, int64) (store.Event, error) {
	return store.Event{}, store.ErrNotFound
}

func (l *memLog) End(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) == 0 {
		return 0, nil
	}
	return l.events[len(l.events)-1].ID, nil
}

func (l *memLog) Notify(context.Context) error         { return nil }
func (l *memLog) Listen(ctx context.Context, _ func()) { <-ctx.Done() }

// flushRecorder is an answer that cannot be taken over, as over HTTP/2,
// and tells of every flush.
type flushRecorder struct {
	header  http.Header
	mu      sync.Mutex
	body    bytes.Buffer
	flushed chan struct{}
}

func (r *flushRecorder) Header() http.Header { return r.header }
func (r *flushRecorder) WriteHeader(int)     {}
func (r *flushRecorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.body.Write(b)
}
func (r *flushRecorder) Flush() {
	select {
	case r.flushed <- struct{}{}:
	default:
	}
}
func (r *flushRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.body.String()
}

// newStream runs a feed over log until ctx ends, and returns it with a
// stream subscribed to it, on ctx, as the handler makes one.
func newStream(t *testing.T, ctx context.Context, log *memLog) (*feed.Feed, *eventStream) {
	t.Helper()
	f := feed.New(log, feed.Options{Poll: 5 * time.Millisecond})
	go f.Run(ctx)
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		sub, err := f.Subscribe("", false)
		if err == nil {
			first, _ := log.After(ctx, store.EventFilter{Limit: streamPage})
			return f, &eventStream{ctx: ctx, log: log, sub: sub, first: first, keepAlive: time.Hour}
		}
		if !errors.Is(err, feed.ErrNotReady) || time.Since(start) > time.Minute {
			t.Fatalf("Subscribe() error = %v", err)
		}
	}
}

// Where the connection cannot be taken over, the stream holds the handler:
// the log's events, then the feed's, in order, until the feed closes.
func TestEventStream_ServedInHandlerWithoutTakeOver(t *testing.T) {
	log := &memLog{}
	log.add(1)
	log.add(2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, s := newStream(t, ctx, log)
	w := &flushRecorder{header: http.Header{}, flushed: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- s.VisitStreamEventsResponse(w) }()

	log.add(3)
	for !strings.Contains(w.String(), "id: 3\n") {
		select {
		case <-w.flushed:
		case <-time.After(time.Minute):
			t.Fatalf("event 3 did not arrive; the stream so far: %q", w.String())
		}
	}
	f.Close()
	if err := <-done; err != nil {
		t.Errorf("VisitStreamEventsResponse() = %v", err)
	}
	var ids []string
	for _, line := range strings.Split(w.String(), "\n") {
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, id)
		}
	}
	if got := strings.Join(ids, ","); got != "1,2,3" || !strings.HasPrefix(w.String(), "retry: ") {
		t.Errorf("stream %q: ids %s, want the retry advice, then 1,2,3", w.String(), got)
	}
	if ct := w.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
}

// A HEAD to the stream gets the stream's head and nothing else, at once:
// no body, and no subscription left open.
func TestEventStream_HeadGetsTheHeadAlone(t *testing.T) {
	log := &memLog{}
	log.add(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, s := newStream(t, context.WithValue(ctx, headRequest{}, true), log)
	w := httptest.NewRecorder()
	done := make(chan error, 1)
	go func() { done <- s.VisitStreamEventsResponse(w) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the answer to a HEAD did not end: it streams")
	}
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD answered %d %q with %q; want 200 text/event-stream with no body", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	if n := f.Open(); n != 0 {
		t.Errorf("%d streams open after the HEAD, want 0", n)
	}
}

// headToo tells the handler of a HEAD that it answers one, and the
// handler of a GET that it does not.
func TestHeadToo_MarksHead(t *testing.T) {
	t.Parallel()
	e := echo.New()
	var sawHead []bool
	headToo{e}.GET("/s", func(c echo.Context) error {
		sawHead = append(sawHead, answersHead(c.Request().Context()))
		return c.NoContent(http.StatusOK)
	})
	for _, m := range []string{http.MethodHead, http.MethodGet} {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/s", nil))
	}
	if len(sawHead) != 2 || !sawHead[0] || sawHead[1] {
		t.Errorf("HEAD then GET: the handler saw answersHead %v, want [true false]", sawHead)
	}
}
