package main

import (
	"context"
	"encoding/json"
	"fmt"
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

// A streaming replica replaying each commit 300 ms late serves lists to two
// instances. Callers that write and then read, each read through the other
// instance, never miss their own write; other callers see the replica's
// lag, within USERAPI_REPLICA_MAX_LAG. The replica stops under the load:
// reads move to the primary without an error. It comes back 2 s late,
// beyond the max lag: nobody reads from it, nobody sees data that old.
func TestReadReplicas_ReadYourWrites(t *testing.T) {
	t.Parallel()
	primary := storetest.NewCluster(t)
	replica := primary.NewReplica(t, 300*time.Millisecond)
	vars := map[string]string{
		"DATABASE_URL": primary.URL("userapi"), "DATABASE_REPLICA_URLS": replica.URL("userapi"),
		"USERAPI_REPLICA_MAX_LAG": replicaMaxLag.String(),
		"REDIS_URL":               cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
		"USERAPI_WORKERS": "0", "USERAPI_TRUSTED_PROXIES": "127.0.0.1/32",
	}
	bases := []string{instance(t, vars), instance(t, vars)}
	served := func() int64 { return replicaReads(t, replica.URL("userapi")) }

	const writers, readers = 4, 2
	l := &rywLoad{t: t, bases: bases, names: map[int64][]version{}}
	for w := range writers {
		l.users = append(l.users, l.create(w))
	}
	time.Sleep(time.Second) // until the replica has them

	phase := func(name string, during func()) rywCounts {
		l.reset()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() { l.writeThenRead(w, stop) })
		}
		for r := range readers {
			wg.Go(func() { l.readOthers(r, stop) })
		}
		during()
		close(stop)
		wg.Wait()
		c := l.counts()
		t.Logf("%s: %d write-then-read loops, none older than written: %v; other callers' reads %d, of which %d behind, the furthest %v; %d 5xx",
			name, c.loops, c.ownStale == 0, c.otherReads, c.otherStale, c.worst.Round(time.Millisecond), c.errors)
		return c
	}

	before := served()
	c := phase("replica 300ms behind", func() { time.Sleep(4 * time.Second) })
	if n := served() - before; n < 10 {
		t.Errorf("the replica served %d transactions: the reads did not go to it", n)
	}
	if c.otherStale == 0 {
		t.Errorf("no other caller ever saw the replica's lag: were the lists read from it?")
	}

	replicaHealth(t, bases[1], replica, func(status string, lag *float64) bool {
		return status == "up" && lag != nil && *lag < replicaMaxLag.Seconds()
	})

	phase("replica stopped under the load", func() {
		time.Sleep(time.Second)
		replica.Stop("immediate")
		time.Sleep(3 * time.Second)
	})

	replica.Settings = []string{"hot_standby=on", "recovery_min_apply_delay=2s"}
	replica.Start()
	before = served()
	phase("replica back, 2s behind", func() { time.Sleep(5 * time.Second) })
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

// version is a name a writer set, and when its write was answered.
type version struct {
	n  int
	at time.Time
}

type rywCounts struct {
	loops, ownStale, otherReads, otherStale, errors int
	worst                                           time.Duration
}

// rywLoad is the replica test's load: each writer renames its own user
// through one instance and lists it through the other; readers list the
// writers' users.
type rywLoad struct {
	t     *testing.T
	bases []string
	users []int64
	seq   atomic.Int64

	mu    sync.Mutex
	names map[int64][]version // each user's names, in order of writing
	c     rywCounts
}

func (l *rywLoad) reset() {
	l.mu.Lock()
	l.c = rywCounts{}
	l.mu.Unlock()
}

func (l *rywLoad) counts() rywCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c
}

func (l *rywLoad) create(w int) int64 {
	r := call(l.t, "POST", l.bases[0]+"/users", fmt.Sprintf(`{"name":"0","email":"writer%d@example.com"}`, w), "X-Forwarded-For", writerAddr(w))
	var u struct{ ID int64 }
	if err := json.Unmarshal([]byte(r.body), &u); err != nil || r.status != http.StatusCreated {
		l.t.Fatalf("create: %d %s", r.status, r.body)
	}
	return u.ID
}

func writerAddr(w int) string { return fmt.Sprintf("198.51.100.%d", w+1) }

// list reads user w's name through base as caller addr, by listing the
// users with its email: lists may be served by a replica.
func (l *rywLoad) list(base, addr string, w int) (int, bool) {
	r := call(l.t, "GET", base+"/users?email="+url.QueryEscape(fmt.Sprintf("writer%d@example.com", w)), "", "X-Forwarded-For", addr)
	var page struct{ Items []struct{ Name string } }
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
	n, _ := strconv.Atoi(page.Items[0].Name)
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
		n := int(l.seq.Add(1))
		r := call(l.t, "PATCH", fmt.Sprintf("%s/users/%d", l.bases[k%2], id), fmt.Sprintf(`{"name":"%d"}`, n), "X-Forwarded-For", writerAddr(w))
		if r.status != http.StatusOK {
			l.t.Errorf("PATCH as writer %d = %d %s", w, r.status, r.body)
			return
		}
		l.mu.Lock()
		l.names[id] = append(l.names[id], version{n, time.Now()})
		l.mu.Unlock()
		got, ok := l.list(l.bases[(k+1)%2], writerAddr(w), w)
		if !ok {
			return
		}
		l.mu.Lock()
		l.c.loops++
		if got != n {
			l.c.ownStale++
			l.t.Errorf("writer %d wrote name %d through one instance, then read %d through the other", w, n, got)
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
		for _, v := range l.names[l.users[w]] {
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
