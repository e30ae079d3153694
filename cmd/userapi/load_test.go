package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requestTimeout bounds every request of a load test: an answer slower than
// this counts as a hang.
const requestTimeout = 10 * time.Second

// outcome is what one create request got.
type outcome struct {
	email  string
	status int           // 0 when no answer arrived
	id     int64         // the created user's id, for a 201
	err    error         // the transport error when no answer arrived
	detail string        // what was wrong with a non-201 answer, if anything
	at     time.Time     // when the answer (or the error) came
	took   time.Duration // how long it took
}

// load sends POST /users from several goroutines until stop is closed, each
// with a unique email, and returns every outcome.
type load struct {
	base    string
	client  *http.Client
	workers int
	// slow, when set, uploads each body in two parts this far apart, so that
	// requests are always in flight.
	slow time.Duration
	// idempotent sends each request with its email as Idempotency-Key.
	idempotent bool

	mu       sync.Mutex
	outcomes []outcome
	seq      atomic.Int64
}

// newLoad makes a load on base with a client that opens a new connection
// for every request: a reused keep-alive connection the server closes while
// the client writes on it would fail a request the server never saw.
func newLoad(base string, workers int) *load {
	return &load{
		base:    base,
		workers: workers,
		client: &http.Client{
			Timeout:   requestTimeout,
			Transport: &http.Transport{DisableKeepAlives: true},
		},
	}
}

// run drives the load until stop is closed and the requests in flight end.
func (l *load) run(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				o := l.create()
				l.record(o)
				if o.err != nil {
					// Nothing listens: don't spin on refused connections.
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
}

func (l *load) record(o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes = append(l.outcomes, o)
}

// results returns the outcomes so far.
func (l *load) results() []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]outcome(nil), l.outcomes...)
}

// create sends one POST /users and classifies the answer.
func (l *load) create() outcome {
	n := l.seq.Add(1)
	o := outcome{email: fmt.Sprintf("load%d@example.com", n)}
	body := fmt.Sprintf(`{"name":"Load %d","email":"%s"}`, n, o.email)
	var r io.Reader = strings.NewReader(body)
	if l.slow > 0 {
		half := len(body) / 2
		r = &slowBody{chunks: []string{body[:half], body[half:]}, delay: l.slow}
	}
	req, err := http.NewRequest("POST", l.base+"/users", r)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if l.idempotent {
		req.Header.Set("Idempotency-Key", o.email)
	}
	start := time.Now()
	res, err := l.client.Do(req)
	o.at = time.Now()
	o.took = o.at.Sub(start)
	if err != nil {
		o.err = err
		return o
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	o.status = res.StatusCode
	switch res.StatusCode {
	case http.StatusCreated:
		var u struct{ ID int64 }
		if err := json.Unmarshal(raw, &u); err != nil || u.ID == 0 {
			o.detail = fmt.Sprintf("201 without an id: %.200s", raw)
		}
		o.id = u.ID
	case http.StatusServiceUnavailable:
		if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
			o.detail = fmt.Sprintf("503 with Content-Type %q, want application/problem+json", ct)
		} else if res.Header.Get("Retry-After") == "" {
			o.detail = "503 without Retry-After"
		}
	default:
		o.detail = fmt.Sprintf("%d %.300s", res.StatusCode, raw)
	}
	return o
}

// tally counts outcomes by status ("error" for no answer).
func tally(outcomes []outcome) string {
	counts := map[string]int{}
	for _, o := range outcomes {
		k := fmt.Sprint(o.status)
		if o.err != nil {
			k = "no answer"
			if isRefused(o.err) {
				k = "refused"
			}
		}
		counts[k]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d  ", k, counts[k])
	}
	return strings.TrimSpace(b.String())
}

// isRefused says whether err is a connection the server never accepted.
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// missingUsers returns the 201s whose user is not in the database at
// dbURL with the email it was created with.
func missingUsers(t *testing.T, dbURL string, outcomes []outcome) []string {
	t.Helper()
	want := map[int64]string{}
	var ids []int64
	for _, o := range outcomes {
		if o.status == http.StatusCreated {
			want[o.id] = o.email
			ids = append(ids, o.id)
		}
	}
	got := usersByID(t, dbURL, ids)
	var missing []string
	for id, email := range want {
		if got[id] != email {
			missing = append(missing, fmt.Sprintf("%d %s (found %q)", id, email, got[id]))
		}
	}
	sort.Strings(missing)
	return missing
}

// usersByID reads the emails of the users with these ids straight from the
// database, bypassing the service.
func usersByID(t *testing.T, dbURL string, ids []int64) map[int64]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to check the users: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id, email FROM users WHERE id = ANY($1)", ids)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	for rows.Next() {
		var id int64
		var email string
		if err := rows.Scan(&id, &email); err != nil {
			t.Fatal(err)
		}
		got[id] = email
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// existingEmails returns which of these emails belong to a user in the
// database at dbURL.
func existingEmails(t *testing.T, dbURL string, emails []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to check the users: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT email FROM users WHERE email = ANY($1) ORDER BY email", emails)
	if err != nil {
		t.Fatal(err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// buildBinary builds userapi into the test's temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "userapi")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
