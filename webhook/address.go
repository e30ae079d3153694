package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/net/idna"
)

// ErrPrivateAddress means a delivery would go to an address that is not on
// the public internet (loopback, a private range, link-local, …).
var ErrPrivateAddress = errors.New("private address")

// notPublic are the ranges, beyond what netip classifies, that a webhook
// must not reach: shared address space (carrier-grade NAT), "this network",
// IETF protocol assignments, benchmarking, reserved, and local-use NAT64,
// whose embedded address has no fixed place.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// IPv6 ranges that carry an IPv4 address, which is where a packet to them
// ends up: 6to4 relays and NAT64 gateways forward to it.
var (
	sixToFour      = netip.MustParsePrefix("2002::/16")    // in bits 16–47
	nat64          = netip.MustParsePrefix("64:ff9b::/96") // in the last 32 bits
	ipv4Compatible = netip.MustParsePrefix("::/96")        // in the last 32 bits
)

// IsPublic reports whether addr is an ordinary public unicast address. An
// IPv6 address that embeds an IPv4 one (mapped, IPv4-compatible, 6to4,
// NAT64) is judged by the IPv4 address.
func IsPublic(addr netip.Addr) bool {
	addr = embedded(addr.Unmap())
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

// embedded is the IPv4 address an IPv6 transition address carries, or addr.
// (:: and ::1 are IPv4-compatible in form; they become 0.0.0.0 and 0.0.0.1,
// which are not public either.)
func embedded(addr netip.Addr) netip.Addr {
	b := addr.As16()
	switch {
	case !addr.Is6():
		return addr
	case sixToFour.Contains(addr):
		return netip.AddrFrom4([4]byte(b[2:6]))
	case nat64.Contains(addr), ipv4Compatible.Contains(addr):
		return netip.AddrFrom4([4]byte(b[12:16]))
	}
	return addr
}

// CheckURL says what is wrong with a subscription URL, or returns nil. It
// must be an absolute http or https URL without credentials. Unless
// allowPrivate, its host must not name this machine or a private network:
// an address must be public, in any form a resolver or a browser accepts
// (127.1, 2130706433, 0x7f000001, ::127.0.0.1, …), and a name must not be
// localhost or one the hosts file maps to a private address. Other names
// are checked when each delivery connects (see PublicOnly), since DNS
// answers change.
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
	host := normalHost(u.Hostname())
	addr, isAddr, err := hostAddress(host)
	switch {
	case err != nil:
		return err
	case isAddr && !IsPublic(addr):
		return fmt.Errorf("%w: %s is not a public address", ErrPrivateAddress, u.Hostname())
	case isAddr:
		return nil
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return fmt.Errorf("%w: %s is this machine", ErrPrivateAddress, u.Hostname())
	}
	for _, a := range hostsFileAddrs(host) {
		if !IsPublic(a) {
			return fmt.Errorf("%w: %s is a name of this machine's hosts file", ErrPrivateAddress, u.Hostname())
		}
	}
	return nil
}

// normalHost is host as a resolver sees it: IDNA-mapped (so full-width
// digits are digits), lower case, without the root's trailing dot.
func normalHost(host string) string {
	if a, err := idna.Lookup.ToASCII(host); err == nil {
		host = a
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// hostAddress parses host as an IP address if it is one. A host whose last
// label is a number is an IPv4 address to browsers (the WHATWG URL
// standard) and to inet_aton, which most resolvers use: a, a.b, a.b.c or
// a.b.c.d, each part decimal, octal (leading 0) or hex (0x). Such a host
// that is no valid address is an error rather than a name.
func hostAddress(host string) (addr netip.Addr, isAddr bool, err error) {
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr, true, nil
	}
	labels := strings.Split(host, ".")
	if !isNumber(labels[len(labels)-1]) {
		return netip.Addr{}, false, nil
	}
	addr, ok := parseIPv4(labels)
	if !ok {
		return netip.Addr{}, false, fmt.Errorf("%s ends in a number but is not an IPv4 address", host)
	}
	return addr, true, nil
}

// isNumber is the WHATWG "ends in a number" test for one label.
func isNumber(label string) bool {
	if hex, ok := strings.CutPrefix(label, "0x"); ok {
		_, err := strconv.ParseUint("0"+hex, 16, 64)
		return err == nil || errors.Is(err, strconv.ErrRange)
	}
	_, err := strconv.ParseUint(label, 10, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}

// parseIPv4 reads inet_aton's forms: every part but the last is one byte,
// and the last fills the bytes that remain.
func parseIPv4(parts []string) (netip.Addr, bool) {
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, ok := parsePart(p)
		last := i == len(parts)-1
		if !ok || (!last && n > 255) || (last && n >= 1<<(8*(5-len(parts)))) {
			return netip.Addr{}, false
		}
		if last {
			v = v<<(8*(5-len(parts))) | n
		} else {
			v = v<<8 | n
		}
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func parsePart(p string) (uint64, bool) {
	base := 10
	switch {
	case strings.HasPrefix(p, "0x"):
		p, base = "0"+p[2:], 16
	case len(p) > 1 && p[0] == '0':
		base = 8
	}
	n, err := strconv.ParseUint(p, base, 64)
	return n, err == nil
}

// hostsFile is the table of names the system resolves without DNS.
var hostsFile = "/etc/hosts"

// hostsFileAddrs are the addresses the hosts file gives name, if any.
func hostsFileAddrs(name string) []netip.Addr {
	data, err := os.ReadFile(hostsFile)
	if err != nil {
		return nil
	}
	var addrs []netip.Addr
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		addr, err := netip.ParseAddr(fields[0])
		if err != nil {
			continue
		}
		for _, n := range fields[1:] {
			if normalHost(n) == name {
				addrs = append(addrs, addr)
			}
		}
	}
	return addrs
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
