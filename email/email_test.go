package email_test

import (
	"testing"

	"userapi/email"
)

func TestKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"Case", "Ada@Example.COM", "ada@example.com", true},
		{"NFCAndNFD", "jos\u00e9@example.com", "jose\u0301@example.com", true},
		{"FullWidth", "\uff41\uff44\uff41@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "ada@example.com", true},
		{"CaseFolding", "STRASSE@example.com", "stra\u00dfe@example.com", true},
		{"GreekFinalSigma", "\u039f\u03a3@example.com", "\u03bf\u03c2@example.com", true},
		{"IDNDomain", "ada@B\u00dcCHER.example", "ada@xn--bcher-kva.example", true},
		{"IDNDomainNFD", "ada@bu\u0308cher.example", "ada@b\u00fccher.example", true},
		{"DomainIDNARefuses", "ada@under_score.EXAMPLE", "ada@under_score.example", true},
		{"OtherLetter", "ada@example.com", "adb@example.com", false},
		{"AccentMatters", "jos\u00e9@example.com", "jose@example.com", false},
		{"LocalPartNotIDNA", "b\u00fccher@example.com", "xn--bcher-kva@example.com", false},
		{"OtherDomain", "ada@example.com", "ada@example.org", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := email.Key(tt.a), email.Key(tt.b)
			if (ka == kb) != tt.same {
				t.Errorf("Key(%q) = %q, Key(%q) = %q; want same = %v", tt.a, ka, tt.b, kb, tt.same)
			}
		})
	}
}
