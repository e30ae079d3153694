// Package feed fans the event log out to live streams. One reader per
// process follows the log, woken by PostgreSQL notifications from any
// instance and by a short poll in case one is lost, and hands each event,
// encoded once, to every open stream's bounded queue. The log stays the
// truth: a stream starts by reading it from the client's last id, and a
// stream that falls behind is ended, to resume from its last id.
package feed

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"userapi/store"
)

// Log is what the feed needs from the event log.
type Log interface {
	After(ctx context.Context, f store.EventFilter) (store.EventPage, error)
	// End is the id up to which every event is visible.
	End(ctx context.Context) (int64, error)
	// Notify wakes every process listening; Listen calls wake when a
	// process notifies, and after every (re)connection.
	Notify(ctx context.Context) error
	Listen(ctx context.Context, wake func())
}

// Options configure a Feed. Zero values take the defaults noted.
type Options struct {
	// Poll is how often the log is read when no notification came (500ms).
	Poll time.Duration
	// Buffer is how many events a stream may have waiting before it is
	// ended as too slow (256).
	Buffer int
	// PerKey is how many streams one client may hold open here (10).
	PerKey int
	Logger *slog.Logger
}

// Why Subscribe refuses, or a subscription ends.
var (
	ErrTooMany  = errors.New("too many open streams for this client")
	ErrClosed   = errors.New("the feed is closed: this instance is shutting down")
	ErrNotReady = errors.New("the feed has not read the log yet")
	ErrSlow     = errors.New("the stream fell too far behind")
)

// Item is one event as streams send it.
type Item struct {
	Event store.Event
	// JSON is Event encoded once for every stream.
	JSON []byte
}

// readBatch is how many events one read of the log takes.
const readBatch = 500

// Feed follows the log for every stream of the process.
type Feed struct {
	log  Log
	opts Options

	wake   chan struct{} // read the log now
	notify chan struct{} // tell other instances: a commit wrote events

	mu     sync.Mutex
	head   int64 // every event up to it has been handed out; -1 before the first read
	subs   map[*Sub]struct{}
	perKey map[string]int
	closed bool

	streams sync.WaitGroup // subscriptions their streams have not closed yet
}

// New returns a feed over log. It reads nothing until Run.
func New(log Log, opts Options) *Feed {
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 256
	}
	if opts.PerKey <= 0 {
		opts.PerKey = 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Feed{
		log: log, opts: opts, head: -1,
		wake: make(chan struct{}, 1), notify: make(chan struct{}, 1),
		subs: map[*Sub]struct{}{}, perKey: map[string]int{},
	}
}

// Committed says that a transaction of this process wrote events. It wakes
// this process's reader at once, and the others through one NOTIFY sent
// after the commit: commits made while a NOTIFY is under way share the next
// one, so a burst of writes costs a few notifications, not one each.
func (f *Feed) Committed() {
	poke(f.wake)
	poke(f.notify)
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run follows the log until ctx ends. It holds one LISTEN connection for
// the whole process.
func (f *Feed) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { f.log.Listen(ctx, func() { poke(f.wake) }) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-f.notify:
				if err := f.log.Notify(ctx); err != nil && ctx.Err() == nil {
					f.opts.Logger.WarnContext(ctx, "event feed: notify", "error", err.Error())
				}
			}
		}
	})
	poll := time.NewTicker(f.opts.Poll)
	defer poll.Stop()
	for {
		f.read(ctx)
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-poll.C:
		}
	}
}

// read hands out every event past head that the log shows.
func (f *Feed) read(ctx context.Context) {
	f.mu.Lock()
	head := f.head
	f.mu.Unlock()
	if head < 0 {
		// The first read only finds where the log ends: streams read what
		// came before from the log themselves.
		head, err := f.log.End(ctx)
		if err != nil {
			f.warn(ctx, err)
			return
		}
		f.mu.Lock()
		f.head = head
		f.mu.Unlock()
		return
	}
	for {
		page, err := f.log.After(ctx, store.EventFilter{After: head, Limit: readBatch})
		if err != nil {
			f.warn(ctx, err)
			return
		}
		items := make([]*Item, len(page.Events))
		for i, ev := range page.Events {
			raw, err := json.Marshal(ev)
			if err != nil {
				f.warn(ctx, err)
				return
			}
			items[i] = &Item{Event: ev, JSON: raw}
		}
		f.publish(items, page.Next)
		head = page.Next
		if len(page.Events) < readBatch {
			return
		}
	}
}

func (f *Feed) warn(ctx context.Context, err error) {
	if ctx.Err() == nil {
		f.opts.Logger.WarnContext(ctx, "event feed: read the log", "error", err.Error())
	}
}

// publish hands items to every stream, and ends those whose queue is
// full: they resume from their last id.
func (f *Feed) publish(items []*Item, next int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, it := range items {
		for s := range f.subs {
			if !s.add(it, f.opts.Buffer) {
				f.drop(s, ErrSlow)
			}
		}
	}
	f.head = next
}

// Sub is one stream's subscription. Its queue grows only while the
// stream is behind, rather than holding room for Options.Buffer events
// for every idle stream.
type Sub struct {
	f     *Feed
	key   string // counted against PerKey; "" when not
	mu    sync.Mutex
	queue []*Item       // handed out, not yet taken; at most Options.Buffer
	ready chan struct{} // holds a token while queue may have items
	done  chan struct{}
	err   error // why done closed; read after it has
	ended bool  // the stream called Close; under the feed's mu
	// From is the feed's position when the stream subscribed: the items
	// come after it, and the stream reads the log up to it itself.
	From int64
}

// Ready receives when items are waiting: Take them.
func (s *Sub) Ready() <-chan struct{} { return s.ready }

// maxSpare is the largest queue a stream's Take keeps for reuse: one
// burst must not leave every idle stream holding room for the next.
const maxSpare = 16

// Take returns the items waiting, the events after From in id order, and
// none twice. spare, the slice the previous Take returned, is reused for
// the next items once the stream is done with it.
func (s *Sub) Take(spare []*Item) []*Item {
	clear(spare) // the sent events' JSON need not be kept
	if cap(spare) > maxSpare {
		spare = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	items := s.queue
	s.queue = spare[:0]
	return items
}

// add queues it, unless max items are waiting already.
func (s *Sub) add(it *Item, max int) bool {
	s.mu.Lock()
	ok := len(s.queue) < max
	if ok {
		s.queue = append(s.queue, it)
	}
	s.mu.Unlock()
	if ok {
		poke(s.ready)
	}
	return ok
}

// Done is closed when the feed ends the stream; Err then says why.
func (s *Sub) Done() <-chan struct{} { return s.done }

// Err is why the feed ended the stream: ErrSlow or ErrClosed.
func (s *Sub) Err() error { return s.err }

// Subscribe opens a stream for the client key; limited counts it against
// Options.PerKey. Returns ErrTooMany when the key has that many streams
// open here, ErrClosed once Close was called, ErrNotReady before the first
// read of the log.
func (f *Feed) Subscribe(key string, limited bool) (*Sub, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return nil, ErrClosed
	case f.head < 0:
		return nil, ErrNotReady
	case limited && f.perKey[key] >= f.opts.PerKey:
		return nil, ErrTooMany
	}
	s := &Sub{f: f, ready: make(chan struct{}, 1), done: make(chan struct{}), From: f.head}
	if limited {
		s.key = key
		f.perKey[key]++
	}
	f.subs[s] = struct{}{}
	f.streams.Add(1)
	return s, nil
}

// PerKey is how many streams one key may hold open here.
func (f *Feed) PerKey() int { return f.opts.PerKey }

// Close ends the subscription; the stream calls it when it ends.
func (s *Sub) Close() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.drop(s, nil)
	if !s.ended {
		s.ended = true
		s.f.streams.Done()
	}
}

// drop ends s with err, once. The caller holds mu.
func (f *Feed) drop(s *Sub, err error) {
	if _, ok := f.subs[s]; !ok {
		return
	}
	delete(f.subs, s)
	if s.key != "" {
		if f.perKey[s.key]--; f.perKey[s.key] <= 0 {
			delete(f.perKey, s.key)
		}
	}
	s.err = err
	close(s.done)
}

// Close ends every stream and refuses new ones: on shutdown, clients
// reconnect to another instance with their last id.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		f.drop(s, ErrClosed)
	}
}

// Wait returns once every stream has closed its subscription, or with
// ctx's error when ctx ends first: streams that Close ended finish writing
// on goroutines of their own.
func (f *Feed) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		f.streams.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Open is how many streams are open.
func (f *Feed) Open() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}
