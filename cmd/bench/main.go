// Command bench measures userapi under load against references measured in
// the same run: it seeds a fresh database with 100,000 users, starts the real
// userapi binary and a minimal static-JSON net/http server as child processes,
// and drives both with wrk from a third process, interleaving the scenarios
// round by round and reporting medians. Creates are compared with pgbench
// inserting the same row at the same database concurrency. It ends with the
// table of goals: each workload, its value, its reference, their ratio, the
// goal and whether it was met, and the peak RSS of userapi over the run. Before them, it downloads every user
// as NDJSON from GET /users/export once a round, reporting rows/s and the
// server's peak RSS while it streams. Then, once, it opens -streams live
// event streams and times each of -fanout-events new users from commit to
// arrival on every stream, with the server's memory per open stream.
//
//	go run ./cmd/bench [-duration 5s] [-rounds 3] [-connections 64] [-db-conns 4] [-streams 1000] [-run regexp]
//
// -run keeps the scenarios whose names it matches ("q=" for the search, "export",
// "GET /users/1", "fan-out"); the static reference always runs.
//
// It needs wrk, pgbench, PostgreSQL (DATABASE_URL or 127.0.0.1:5432) and Redis
// (REDIS_URL or 127.0.0.1:6379).
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"userapi/internal/freeport"
)

const users = 100000

// exportName is the download's name in the results and for -run.
const exportName = "GET /users/export?format=ndjson"

// searchConns is the load the search goal is stated at.
const searchConns = 16

// staticUser is what the reference server answers: the size and shape of a
// real user.
const staticUser = `{"created_at":"2026-01-02T03:04:05.123456Z","email":"user1@example.com","id":1,"name":"User 1","updated_at":"2026-01-02T03:04:05.123456Z"}`

func main() {
	if len(os.Args) == 3 && os.Args[1] == "serve-static" {
		serveStatic(os.Args[2])
		return
	}
	duration := flag.Duration("duration", 5*time.Second, "how long each wrk run lasts")
	rounds := flag.Int("rounds", 3, "how many times each scenario runs; medians are reported")
	conns := flag.Int("connections", 64, "wrk connections")
	streams := flag.Int("streams", 1000, "event streams the fan-out holds open")
	fanoutEvents := flag.Int("fanout-events", 200, "users the fan-out creates, one event each")
	fanoutInterval := flag.Duration("fanout-interval", 20*time.Millisecond, "time between the fan-out's writes")
	// Two per core of this machine, which runs the database, the server and
	// the load too (sizing: docs/scaling.md). pgbench's clients match, so
	// creates are compared at one concurrency.
	dbConns := flag.Int("db-conns", 4, "database connections of each userapi instance, and pgbench's clients")
	listBefore := flag.Float64("list-before", 0.06, "list 100's ratio to the static reference before this release, which its goal doubles")
	only := flag.String("run", "", "run only the scenarios whose names match this regular expression (and the static reference)")
	flag.Parse()
	pick, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: -run:", err)
		os.Exit(2)
	}
	fo := fanoutConfig{*streams, *fanoutEvents, *fanoutInterval}
	cfg := config{duration: *duration, rounds: *rounds, conns: *conns, dbConns: *dbConns, listBefore: *listBefore}
	if err := run(cfg, fo, pick); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// serveStatic is the reference: the least a JSON endpoint on plain net/http
// can do, with the headers a JSON answer needs and nothing else.
func serveStatic(addr string) {
	body := []byte(staticUser)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/1", func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		_, _ = w.Write(body)
	})
	if err := http.ListenAndServe(addr, mux); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type scenario struct {
	name   string
	target string // "userapi" (as shipped), "nolimit", "noauth", "static" or "pgbench"
	path   string
	script string // wrk Lua that shapes the requests, if any; pgbench's script
	conns  int    // wrk connections; 0 for -connections
	// writes is set when it inserts users: the database is settled after
	// it, so that the next scenario does not share the CPUs with its
	// aftermath (see settle).
	writes bool
}

// connections is how many connections sc runs with, given -connections.
func (sc scenario) connections(dflt int) int {
	if sc.conns > 0 {
		return sc.conns
	}
	return dflt
}

// Lua for wrk. Each prints its result as one JSON line in done().
const report = `
done = function(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format('RESULT {"requests":%d,"seconds":%f,"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99), bad))
end
`

const randomGet = `
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  return wrk.format("GET", "/users/" .. math.random(1, 10000))
end
`

const batchGet = `
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local ids = {}
  for i = 1, 100 do ids[i] = math.random(1, 10000) end
  return wrk.format(nil, "/users/batch-get", nil, '{"ids":[' .. table.concat(ids, ",") .. ']}')
end
`

// listPage follows next_cursor values from random places in the table, as
// a client paging through it does.
func listPage() string {
	var cursors []string
	for i := range 200 {
		after := 1 + i*49 // spread over 1..9801
		cursors = append(cursors, `"`+base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("after:%d", after)))+`"`)
	}
	return `
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local cursors = {` + strings.Join(cursors, ",") + `}
request = function()
  return wrk.format("GET", "/users?limit=100&cursor=" .. cursors[math.random(1, #cursors)])
end
`
}

// search asks for a substring of 3–6 characters, a different one each
// request: parts of the seeded first and last names (each in about one user
// in 16), digits of the seeded emails (a few users) and one that matches
// nobody.
const search = `
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local qs = {"ada", "grace", "hopper", "turin", "knuth", "lisko", "wirth", "ritch", "lamar", "ovela",
  "edsg", "torva", "4242", "31337", "9999", "zqx"}
request = function()
  return wrk.format("GET", "/users?q=" .. qs[math.random(1, #qs)])
end
`

const create = `
local counter = 0
local tag = tostring({}):sub(8)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  return wrk.format(nil, "/users", nil, '{"name":"Load ' .. counter .. '","email":"load-' .. RUN .. '-' .. tag .. '-' .. counter .. '@example.com"}')
end
`

//go:embed create.pgbench
var createPgbench []byte

type config struct {
	duration      time.Duration
	rounds, conns int
	dbConns       int
	listBefore    float64
}

type fanoutConfig struct {
	streams, events int
	interval        time.Duration
}

func run(cfg config, fo fanoutConfig, pick *regexp.Regexp) error {
	duration, rounds, conns := cfg.duration, cfg.rounds, cfg.conns
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk is not installed (Debian: apt-get install wrk)")
	}
	if _, err := exec.LookPath("pgbench"); err != nil {
		return errors.New("pgbench is not installed (Debian: apt-get install postgresql-client)")
	}
	dir, err := os.MkdirTemp("", "userapi-bench-")
	if err != nil {
		return err
	}
	if os.Getenv("BENCH_KEEP_LOGS") == "" {
		defer os.RemoveAll(dir)
	}

	ctx := context.Background()
	dbURL, dropDB, err := createDatabase(ctx)
	if err != nil {
		return err
	}
	defer dropDB()

	fmt.Println("building userapi and the reference server")
	userapiBin, benchBin := filepath.Join(dir, "userapi"), filepath.Join(dir, "bench")
	for bin, pkg := range map[string]string{userapiBin: "./cmd/userapi", benchBin: "./cmd/bench"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}

	apiAddr, staticAddr := freeport.Addr(log.Default()), freeport.Addr(log.Default())
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	// `keys create` needs the schema, which serve does not wait for.
	migrate := exec.Command(userapiBin, "migrate")
	migrate.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "REDIS_URL="+redisURL)
	if out, err := migrate.CombinedOutput(); err != nil {
		return fmt.Errorf("userapi migrate: %v\n%s", err, out)
	}
	// Three instances over the same data. The first runs as shipped: API
	// keys, access logs, metrics and the rate limiter on, at a limit no run
	// reaches, so that every request pays for its decision without being
	// refused; it takes every fan-out stream on one key. The others each
	// turn one thing off: the limiter, or the API key check.
	prefix := "USERAPI_CACHE_PREFIX=bench-" + randomHex() + ":"
	limitOn := []string{"USERAPI_RATE_LIMIT=1000000000/1s", "USERAPI_RATE_LIMIT_WRITES=1000000000/1s"}
	limitOff := []string{"USERAPI_RATE_LIMIT=off", "USERAPI_RATE_LIMIT_WRITES=off"}
	instance := func(name, addr string, env ...string) (*exec.Cmd, error) {
		env = append(env, "USERAPI_ADDR="+addr, "DATABASE_URL="+dbURL, "REDIS_URL="+redisURL, prefix,
			"USERAPI_METRICS_ADDR="+freeport.Addr(log.Default()),
			fmt.Sprint("USERAPI_DB_MAX_CONNS=", cfg.dbConns), fmt.Sprint("USERAPI_DB_MIN_CONNS=", cfg.dbConns))
		return start(dir, name, userapiBin, []string{"serve"}, env...)
	}
	api, err := instance("userapi", apiAddr, append(limitOn, fmt.Sprint("USERAPI_STREAMS_PER_KEY=", max(fo.streams, 1)))...)
	if err != nil {
		return err
	}
	defer stop(api)
	unlimitedAddr := freeport.Addr(log.Default())
	unlimited, err := instance("userapi-nolimit", unlimitedAddr, limitOff...)
	if err != nil {
		return err
	}
	defer stop(unlimited)
	openAddr := freeport.Addr(log.Default())
	open, err := instance("userapi-noauth", openAddr, append(limitOn, "USERAPI_AUTH=off")...)
	if err != nil {
		return err
	}
	defer stop(open)
	rss := newPeakRSS(map[string]int{"userapi": api.Process.Pid, "userapi-nolimit": unlimited.Process.Pid, "userapi-noauth": open.Process.Pid})
	keyCmd := exec.Command(userapiBin, "keys", "create", "--name", "bench", "--scopes", "admin")
	keyCmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "REDIS_URL="+redisURL, prefix)
	keyOut, err := keyCmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("userapi keys create: %w\n%s", err, exit.Stderr)
		}
		return fmt.Errorf("userapi keys create: %w", err)
	}
	key := strings.TrimSpace(string(keyOut))
	static, err := start(dir, "static", benchBin, []string{"serve-static", staticAddr})
	if err != nil {
		return err
	}
	defer stop(static)
	if err := waitReady("http://" + staticAddr + "/users/1"); err != nil {
		return err
	}
	// Only /livez: asking userapi for a user before the seed would cache
	// its absence.
	for _, addr := range []string{apiAddr, unlimitedAddr, openAddr} {
		if err := waitReady("http://" + addr + "/livez"); err != nil {
			return fmt.Errorf("userapi did not start (logs in %s): %w", dir, err)
		}
	}
	if err := seed(ctx, dbURL); err != nil {
		return err
	}

	ownScript, err := ownStatementScript(createQueryFile)
	if err != nil {
		return err
	}
	runTag := randomHex()
	const (
		hotName       = "hot GET /users/1"
		unlimitedName = "hot GET /users/1, rate limiter off"
		noAuthName    = "hot GET /users/1, no API key check"
		randomName    = "random GET /users/{id}"
		listName      = "GET /users?limit=100 (cursor)"
		createName    = "POST /users"
		pgbenchName   = "POST /users: pgbench INSERT (reference)"
		ownName       = "POST /users: pgbench, its own statement"
	)
	scenarios := []scenario{
		{"static JSON (reference)", "static", "/users/1", "", 0, false},
		{hotName, "userapi", "/users/1", "", 0, false},
		{unlimitedName, "nolimit", "/users/1", "", 0, false},
		{noAuthName, "noauth", "/users/1", "", 0, false},
		{randomName, "userapi", "/", randomGet, 0, false},
		{"POST /users/batch-get (100 ids)", "userapi", "/", batchGet, 0, false},
		{listName, "userapi", "/", listPage(), 0, false},
		{createName, "userapi", "/", strings.Replace(create, "RUN", `"`+runTag+`"`, 1), 0, true},
		{pgbenchName, "pgbench", "", string(createPgbench), cfg.dbConns, true},
		{ownName, "pgbench", "", string(ownScript), cfg.dbConns, true},
		{fmt.Sprintf("GET /users?q= (3–6 chars), %d conns", searchConns), "userapi", "/", search, searchConns, false},
	}
	searchName := scenarios[len(scenarios)-1].name
	scenarios = slices.DeleteFunc(scenarios, func(sc scenario) bool { return sc.target != "static" && !pick.MatchString(sc.name) })
	addrs := map[string]string{"userapi": apiAddr, "nolimit": unlimitedAddr, "noauth": openAddr, "static": staticAddr, "pgbench": dbURL}
	// The downloads come first, while the table holds the seeded users
	// alone: POST /users adds more.
	var exports []exportResult
	for r := range rounds {
		if !pick.MatchString(exportName) {
			break
		}
		rss.fold() // the download resets the kernel's high-water mark
		ex, err := export(apiAddr, key, api.Process.Pid)
		if err != nil {
			return err
		}
		fmt.Printf("  round %d  %-32s %9.0f rows/s  %d rows in %s  RSS %s before, peak %s\n",
			r+1, exportName, ex.rowsPerSec(), ex.rows, ex.elapsed.Round(time.Millisecond), mib(ex.rssBefore), mib(ex.peakRSS))
		exports = append(exports, ex)
	}
	// Once, not a round each: memory the server keeps from an earlier round
	// would hide what the streams take.
	var fan *fanoutResult
	if pick.MatchString(fanoutName) {
		fr, err := fanout(apiAddr, key, api.Process.Pid, fo.streams, fo.events, fo.interval)
		if err != nil {
			return fmt.Errorf("%s with %d streams: %w", fanoutName, fo.streams, err)
		}
		fmt.Printf("  once     %-32s %d streams x %d events: p50 %s  p99 %s  max %s  RSS %s before, %s open  missing %d\n",
			fanoutName, fr.streams, fr.events, fr.p50, fr.p99, fr.max, mib(fr.rssBefore), mib(fr.rssOpen), fr.missing())
		fan = &fr
	}
	// One short unmeasured run of each first: new database backends load
	// their caches, and no round's tail is a cold start.
	for _, sc := range scenarios {
		if sc.target == "pgbench" {
			continue
		}
		if _, err := runWrk(dir, sc, addrs[sc.target], key, time.Second, sc.connections(conns)); err != nil {
			return err
		}
		if sc.writes {
			if err := settle(ctx, dbURL); err != nil {
				return err
			}
		}
	}
	results := make(map[string][]result)
	fmt.Printf("wrk -t2 -c%d -d%s, %d rounds, scenarios interleaved; %d users seeded\n", conns, duration, rounds, users)
	for r := range rounds {
		for _, sc := range scenarios {
			c := sc.connections(conns)
			run := runWrk
			if sc.target == "pgbench" {
				run = runPgbench
			}
			res, err := run(dir, sc, addrs[sc.target], key, duration, c)
			if err != nil {
				return err
			}
			fmt.Printf("  round %d  %-32s %9.0f req/s  p50 %6s  p99 %6s  errors %d\n", r+1, sc.name, res.rps, res.p50, res.p99, res.errors)
			results[sc.name] = append(results[sc.name], res)
			if sc.writes {
				if err := settle(ctx, dbURL); err != nil {
					return err
				}
			}
		}
	}

	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario (median of rounds)\treq/s\tp50\tp99\tvs static\terrors\t")
	ref := median(results[scenarios[0].name]).rps
	for _, sc := range scenarios {
		m := median(results[sc.name])
		fmt.Fprintf(w, "%s\t%.0f\t%s\t%s\t%.2fx\t%d\t\n", sc.name, m.rps, m.p50, m.p99, m.rps/ref, m.errors)
	}
	w.Flush()
	if fan != nil {
		fmt.Println()
		fmt.Fprintln(w, "fan-out (one run)\tstreams\tevents\tdeliveries\tp50\tp99\tmax\tRSS/stream\tmissing\t")
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%.1f KiB\t%d\t\n", fanoutName, fan.streams, fan.events, fan.deliveries,
			fan.p50, fan.p99, fan.max, float64(fan.perStream())/1024, fan.missing())
		w.Flush()
	}
	// A goal is printed when the run measured what it compares.
	has := func(names ...string) bool {
		for _, n := range names {
			if len(results[n]) == 0 {
				return false
			}
		}
		return true
	}
	rps := func(name string) float64 { return median(results[name]).rps }
	fmt.Println()
	g := goals{w: tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)}
	fmt.Fprintln(g.w, "goal (as shipped: keys, limiter, logs, metrics on)\tvalue\treference\tratio\tgoal\tmet\t")
	staticName := scenarios[0].name
	if has(hotName) {
		g.ratio("hot GET /users/1 vs static", hotName, staticName, rps, 0.8)
		p99 := median(results[hotName]).p99
		g.row("hot GET /users/1 p99", p99.Round(10*time.Microsecond).String(), "", "", "≤ 10ms", p99 <= 10*time.Millisecond)
	}
	if has(hotName, unlimitedName) {
		g.ratio("hot GET, limiter on vs off", hotName, unlimitedName, rps, 0.9)
	}
	if has(randomName) {
		g.ratio("random GET over 10,000 users vs static", randomName, staticName, rps, 0.7)
	}
	if has(listName) {
		r := rps(listName) / ref
		g.row("list 100 vs static, vs before", fmt.Sprintf("%.3f", r), fmt.Sprintf("%.3f", cfg.listBefore), fmt.Sprintf("%.2fx", r/cfg.listBefore),
			"≥ 2.00x", r >= 2*cfg.listBefore)
	}
	if has(createName, pgbenchName) {
		g.ratio(fmt.Sprintf("POST /users vs pgbench INSERT (%d db conns)", cfg.dbConns), createName, pgbenchName, rps, 0.8)
	}
	if has(createName, ownName) {
		g.extra("extra: POST /users vs pgbench running its statement", rps(createName), rps(ownName))
	}
	if has(unlimitedName) {
		g.extra("extra: hot GET, limiter off, vs static", rps(unlimitedName), ref)
	}
	if has(noAuthName) {
		g.extra("extra: hot GET, no API key check, vs static", rps(noAuthName), ref)
	}
	if has(hotName, noAuthName) {
		g.extra("extra: hot GET, key check on vs off", rps(hotName), rps(noAuthName))
	}
	peak := rss.peak()
	g.row("peak RSS of userapi (as shipped), whole run", mib(peak["userapi"]), "", "", "< 150 MiB", peak["userapi"] < 150<<20)
	g.w.Flush()
	fmt.Printf("peak RSS: limiter off %s, no API key check %s\n", mib(peak["userapi-nolimit"]), mib(peak["userapi-noauth"]))
	if has(searchName) {
		fmt.Printf("search p99 at %d connections = %s (goal: under 50ms)\n", searchConns, median(results[searchName]).p99)
	}
	if len(exports) > 0 {
		ex := medianExport(exports)
		fmt.Printf("export of %d rows as NDJSON = %.0f rows/s (goal: over 100000), server RSS %s before, peak %s while streaming (goal: flat)\n",
			ex.rows, ex.rowsPerSec(), mib(ex.rssBefore), mib(ex.peakRSS))
	}
	if fan != nil {
		fmt.Printf("fan-out to %d open streams: p99 from commit to delivery = %s, server memory per open stream = %.1f KiB\n",
			fan.streams, fan.p99, float64(fan.perStream())/1024)
	}
	fmt.Printf("machine: %d CPUs; server logs in %s (kept with BENCH_KEEP_LOGS=1)\n", numCPU(), dir)
	return nil
}

// goals prints the table of goals.
type goals struct{ w *tabwriter.Writer }

func (g goals) row(name, value, reference, ratio, goal string, met bool) {
	yes := "no"
	if met {
		yes = "yes"
	}
	fmt.Fprintf(g.w, "%s\t%s\t%s\t%s\t%s\t%s\t\n", name, value, reference, ratio, goal, yes)
}

// ratio is the row of a throughput goal: a's median over b's at least want.
func (g goals) ratio(name, a, b string, rps func(string) float64, want float64) {
	r := rps(a) / rps(b)
	g.row(name, fmt.Sprintf("%.0f/s", rps(a)), fmt.Sprintf("%.0f/s", rps(b)), fmt.Sprintf("%.2fx", r), fmt.Sprintf("≥ %.2fx", want), r >= want)
}

// extra is a row without a goal.
func (g goals) extra(name string, value, reference float64) {
	fmt.Fprintf(g.w, "%s\t%.0f/s\t%.0f/s\t%.2fx\t\t\t\n", name, value, reference, value/reference)
}

// peakRSS follows the kernel's high-water mark of each instance's RSS over
// the run, across the resets the export's measure makes.
type peakRSS struct {
	pids  map[string]int
	peaks map[string]int64
}

func newPeakRSS(pids map[string]int) *peakRSS {
	return &peakRSS{pids: pids, peaks: map[string]int64{}}
}

// fold keeps the high-water marks so far.
func (p *peakRSS) fold() {
	for name, pid := range p.pids {
		if hwm, err := procStatus(fmt.Sprintf("/proc/%d/status", pid), "VmHWM"); err == nil {
			p.peaks[name] = max(p.peaks[name], hwm)
		}
	}
}

func (p *peakRSS) peak() map[string]int64 {
	p.fold()
	return p.peaks
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

// median is each figure's median over the rounds, taken on its own: the
// round of median throughput need not hold the median p99. Errors are the
// most of any round.
func median(rs []result) result {
	var m result
	m.rps = middle(rs, func(r result) float64 { return r.rps })
	m.p50 = middle(rs, func(r result) time.Duration { return r.p50 })
	m.p99 = middle(rs, func(r result) time.Duration { return r.p99 })
	for _, r := range rs {
		m.errors = max(m.errors, r.errors)
	}
	return m
}

// middle is the median of f over rs (the upper one of an even count).
func middle[T cmp.Ordered](rs []result, f func(result) T) T {
	vs := make([]T, len(rs))
	for i, r := range rs {
		vs[i] = f(r)
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

// runWrk sends every request with the API key; the static reference ignores it.
func runWrk(dir string, sc scenario, addr, key string, duration time.Duration, conns int) (result, error) {
	script := filepath.Join(dir, "scenario.lua")
	if err := os.WriteFile(script, []byte(sc.script+report), 0o644); err != nil {
		return result{}, err
	}
	cmd := exec.Command("wrk", "-t2", fmt.Sprintf("-c%d", conns), "-d"+duration.String(), "-H", "Authorization: Bearer "+key,
		"-s", script, "http://"+addr+sc.path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %v\n%s", sc.name, err, out)
	}
	_, line, ok := strings.Cut(string(out), "RESULT ")
	if !ok {
		return result{}, fmt.Errorf("wrk %s printed no result:\n%s", sc.name, out)
	}
	var r struct {
		Requests int     `json:"requests"`
		Seconds  float64 `json:"seconds"`
		P50      int64   `json:"p50_us"`
		P99      int64   `json:"p99_us"`
		Errors   int     `json:"errors"`
	}
	if err := json.NewDecoder(strings.NewReader(line)).Decode(&r); err != nil {
		return result{}, fmt.Errorf("wrk %s: %v in %q", sc.name, err, line)
	}
	return result{
		rps:    float64(r.Requests) / r.Seconds,
		p50:    time.Duration(r.P50) * time.Microsecond,
		p99:    time.Duration(r.P99) * time.Microsecond,
		errors: r.Errors,
	}, nil
}

// runPgbench runs sc's pgbench script for the duration, conns clients and
// as many threads as wrk, each statement its own transaction.
func runPgbench(dir string, sc scenario, dbURL, _ string, duration time.Duration, conns int) (result, error) {
	script := filepath.Join(dir, "script.pgbench")
	if err := os.WriteFile(script, []byte(sc.script), 0o644); err != nil {
		return result{}, err
	}
	cmd := exec.Command("pgbench", "-n", "-M", "prepared", "-j", "2", fmt.Sprintf("-c%d", conns),
		fmt.Sprintf("-T%d", max(1, int(duration.Seconds()))), "-f", script, dbURL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("%s: %v\n%s", sc.name, err, out)
	}
	var r result
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "tps" && f[1] == "=":
			r.rps, err = strconv.ParseFloat(f[2], 64)
		case len(f) >= 4 && f[0] == "latency" && f[1] == "average":
			var ms float64
			ms, err = strconv.ParseFloat(f[3], 64)
			r.p50 = time.Duration(ms * float64(time.Millisecond)) // the mean: pgbench gives no percentiles
		case len(f) >= 5 && f[0] == "number" && f[2] == "failed":
			r.errors, _ = strconv.Atoi(f[4])
		}
		if err != nil {
			return result{}, fmt.Errorf("%s: %q: %w", sc.name, line, err)
		}
	}
	if r.rps == 0 {
		return result{}, fmt.Errorf("%s printed no tps:\n%s", sc.name, out)
	}
	return r, nil
}

// createDatabase makes an empty database for this run on the server of
// DATABASE_URL (or 127.0.0.1:5432), and returns its URL and how to drop it.
func createDatabase(ctx context.Context) (string, func(), error) {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	name := "userapi_bench_" + randomHex()
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s: %w", admin.Redacted(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	drop := func() {
		if c, err := pgx.Connect(context.Background(), admin.String()); err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// seed inserts the users once userapi has migrated the schema.
func seed(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// Names from 16 first and 16 last names, so that searching for one finds
	// about one user in 16; the addresses are ASCII, whose email_key (see
	// package email) is lower(email).
	_, err = conn.Exec(ctx, `INSERT INTO users (name, email, email_key)
		SELECT f || ' ' || l, e, lower(e)
		FROM generate_series(1, $1) g,
			LATERAL (SELECT
				(ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Margaret','Ken',
					'Dennis','Frances','John','Radia','Tony','Niklaus','Hedy','Linus'])[1 + g % 16] AS f,
				(ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Hamilton','Thompson',
					'Ritchie','Allen','Backus','Perlman','Hoare','Wirth','Lamarr','Torvalds'])[1 + (g / 16) % 16] AS l) n,
			LATERAL (SELECT lower(f) || '.' || lower(l) || g || '@example.com' AS e) a`, users)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return settle(ctx, dbURL)
}

// settle does, after the users table was written, what autovacuum and the
// checkpointer would soon do on their own: it sets the new rows' hint bits
// and visibility, refreshes the planner's statistics, and writes out what
// was dirtied. Otherwise the next scenario would share the CPUs and the disk
// with that work, or pay for it, and measure the writes' aftermath rather
// than itself.
func settle(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, sql := range []string{"VACUUM (ANALYZE) users", "CHECKPOINT"} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// start runs a child process with its output in a log file, not a pipe: a
// server that logs every request would fill a pipe nobody drains.
func start(dir, name, bin string, args []string, env ...string) (*exec.Cmd, error) {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return cmd, nil
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
	}
}

func waitReady(u string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(u); err == nil {
			res.Body.Close()
			if res.StatusCode < 500 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer", u)
}

func randomHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func numCPU() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscan(string(bytes.TrimSpace(out)), &n)
	return n
}

type exportResult struct {
	rows               int
	elapsed            time.Duration
	rssBefore, peakRSS int64 // bytes
}

func (e exportResult) rowsPerSec() float64 { return float64(e.rows) / e.elapsed.Seconds() }

// medianExport picks the download with the median rate, reporting the
// highest peak RSS of all.
func medianExport(es []exportResult) exportResult {
	s := slices.Clone(es)
	slices.SortFunc(s, func(a, b exportResult) int { return cmp.Compare(a.rowsPerSec(), b.rowsPerSec()) })
	m := s[len(s)/2]
	for _, e := range es {
		m.peakRSS = max(m.peakRSS, e.peakRSS)
	}
	return m
}

// export downloads every user as NDJSON, counting lines, and reads the
// server's peak RSS over the download: the kernel's high-water mark, reset
// to the current RSS just before (clear_refs 5).
func export(addr, key string, pid int) (exportResult, error) {
	status := fmt.Sprintf("/proc/%d/status", pid)
	before, err := procStatus(status, "VmRSS")
	if err != nil {
		return exportResult{}, err
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return exportResult{}, fmt.Errorf("reset the peak RSS: %w", err)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/users/export?format=ndjson", nil)
	if err != nil {
		return exportResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return exportResult{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		return exportResult{}, fmt.Errorf("export: %s: %s", res.Status, body)
	}
	var lines lineCounter
	if _, err := io.Copy(&lines, res.Body); err != nil {
		return exportResult{}, fmt.Errorf("export: %w", err)
	}
	elapsed := time.Since(start)
	peak, err := procStatus(status, "VmHWM")
	if err != nil {
		return exportResult{}, err
	}
	if int(lines) != users {
		return exportResult{}, fmt.Errorf("export: %d rows, want %d", lines, users)
	}
	return exportResult{rows: int(lines), elapsed: elapsed, rssBefore: before, peakRSS: peak}, nil
}

type lineCounter int

func (n *lineCounter) Write(p []byte) (int, error) {
	*n += lineCounter(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// procStatus reads one "Name:   123 kB" line of /proc/<pid>/status, in bytes.
func procStatus(path, field string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("%s %s: %w", path, field, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%s has no %s", path, field)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
