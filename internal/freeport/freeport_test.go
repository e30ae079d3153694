package freeport_test

import (
	"net"
	"testing"

	"userapi/internal/freeport"
)

// The address handed out can be listened on at once.
func TestAddr(t *testing.T) {
	t.Parallel()
	addr := freeport.Addr(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("Listen(%q) = %v, want a free address", addr, err)
	}
	ln.Close()
}

// fataler records the failure instead of stopping the test.
type fataler struct{ failed bool }

func (f *fataler) Fatal(...any) { f.failed = true }

func TestPort_NeverZero(t *testing.T) {
	t.Parallel()
	var f fataler
	if p := freeport.Port(&f); p <= 0 || p > 65535 || f.failed {
		t.Errorf("Port() = %d (failed %v), want a port from 1 to 65535", p, f.failed)
	}
}
