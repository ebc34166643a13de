// Package challenge is the log's side of the proof of origin control: it
// fetches an origin's HTTPS challenge (schema.Challenge at
// schema.ChallengeURL) and says exactly what it fetched and what it
// expected when the two differ, in the spirit of ACME HTTP-01.
//
// The fetch treats the origin as hostile: HTTPS only (certificate checked
// against the system roots or Config.Roots), no proxy, bounded in time
// (Config.Timeout for the whole fetch) and size (Config.MaxBytes), at
// most MaxRedirects redirects and only to the same host over HTTPS, and
// no connection to a loopback, private, link-local, unspecified,
// multicast or otherwise non-public address unless the operator allows
// it (Config.AllowPrivate, or Config.Dial for one host). The address is
// checked when the connection is made, on the IP the name resolved to
// (a net.Dialer Control function), so a name that resolves to a public
// address when checked and a private one when used (DNS rebinding)
// cannot get through.
package challenge

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keycommit/keycommit/schema"
)

// Defaults and bounds.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultMaxBytes = 4096
	MaxRedirects    = 3
)

// Config configures a Fetcher.
type Config struct {
	// Roots are the certificate authorities trusted for the fetch (nil:
	// the system roots). Tests and private deployments add their own.
	Roots *x509.CertPool
	// Dial maps a host ("issuer.example") or host and port
	// ("issuer.example:8443") to the address to connect to instead of
	// resolving it ("127.0.0.1:8443"; without a port, the origin's),
	// like curl's --resolve; "*" maps every host not named (tests). The
	// address is allowed even if private.
	Dial map[string]string
	// AllowPrivate allows every address (loopback, private, link-local).
	AllowPrivate bool
	// Timeout bounds a whole fetch, redirects included (default
	// DefaultTimeout).
	Timeout time.Duration
	// MaxBytes bounds the challenge response body (default
	// DefaultMaxBytes).
	MaxBytes int64
	// Clock gives the time recorded in the proof (default time.Now).
	Clock func() time.Time
}

// Fetcher checks HTTPS challenges. It is safe for concurrent use.
type Fetcher struct {
	cfg    Config
	client *http.Client
}

// allowKey marks, in a dial's context, the address Config.Dial allows.
type allowKey struct{}

// New returns a Fetcher for cfg.
func New(cfg Config) (*Fetcher, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	for host, addr := range cfg.Dial {
		if host == "" || strings.ContainsAny(host, "/@") {
			return nil, fmt.Errorf("challenge dial %q=%q: want HOST[:PORT]=ADDR", host, addr)
		}
		if _, err := netip.ParseAddrPort(addr); err != nil {
			if _, err := netip.ParseAddr(addr); err != nil {
				return nil, fmt.Errorf("challenge dial %s=%s: the address must be an IP address with an optional port", host, addr)
			}
		}
	}
	f := &Fetcher{cfg: cfg}
	d := &net.Dialer{Timeout: cfg.Timeout, ControlContext: f.control}
	tr := &http.Transport{
		Proxy: nil, // never an environment proxy: the log itself connects
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if to, ok := f.redirect(addr); ok {
				ctx = context.WithValue(ctx, allowKey{}, to)
				addr = to
			}
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:        &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 16 << 10,
		ForceAttemptHTTP2:      true,
	}
	f.client = &http.Client{Transport: tr, Timeout: cfg.Timeout, CheckRedirect: checkRedirect}
	return f, nil
}

// redirect returns the address Config.Dial gives for addr (host:port).
func (f *Fetcher) redirect(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false
	}
	to, ok := f.cfg.Dial[addr]
	if !ok {
		to, ok = f.cfg.Dial[host]
	}
	if !ok {
		to, ok = f.cfg.Dial["*"]
	}
	if !ok {
		return "", false
	}
	if _, err := netip.ParseAddrPort(to); err != nil {
		to = net.JoinHostPort(to, port)
	}
	return to, true
}

// control refuses, at dial time and on the resolved address, any address
// that is not public, unless allowed.
func (f *Fetcher) control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("couldn't parse the address %q being dialled: %w", address, err)
	}
	if f.cfg.AllowPrivate {
		return nil
	}
	if to, _ := ctx.Value(allowKey{}).(string); to != "" {
		if tap, err := netip.ParseAddrPort(to); err == nil && tap.Addr().Unmap() == ap.Addr().Unmap() {
			return nil
		}
	}
	if why := NonPublic(ap.Addr()); why != "" {
		return fmt.Errorf("refusing to connect to %s: %s address (allow it with --challenge-dial)", ap.Addr(), why)
	}
	return nil
}

// NonPublic says why ip is not a public unicast address ("" if it is).
func NonPublic(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "an invalid"
	case ip.IsLoopback():
		return "a loopback"
	case ip.IsPrivate():
		return "a private"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "a link-local"
	case ip.IsUnspecified():
		return "an unspecified"
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return "a multicast"
	case !ip.IsGlobalUnicast():
		return "a non-unicast"
	}
	for _, p := range specialPrefixes {
		if p.Contains(ip) {
			return "a special-purpose (" + p.String() + ")"
		}
	}
	return ""
}

// specialPrefixes are special-purpose ranges (RFC 6890 and successors)
// that net/netip does not classify and that must not be reached.
var specialPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 reaches IPv4 addresses
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"), // 6to4 embeds IPv4 addresses
}

// checkRedirect follows at most MaxRedirects redirects, each over HTTPS
// to the same host and port.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return fmt.Errorf("more than %d redirects", MaxRedirects)
	}
	first := via[0].URL
	if req.URL.Scheme != "https" || req.URL.Host != first.Host {
		return fmt.Errorf("redirected to %s: a challenge may only redirect to https://%s", req.URL.Redacted(), first.Host)
	}
	return nil
}

// Check fetches the challenge origin must serve for accountKey to
// register it with the log named log, and returns the proof to record.
// The error says what was fetched and what was expected.
func (f *Fetcher) Check(ctx context.Context, log, origin string, accountKey ed25519.PublicKey) (*schema.OriginControl, error) {
	want := schema.Challenge(log, origin, accountKey)
	u := schema.ChallengeURL(log, origin, accountKey)
	if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" {
		return nil, fmt.Errorf("challenge URL %q is not https", u)
	}
	at := f.cfg.Clock()
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("couldn't make the challenge request for %s: %w", u, err)
	}
	req.Header.Set("User-Agent", "keycommit-challenge/1")
	req.Header.Set("Accept", "text/plain")
	res, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the log couldn't fetch the challenge %s: %v; it expected %d bytes %s", u, unwrapURLError(err), len(want), quote(want))
	}
	defer res.Body.Close()
	if err := Judge(res.StatusCode, res.Body, f.cfg.MaxBytes, want); err != nil {
		return nil, fmt.Errorf("the log fetched %s: %w", u, err)
	}
	return &schema.OriginControl{Method: schema.ControlHTTPS, URL: u, Time: at.UnixMilli()}, nil
}

// Judge reads a challenge response (its status and at most maxBytes of
// body) and returns nil only if it is 200 with exactly want; the error
// says what was got and what was wanted.
func Judge(status int, body io.Reader, maxBytes int64, want []byte) error {
	b, err := io.ReadAll(io.LimitReader(body, maxBytes+1))
	if err != nil {
		return fmt.Errorf("couldn't read the response (%v); want exactly %d bytes %s", err, len(want), quote(want))
	}
	switch {
	case status != http.StatusOK:
		return fmt.Errorf("got status %d %s with %s; want 200 with exactly %d bytes %s", status, http.StatusText(status), describe(b, maxBytes), len(want), quote(want))
	case int64(len(b)) > maxBytes:
		return fmt.Errorf("got more than %d bytes; want exactly %d bytes %s", maxBytes, len(want), quote(want))
	case !bytes.Equal(b, want):
		return fmt.Errorf("got %s; want exactly %d bytes %s", describe(b, maxBytes), len(want), quote(want))
	}
	return nil
}

// describe names a body for an error: its length and (the start of) its
// bytes, quoted.
func describe(b []byte, maxBytes int64) string {
	if int64(len(b)) > maxBytes {
		return fmt.Sprintf("more than %d bytes", maxBytes)
	}
	return fmt.Sprintf("%d bytes %s", len(b), quote(b))
}

// quote quotes at most 300 bytes of b, marking a cut.
func quote(b []byte) string {
	const max = 300
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
