package storetest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"userapi/internal/childproc"
	"userapi/internal/freeport"
)

// PgBouncer is a pgbouncer child process of the test, in transaction
// pooling mode, in front of the PostgreSQL the tests use.
type PgBouncer struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

// NewPgBouncer starts pgbouncer on a free port with a configuration of its
// own: transaction pooling, every database of the tests' server, at most
// poolSize server connections per database. It is stopped when the test
// ends. It fails the test when pgbouncer is missing (Debian: apt-get
// install pgbouncer; make test installs it).
func NewPgBouncer(t testing.TB, poolSize int) *PgBouncer {
	t.Helper()
	p := startPgBouncer(t, poolSize)
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(p.dir, "pgbouncer.log")); err == nil {
				t.Logf("pgbouncer log:\n%s", b)
			}
		}
		p.stop()
	})
	return p
}

// USERAPI_TEST_PGBOUNCER=on makes every Pool go through one pgbouncer of
// the test process, started by the first test that opens a pool, so that a
// package's whole suite runs behind a transaction-mode pooler.
var shared struct {
	once    sync.Once
	bouncer *PgBouncer
}

// ThroughPgBouncer reports whether pools go through pgbouncer.
func ThroughPgBouncer() bool { return os.Getenv("USERAPI_TEST_PGBOUNCER") == "on" }

func sharedPgBouncer(t testing.TB) *PgBouncer {
	t.Helper()
	shared.once.Do(func() { shared.bouncer = startPgBouncer(t, 5) })
	if shared.bouncer == nil {
		t.Fatal("storetest: the shared pgbouncer failed to start in an earlier test")
	}
	return shared.bouncer
}

// onSharedServer reports whether dbURL is a database of the tests' shared
// server, the one the shared pgbouncer fronts; a test's own cluster
// (QuietDB, NewCluster) is reached directly.
func onSharedServer(dbURL string) bool {
	u, err1 := url.Parse(dbURL)
	base, err2 := url.Parse(BaseURL())
	return err1 == nil && err2 == nil && hostPort(u) == hostPort(base)
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func stopSharedPgBouncer() {
	if shared.bouncer != nil {
		shared.bouncer.stop()
	}
}

func startPgBouncer(t testing.TB, poolSize int) *PgBouncer {
	t.Helper()
	bin := pgbouncerBinary()
	if bin == "" {
		t.Fatal("pgbouncer is not installed (Debian: apt-get install pgbouncer; make test installs it)")
	}
	server, err := url.Parse(BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	user := server.User.Username()
	if user == "" {
		user = "postgres"
	}
	host, port := server.Hostname(), server.Port()
	if port == "" {
		port = "5432"
	}
	// Not t.TempDir: its parent is private to root, and pgbouncer runs as
	// postgres when the test runs as root.
	dir, err := os.MkdirTemp("", "userapi-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	p := &PgBouncer{port: freeport.Port(t), dir: dir}
	config := fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 500
server_reset_query =
logfile = %s
pidfile = %s
`, host, port, p.port, filepath.Join(dir, "users.txt"), poolSize, filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	files := map[string]string{"pgbouncer.ini": config, "users.txt": fmt.Sprintf("%q \"\"\n", user)}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 { // pgbouncer refuses to run as root
		if out, err := exec.Command("chown", "-R", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("storetest: chown %s to postgres: %v\n%s", dir, err, out)
		}
		args = append([]string{"-u", "postgres"}, args...)
	}
	p.cmd = exec.Command(bin, args...)
	childproc.DieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", p.addr(), 100*time.Millisecond); err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			p.stop()
			t.Fatalf("storetest: pgbouncer on port %d did not start", p.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills pgbouncer and removes its files.
func (p *PgBouncer) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	_ = os.RemoveAll(p.dir)
}

func (p *PgBouncer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// Via returns dbURL (a database of the tests' server) reached through
// pgbouncer.
func (p *PgBouncer) Via(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		panic(fmt.Sprintf("storetest: %q is not a URL: %v", dbURL, err))
	}
	u.Host = p.addr()
	return u.String()
}

// pgbouncerBinary finds pgbouncer on PATH or where Debian puts it (not on
// a non-root PATH); "" when it is not installed.
func pgbouncerBinary() string {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer"
	}
	return ""
}
