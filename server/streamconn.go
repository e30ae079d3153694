package server

import (
	"bytes"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// takeOver takes an HTTP/1 connection from net/http, for a stream to write
// its answer itself. It fails where that cannot be done (HTTP/2).
func takeOver(w http.ResponseWriter) (net.Conn, error) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	// The access log and the metrics read the answer's status here, and
	// nothing may write to it any more.
	if res, ok := w.(*echo.Response); ok {
		res.Status, res.Committed = http.StatusOK, true
	}
	return conn, nil
}

// watchClosed returns a channel closed once the client has closed conn, or
// it failed: what net/http's request context says until the connection is
// taken over. Anything the client sends meanwhile is not for the stream.
func watchClosed(conn net.Conn) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		var b [64]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				return
			}
		}
	}()
	return gone
}

// connSink writes a taken-over stream.
type connSink struct {
	conn      net.Conn
	keepAlive time.Duration
}

// send writes b within a deadline of its own: a client that stops reading
// must not hold the stream for ever.
func (c *connSink) send(b []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.keepAlive + 10*time.Second))
	_, err := c.conn.Write(b)
	return err
}

// appendHead is the head of a 200 answer with the headers h. Its body is
// delimited by the connection's close, which ends the stream.
func appendHead(b []byte, h http.Header) []byte {
	var head bytes.Buffer
	head.Write(append(b, "HTTP/1.1 200 OK\r\n"...))
	_ = h.Write(&head)
	head.WriteString("Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n")
	head.WriteString("Connection: close\r\n\r\n")
	return head.Bytes()
}
