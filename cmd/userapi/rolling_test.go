package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"userapi/cache/cachetest"
	"userapi/internal/freeport"
	"userapi/store/storetest"
)

// rollingDrainDelay is the instances' USERAPI_DRAIN_DELAY: well above the
// time HAProxy's checks (every 100 ms, down after 2 failures) take to see
// the 503.
const rollingDrainDelay = "2s"

// Three instances behind HAProxy, checked on /readyz, restarted one by one
// with SIGTERM under a load of reads and creates: no client sees an error,
// even through a frontend that never retries, because each instance drains.
// Then one is killed with SIGKILL: the only failures are requests that were
// in flight on it, and each, retried with its Idempotency-Key, ends as
// exactly one user.
func TestRollingRestartBehindHAProxy(t *testing.T) {
	t.Parallel()
	haproxy := haproxyBinary(t)
	bin := buildBinary(t)
	dbURL := storetest.NewDB(t)
	vars := map[string]string{
		"DATABASE_URL": dbURL, "REDIS_URL": cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
		"USERAPI_DB_MIN_CONNS": "1", "USERAPI_DB_MAX_CONNS": "5", "USERAPI_WORKERS": "0",
		"USERAPI_AUTH": "off", "USERAPI_METRICS_ADDR": "off",
		// Every request comes from HAProxy's address: one client to the limiter.
		"USERAPI_RATE_LIMIT": "100000/1m", "USERAPI_RATE_LIMIT_WRITES": "100000/1m",
		"USERAPI_DRAIN_DELAY": rollingDrainDelay, "USERAPI_SHUTDOWN_TIMEOUT": "10s",
	}
	dir := t.TempDir()
	pool := make([]*restartable, 3)
	for i := range pool {
		pool[i] = &restartable{t: t, name: fmt.Sprintf("api%d", i+1), bin: bin, addr: freeport.Addr(t), vars: vars, dir: dir}
		pool[i].start()
	}
	lb := startHAProxy(t, haproxy, dir, pool)
	for _, in := range pool {
		lb.waitUp(in.name)
	}

	{ // SIGTERM, one instance after the other
		// Slow uploads keep creates in flight whenever an instance stops.
		l := startMixedLoad(lb.urls["strict"], 4, 100*time.Millisecond)
		time.Sleep(time.Second)
		for _, in := range pool {
			if err := in.stop(syscall.SIGTERM); err != nil {
				t.Errorf("%s after SIGTERM: %v, want exit status 0", in.name, err)
			}
			in.start()
			lb.waitUp(in.name)
		}
		time.Sleep(time.Second)
		res := l.stop()
		t.Logf("rolling restart: %s", res.summary())
		if res.sent < 100 {
			t.Errorf("only %d requests sent: the load did not run", res.sent)
		}
		for _, f := range res.failures {
			t.Errorf("%s", f)
		}
		checkRows(t, dbURL, res)
	}

	{ // SIGKILL of one instance
		// Uploads are quick, so that every request in flight on the killed
		// instance is answered by HAProxy: one that was still uploading
		// gets its connection closed instead.
		l := startMixedLoad(lb.urls["retrying"], 4, 0)
		time.Sleep(time.Second)
		killed := pool[0]
		// A few creates pinned on the instance to kill, still uploading at
		// the kill, so that it surely has requests in flight.
		var pinned sync.WaitGroup
		for i := range 3 {
			pinned.Add(1)
			go func() {
				defer pinned.Done()
				l.record(l.create(fmt.Sprintf("pinned%d-%d@example.com", time.Now().UnixNano(), i), time.Second, killed.name))
			}()
		}
		time.Sleep(300 * time.Millisecond)
		_ = killed.stop(syscall.SIGKILL)
		pinned.Wait()
		lb.waitDown(killed.name)
		killed.start()
		lb.waitUp(killed.name)
		time.Sleep(time.Second)
		res := l.stop()
		t.Logf("SIGKILL of %s: %s", killed.name, res.summary())
		var retry []request
		for _, f := range res.failures {
			// HAProxy names the server of every answer, its own 502s included.
			answeredForKilled := f.err == nil && f.status == http.StatusBadGateway && f.server == killed.name
			uploadingToKilled := f.err != nil && f.routedTo == killed.name
			// HAProxy may send a request whose connection died with the killed
			// instance to another one. If the killed one's transaction was still
			// open, the key is busy: no key is ever sent twice at once otherwise.
			resentFromKilled := f.status == http.StatusConflict && strings.Contains(f.detail, "Idempotency-Key is still being handled")
			if !answeredForKilled && !uploadingToKilled && !resentFromKilled {
				t.Errorf("%s: a failure not in flight on %s", f, killed.name)
			}
			if f.email != "" {
				retry = append(retry, f)
			}
		}
		for _, c := range res.created {
			if c.routedTo == killed.name {
				t.Errorf("%s was still uploading to %s when it was killed, yet got 201 (the kill missed it, so the test proved nothing)", c.email, killed.name)
			}
		}
		replayed := 0
		for _, f := range retry {
			r := l.create(f.email, 0, "")
			if r.status != http.StatusCreated {
				t.Errorf("retry of %s with its Idempotency-Key = %s, want 201", f.email, r)
			}
			if r.replayed {
				replayed++
			}
			res.created = append(res.created, r)
		}
		t.Logf("SIGKILL: %d creates failed and were retried with their key: %d replayed (had committed), %d created", len(retry), replayed, len(retry)-replayed)
		checkRows(t, dbURL, res)
	}
}

// checkRows checks that the users with the load's emails are exactly the
// 201s: each there with its id, none twice, and none that got no 201.
func checkRows(t *testing.T, dbURL string, res loadResult) {
	t.Helper()
	ids := make([]int64, 0, len(res.created))
	byEmail := map[string]int64{}
	for _, r := range res.created {
		if prev, ok := byEmail[r.email]; ok && prev != r.id {
			t.Errorf("%s created twice: ids %d and %d", r.email, prev, r.id)
		}
		byEmail[r.email] = r.id
		ids = append(ids, r.id)
	}
	got := usersByID(t, dbURL, ids)
	for email, id := range byEmail {
		if got[id] != email {
			t.Errorf("201 for %s with id %d, but the database has %q there", email, id, got[id])
		}
	}
	rows := existingEmails(t, dbURL, res.attempted)
	if len(rows) != len(byEmail) {
		t.Errorf("%d users in the database for %d distinct 201s", len(rows), len(byEmail))
	}
	t.Logf("rows: %d, distinct 201s: %d", len(rows), len(byEmail))
}

// haproxyBinary finds HAProxy, or skips the test: `make test` installs it.
func haproxyBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	const debian = "/usr/sbin/haproxy" // not on a non-root PATH
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	t.Skip("haproxy is not installed, so the rolling restart cannot be tested (Debian: apt-get install haproxy; make test installs it)")
	return ""
}

// restartable is one userapi process that the test stops and starts again
// on the same address, appending to one log file.
type restartable struct {
	t    *testing.T
	name string
	bin  string
	addr string
	vars map[string]string
	dir  string

	cmd    *exec.Cmd
	exited chan error
}

func (r *restartable) start() {
	r.t.Helper()
	logPath := filepath.Join(r.dir, r.name+".log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(r.bin, "serve")
	cmd.Env = append(os.Environ(), "USERAPI_ADDR="+r.addr)
	for k, v := range r.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = out, out // a file: an undrained pipe would wedge the server
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	r.cmd, r.exited = cmd, exited
	r.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		exited <- nil // for a later cleanup of the same process
		if r.t.Failed() {
			b, _ := os.ReadFile(logPath)
			r.t.Logf("log of %s (%s):\n%s", r.name, r.addr, b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get("http://" + r.addr + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			exited <- err // the cleanup waits for it too
			r.t.Fatalf("%s exited before it was ready: %v", r.name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	r.t.Fatalf("%s at %s never became ready", r.name, r.addr)
}

// stop sends sig and waits for the process to exit.
func (r *restartable) stop(sig syscall.Signal) error {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		r.exited <- err // for the cleanup
		return err
	case <-time.After(60 * time.Second):
		r.t.Fatalf("%s still running 60 s after %s", r.name, sig)
		return nil
	}
}

// loadBalancer is HAProxy in front of the instances.
type loadBalancer struct {
	t        *testing.T
	urls     map[string]string // each backend's frontend
	backends []string
	stats    string
}

// startHAProxy writes a configuration that checks every instance's /readyz
// and starts HAProxy in the foreground, stopped when the test ends.
func startHAProxy(t *testing.T, bin, dir string, pool []*restartable) *loadBalancer {
	t.Helper()
	lb := &loadBalancer{t: t, urls: map[string]string{}}
	var cfg strings.Builder
	stats := freeport.Addr(t)
	fmt.Fprintf(&cfg, `global
    maxconn 1000

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s

listen stats
    bind %s
    stats enable
    stats uri /stats
`, stats)
	lb.stats = "http://" + stats + "/stats;csv"
	// Two ways in, each with its own checks of every instance.
	for _, b := range []struct{ name, retries string }{
		// Never retries: only the drain can keep a restart from failing requests.
		{"strict", "    retries 0\n"},
		// Retries a connection that was refused (the server never saw the
		// request) on another instance, as load balancers usually do.
		{"retrying", "    retries 3\n    option redispatch 1\n"},
	} {
		front := freeport.Addr(t)
		lb.urls[b.name] = "http://" + front
		lb.backends = append(lb.backends, b.name)
		fmt.Fprintf(&cfg, `
frontend %[1]s
    bind %[2]s
    default_backend %[1]s
    # Every answer names the instance that gave it, HAProxy's own errors too.
    http-after-response set-header X-Server %%[srv_name]

backend %[1]s
%[3]s    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 100ms fall 2 rise 2
`, b.name, front, b.retries)
		for _, in := range pool {
			fmt.Fprintf(&cfg, "    server %s %s check\n", in.name, in.addr)
			// Lets the test put a request on a given instance while it is up.
			fmt.Fprintf(&cfg, "    use-server %s if { req.hdr(X-Route-To) -m str %s }\n", in.name, in.name)
		}
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg.String())
	}
	logPath := filepath.Join(dir, "haproxy.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, "-db", "-f", path) // -db: foreground
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("haproxy log:\n%s", b)
		}
	})
	return lb
}

// status is the state HAProxy's checks in backend give server: UP, DOWN, ...
func (lb *loadBalancer) status(backend, server string) string {
	res, err := http.Get(lb.stats)
	if err != nil {
		return "unreachable"
	}
	defer res.Body.Close()
	rows, err := csv.NewReader(res.Body).ReadAll()
	if err != nil || len(rows) == 0 {
		return "unreadable"
	}
	col := -1
	for i, name := range rows[0] {
		if name == "status" {
			col = i
		}
	}
	for _, row := range rows[1:] {
		if len(row) > col && col >= 0 && row[0] == backend && row[1] == server {
			return row[col]
		}
	}
	return "unknown"
}

// waitFor returns once every backend's checks give server a status that
// want accepts.
func (lb *loadBalancer) waitFor(server string, want func(string) bool, what string) {
	lb.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, backend := range lb.backends {
		var got string
		for got = lb.status(backend, server); !want(got); got = lb.status(backend, server) {
			if time.Now().After(deadline) {
				lb.t.Fatalf("HAProxy (%s) never saw %s %s (last status %q)", backend, server, what, got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// waitUp returns once HAProxy sends server traffic again.
func (lb *loadBalancer) waitUp(server string) {
	lb.waitFor(server, func(s string) bool { return s == "UP" }, "up")
}

// waitDown returns once HAProxy has stopped sending server traffic.
func (lb *loadBalancer) waitDown(server string) {
	lb.waitFor(server, func(s string) bool { return strings.HasPrefix(s, "DOWN") }, "down")
}

// request is one request of the mixed load and what it got.
type request struct {
	method, path string
	email        string // the user a create makes
	status       int    // 0 when no answer came
	err          error
	server       string // the instance HAProxy named
	routedTo     string // the instance the test asked HAProxy for, if any
	detail       string // a problem's detail
	id           int64  // the user a 201 created
	replayed     bool
}

func (r request) String() string {
	if r.err != nil {
		return fmt.Sprintf("%s %s: %v", r.method, r.path, r.err)
	}
	return fmt.Sprintf("%s %s = %d %q from %q", r.method, r.path, r.status, r.detail, r.server)
}

// mixedLoad sends creates (each with an Idempotency-Key) and reads (some
// conditional, for 304s) from a few workers, over keep-alive connections as
// a real client would, pausing between requests so that the load stays
// bounded on a small machine.
type mixedLoad struct {
	base   string
	client *http.Client
	stopc  chan struct{}
	wg     sync.WaitGroup
	seq    atomic.Int64

	mu  sync.Mutex
	res loadResult
}

type loadResult struct {
	sent      int
	byStatus  map[int]int
	connErrs  int
	failures  []request        // answers other than 2xx/304/429, and connection errors
	created   []request        // the 201s
	attempted []string         // every email a create was sent for
	etags     map[int64]string // the last ETag seen per user
	ids       []int64          // users to read
}

// startMixedLoad starts the load on base; slow, when set, makes every
// other worker upload its creates in two parts this far apart.
func startMixedLoad(base string, workers int, slow time.Duration) *mixedLoad {
	l := &mixedLoad{
		base:   base,
		client: &http.Client{Timeout: requestTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: workers}},
		stopc:  make(chan struct{}),
		res:    loadResult{byStatus: map[int]int{}, etags: map[int64]string{}},
	}
	// Unique across the runs of one test: the database is shared.
	run := time.Now().UnixNano()
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stopc:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if rand.IntN(3) == 0 {
					upload := slow
					if w%2 == 1 {
						upload = 0
					}
					l.record(l.create(fmt.Sprintf("roll%d-%d-%d@example.com", run, w, l.seq.Add(1)), upload, ""))
				} else {
					l.record(l.read())
				}
			}
		}()
	}
	return l
}

// stop ends the load once the requests in flight are answered.
func (l *mixedLoad) stop() loadResult {
	close(l.stopc)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.res
}

func (l *mixedLoad) record(r request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.res.sent++
	switch {
	case r.err != nil:
		l.res.connErrs++
		l.res.failures = append(l.res.failures, r)
	default:
		l.res.byStatus[r.status]++
		if !(r.status >= 200 && r.status < 300 || r.status == http.StatusNotModified || r.status == http.StatusTooManyRequests) {
			l.res.failures = append(l.res.failures, r)
		}
	}
	if r.email != "" {
		l.res.attempted = append(l.res.attempted, r.email)
	}
	if r.status == http.StatusCreated {
		l.res.created = append(l.res.created, r)
		l.res.ids = append(l.res.ids, r.id)
	}
}

// create sends POST /users for email with email as its Idempotency-Key.
// slow, when set, sends the body in two parts this far apart; server, when
// set, asks HAProxy to send the request to that instance.
func (l *mixedLoad) create(email string, slow time.Duration, server string) request {
	body := fmt.Sprintf(`{"name":"Roll","email":%q}`, email)
	var upload io.Reader = strings.NewReader(body)
	if slow > 0 {
		upload = &slowBody{chunks: []string{body[:len(body)/2], body[len(body)/2:]}, delay: slow}
	}
	r := request{method: "POST", path: "/users", email: email, routedTo: server}
	headers := []string{"Content-Type", "application/json", "Idempotency-Key", email}
	if server != "" {
		headers = append(headers, "X-Route-To", server)
	}
	res, raw := l.do(&r, upload, headers...)
	if res != nil && res.StatusCode == http.StatusCreated {
		var u struct{ ID int64 }
		if err := json.Unmarshal(raw, &u); err != nil || u.ID == 0 {
			r.err = fmt.Errorf("201 without an id: %.200s", raw)
		}
		r.id = u.ID
		r.replayed = res.Header.Get("Idempotent-Replayed") == "true"
	}
	return r
}

// read gets a user created earlier, conditionally when its ETag is known,
// or a page of users.
func (l *mixedLoad) read() request {
	l.mu.Lock()
	var id int64
	var etag string
	if n := len(l.res.ids); n > 0 {
		id = l.res.ids[rand.IntN(n)]
		etag = l.res.etags[id]
	}
	l.mu.Unlock()
	if id == 0 {
		r := request{method: "GET", path: "/users?limit=10"}
		l.do(&r, nil)
		return r
	}
	r := request{method: "GET", path: fmt.Sprintf("/users/%d", id)}
	var headers []string
	if etag != "" {
		headers = []string{"If-None-Match", etag}
	}
	if res, _ := l.do(&r, nil, headers...); res != nil && res.StatusCode == http.StatusOK {
		l.mu.Lock()
		l.res.etags[id] = res.Header.Get("ETag")
		l.mu.Unlock()
	}
	return r
}

// do sends the request r describes and fills in what it got.
func (l *mixedLoad) do(r *request, body io.Reader, headers ...string) (*http.Response, []byte) {
	req, err := http.NewRequest(r.method, l.base+r.path, body)
	if err != nil {
		panic(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := l.client.Do(req)
	if err != nil {
		r.err = err
		return nil, nil
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		r.err = fmt.Errorf("reading the answer: %w", err)
		return nil, nil
	}
	r.status, r.server = res.StatusCode, res.Header.Get("X-Server")
	if res.Header.Get("Content-Type") == "application/problem+json" {
		var p struct{ Detail string }
		_ = json.Unmarshal(raw, &p)
		r.detail = p.Detail
	}
	return res, raw
}

// summary gives the figures of a run on one line.
func (r loadResult) summary() string {
	codes := make([]int, 0, len(r.byStatus))
	for c := range r.byStatus {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d: %d", c, r.byStatus[c]))
	}
	return fmt.Sprintf("%d requests sent; answers %s; connection errors: %d; 201s: %d",
		r.sent, strings.Join(parts, ", "), r.connErrs, len(r.created))
}
