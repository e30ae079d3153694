package webhook_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"userapi/webhook"
)

// signedHeader is what a delivery of body signed with secrets carries.
func signedHeader(t *testing.T, id string, ts time.Time, body []byte, secrets ...string) http.Header {
	t.Helper()
	sig, err := webhook.Sign(id, ts, body, secrets...)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

// verifier is a receiver using the official Standard Webhooks library.
func verifier(t *testing.T, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("NewWebhook(%q) = %v", secret, err)
	}
	return wh
}

// What Sign makes, the official library verifies: with every secret that
// signed, and with no other; for this body and id only.
func TestSign_StandardLibraryVerifies(t *testing.T) {
	t.Parallel()
	now := time.Now()
	body := []byte(`{"id":"e1","type":"user.created"}`)
	oldSecret, newSecret, stranger := webhook.NewSecret(), webhook.NewSecret(), webhook.NewSecret()
	one := signedHeader(t, "e1", now, body, newSecret)
	both := signedHeader(t, "e1", now, body, newSecret, oldSecret)
	if n := len(strings.Fields(both.Get(webhook.HeaderSignature))); n != 2 {
		t.Fatalf("signature header with two secrets = %q, want two signatures", both.Get(webhook.HeaderSignature))
	}
	otherID := signedHeader(t, "e1", now, body, newSecret)
	otherID.Set(webhook.HeaderID, "e2")

	tests := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		ok     bool
	}{
		{"OK", newSecret, one, body, true},
		{"OKNewOfTwo", newSecret, both, body, true},
		{"OKOldOfTwo", oldSecret, both, body, true},
		{"ErrOldNotSigning", oldSecret, one, body, false},
		{"ErrOtherSecret", stranger, both, body, false},
		{"ErrBodyChanged", newSecret, one, []byte(`{"id":"e2"}`), false},
		{"ErrIDChanged", newSecret, otherID, body, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := verifier(t, tt.secret).Verify(tt.body, tt.header)
			if (err == nil) != tt.ok {
				t.Errorf("Verify() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// The signature is the specification's: its published example.
func TestSign_KnownAnswer(t *testing.T) {
	t.Parallel()
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	got, err := webhook.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`),
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil || got != want {
		t.Errorf("Sign() = %q, %v; want %q", got, err, want)
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, b := webhook.NewSecret(), webhook.NewSecret()
	if a == b {
		t.Errorf("NewSecret() twice = %q both times", a)
	}
	if err := webhook.CheckSecret(a); err != nil {
		t.Errorf("CheckSecret(NewSecret() = %q) = %v", a, err)
	}
	verifier(t, a)
}

func TestCheckSecret(t *testing.T) {
	t.Parallel()
	key := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		secret string
		ok     bool
	}{
		{"whsec_" + key(24), true},
		{"whsec_" + key(64), true},
		{"whsec_" + key(23), false},
		{"whsec_" + key(65), false},
		{key(32), false},                                    // no prefix
		{"whsec_" + strings.TrimRight(key(32), "="), false}, // no padding
		{"whsec_" + base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf}), false},
		{"whsec_test_secret_0123456789", false},
	}
	for _, tt := range tests {
		if err := webhook.CheckSecret(tt.secret); (err == nil) != tt.ok {
			t.Errorf("CheckSecret(%q) = %v, want ok=%v", tt.secret, err, tt.ok)
		}
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
