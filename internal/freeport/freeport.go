// Package freeport finds TCP ports that nothing listens on, for the tests
// and the load test that start servers of their own.
package freeport

import (
	"net"
	"strconv"
)

// Fataler stops the caller when no port can be had: a *testing.T in a test,
// a *log.Logger in a program.
type Fataler interface{ Fatal(args ...any) }

// Port returns a port on 127.0.0.1 that nothing listens on right now. Another
// process could take it before the caller does; the caller's start then
// fails loudly, not silently.
func Port(f Fataler) int {
	if h, ok := f.(interface{ Helper() }); ok {
		h.Helper()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Addr returns Port as a host:port address.
func Addr(f Fataler) string {
	if h, ok := f.(interface{ Helper() }); ok {
		h.Helper()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(f)))
}
