package storetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/internal/freeport"
	"userapi/store"
)

// Cluster is a PostgreSQL server of a test's own, on a spare port, that the
// test may stop and start at will. The machine's shared server is never
// touched: other tests use it at the same time.
type Cluster struct {
	t       testing.TB
	dataDir string
	logFile string
	port    int
	// Settings are extra -c name=value options given at each Start.
	Settings []string
}

// NewCluster initialises and starts a cluster in a temporary directory. When
// the test ends the cluster is stopped and its files removed. PostgreSQL
// refuses to run as root, so when the test runs as root the cluster runs as
// the postgres user. It fails the test when initdb or pg_ctl is missing.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	c := newCluster(t)
	if out, err := c.command("initdb", "-D", c.dataDir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("storetest: initdb: %v\n%s", err, out)
	}
	c.Start()
	return c
}

// NewReplica makes a streaming replica of c (pg_basebackup -R) on a port
// of its own and starts it, replaying each commit applyDelay after the
// primary made it (recovery_min_apply_delay). Stop and Start it at will;
// Settings may change in between.
func (c *Cluster) NewReplica(t testing.TB, applyDelay time.Duration) *Cluster {
	t.Helper()
	r := newCluster(t)
	if out, err := r.command("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres",
		"-D", r.dataDir, "-R", "-X", "stream", "--no-sync", "-c", "fast").CombinedOutput(); err != nil {
		t.Fatalf("storetest: pg_basebackup: %v\n%s", err, out)
	}
	r.Settings = []string{"hot_standby=on", fmt.Sprintf("recovery_min_apply_delay=%dms", applyDelay.Milliseconds())}
	r.Start()
	return r
}

func newCluster(t testing.TB) *Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "userapi-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, dataDir: filepath.Join(dir, "data"), logFile: filepath.Join(dir, "postgres.log"), port: freeport.Port(t)}
	t.Cleanup(func() {
		// Immediate: nothing in a throwaway cluster needs a checkpoint.
		_ = c.pgCtl("stop", "-m", "immediate", "-w", "-t", "30")
		if t.Failed() {
			if b, err := os.ReadFile(c.logFile); err == nil {
				t.Logf("log of the cluster on port %d:\n%s", c.port, b)
			}
		}
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "-R", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("storetest: chown %s to postgres: %v\n%s", dir, err, out)
		}
	}
	return c
}

// URL is the address of database on this cluster.
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, database)
}

// Start starts the stopped cluster and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	// Few connections, no fsync: the cluster lives for one test, and a
	// restart (not a crash of the machine) is what the tests exercise.
	opts := "-c listen_addresses=127.0.0.1 -c port=" + strconv.Itoa(c.port) +
		" -c unix_socket_directories='' -c max_connections=30 -c fsync=off -c shared_buffers=16MB"
	for _, setting := range c.Settings {
		opts += " -c " + setting
	}
	if err := c.pgCtl("start", "-w", "-t", "60", "-l", c.logFile, "-o", opts); err != nil {
		c.t.Fatalf("storetest: start cluster on port %d: %v", c.port, err)
	}
}

// Stop stops the cluster with the given pg_ctl mode (smart, fast or
// immediate) and waits until it is down.
func (c *Cluster) Stop(mode string) {
	c.t.Helper()
	if err := c.pgCtl("stop", "-m", mode, "-w", "-t", "60"); err != nil {
		c.t.Fatalf("storetest: stop cluster on port %d: %v", c.port, err)
	}
}

func (c *Cluster) pgCtl(args ...string) error {
	out, err := c.command("pg_ctl", append([]string{"-D", c.dataDir}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %w\n%s", args, err, out)
	}
	return nil
}

// command runs a PostgreSQL program, as the postgres user when we are root.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	bin := pgBinary(name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

// pgBinary finds a PostgreSQL program on PATH or in the Debian layout.
func pgBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1]
	}
	return name // exec reports it missing, with the name
}

// QuietDB returns the URL of a migrated database on a cluster of the
// test's own, stopped when the test ends. Readers of the event log see an
// event once every transaction on the whole server that began before it
// has ended (see store.Events.After): on the shared server, other tests'
// long transactions would hold back a test of the log for as long as they
// run.
func QuietDB(t testing.TB) string {
	t.Helper()
	c := NewCluster(t)
	url := c.URL("postgres")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatalf("storetest: migrate the quiet cluster: %v", err)
	}
	return url
}
