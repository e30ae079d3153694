// Package cachetest gives tests a real Redis: the machine's shared one with a
// key prefix of their own, or a private redis-server they may stop and start.
package cachetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"userapi/cache"
	"userapi/internal/childproc"
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

// NewClient is a cache.Client for opts, connected and done with its
// start-up replay (it fails the test after 15 s otherwise), and closed when
// the test ends.
func NewClient(t testing.TB, opts cache.Options) *cache.Client {
	t.Helper()
	c, err := cache.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	deadline := time.Now().Add(15 * time.Second)
	for !c.Available() {
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
	t       testing.TB
	Port    int
	dir     string
	persist bool
	extra   []string // more redis-server arguments
	cmd     *exec.Cmd
}

// NewServer starts a private redis-server on a free port. It is killed when
// the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	return NewServerOnPort(t, freeport.Port(t))
}

// NewPersistentServer starts a private redis-server that writes every
// change to an append-only file before answering, so that after Stop, Start
// brings back every key (with its expiry time) as it was.
func NewPersistentServer(t testing.TB) *Server {
	t.Helper()
	return newServer(t, freeport.Port(t), true)
}

// NewServerOnPort starts a private redis-server on the given port.
func NewServerOnPort(t testing.TB, port int) *Server {
	t.Helper()
	return newServer(t, port, false)
}

func newServer(t testing.TB, port int, persist bool) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (Debian: apt-get install redis-server)")
	}
	s := &Server{t: t, Port: port, dir: t.TempDir(), persist: persist}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's address as a Redis URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Start runs the server and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	persistence := []string{"--save", "", "--appendonly", "no"}
	if s.persist {
		persistence = []string{"--save", "", "--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log")}, persistence...)
	args = append(args, s.extra...)
	s.cmd = exec.Command("redis-server", args...)
	childproc.DieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	// Answering PING means any persisted data is loaded: until then Redis
	// answers LOADING.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(s.Addr()) {
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

// ping reports whether the Redis at addr answers PING with PONG.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := io.ReadFull(c, buf)
	return string(buf[:n]) == "+PONG\r\n"
}

// Proxy forwards TCP connections to a server, so that a test can cut the
// clients behind it off from the server, and only them.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	paused  bool
	held    int        // bytes from clients waiting for Resume
	resumed *sync.Cond // on mu
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// NewProxy listens on a free port and forwards each connection to target
// (host:port). It is closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.resumed = sync.NewCond(&p.mu)
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// URL is the proxy's address as a Redis URL.
func (p *Proxy) URL() string { return "redis://" + p.ln.Addr().String() + "/0" }

// Cut closes every forwarded connection and refuses new ones (accepting and
// closing them) until Heal: a partition between the proxy's clients and the
// server, which stays up for everyone else.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.resume()
	for c := range p.conns {
		c.Close()
	}
}

// Heal forwards new connections again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Pause holds what the clients send, without closing anything, until
// Resume: a server that is up but does not answer yet.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
}

// Held is how many bytes the clients sent since Pause.
func (p *Proxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Resume forwards what Pause held, and all that follows.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resume()
}

func (p *Proxy) resume() {
	p.paused, p.held = false, 0
	p.resumed.Broadcast()
}

// hold waits while the proxy is paused, counting n bytes as held.
func (p *Proxy) hold(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.held += n
	}
	for p.paused {
		p.resumed.Wait()
	}
}

func (p *Proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.forward(client) })
	}
}

func (p *Proxy) forward(client net.Conn) {
	defer client.Close()
	server, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(client, server) {
		return
	}
	defer p.untrack(client, server)
	done := make(chan struct{}, 2)
	closeBoth := func() {
		server.Close()
		client.Close()
		done <- struct{}{}
	}
	go func() { // from the client, through Pause
		defer closeBoth()
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				p.hold(n)
				if _, err := server.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer closeBoth()
		_, _ = io.Copy(client, server)
	}()
	<-done
	<-done
}

// track registers a forwarded pair, unless the proxy is cut.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
	}
}
