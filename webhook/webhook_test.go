package webhook_test

import (
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"userapi/webhook"
)

func signed(secret string, ts time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhook.HeaderSignature, webhook.Sign(secret, ts, body))
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"e1","type":"user.created"}`)
	const secret = "whsec_0123456789abcdef"
	rotated := signed(secret, now, body)
	rotated.Set(webhook.HeaderSignature, webhook.Sign("old-secret-0123456", now, body)+", "+rotated.Get(webhook.HeaderSignature))

	tests := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		want   error
	}{
		{"OK", secret, signed(secret, now, body), body, nil},
		{"OKWithTwoSignatures", secret, rotated, body, nil},
		{"ErrBadSignatureBodyChanged", secret, signed(secret, now, body), []byte(`{"id":"e2"}`), webhook.ErrBadSignature},
		{"ErrBadSignatureOtherSecret", "whsec_another_secret_", signed(secret, now, body), body, webhook.ErrBadSignature},
		{"ErrTooOld", secret, signed(secret, now.Add(-10*time.Minute), body), body, webhook.ErrTooOld},
		{"ErrNoSignature", secret, http.Header{}, body, webhook.ErrNoSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := webhook.Verify(tt.secret, tt.header, tt.body, now, 0); !errors.Is(got, tt.want) {
				t.Errorf("Verify() = %v, want %v", got, tt.want)
			}
		})
	}
}

// The signature is the documented HMAC, so receivers in any language agree.
func TestSign_KnownAnswer(t *testing.T) {
	t.Parallel()
	// printf '1800000000.{}' | openssl dgst -sha256 -hmac secret-0123456789
	const want = "v1=e494b60c2be0d95c0748910cdcf2248b602e798043ac2abd301cf6487471864c"
	got := webhook.Sign("secret-0123456789", time.Unix(1_800_000_000, 0), []byte("{}"))
	if got != want {
		t.Errorf("Sign() = %s, want %s", got, want)
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://example.com/hook", false, true},
		{"http://203.0.113.9:8080/hook", false, true},
		{"ftp://example.com/hook", false, false},
		{"example.com/hook", false, false},
		{"https://user:pw@example.com/hook", false, false},
		{"http://127.0.0.1:9000/hook", false, false},
		{"http://127.0.0.1:9000/hook", true, true},
		{"http://10.1.2.3/hook", false, false},
		{"http://[::1]/hook", false, false},
		{"http://169.254.169.254/latest", false, false},
		{"http://localhost/hook", false, false},
		{"http://localhost/hook", true, true},
		// Every spelling a resolver or a browser reads as a private address.
		{"http://127.1/hook", false, false},
		{"http://127.0.1/hook", false, false},
		{"http://2130706433/hook", false, false},
		{"http://0x7f000001/hook", false, false},
		{"http://0X7F.1/hook", false, false},
		{"http://0177.0.0.1/hook", false, false},
		{"http://017700000001/hook", false, false},
		{"http://10.0x10203/hook", false, false},
		{"http://127.0.0.1./hook", false, false},
		{"http://１２７.0.0.1/hook", false, false},
		{"http://LOCALHOST/hook", false, false},
		{"http://localhost./hook", false, false},
		{"http://api.LocalHost/hook", false, false},
		{"http://[::127.0.0.1]/hook", false, false},
		{"http://[::ffff:127.0.0.1]/hook", false, false},
		{"http://[2002:7f00:1::]/hook", false, false},
		{"http://[64:ff9b::10.0.0.1]/hook", false, false},
		{"http://[fe80::1%25eth0]/hook", false, false},
		{"http://2130706433/hook", true, true},
		// Numbers that are no address at all.
		{"http://1.2.3.256/hook", false, false},
		{"http://4294967296/hook", false, false},
		{"http://1.2.3.4.5/hook", false, false},
		{"http://08.1.2.3/hook", false, false},
		// Public addresses in the same forms, and names that merely contain
		// numbers, pass.
		{"http://0x5db8d822/hook", false, true},
		{"http://[2002:5db8:d822::1]/hook", false, true},
		{"http://[64:ff9b::93.184.216.34]/hook", false, true},
		{"https://1.2.3.example/hook", false, true},
		{"https://example.123abc/hook", false, true},
		{"https://localhost.example.com/hook", false, true},
	}
	for _, tt := range tests {
		err := webhook.CheckURL(tt.url, tt.allowPrivate)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q, allowPrivate=%v) = %v, want ok=%v", tt.url, tt.allowPrivate, err, tt.ok)
		}
	}
}

func TestIsPublic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1::1", true},
		{"127.0.0.1", false},
		{"10.0.0.1", false},
		{"172.16.5.4", false},
		{"192.168.1.1", false},
		{"100.64.0.1", false},
		{"169.254.169.254", false},
		{"0.0.0.0", false},
		{"::1", false},
		{"fd00::1", false},
		{"fe80::1", false},
		{"::ffff:10.0.0.1", false},
		{"64:ff9b::a00:1", false},
		{"64:ff9b::5db8:d822", true},
		{"64:ff9b:1::5db8:d822", false},
		{"2002:7f00:1::", false},
		{"2002:a00:1::1", false},
		{"2002:5db8:d822::1", true},
		{"::127.0.0.1", false},
		{"::", false},
	}
	for _, tt := range tests {
		if got := webhook.IsPublic(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("IsPublic(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestPublicOnly(t *testing.T) {
	t.Parallel()
	if err := webhook.PublicOnly("tcp", "127.0.0.1:80", nil); !errors.Is(err, webhook.ErrPrivateAddress) {
		t.Errorf("PublicOnly(127.0.0.1:80) = %v, want ErrPrivateAddress", err)
	}
	if err := webhook.PublicOnly("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("PublicOnly(93.184.216.34:443) = %v, want nil", err)
	}
}

// Names the hosts file maps to a private address are refused; those it maps
// to a public one, and names it does not hold, are left to delivery.
// Not parallel: it replaces the hosts file for the package.
func TestCheckURL_HostsFile(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	content := "# comment\n10.1.2.3 db.internal db # the database\n93.184.216.34\tpublic.example\n::1 ip6-loopback\n"
	if err := os.WriteFile(hosts, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	webhook.SetHostsFile(t, hosts)
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://db.internal/hook", false},
		{"http://DB/hook", false},
		{"http://db./hook", false},
		{"http://ip6-loopback/hook", false},
		{"http://public.example/hook", true},
		{"http://elsewhere.example/hook", true},
	}
	for _, tt := range tests {
		if err := webhook.CheckURL(tt.url, false); (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}
