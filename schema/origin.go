package schema

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// ErrOrigin is wrapped by every error of NormalizeOrigin.
var ErrOrigin = errors.New("not a registrable HTTPS origin")

// originProfile maps a host to IDNA A-labels (UTS #46 non-transitional
// processing, IDNA2008 label rules, the Bidi rule, DNS lengths), as
// browsers do before they look a name up.
var originProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.ValidateLabels(true),
	idna.VerifyDNSLength(true), idna.StrictDomainName(true), idna.Transitional(false))

// NormalizeOrigin returns the one spelling of an issuer's HTTPS origin:
// scheme "https", the host in IDNA A-labels and lower case, no default
// port, no path, query, fragment or user information. Every spelling of
// the same origin (upper case, U-labels or A-labels, ":443", a trailing
// "/") gives the same result. It refuses, saying why, anything that
// cannot be a real registrable HTTPS origin:
//
//   - another scheme, user information, a path, query or fragment;
//   - an empty port, a port with a leading zero, port 0 or above 65535;
//   - an IP address, a single-label host, a public suffix itself
//     (com, github.io), a trailing dot, wildcards, percent-encoding;
//   - control, format (soft hyphen, zero-width and bidi controls) and
//     space characters, U+FFFD, invalid UTF-8 — IDNA mapping would drop
//     some of them silently, making one name look like another;
//   - labels that break IDNA2008 or the Bidi rule, or A-labels that do
//     not decode;
//   - labels that mix scripts (Latin with Cyrillic: "gооgle"), except the
//     combinations of UTS #39's highly restrictive level (Latin with
//     Han and Hiragana/Katakana, Bopomofo or Hangul), and labels written
//     wholly in Cyrillic or Greek letters that look Latin ("аррӏе").
//
// Errors wrap ErrOrigin.
func NormalizeOrigin(s string) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("issuer origin %q: %s: %w", s, fmt.Sprintf(format, args...), ErrOrigin)
	}
	if !utf8.ValidString(s) {
		return fail("invalid UTF-8")
	}
	for _, r := range s {
		if why := badRune(r); why != "" {
			return fail("contains %U (%s)", r, why)
		}
	}
	if strings.Contains(s, "%") {
		return fail("percent-encoding is not allowed in an origin")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fail("%v", errors.Unwrap(err))
	}
	switch {
	case !strings.EqualFold(u.Scheme, "https"):
		return fail("scheme must be https")
	case u.Opaque != "" || u.Host == "":
		return fail("no host")
	case u.User != nil:
		return fail("user information is not allowed")
	case u.Path != "" && u.Path != "/":
		return fail("an origin has no path")
	case u.RawQuery != "" || u.ForceQuery:
		return fail("an origin has no query")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fail("an origin has no fragment")
	}
	port, err := originPort(u.Host)
	if err != nil {
		return fail("%v", err)
	}
	host, err := normalizeHost(u.Hostname())
	if err != nil {
		return fail("%v", err)
	}
	if port != "" {
		return "https://" + host + ":" + port, nil
	}
	return "https://" + host, nil
}

// originPort returns the port of hostport ("" for none or 443), refusing
// what is not exactly a decimal port in 1..65535 without leading zeros.
func originPort(hostport string) (string, error) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.HasSuffix(hostport, "]") {
		return "", nil
	}
	p := hostport[i+1:]
	switch {
	case p == "":
		return "", errors.New("empty port")
	case strings.Trim(p, "0123456789") != "":
		return "", fmt.Errorf("port %q is not a decimal number", p)
	case p[0] == '0':
		return "", fmt.Errorf("port %q has a leading zero (or is 0)", p)
	}
	n, err := strconv.ParseUint(p, 10, 32)
	if err != nil || n > 65535 {
		return "", fmt.Errorf("port %s is out of range (1-65535)", p)
	}
	if n == 443 {
		return "", nil
	}
	return p, nil
}

// normalizeHost returns host in A-labels, lower case, or why it cannot
// name a registrable origin.
func normalizeHost(host string) (string, error) {
	if host == "" {
		return "", errors.New("no host")
	}
	if strings.ContainsAny(host, "*") {
		return "", errors.New("wildcards are not allowed")
	}
	if strings.HasPrefix(host, "[") || net.ParseIP(host) != nil || strings.Contains(host, ":") {
		return "", errors.New("an IP address is not a registrable origin")
	}
	if strings.HasSuffix(host, ".") {
		return "", errors.New("host must not end in a dot")
	}
	a, err := originProfile.ToASCII(host)
	if err != nil {
		return "", fmt.Errorf("host is not a valid IDNA name: %v", err)
	}
	uni, err := originProfile.ToUnicode(a)
	if err != nil {
		return "", fmt.Errorf("host is not a valid IDNA name: %v", err)
	}
	if again, err := originProfile.ToASCII(uni); err != nil || again != a {
		return "", fmt.Errorf("host %q does not round-trip through IDNA", a)
	}
	for _, label := range strings.Split(uni, ".") {
		if err := checkScripts(label); err != nil {
			return "", err
		}
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%q is a single label, not a registrable domain", a)
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "", fmt.Errorf("top-level label %q is numeric", tld)
	}
	if _, err := publicsuffix.EffectiveTLDPlusOne(a); err != nil {
		return "", fmt.Errorf("%q is a public suffix, not a registrable domain", a)
	}
	return a, nil
}

// badRune says why r may not appear in an origin, or "".
func badRune(r rune) string {
	switch {
	case r == utf8.RuneError:
		return "the replacement character"
	case unicode.IsControl(r):
		return "a control character"
	case unicode.Is(unicode.Cf, r):
		return "a format character: soft hyphen, zero-width or bidi control"
	case unicode.IsSpace(r) || unicode.Is(unicode.Zs, r):
		return "a space"
	case unicode.Is(unicode.Co, r) || unicode.Is(unicode.Cs, r) || unicode.Is(unicode.Noncharacter_Code_Point, r):
		return "a private-use or noncharacter code point"
	}
	return ""
}

// scriptNames lists unicode.Scripts' names, sorted, so that a rune's
// script is found the same way every time.
var scriptNames = func() []string {
	var ns []string
	for n := range unicode.Scripts {
		if n != "Common" && n != "Inherited" {
			ns = append(ns, n)
		}
	}
	sort.Strings(ns)
	return ns
}()

// scriptOf returns r's script, or "" for Common and Inherited (digits,
// the hyphen, combining marks).
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return ""
	}
	for _, n := range scriptNames {
		if unicode.Is(unicode.Scripts[n], r) {
			return n
		}
	}
	return ""
}

// allowedMixes are the script combinations UTS #39 allows at its highly
// restrictive level (each with Latin).
var allowedMixes = []map[string]bool{
	{"Latin": true, "Han": true, "Hiragana": true, "Katakana": true},
	{"Latin": true, "Han": true, "Bopomofo": true},
	{"Latin": true, "Han": true, "Hangul": true},
}

// latinLookalikes are the Cyrillic and Greek lower-case letters that are
// confusable with Latin ones (UTS #39 confusables), for whole-script
// confusables such as "аррӏе".
const latinLookalikes = "авсԁеһіјкӏмнорԛѕтуѵԝхүԍ" + "αβεικνορτυχ"

// checkScripts refuses a label that mixes scripts, or that is written
// wholly in Latin lookalikes of another script.
func checkScripts(label string) error {
	seen := map[string]bool{}
	var order []string
	for _, r := range label {
		if sc := scriptOf(r); sc != "" && !seen[sc] {
			seen[sc] = true
			order = append(order, sc)
		}
	}
	if len(order) > 1 {
		for _, mix := range allowedMixes {
			ok := true
			for _, sc := range order {
				ok = ok && mix[sc]
			}
			if ok {
				return nil
			}
		}
		return fmt.Errorf("label %q mixes scripts (%s): a confusable spelling", label, strings.Join(order, ", "))
	}
	if len(order) == 1 && (order[0] == "Cyrillic" || order[0] == "Greek") {
		for _, r := range label {
			if scriptOf(r) != "" && !strings.ContainsRune(latinLookalikes, r) {
				return nil
			}
		}
		return fmt.Errorf("label %q is written wholly in %s letters that look Latin: a confusable spelling", label, order[0])
	}
	return nil
}

func validateContact(c string) error {
	u, err := url.Parse(c)
	if err != nil || (u.Scheme != "mailto" && u.Scheme != "https") || (u.Opaque == "" && u.Host == "") {
		return fmt.Errorf("contact %q must be a mailto: or https: URI", c)
	}
	return nil
}
