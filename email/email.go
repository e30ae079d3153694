// Package email decides when two email addresses are the same address.
package email

import (
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// fold is safe for concurrent use: a Caser is not, so one is made per call.
func fold(s string) string {
	// Full-width letters become their ASCII forms, then NFC composes what
	// an NFD input split, then case folding (which may decompose, hence
	// NFC again) makes every case form one.
	return norm.NFC.String(cases.Fold().String(norm.NFC.String(width.Fold.String(s))))
}

// Key is the form of addr under which it is unique: two addresses with the
// same key are one address. The local part is compared after width folding
// (full-width "ａｄａ" is "ada"), NFC (composed "é" is decomposed "é") and
// Unicode case folding ("ADA", "Ada" and "ada"; "STRASSE" and "straße"). The
// domain is compared by its IDNA (UTS #46) ASCII form, as DNS sees it, so
// "bücher.example", "BÜCHER.example" and "xn--bcher-kva.example" are one;
// a domain IDNA refuses is folded like the local part.
//
// Strictly a local part may be case-sensitive (RFC 5321), but no mail system
// in use treats "Ada" and "ada" as two mailboxes, and accounts that differ
// only that way are a spoofing tool.
func Key(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return fold(addr)
	}
	local, domain := fold(addr[:at]), addr[at+1:]
	// ToASCII rather than ToUnicode: the key is never shown, and the ASCII
	// form is the one mail routing uses, with nothing left to normalise.
	if ascii, err := idna.Lookup.ToASCII(domain); err == nil {
		return local + "@" + ascii
	}
	return local + "@" + fold(domain)
}
