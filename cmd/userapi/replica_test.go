package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"userapi/cache/cachetest"
	"userapi/store/storetest"
)

// replicaMaxLag is the instances' USERAPI_REPLICA_MAX_LAG in the replica
// test.
const replicaMaxLag = time.Second

// rywLoops is how many write-then-read loops the replica test's first
// phase runs, spread over rywWriters callers at once.
const rywLoops, rywWriters = 10_000, 24

// A streaming replica replaying each commit 300 ms late serves lists to two
// instances. Callers that write and then read, each read through the other
// instance, never read an older ETag than they wrote (10,000 loops): their
// reads go to the primary until the replica has their write. Other callers
// see the replica's lag, within USERAPI_REPLICA_MAX_LAG. The replica stops
// under the load: reads move to the primary without an error. It comes
// back 2 s late, beyond the max lag: nobody reads from it, nobody sees data
// that old.
func TestReadReplicas_ReadYourWrites(t *testing.T) {
	t.Parallel()
	primary := storetest.NewCluster(t)
	replica := primary.NewReplica(t, 300*time.Millisecond)
	vars := map[string]string{
		"DATABASE_URL": primary.URL("userapi"), "DATABASE_REPLICA_URLS": replica.URL("userapi"),
		"USERAPI_REPLICA_MAX_LAG": replicaMaxLag.String(),
		"REDIS_URL":               cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
		"USERAPI_WORKERS": "0", "USERAPI_TRUSTED_PROXIES": "127.0.0.1/32",
		"USERAPI_DB_MAX_CONNS": "8",
	}
	bases := []string{instance(t, vars), instance(t, vars)}
	served := func() int64 { return replicaReads(t, replica.URL("userapi")) }

	const readers = 2
	// Many callers at once: keep a connection open for each.
	transport := &http.Transport{MaxIdleConnsPerHost: 2 * (rywWriters + readers)}
	t.Cleanup(transport.CloseIdleConnections)
	l := &rywLoad{t: t, client: &http.Client{Transport: transport}, bases: bases, versions: map[int64][]version{}}
	for w := range rywWriters {
		l.users = append(l.users, l.create(w))
	}
	time.Sleep(time.Second) // until the replica has them

	// phase runs the load until during returns, or when loops > 0, until
	// the writers have run that many loops.
	phase := func(name string, loops int64, during func()) rywCounts {
		l.reset(loops)
		start := time.Now()
		stop := make(chan struct{})
		var writing, reading sync.WaitGroup
		for w := range rywWriters {
			writing.Go(func() { l.writeThenRead(w, stop) })
		}
		for r := range readers {
			reading.Go(func() { l.readOthers(r, stop) })
		}
		during()
		if loops > 0 {
			writing.Wait()
		}
		close(stop)
		writing.Wait()
		reading.Wait()
		c := l.counts()
		c.took = time.Since(start)
		t.Logf("%s: %d write-then-read loops by %d callers in %v, none older than written: %v; other callers' reads %d, of which %d behind, the furthest %v; %d 5xx",
			name, c.loops, rywWriters, c.took.Round(100*time.Millisecond), c.ownStale == 0, c.otherReads, c.otherStale, c.worst.Round(time.Millisecond), c.errors)
		return c
	}

	before := served()
	c := phase("replica 300ms behind", rywLoops, func() {})
	n := served() - before
	// Each list is one transaction; the other callers' all go to the
	// replica, the writers' only once it has their write. Besides, each
	// instance checks the replica's position 5 times a second.
	checks := int64(float64(len(bases)) * 5 * c.took.Seconds())
	t.Logf("the replica ran %d transactions meanwhile: about %d its checks, %d the other callers' lists, so about %d of the writers' %d lists; the rest went to the primary",
		n, checks, c.otherReads, max(0, n-checks-int64(c.otherReads)), c.loops)
	if c.loops != rywLoops {
		t.Errorf("%d write-then-read loops ran, want %d", c.loops, rywLoops)
	}
	if n < 10 {
		t.Errorf("the replica served %d transactions: the reads did not go to it", n)
	}
	if c.otherStale == 0 {
		t.Errorf("no other caller ever saw the replica's lag: were the lists read from it?")
	}

	replicaHealth(t, bases[1], replica, func(status string, lag *float64) bool {
		return status == "up" && lag != nil && *lag < replicaMaxLag.Seconds()
	})

	phase("replica stopped under the load", 0, func() {
		time.Sleep(time.Second)
		replica.Stop("immediate")
		time.Sleep(3 * time.Second)
	})

	replica.Settings = []string{"hot_standby=on", "recovery_min_apply_delay=2s"}
	replica.Start()
	before = served()
	phase("replica back, 2s behind", 0, func() { time.Sleep(5 * time.Second) })
	// Its own checks (the monitor's) are the only transactions left.
	if n := served() - before; n > 100 {
		t.Errorf("the replica 2s behind served %d transactions, more than the monitor's checks", n)
	}
	replicaHealth(t, bases[0], replica, func(status string, lag *float64) bool {
		return status == "down" && lag != nil && *lag > replicaMaxLag.Seconds()
	})
}

// replicaHealth waits until /health on base reports the replica as ok
// says, and fails the test after 10s.
func replicaHealth(t *testing.T, base string, replica *storetest.Cluster, ok func(status string, lag *float64) bool) {
	t.Helper()
	u, _ := url.Parse(replica.URL("userapi"))
	name := "replica " + u.Host
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r := call(t, "GET", base+"/health", "")
		var h struct {
			Checks map[string]struct {
				Status     string
				LagSeconds *float64 `json:"lag_seconds"`
			}
		}
		if err := json.Unmarshal([]byte(r.body), &h); err != nil {
			t.Fatalf("/health: %v: %s", err, r.body)
		}
		c := h.Checks[name]
		if ok(c.Status, c.LagSeconds) {
			return
		}
		last = r.body
	}
	t.Fatalf("/health does not report %s as expected: %s", name, last)
}

// version is a user's version (its ETag) a writer made, and when its
// write was answered.
type version struct {
	n  int64
	at time.Time
}

type rywCounts struct {
	loops, ownStale, otherReads, otherStale, errors int
	worst, took                                     time.Duration
}

// rywLoad is the replica test's load: each writer renames its own user
// through one instance and lists it through the other; readers list the
// writers' users.
type rywLoad struct {
	t      *testing.T
	client *http.Client
	bases  []string
	users  []int64
	left   atomic.Int64 // loops the writers may still run

	mu       sync.Mutex
	versions map[int64][]version // each user's versions, in order of writing
	c        rywCounts
}

// reset zeroes the counts and allows loops more loops, any number when 0.
func (l *rywLoad) reset(loops int64) {
	l.mu.Lock()
	l.c = rywCounts{}
	l.mu.Unlock()
	if loops == 0 {
		loops = math.MaxInt64
	}
	l.left.Store(loops)
}

// etagVersion reads a user's version from its strong ETag, "7".
func etagVersion(tag string) (int64, error) {
	unquoted, err := strconv.Unquote(tag)
	if err != nil {
		return 0, fmt.Errorf("ETag %q: %w", tag, err)
	}
	return strconv.ParseInt(unquoted, 10, 64)
}

func (l *rywLoad) counts() rywCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c
}

func (l *rywLoad) create(w int) int64 {
	r := callWith(l.t, l.client, "POST", l.bases[0]+"/users", fmt.Sprintf(`{"name":"0","email":"writer%d@example.com"}`, w), "X-Forwarded-For", writerAddr(w))
	var u struct{ ID int64 }
	if err := json.Unmarshal([]byte(r.body), &u); err != nil || r.status != http.StatusCreated {
		l.t.Fatalf("create: %d %s", r.status, r.body)
	}
	return u.ID
}

func writerAddr(w int) string { return fmt.Sprintf("198.51.100.%d", w+1) }

// list reads user w's version (its etag) through base as caller addr, by
// listing the users with its email: lists may be served by a replica.
func (l *rywLoad) list(base, addr string, w int) (int64, bool) {
	r := callWith(l.t, l.client, "GET", base+"/users?email="+url.QueryEscape(fmt.Sprintf("writer%d@example.com", w)), "", "X-Forwarded-For", addr)
	var page struct{ Items []struct{ ETag string } }
	if r.status >= 500 {
		l.t.Errorf("GET /users as %s = %d %s", addr, r.status, r.body)
		l.mu.Lock()
		l.c.errors++
		l.mu.Unlock()
		return 0, false
	}
	if err := json.Unmarshal([]byte(r.body), &page); err != nil || r.status != http.StatusOK || len(page.Items) != 1 {
		l.t.Errorf("GET /users as %s = %d %s", addr, r.status, r.body)
		return 0, false
	}
	n, err := etagVersion(page.Items[0].ETag)
	if err != nil {
		l.t.Errorf("GET /users as %s: %v", addr, err)
		return 0, false
	}
	return n, true
}

func (l *rywLoad) writeThenRead(w int, stop <-chan struct{}) {
	id := l.users[w]
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		default:
		}
		if l.left.Add(-1) < 0 {
			return
		}
		r := callWith(l.t, l.client, "PATCH", fmt.Sprintf("%s/users/%d", l.bases[k%2], id), fmt.Sprintf(`{"name":"%d"}`, k), "X-Forwarded-For", writerAddr(w))
		if r.status != http.StatusOK {
			l.t.Errorf("PATCH as writer %d = %d %s", w, r.status, r.body)
			return
		}
		n, err := etagVersion(r.header.Get("ETag"))
		if err != nil {
			l.t.Errorf("PATCH as writer %d: %v", w, err)
			return
		}
		l.mu.Lock()
		l.versions[id] = append(l.versions[id], version{n, time.Now()})
		l.mu.Unlock()
		got, ok := l.list(l.bases[(k+1)%2], writerAddr(w), w)
		if !ok {
			return
		}
		l.mu.Lock()
		l.c.loops++
		if got != n {
			l.c.ownStale++
			l.t.Errorf("writer %d made version %d through one instance, then read version %d through the other", w, n, got)
		}
		l.mu.Unlock()
	}
}

// readOthers lists writers' users as a caller that writes nothing, and
// measures how far behind what it reads is: since the answer to the write
// that replaced it.
func (l *rywLoad) readOthers(r int, stop <-chan struct{}) {
	addr := fmt.Sprintf("203.0.113.%d", r+1)
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		default:
		}
		w := k % len(l.users)
		asked := time.Now()
		got, ok := l.list(l.bases[k%2], addr, w)
		if !ok {
			return
		}
		l.mu.Lock()
		l.c.otherReads++
		var behind time.Duration
		for _, v := range l.versions[l.users[w]] {
			if v.n > got && v.at.Before(asked) {
				behind = asked.Sub(v.at) // the first newer write answered before the read
				break
			}
		}
		if behind > 0 {
			l.c.otherStale++
			l.c.worst = max(l.c.worst, behind)
		}
		// The bound: a replica serves only within the max lag, which grows
		// by at most a check interval (200ms) before it is noticed.
		if limit := replicaMaxLag + 400*time.Millisecond; behind > limit {
			l.t.Errorf("caller %s read user %d %v behind the primary, beyond the max lag %v", addr, l.users[w], behind, replicaMaxLag)
		}
		l.mu.Unlock()
	}
}

// replicaReads counts the transactions the replica has run on the
// database (reads: it can run nothing else).
func replicaReads(t *testing.T, dbURL string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
