package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"userapi/cache/cachetest"
	"userapi/internal/freeport"
	"userapi/store/storetest"
)

// sseEvent is one message of an event stream.
type sseEvent struct {
	id   int64
	typ  string
	data string
}

// sseStream reads an event stream the way EventSource does: messages end
// at a blank line, comments start with a colon.
type sseStream struct {
	res      *http.Response
	lines    *bufio.Scanner
	comments int
	retry    string
}

// openStream opens GET /events/stream on base and fails the test unless it
// answers 200 with an event stream.
func openStream(t *testing.T, ctx context.Context, base, query string, headers ...string) *sseStream {
	t.Helper()
	res := streamRequest(t, ctx, base, query, headers...)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("GET %s/events/stream%s = %d %s %s, want 200 text/event-stream", base, query, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &sseStream{res: res, lines: bufio.NewScanner(res.Body)}
}

func streamRequest(t *testing.T, ctx context.Context, base, query string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/events/stream"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// next returns the next event, or the error that ended the stream (io.EOF
// when the server ended it cleanly).
func (s *sseStream) next() (sseEvent, error) {
	var ev sseEvent
	seen := false
	for s.lines.Scan() {
		line := s.lines.Text()
		switch {
		case line == "":
			if seen {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
			s.comments++
		case strings.HasPrefix(line, "id: "):
			seen = true
			ev.id, _ = strconv.ParseInt(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			ev.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		case strings.HasPrefix(line, "retry: "):
			s.retry = line[7:]
		}
	}
	if err := s.lines.Err(); err != nil {
		return ev, err
	}
	return ev, io.EOF
}

// allEventIDs pages through GET /events: the log's truth.
func allEventIDs(t *testing.T, base string, headers ...string) []int64 {
	t.Helper()
	var ids []int64
	after := int64(0)
	for {
		r := call(t, "GET", fmt.Sprintf("%s/events?after=%d&limit=1000", base, after), "", headers...)
		if r.status != http.StatusOK {
			t.Fatalf("GET /events?after=%d = %d %s", after, r.status, r.body)
		}
		var page struct {
			Items []struct {
				ID int64 `json:"id"`
			} `json:"items"`
			NextAfter int64 `json:"next_after"`
		}
		if err := json.Unmarshal([]byte(r.body), &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		after = page.NextAfter
		if len(page.Items) < 1000 {
			return ids
		}
	}
}

// 1,000 changes written concurrently through two instances reach three
// streams on both instances; one is cut halfway and resumes on the other
// instance with Last-Event-ID. Each sees every event once, in id order.
func TestEventStream_TwoInstancesCutAndResume(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": storetest.QuietDB(t), "REDIS_URL": "off", "USERAPI_STREAM_KEEPALIVE": "200ms"}
	a, b := instance(t, vars), instance(t, vars)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	const writers, perWriter = 8, 125
	const total = writers * perWriter
	type result struct {
		ids []int64
		err error
	}
	results := make([]chan result, 3)
	follow := func(i int, s *sseStream, want int, then func(last int64) *sseStream) {
		results[i] = make(chan result, 1)
		go func() {
			var ids []int64
			for len(ids) < want {
				ev, err := s.next()
				if err != nil {
					results[i] <- result{ids, fmt.Errorf("after %d events: %w", len(ids), err)}
					return
				}
				ids = append(ids, ev.id)
				if then != nil && len(ids) == total/3 {
					// Cut: the client goes away, and comes back on the
					// other instance with the last id it got.
					s.res.Body.Close()
					s = then(ev.id)
					then = nil
				}
			}
			results[i] <- result{ids, nil}
		}()
	}
	follow(0, openStream(t, ctx, a, ""), total, nil)
	follow(1, openStream(t, ctx, b, ""), total, nil)
	follow(2, openStream(t, ctx, a, ""), total, func(last int64) *sseStream {
		return openStream(t, ctx, b, "", "Last-Event-ID", strconv.FormatInt(last, 10))
	})

	var wg sync.WaitGroup
	errs := make(chan string, writers)
	for w := range writers {
		base := a
		if w%2 == 1 {
			base = b
		}
		wg.Go(func() {
			for i := range perWriter {
				r := call(t, "POST", base+"/users", fmt.Sprintf(`{"name":"W%d","email":"w%d-%d@example.com"}`, w, w, i))
				if r.status != http.StatusCreated {
					errs <- fmt.Sprintf("writer %d: POST = %d %s", w, r.status, r.body)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}

	truth := allEventIDs(t, b)
	if len(truth) != total || !slices.IsSorted(truth) {
		t.Fatalf("GET /events lists %d events (sorted: %v), want %d in order", len(truth), slices.IsSorted(truth), total)
	}
	for i, name := range []string{"stream on A", "stream on B", "stream cut on A, resumed on B"} {
		r := <-results[i]
		if r.err != nil {
			t.Errorf("%s: %v", name, r.err)
			continue
		}
		if !slices.Equal(r.ids, truth) {
			t.Errorf("%s got %d ids, want the log's %d, once each and in order (first difference at %d)", name, len(r.ids), len(truth), firstDiff(r.ids, truth))
		}
	}
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A stream resumes exactly after Last-Event-ID, or after= on a first
// connection; it opens with retry: and keeps quiet connections alive with
// comments; an id the log no longer reaches is 410.
func TestEventStream_ResumeKeepAliveAndGone(t *testing.T) {
	t.Parallel()
	db := storetest.QuietDB(t)
	base := instance(t, map[string]string{"DATABASE_URL": db, "REDIS_URL": "off", "USERAPI_STREAM_KEEPALIVE": "50ms"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 3 {
		if r := call(t, "POST", base+"/users", fmt.Sprintf(`{"name":"U","email":"u%d@example.com"}`, i)); r.status != http.StatusCreated {
			t.Fatalf("POST = %d", r.status)
		}
	}
	ids := allEventIDs(t, base)
	for len(ids) < 3 {
		ids = allEventIDs(t, base)
	}

	for _, tc := range []struct {
		name    string
		query   string
		headers []string
	}{
		{"Last-Event-ID", "", []string{"Last-Event-ID", strconv.FormatInt(ids[0], 10)}},
		{"after", "?after=" + strconv.FormatInt(ids[0], 10), nil},
		{"Last-Event-ID over after", "?after=0", []string{"Last-Event-ID", strconv.FormatInt(ids[0], 10)}},
	} {
		s := openStream(t, ctx, base, tc.query, tc.headers...)
		var got []int64
		for range 2 {
			ev, err := s.next()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if ev.typ != "user.created" || !strings.Contains(ev.data, fmt.Sprintf(`"id":%d,"type":"user.created"`, ev.id)) {
				t.Errorf("%s: event %+v, want user.created with the event as data", tc.name, ev)
			}
			got = append(got, ev.id)
		}
		if !slices.Equal(got, ids[1:]) {
			t.Errorf("%s: resumed with %v, want %v", tc.name, got, ids[1:])
		}
		if s.retry != "2000" {
			t.Errorf("%s: retry = %q, want 2000", tc.name, s.retry)
		}
		s.res.Body.Close()
	}

	// Nothing new: comments keep the stream alive.
	s := openStream(t, ctx, base, "")
	for s.comments < 2 && s.lines.Scan() {
		if strings.HasPrefix(s.lines.Text(), ":") {
			s.comments++
		}
	}
	if s.comments < 2 {
		t.Errorf("idle stream sent %d comment lines, want a keep-alive comment every 50ms", s.comments)
	}

	// Trim the first two: a client behind them has missed them.
	pool := storetest.Pool(t, db, 1)
	if _, err := pool.Exec(ctx, "UPDATE events SET occurred_at = now() - interval '100 days' WHERE id <= $1", ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "WITH d AS (DELETE FROM events WHERE id <= $1) UPDATE event_log SET trimmed_upto = $1", ids[1]); err != nil {
		t.Fatal(err)
	}
	res := streamRequest(t, ctx, base, "", "Last-Event-ID", strconv.FormatInt(ids[0], 10))
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusGone || !strings.Contains(string(body), fmt.Sprintf("starts after event %d", ids[1])) {
		t.Errorf("stream after a trimmed id = %d %s, want 410 saying the log starts after %d", res.StatusCode, body, ids[1])
	}
}

// A key may hold USERAPI_STREAMS_PER_KEY streams open; past that, 429.
// Closing one makes room.
func TestEventStream_PerKeyLimit(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": storetest.QuietDB(t), "REDIS_URL": "off", "USERAPI_AUTH": "on", "USERAPI_STREAMS_PER_KEY": "2"}
	key := newKey(t, vars, "--name", "reader", "--scopes", "events:read")
	other := newKey(t, vars, "--name", "other", "--scopes", "admin")
	base := instance(t, vars)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	first := openStream(t, ctx, base, "", bearer(key)...)
	openStream(t, ctx, base, "", bearer(key)...)
	res := streamRequest(t, ctx, base, "", bearer(key)...)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "2 streams open") {
		t.Fatalf("third stream of a key = %d %s, want 429 with Retry-After naming the limit", res.StatusCode, body)
	}
	openStream(t, ctx, base, "", bearer(other)...) // another key has its own
	if r := call(t, "GET", base+"/events/stream", "", bearer(newKey(t, vars, "--name", "users", "--scopes", "users:read"))...); r.status != http.StatusForbidden {
		t.Errorf("stream with users:read = %d, want 403", r.status)
	}

	first.res.Body.Close()
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		res := streamRequest(t, ctx, base, "", bearer(key)...)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("after closing a stream, a new one = %d, want 200", res.StatusCode)
		}
	}
}

// SIGTERM ends open streams cleanly (the client sees the end of the
// stream, not a broken connection) and the instance stops.
func TestEventStream_EndsOnShutdown(t *testing.T) {
	t.Parallel()
	addr := freeport.Addr(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"serve"}, env(map[string]string{
			"USERAPI_ADDR": addr, "DATABASE_URL": storetest.QuietDB(t), "USERAPI_DB_MIN_CONNS": "1", "USERAPI_DB_MAX_CONNS": "4",
			"REDIS_URL": "off", "USERAPI_METRICS_ADDR": "off", "USERAPI_AUTH": "off", "USERAPI_DRAIN_DELAY": "0s",
		}), &logs, &logs)
	}()
	base := "http://" + addr
	waitReady(t, base+"/livez", done)
	reqCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	streams := []*sseStream{openStream(t, reqCtx, base, ""), openStream(t, reqCtx, base, "")}
	stop()
	for i, s := range streams {
		if _, err := s.next(); err != io.EOF {
			t.Errorf("stream %d at shutdown ended with %v, want a clean end (EOF)", i, err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run() did not return with streams open")
	}
}

// Streams need PostgreSQL only: with Redis gone, a change still reaches
// an open stream.
func TestEventStream_RedisDown(t *testing.T) {
	t.Parallel()
	redis := cachetest.NewServer(t)
	base := instance(t, map[string]string{"DATABASE_URL": storetest.QuietDB(t), "REDIS_URL": redis.URL()})
	redis.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := openStream(t, ctx, base, "")
	if r := call(t, "POST", base+"/users", `{"name":"Ada","email":"ada@example.com"}`); r.status != http.StatusCreated {
		t.Fatalf("POST with Redis down = %d %s", r.status, r.body)
	}
	ev, err := s.next()
	if err != nil || ev.typ != "user.created" || !strings.Contains(ev.data, `"email":"ada@example.com"`) {
		t.Fatalf("stream with Redis down got %+v, %v; want the user.created event", ev, err)
	}
}
