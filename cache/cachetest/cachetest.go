// Package cachetest gives tests a real Redis: the machine's shared one with a
// key prefix of their own, or a private redis-server they may stop and start.
package cachetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"userapi/cache"
	"userapi/internal/freeport"
)

// URL is the shared Redis: REDIS_URL when set, else 127.0.0.1:6379.
func URL() string {
	if u := os.Getenv("REDIS_URL"); u != "" && u != "off" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Prefix returns a key prefix no other test uses, and deletes the test's
// keys when it ends. It fails the test when the shared Redis does not answer.
func Prefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "userapi-test:" + hex.EncodeToString(b) + ":"
	client := Client(t, URL())
	t.Cleanup(func() {
		ctx := context.Background()
		var cursor uint64
		for {
			res, err := client.Do(ctx, client.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return
			}
			if len(res.Elements) > 0 {
				client.Do(ctx, client.B().Del().Key(res.Elements...).Build())
			}
			if cursor = res.Cursor; cursor == 0 {
				return
			}
		}
	})
	return prefix
}

// Client is a plain client of the Redis at url, closed when the test ends.
func Client(t testing.TB, url string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("Redis at %s does not answer (run the tests with make test, which starts one): %v", url, err)
	}
	t.Cleanup(client.Close)
	return client
}

// NewClient is a cache.Client for opts, connected (it fails the test after
// 15 s otherwise) and closed when the test ends.
func NewClient(t testing.TB, opts cache.Options) *cache.Client {
	t.Helper()
	c, err := cache.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	deadline := time.Now().Add(15 * time.Second)
	for c.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("cache client for %s did not connect", opts.URL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// Server is a private redis-server, a child process of the test, that the
// test may stop and start again on the same port.
type Server struct {
	t    testing.TB
	Port int
	dir  string
	cmd  *exec.Cmd
}

// NewServer starts a private redis-server on a free port. It is killed when
// the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	return NewServerOnPort(t, freeport.Port(t))
}

// NewServerOnPort starts a private redis-server on the given port.
func NewServerOnPort(t testing.TB, port int) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (Debian: apt-get install redis-server)")
	}
	s := &Server{t: t, Port: port, dir: t.TempDir()}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's address as a Redis URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Start runs the server and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("private redis-server on port %d did not start", s.Port)
}

// Stop kills the server, dropping every key and connection.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Freeze stops the server with SIGSTOP: its connections stay open but
// nothing answers, as when Redis hangs. Thaw (SIGCONT) resumes it; the test's
// cleanup thaws it too.
func (s *Server) Freeze() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
	proc := s.cmd.Process
	s.t.Cleanup(func() { _ = proc.Signal(syscall.SIGCONT) })
}

// Thaw resumes a frozen server.
func (s *Server) Thaw() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatal(err)
	}
}
