package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrPrivateAddress means a delivery would go to an address that is not on
// the public internet (loopback, a private range, link-local, …).
var ErrPrivateAddress = errors.New("private address")

// notPublic are the ranges, beyond what netip classifies, that a webhook
// must not reach: shared address space (carrier-grade NAT), "this network",
// IETF protocol assignments, benchmarking, and NAT64, which can wrap any of
// the others.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// IsPublic reports whether addr is an ordinary public unicast address.
func IsPublic(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsUnspecified() ||
		addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsMulticast() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// CheckURL says what is wrong with a subscription URL, or returns nil. It
// must be an absolute http or https URL without credentials. Unless
// allowPrivate, a host that is an address must be public; host names are
// checked when each delivery connects (see PublicOnly), since DNS answers
// change.
func CheckURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return errors.New("must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil && !IsPublic(addr) {
		return fmt.Errorf("%w: %s is not a public address", ErrPrivateAddress, host)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w: %s is this machine", ErrPrivateAddress, host)
	}
	return nil
}

// PublicOnly is a net.Dialer Control function that refuses to connect to an
// address that is not public. It runs after name resolution, on the address
// about to be dialled, so a host name that resolves (or is re-pointed) to a
// private address is refused too.
func PublicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	if !IsPublic(addr) {
		return fmt.Errorf("%w: %s", ErrPrivateAddress, addr)
	}
	return nil
}
