package schema

import (
	"errors"
	"strings"
	"testing"
)

// TestNormalizeOrigin lists spellings of origins with the one canonical
// form they must give, or the reason they are refused (a substring of
// the error). It includes every spelling of issue 11.
func TestNormalizeOrigin(t *testing.T) {
	for _, tc := range []struct{ in, want, refused string }{
		// One spelling per origin.
		{in: "https://issuer.example", want: "https://issuer.example"},
		{in: "https://issuer.example/", want: "https://issuer.example"},
		{in: "HTTPS://ISSUER.Example", want: "https://issuer.example"},
		{in: "https://issuer.example:443", want: "https://issuer.example"},
		{in: "https://issuer.example:8443", want: "https://issuer.example:8443"},
		{in: "https://issuer.example:65535", want: "https://issuer.example:65535"},
		{in: "https://issuer.example:1", want: "https://issuer.example:1"},
		{in: "https://google.com", want: "https://google.com"},
		{in: "https://bücher.example", want: "https://xn--bcher-kva.example"},
		{in: "https://xn--bcher-kva.example", want: "https://xn--bcher-kva.example"},
		{in: "https://XN--BCHER-KVA.example", want: "https://xn--bcher-kva.example"},
		{in: "https://BÜCHER.example", want: "https://xn--bcher-kva.example"},
		{in: "https://ｉｓｓｕｅｒ.example", want: "https://issuer.example"},   // full-width letters map to ASCII
		{in: "https://faß.de", want: "https://xn--fa-hia.de"},            // non-transitional: ß stays
		{in: "https://例え.jp", want: "https://xn--r8jz45g.jp"},            // Han + Hiragana
		{in: "https://пример.рф", want: "https://xn--e1afmkfd.xn--p1ai"}, // Cyrillic throughout
		{in: "https://a-b.issuer.example", want: "https://a-b.issuer.example"},
		{in: "https://issuer.co.uk", want: "https://issuer.co.uk"},
		{in: "https://sub.issuer.github.io", want: "https://sub.issuer.github.io"},

		// Ports.
		{in: "https://example.com:0443", refused: "leading zero"},
		{in: "https://example.com:00", refused: "leading zero"},
		{in: "https://example.com:0", refused: "leading zero (or is 0)"},
		{in: "https://example.com:99999", refused: "out of range"},
		{in: "https://example.com:65536", refused: "out of range"},
		{in: "https://example.com:", refused: "empty port"},
		{in: "https://example.com:+443", refused: "invalid port"},

		// Confusables and invisible characters.
		{in: "https://gооgle.com", refused: "mixes scripts (Latin, Cyrillic)"},
		{in: "https://xn--ggle-55da.com", refused: "mixes scripts (Latin, Cyrillic)"},
		{in: "https://аррӏе.com", refused: "wholly in Cyrillic letters that look Latin"},
		{in: "https://gοοgle.com", refused: "mixes scripts (Latin, Greek)"},
		{in: "https://goo\u200bgle.com", refused: "U+200B (a format character"},
		{in: "https://goo\u00adgle.com", refused: "U+00AD (a format character"},
		{in: "https://goo\u200dgle.com", refused: "U+200D (a format character"},
		{in: "https://goo\ufeffgle.com", refused: "U+FEFF (a format character"},
		{in: "https://goo\u202egle.com", refused: "U+202E (a format character"},
		{in: "https://goo\ufffdgle.com", refused: "U+FFFD (the replacement character)"},
		{in: "https://goo\x00gle.com", refused: "U+0000 (a control character)"},
		{in: "https://goo\u3000gle.com", refused: "U+3000 (a space)"},
		{in: "https://goo gle.com", refused: "U+0020 (a space)"},
		{in: "https://goo\xffgle.com", refused: "invalid UTF-8"},

		// Not a registrable name.
		{in: "https://*.example.com", refused: "wildcards"},
		{in: "https://issuer.*", refused: "wildcards"},
		{in: "https://127.0.0.1", refused: "IP address"},
		{in: "https://[::1]", refused: "IP address"},
		{in: "https://[::1]:8443", refused: "IP address"},
		{in: "https://localhost", refused: "single label"},
		{in: "https://com", refused: "single label"},
		{in: "https://co.uk", refused: "public suffix"},
		{in: "https://github.io", refused: "public suffix"},
		{in: "https://issuer.example.", refused: "end in a dot"},
		{in: "https://issuer..example", refused: "not a valid IDNA name"},
		{in: "https://-issuer.example", refused: "not a valid IDNA name"},
		{in: "https://iss_uer.example", refused: "not a valid IDNA name"},
		{in: "https://xn--zz.example", refused: "not a valid IDNA name"},
		{in: "https://" + strings.Repeat("a", 64) + ".example", refused: "not a valid IDNA name"},
		{in: "https://ex%41mple.com", refused: "percent-encoding"},
		{in: "https://1.2.3.999", refused: "numeric"},

		// Not an origin.
		{in: "http://issuer.example", refused: "scheme must be https"},
		{in: "issuer.example", refused: "scheme must be https"},
		{in: "https:issuer.example", refused: "no host"},
		{in: "https://", refused: "no host"},
		{in: "https://user@issuer.example", refused: "user information"},
		{in: "https://issuer.example/path", refused: "no path"},
		{in: "https://issuer.example?", refused: "no query"},
		{in: "https://issuer.example/?q=1", refused: "no query"},
		{in: "https://issuer.example#", refused: "no fragment"},
	} {
		got, err := NormalizeOrigin(tc.in)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("NormalizeOrigin(%q): %v, want %q", tc.in, err, tc.want)
		case tc.refused == "" && got != tc.want:
			t.Errorf("NormalizeOrigin(%q) = %q, want %q", tc.in, got, tc.want)
		case tc.refused != "" && err == nil:
			t.Errorf("NormalizeOrigin(%q) = %q, want refused (%s)", tc.in, got, tc.refused)
		case tc.refused != "" && !strings.Contains(err.Error(), tc.refused):
			t.Errorf("NormalizeOrigin(%q): %v, want a refusal saying %q", tc.in, err, tc.refused)
		case tc.refused != "" && !errors.Is(err, ErrOrigin):
			t.Errorf("NormalizeOrigin(%q): %v does not wrap ErrOrigin", tc.in, err)
		}
	}
}

// FuzzNormalizeOrigin checks that a canonical origin is a fixed point
// (normalising it again gives it back), is pure ASCII and lower case.
func FuzzNormalizeOrigin(f *testing.F) {
	for _, s := range []string{"https://bücher.example", "https://example.com:0443", "https://gооgle.com",
		"https://goo\u200bgle.com", "https://*.example.com", "https://xn--bcher-kva.example:8443/", "HTTPS://A.B.C"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeOrigin(s)
		if err != nil {
			if !errors.Is(err, ErrOrigin) {
				t.Fatalf("NormalizeOrigin(%q): %v does not wrap ErrOrigin", s, err)
			}
			return
		}
		again, err := NormalizeOrigin(n)
		if err != nil || again != n {
			t.Fatalf("NormalizeOrigin(%q) = %q, which normalises to %q, %v", s, n, again, err)
		}
		for _, r := range n {
			if r >= 0x80 || ('A' <= r && r <= 'Z') {
				t.Fatalf("NormalizeOrigin(%q) = %q is not lower-case ASCII", s, n)
			}
		}
	})
}
