// Package replica sends the reads that may lag (lists, search, export) to
// PostgreSQL streaming replicas, without ever showing a caller less than it
// wrote: after a write, the primary's WAL position is remembered for the
// caller (in Redis, shared by all instances, for a little longer than the
// lag allowed), and a replica serves that caller only once it has replayed
// that far. Replicas lagging beyond MaxLag, or down, serve nobody; the
// primary does.
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/store"
)

// checkEvery is how often each replica's replay position, and the
// primary's WAL position, are read. A replica's lag may grow by this much
// before it is noticed.
const checkEvery = 200 * time.Millisecond

// Options configures a Set.
type Options struct {
	// MaxLag is the most a replica may lag and still serve reads.
	MaxLag time.Duration
	// Memo remembers each caller's last write; nil sends every read of a
	// caller to the primary (no replica could be proven to have it).
	Memo   Memo
	Logger *slog.Logger
}

// Memo remembers the WAL position of each caller's last write.
type Memo interface {
	// Raise records lsn for caller unless a later one is recorded, for ttl.
	Raise(ctx context.Context, caller string, lsn uint64, ttl time.Duration) error
	// Get returns the recorded position, 0 when none.
	Get(ctx context.Context, caller string) (uint64, error)
}

// Set is the primary and its replicas.
type Set struct {
	primary  *pgxpool.Pool
	replicas []*member
	opts     Options

	mu      sync.Mutex
	samples []sample // the primary's WAL position over the last MaxLag and more

	stop context.CancelFunc
	done chan struct{}
}

type sample struct {
	at  time.Time
	lsn uint64
}

// member is one replica and what its last check found.
type member struct {
	name string // host:port, for /health and logs
	pool *pgxpool.Pool

	mu     sync.Mutex
	up     bool
	err    error
	replay uint64
	lag    time.Duration
}

// Status is what the last check found of one replica.
type Status struct {
	Name string
	Up   bool
	Err  error
	Lag  time.Duration
}

// New watches replicas (pools on them) of primary until Close.
func New(primary *pgxpool.Pool, replicas []*pgxpool.Pool, opts Options) *Set {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Set{primary: primary, opts: opts, stop: cancel, done: make(chan struct{})}
	for _, p := range replicas {
		cc := p.Config().ConnConfig
		s.replicas = append(s.replicas, &member{name: net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), pool: p})
	}
	s.check(ctx)
	go s.watch(ctx)
	return s
}

// Close stops watching; it does not close the pools.
func (s *Set) Close() {
	s.stop()
	<-s.done
}

func (s *Set) watch(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.check(ctx)
		}
	}
}

// check samples the primary's position, then each replica's.
func (s *Set) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, checkEvery)
	defer cancel()
	if lsn, err := position(ctx, s.primary, "pg_current_wal_lsn()"); err == nil {
		now := time.Now()
		s.mu.Lock()
		s.samples = append(s.samples, sample{now, lsn})
		// Keep one sample older than MaxLag: it decides whether a replica
		// is within it.
		for len(s.samples) > 2 && now.Sub(s.samples[1].at) > s.opts.MaxLag+checkEvery {
			s.samples = s.samples[1:]
		}
		s.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, m := range s.replicas {
		wg.Go(func() {
			replay, err := position(ctx, m.pool, "pg_last_wal_replay_lsn()")
			if err == nil && replay == 0 {
				err = errors.New("not a replica: it replays no WAL")
			}
			lag := s.lagOf(replay)
			m.mu.Lock()
			defer m.mu.Unlock()
			if err != nil {
				if m.up || m.err == nil {
					s.opts.Logger.Warn("read replica unavailable: its reads go to the primary", "replica", m.name, "error", err.Error())
				}
				m.up, m.err = false, err
				return
			}
			if !m.up {
				s.opts.Logger.Info("read replica available", "replica", m.name, "lag", lag.String())
			}
			m.up, m.err, m.replay, m.lag = true, nil, replay, lag
		})
	}
	wg.Wait()
}

// lagOf is how far behind a replica that has replayed up to replay is: the
// age of the latest sample of the primary it has caught up with (0 when it
// has every sample), or more than MaxLag when it has none.
func (s *Set) lagOf(replay uint64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return 0
	}
	if last := s.samples[len(s.samples)-1]; replay >= last.lsn {
		return 0
	}
	for i := len(s.samples) - 1; i >= 0; i-- {
		if s.samples[i].lsn <= replay {
			// Caught up with sample i, not with i+1: missing what was
			// written after i's time.
			return time.Since(s.samples[i].at)
		}
	}
	return max(time.Since(s.samples[0].at), s.opts.MaxLag+time.Nanosecond)
}

// Statuses reports each replica as of its last check, for /health.
func (s *Set) Statuses() []Status {
	out := make([]Status, 0, len(s.replicas))
	for _, m := range s.replicas {
		m.mu.Lock()
		out = append(out, Status{Name: m.name, Up: m.up, Err: m.err, Lag: m.lag})
		m.mu.Unlock()
	}
	return out
}

// Reader picks, for caller, a replica that is up, within MaxLag and has
// replayed caller's last write; the zero Reader (the primary) when none
// is, or when caller's last write cannot be looked up.
func (s *Set) Reader(ctx context.Context, caller string) store.Reader {
	if len(s.replicas) == 0 || s.opts.Memo == nil {
		return store.Reader{}
	}
	need, err := s.opts.Memo.Get(ctx, caller)
	if err != nil {
		return store.Reader{}
	}
	start := rand.IntN(len(s.replicas))
	for i := range s.replicas {
		m := s.replicas[(start+i)%len(s.replicas)]
		m.mu.Lock()
		ok := m.up && m.lag <= s.opts.MaxLag && m.replay >= need
		m.mu.Unlock()
		if ok {
			return store.Reader{DB: m.pool, Failed: func(err error) { m.failed(s.opts.Logger, err) }}
		}
	}
	return store.Reader{}
}

func (m *member) failed(logger *slog.Logger, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.up {
		logger.Warn("read replica unavailable: its reads go to the primary", "replica", m.name, "error", err.Error())
	}
	m.up, m.err = false, err
}

// Wrote remembers, for caller, the primary's WAL position after a write
// that has committed. pg_current_wal_insert_lsn, not pg_current_wal_lsn:
// with synchronous_commit off the commit record may not be written out
// yet, but it has been inserted, so the insert position is past it. A
// failure is logged: the caller may then miss its write on a replica for
// up to MaxLag.
func (s *Set) Wrote(ctx context.Context, caller string) {
	if len(s.replicas) == 0 || s.opts.Memo == nil {
		return
	}
	lsn, err := position(ctx, s.primary, "pg_current_wal_insert_lsn()")
	if err == nil {
		// Past MaxLag (and a check), every replica still in use has it.
		err = s.opts.Memo.Raise(ctx, caller, lsn, s.opts.MaxLag+2*checkEvery)
	}
	if err != nil {
		s.opts.Logger.Warn("could not remember a write's position: the writer's reads may lag", "error", err.Error())
	}
}

// position reads a pg_lsn function as a number.
func position(ctx context.Context, pool *pgxpool.Pool, fn string) (uint64, error) {
	var text *string
	if err := pool.QueryRow(ctx, "SELECT "+fn+"::text").Scan(&text); err != nil {
		return 0, err
	}
	if text == nil {
		return 0, nil
	}
	return ParseLSN(*text)
}

// ParseLSN reads PostgreSQL's text form of a WAL position, such as
// 16/B374D848.
func ParseLSN(s string) (uint64, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	return uint64(hi)<<32 | uint64(lo), nil
}
