package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"userapi/feed"
	"userapi/gen"
	"userapi/store"
)

// errNoEvents answers for the event routes of a server built without the
// event log.
var errNoEvents = errors.New("this server has no event log")

// ListEvents returns a page of the event log, oldest first.
func (h *Handler) ListEvents(ctx context.Context, req gen.ListEventsRequestObject) (gen.ListEventsResponseObject, error) {
	if h.events == nil {
		return nil, errNoEvents
	}
	limit, err := specDefault(req.Params.Limit)
	if err != nil {
		return nil, err
	}
	f := store.EventFilter{Limit: limit, UserID: req.Params.UserId}
	if req.Params.After != nil {
		f.After = *req.Params.After
	}
	if req.Params.Type != nil {
		for _, t := range *req.Params.Type {
			f.Types = append(f.Types, string(t))
		}
	}
	page, err := h.events.After(ctx, f)
	if err != nil {
		return nil, eventsError(err, f.After)
	}
	out := gen.EventPage{Items: make([]gen.Event, len(page.Events)), NextAfter: page.Next}
	for i, ev := range page.Events {
		if out.Items[i], err = toAPIEvent(ev); err != nil {
			return nil, err
		}
	}
	return gen.ListEvents200JSONResponse{Body: out}, nil
}

// toAPIEvent is the log's event in the API's type. The log's JSON form is
// the same schema; this only decodes the user it carries.
func toAPIEvent(ev store.Event) (gen.Event, error) {
	out := gen.Event{Id: ev.ID, Type: gen.EventType(ev.Type), OccurredAt: ev.OccurredAt, UserId: ev.UserID}
	if ev.Data != nil { // none once the user was purged
		if err := json.Unmarshal(ev.Data, &out.Data); err != nil {
			return gen.Event{}, fmt.Errorf("event %d: %w", ev.ID, err)
		}
	}
	if ev.Changed != nil {
		changed := make([]gen.EventChanged, len(ev.Changed))
		for i, c := range ev.Changed {
			changed[i] = gen.EventChanged(c)
		}
		out.Changed = &changed
	}
	return out, nil
}

// eventsError says where the log starts when a read asked for events it no
// longer keeps.
func eventsError(err error, after int64) error {
	var trimmed *store.TrimmedError
	if errors.As(err, &trimmed) {
		return withDetail(err, "events after %d are no longer kept: the log now starts after event %d; read from after=0 for the oldest event kept", after, trimmed.Start)
	}
	return err
}

// Stream settings; see Options.
const (
	// DefaultStreamKeepAlive is Options.StreamKeepAlive when zero.
	DefaultStreamKeepAlive = 15 * time.Second
	// streamRetry is the reconnection delay the stream asks of clients.
	streamRetry = 2 * time.Second
	// streamPage is how many events one read of the log takes while a
	// stream catches up.
	streamPage = 500
)

// StreamEvents follows the event log as Server-Sent Events: from the
// client's last id through the log, then live through the feed.
func (h *Handler) StreamEvents(ctx context.Context, req gen.StreamEventsRequestObject) (gen.StreamEventsResponseObject, error) {
	if h.events == nil || h.feed == nil {
		return nil, errNoEvents
	}
	after := int64(-1) // from the feed's position: only what comes next
	if req.Params.After != nil {
		after = *req.Params.After
	}
	if id := req.Params.LastEventID; id != nil {
		n, err := strconv.ParseInt(*id, 10, 64)
		if err != nil {
			return nil, validation(gen.FieldError{Location: "header.Last-Event-ID", Message: "must be an event id"})
		}
		after = n
	}
	// Without keys or tokens (authentication off) there is no one to count per.
	who := callerOf(ctx)
	sub, err := h.feed.Subscribe(who.ID(), who.ID() != "")
	switch {
	case errors.Is(err, feed.ErrTooMany):
		p := newProblem(http.StatusTooManyRequests, fmt.Sprintf(
			"%s already has %d streams open on this instance, the most one caller may: close one before opening another", who, h.feed.PerKey())).
			typed(gen.ProblemstooManyStreams)
		p.header = http.Header{"Retry-After": {"5"}}
		return nil, p
	case err != nil:
		p := newProblem(http.StatusServiceUnavailable, "this instance is not serving streams (it is starting or shutting down); reconnect, to another instance, with the last event id")
		p.header = http.Header{"Retry-After": {"1"}}
		p.cause = err
		return nil, p
	}
	if after < 0 {
		after = sub.From
	}
	// The first read happens here, so that a stale id or a database down
	// is an ordinary problem answer rather than a broken stream.
	page, err := h.events.After(ctx, store.EventFilter{After: after, Limit: streamPage})
	if err != nil {
		sub.Close()
		return nil, eventsError(err, after)
	}
	return &eventStream{ctx: ctx, log: h.events, sub: sub, first: page, keepAlive: h.streamKeepAlive}, nil
}

// eventStream writes one stream until the client leaves, the feed ends it
// (too slow, or shutting down), or a write fails.
type eventStream struct {
	ctx       context.Context
	log       store.EventLog
	sub       *feed.Sub
	first     store.EventPage
	keepAlive time.Duration
}

// VisitStreamEventsResponse catches the client up from the log, then
// follows the feed. Over HTTP/1 the stream takes the connection over from
// net/http and, once caught up, follows on a goroutine of its own, shallow
// and with no buffers: a stream lasts hours and mostly waits, and the
// connection's goroutine, its stack grown by the middleware and the
// catch-up, and its buffers would otherwise be held all that time.
func (s *eventStream) VisitStreamEventsResponse(w http.ResponseWriter) error {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies that buffer answers must not hold events back
	if answersHead(s.ctx) {
		// A HEAD gets the head alone; a stream taken over would send its body.
		s.sub.Close()
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, err := takeOver(w)
	if err != nil {
		defer s.sub.Close()
		return s.serveInHandler(w)
	}
	gone := watchClosed(conn)
	out := &connSink{conn: conn, keepAlive: s.keepAlive}
	if err := out.send(appendHead(nil, h)); err != nil {
		s.end(conn)
		return nil
	}
	cursor, ok := s.catchUp(out.send)
	if !ok {
		s.end(conn)
		return nil
	}
	// The request's context, and the values it carries, are over with
	// the handler: following needs neither them nor the log.
	s.ctx, s.log = context.Background(), nil
	go func() {
		defer s.end(conn)
		s.follow(out.send, gone, cursor)
	}()
	return nil
}

// serveInHandler is the stream on a connection that cannot be taken over
// (HTTP/2): it holds the handler until the stream ends.
func (s *eventStream) serveInHandler(w http.ResponseWriter) error {
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	// send writes and flushes within a deadline of its own: the server's
	// write timeout bounds whole answers, which a stream is not, while a
	// client that stops reading must not hold the stream for ever.
	send := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(s.keepAlive + 10*time.Second))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if cursor, ok := s.catchUp(send); ok {
		s.follow(send, s.ctx.Done(), cursor)
	}
	return nil
}

// end closes a taken-over stream: the connection, whose close is the end
// of the answer, then the subscription.
func (s *eventStream) end(conn net.Conn) {
	_ = conn.Close()
	s.sub.Close()
}

// catchUp sends the retry advice, then reads the log to where the feed
// was when this stream subscribed: from there the feed has every event,
// and the ones the log already gave are skipped by id. It returns the last
// id sent, and false when the stream is over.
func (s *eventStream) catchUp(send func([]byte) error) (cursor int64, ok bool) {
	if err := send(fmt.Appendf(nil, "retry: %d\n\n", streamRetry.Milliseconds())); err != nil {
		return 0, false
	}
	page := s.first
	s.first = store.EventPage{} // a long catch-up must not stay held for the stream's life
	var buf []byte
	for {
		for _, ev := range page.Events {
			raw, err := json.Marshal(ev)
			if err != nil {
				return 0, false
			}
			buf = appendFrame(buf[:0], ev, raw)
			if err := send(buf); err != nil {
				return 0, false
			}
		}
		cursor = page.Next
		if cursor >= s.sub.From || len(page.Events) < streamPage {
			return cursor, true
		}
		var err error
		if page, err = s.log.After(s.ctx, store.EventFilter{After: cursor, Limit: streamPage}); err != nil {
			return 0, false // the client resumes from its last id
		}
	}
}

// follow sends the feed's events past cursor, and a comment whenever the
// stream was silent for keepAlive, until the client is gone, the feed ends
// the stream or a write fails.
func (s *eventStream) follow(send func([]byte) error, gone <-chan struct{}, cursor int64) {
	tick := time.NewTicker(s.keepAlive)
	defer tick.Stop()
	var items []*feed.Item
	var buf []byte
	for {
		select {
		case <-s.sub.Ready():
			items = s.sub.Take(items)
			for _, it := range items {
				if it.Event.ID <= cursor {
					continue
				}
				buf = appendFrame(buf[:0], it.Event, it.JSON)
				if err := send(buf); err != nil {
					return
				}
				cursor = it.Event.ID
				tick.Reset(s.keepAlive)
			}
		case <-tick.C:
			if err := send([]byte(": keep-alive\n\n")); err != nil {
				return
			}
		case <-s.sub.Done():
			return
		case <-gone:
			return
		}
	}
}

// appendFrame is one event as a Server-Sent Events message.
func appendFrame(b []byte, ev store.Event, raw []byte) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, ev.ID, 10)
	b = append(b, "\nevent: "...)
	b = append(b, ev.Type...)
	b = append(b, "\ndata: "...)
	b = append(b, raw...)
	return append(b, "\n\n"...)
}
