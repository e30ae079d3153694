package main

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"userapi/store/storetest"
)

// A client that sends its headers a byte at a time, slower than
// USERAPI_READ_HEADER_TIMEOUT allows, is cut off (slowloris), however long it
// keeps trickling.
func TestAttack_SlowHeadersAreCutOff(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	base := instance(t, map[string]string{"REDIS_URL": "off", "DATABASE_URL": storetest.NewDB(t), "USERAPI_WORKERS": "0", "USERAPI_READ_HEADER_TIMEOUT": timeout.String()})
	conn := dial(t, base)

	start := time.Now()
	go func() {
		// One byte every 100 ms, for up to 10 s: far slower than any client.
		header := "GET /livez HTTP/1.1\r\nHost: userapi\r\nX-Slow: " + strings.Repeat("a", 100)
		for i := 0; i < len(header); i++ {
			if _, err := conn.Write([]byte{header[i]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	took := time.Since(start)
	t.Logf("slow client cut off after %s: %q, %v", took.Round(time.Millisecond), line, err)
	if took < timeout || took > timeout+3*time.Second {
		t.Errorf("slow client cut off after %s, want just after the %s header timeout", took, timeout)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("connection still open after 10 s of trickled headers")
	}
	// net/http answers a header timeout with 400 and closes.
	if line != "" && !strings.HasPrefix(line, "HTTP/1.1 400") && !strings.HasPrefix(line, "HTTP/1.1 408") {
		t.Errorf("slow client got %q, want the connection closed, or 400 or 408", line)
	}
}

// Headers beyond the limit get 431 (or the connection closes); headers well
// within it are served.
func TestAttack_OversizedHeaders(t *testing.T) {
	t.Parallel()
	base := instance(t, map[string]string{"REDIS_URL": "off", "DATABASE_URL": storetest.NewDB(t), "USERAPI_WORKERS": "0"})
	tests := []struct {
		name   string
		size   int
		accept func(statusLine string) bool
	}{
		{"within", maxHeaderBytes / 2, func(s string) bool { return strings.HasPrefix(s, "HTTP/1.1 200") }},
		{"over", maxHeaderBytes * 4, func(s string) bool { return s == "" || strings.HasPrefix(s, "HTTP/1.1 431") }},
	}
	for _, tt := range tests {
		conn := dial(t, base)
		go func() {
			// The server may close before reading it all; that is an answer too.
			_, _ = conn.Write([]byte("GET /livez HTTP/1.1\r\nHost: userapi\r\nX-Big: " + strings.Repeat("a", tt.size) + "\r\nConnection: close\r\n\r\n"))
		}()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%d-byte header: no answer in 10 s", tt.size)
			continue
		}
		t.Logf("%d-byte header: %q", tt.size, strings.TrimSpace(line))
		if !tt.accept(line) {
			t.Errorf("%s: %d-byte header = %q", tt.name, tt.size, strings.TrimSpace(line))
		}
	}
}

// dial opens a raw TCP connection to the server at base, closed when the
// test ends.
func dial(t *testing.T, base string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
