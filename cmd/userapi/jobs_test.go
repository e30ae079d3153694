package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"userapi/internal/freeport"
	"userapi/store/storetest"
	"userapi/webhook"
)

// jobState polls GET /jobs/{id} until the job is in state want.
func waitJobState(t *testing.T, base string, id int64, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		r := call(t, "GET", fmt.Sprint(base, "/jobs/", id), "")
		var j struct{ State string }
		_ = json.Unmarshal([]byte(r.body), &j)
		if last = j.State; last == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("job %d is %q after %s, want %s", id, last, within, want)
}

func jobID(t *testing.T, r reply) int64 {
	t.Helper()
	var j struct{ ID int64 }
	if err := json.Unmarshal([]byte(r.body), &j); err != nil || r.status != http.StatusAccepted || j.ID == 0 {
		t.Fatalf("POST process = %d %s, want 202 and a job", r.status, r.body)
	}
	return j.ID
}

// An API-only instance queues jobs; `userapi worker` runs them.
func TestRun_WorkerRunsJobsForAPIOnlyInstance(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	api := instance(t, map[string]string{"DATABASE_URL": db, "REDIS_URL": "off", "USERAPI_WORKERS": "0", "USERAPI_PROCESS_DELAY": "10ms"})
	if r := call(t, "POST", api+"/users", `{"name":"Ada","email":"ada@example.com"}`); r.status != http.StatusCreated {
		t.Fatalf("POST /users = %d", r.status)
	}
	id := jobID(t, call(t, "POST", api+"/users/1/process", ""))
	time.Sleep(300 * time.Millisecond)
	waitJobState(t, api, id, "available", time.Second) // nobody works it yet

	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"worker"}, env(map[string]string{
			"DATABASE_URL": db, "USERAPI_DB_MIN_CONNS": "1", "USERAPI_DB_MAX_CONNS": "4", "USERAPI_PROCESS_DELAY": "10ms",
			"USERAPI_METRICS_ADDR": "off",
		}), &logs, &logs)
	}()
	waitJobState(t, api, id, "completed", 15*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run(worker) = %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"workers stopped"`) {
		t.Errorf("worker log lacks its graceful stop:\n%s", logs.String())
	}
}

// SIGTERM lets a running job finish instead of abandoning it.
func TestRun_ShutdownLetsRunningJobFinish(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	addr := freeport.Addr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, env(map[string]string{
			"USERAPI_ADDR": addr, "DATABASE_URL": db, "REDIS_URL": "off", "USERAPI_DB_MIN_CONNS": "1", "USERAPI_DB_MAX_CONNS": "4",
			"USERAPI_PROCESS_DELAY": "1s", "USERAPI_SHUTDOWN_TIMEOUT": "10s", "USERAPI_METRICS_ADDR": "off", "USERAPI_AUTH": "off",
		}), &logs, &logs)
	}()
	base := "http://" + addr
	waitReady(t, base+"/livez", done)
	call(t, "POST", base+"/users", `{"name":"Ada","email":"ada@example.com"}`)
	id := jobID(t, call(t, "POST", base+"/users/1/process", ""))
	waitJobState(t, base, id, "running", 5*time.Second)
	cancel() // what SIGTERM does
	if err := <-done; err != nil {
		t.Fatalf("run() = %v", err)
	}
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var state string
	if err := conn.QueryRow(context.Background(), "SELECT state FROM river_job WHERE id = $1", id).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != "completed" {
		t.Errorf("job running at shutdown is %s afterwards, want completed\n%s", state, logs.String())
	}
}

func TestRun_AdminUI(t *testing.T) {
	t.Parallel()
	db := storetest.NewDB(t)
	on := instance(t, map[string]string{"DATABASE_URL": db, "REDIS_URL": "off", "USERAPI_ADMIN_UI": "on"})
	off := instance(t, map[string]string{"DATABASE_URL": db, "REDIS_URL": "off"})
	if r := call(t, "GET", on+"/admin/jobs/", ""); r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /admin/jobs/ with the dashboard on = %d %s, want 200 HTML", r.status, r.header.Get("Content-Type"))
	}
	if r := call(t, "GET", on+"/admin/jobs/api/jobs?state=available", ""); r.status != http.StatusOK || !strings.Contains(r.body, `"data"`) {
		t.Errorf("GET /admin/jobs/api/jobs = %d %.200s, want 200 and a job list", r.status, r.body)
	}
	if r := call(t, "GET", off+"/admin/jobs/", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /admin/jobs/ with the dashboard off = %d, want 404", r.status)
	}
}

// With API keys on, the dashboard asks the browser for an admin key as the
// Basic password, and refuses any other.
func TestRun_AdminUIWithKeys(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": "off", "USERAPI_ADMIN_UI": "on", "USERAPI_AUTH": "on",
		"USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2"}
	admin := newKey(t, vars, "--name", "ops", "--scopes", "admin")
	reader := newKey(t, vars, "--name", "reader", "--scopes", "users:read,jobs:read")
	base := instance(t, vars)
	basic := func(password string) []string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth("ops", password)
		return []string{"Authorization", req.Header.Get("Authorization")}
	}
	if r := call(t, "GET", base+"/admin/jobs/", ""); r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("dashboard without a key = %d %q, want 401 with a Basic challenge", r.status, r.header.Get("WWW-Authenticate"))
	}
	if r := call(t, "GET", base+"/admin/jobs/api/jobs?state=available", "", basic(reader)...); r.status != http.StatusForbidden {
		t.Errorf("dashboard API with a non-admin key = %d, want 403", r.status)
	}
	if r := call(t, "GET", base+"/admin/jobs/api/jobs?state=available", "", basic(forge(admin))...); r.status != http.StatusUnauthorized {
		t.Errorf("dashboard API with a forged key = %d, want 401", r.status)
	}
	if r := call(t, "GET", base+"/admin/jobs/api/jobs?state=available", "", basic(admin)...); r.status != http.StatusOK || !strings.Contains(r.body, `"data"`) {
		t.Errorf("dashboard API with the admin key = %d %.200s, want 200 and a job list", r.status, r.body)
	}
}

// child is userapi running as its own process, logging to a file.
type child struct {
	cmd *exec.Cmd
	log string
}

func startChild(t *testing.T, bin string, vars map[string]string) (*child, string) {
	t.Helper()
	addr := freeport.Addr(t)
	logPath := filepath.Join(t.TempDir(), "userapi.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	// Parallel children must not all take the default metrics port.
	cmd.Env = append(os.Environ(), "USERAPI_ADDR="+addr, "USERAPI_METRICS_ADDR=off", "USERAPI_AUTH=off")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = out, out // a file: an undrained pipe would wedge the server
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	c := &child{cmd: cmd, log: logPath}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("log of %s:\n%s", addr, b)
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(base + "/livez"); err == nil {
			res.Body.Close()
			return c, base
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("userapi at %s never answered", addr)
	return nil, ""
}

// Killed with SIGKILL in the middle of its work and started again, the
// service completes every job and delivers every event at least once.
func TestCrash_JobsAndEventsSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "userapi")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	secret := webhook.NewSecret()
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	events := map[string]string{} // event id → "type user-id"
	var bad []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(150 * time.Millisecond) // keep deliveries in flight
		var ev struct {
			Type string
			Data struct{ ID int64 }
		}
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		defer mu.Unlock()
		if err := verifier.Verify(body, r.Header); err != nil {
			bad = append(bad, err.Error())
		}
		// A receiver deduplicates by webhook-id: the event's id.
		events[r.Header.Get("webhook-id")] = fmt.Sprint(ev.Type, " ", ev.Data.ID)
	}))
	defer recv.Close()

	vars := map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": "off",
		"USERAPI_DB_MIN_CONNS": "1", "USERAPI_DB_MAX_CONNS": "6",
		"USERAPI_RATE_LIMIT": "off", "USERAPI_RATE_LIMIT_WRITES": "off",
		"USERAPI_WORKERS": "2", "USERAPI_PROCESS_DELAY": "1s",
		"USERAPI_WEBHOOK_CONCURRENCY": "1", "USERAPI_WEBHOOK_ALLOW_PRIVATE": "true",
		"USERAPI_JOB_RETRY_BACKOFF": "100ms", "USERAPI_JOB_RESCUE_AFTER": "2s",
	}
	first, base := startChild(t, bin, vars)
	if r := call(t, "POST", base+"/webhooks", `{"url":"`+recv.URL+`","events":["user.created","user.updated"],"secret":"`+secret+`"}`); r.status != http.StatusCreated {
		t.Fatalf("POST /webhooks = %d %s", r.status, r.body)
	}
	const users = 6
	var jobIDs []int64
	want := map[string]bool{}
	for i := 1; i <= users; i++ {
		if r := call(t, "POST", base+"/users", fmt.Sprintf(`{"name":"User %d","email":"u%d@example.com"}`, i, i)); r.status != http.StatusCreated {
			t.Fatalf("POST /users = %d %s", r.status, r.body)
		}
		jobIDs = append(jobIDs, jobID(t, call(t, "POST", fmt.Sprint(base, "/users/", i, "/process"), "")))
		if r := call(t, "PATCH", fmt.Sprint(base, "/users/", i), `{"name":"Renamed"}`); r.status != http.StatusOK {
			t.Fatalf("PATCH = %d %s", r.status, r.body)
		}
		want[fmt.Sprint("user.created ", i)], want[fmt.Sprint("user.updated ", i)] = true, true
	}
	// Kill it while the first profile job runs: it can only complete now if
	// the restarted service rescues it.
	waitJobState(t, base, jobIDs[0], "running", 5*time.Second)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()
	mu.Lock()
	before := len(events)
	mu.Unlock()

	_, base = startChild(t, bin, vars)
	// The dead process's lease on leadership runs out (15 s), then the new
	// leader rescues the jobs it left running.
	restarted := time.Now()
	for _, id := range jobIDs {
		waitJobState(t, base, id, "completed", 90*time.Second)
	}
	t.Logf("every job completed %s after the restart", time.Since(restarted).Round(100*time.Millisecond))
	deadline := time.Now().Add(60 * time.Second)
	var missing []string
	for {
		mu.Lock()
		got := map[string]bool{}
		for _, e := range events {
			got[e] = true
		}
		n := len(events)
		mu.Unlock()
		missing = missing[:0]
		for e := range want {
			if !got[e] {
				missing = append(missing, e)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			t.Logf("events received before the kill: %d of %d; distinct event ids in the end: %d, %s after the restart", before, len(want), n, time.Since(restarted).Round(100*time.Millisecond))
			if n != len(want) {
				t.Errorf("receiver saw %d distinct event ids, want %d (one per change)", n, len(want))
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("events never delivered: %v", missing)
	}
	if before >= len(want) {
		t.Errorf("every event was delivered before the kill, so the test proved nothing about recovery")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("deliveries with bad signatures: %v", bad)
	}
}
