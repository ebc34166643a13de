package challenge

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/schema"
)

const testLog = "keycommit.example/log/challenge"

// origin is a test HTTPS origin served on 127.0.0.1 with a test CA.
type origin struct {
	ca   *CA
	resp *Responder
	addr string // 127.0.0.1:port
	mux  *http.ServeMux
}

func newOrigin(t *testing.T, hosts ...string) *origin {
	t.Helper()
	ca, err := NewCA("challenge test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ServerCert(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{ca: ca, resp: &Responder{}, addr: ln.Addr().String(), mux: http.NewServeMux()}
	o.mux.Handle(schema.ChallengePath, o.resp)
	srv := &http.Server{Handler: o.mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return o
}

func (o *origin) port() string { _, p, _ := net.SplitHostPort(o.addr); return p }

func (o *origin) fetcher(t *testing.T, cfg Config) *Fetcher {
	t.Helper()
	cfg.Roots = o.ca.Pool()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testKey(seed byte) ed25519.PublicKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)).Public().(ed25519.PublicKey)
}

func TestCheck(t *testing.T) {
	o := newOrigin(t, "issuer.example", "other.example")
	iss := "https://issuer.example:" + o.port()
	key := testKey(1)
	o.resp.Serve(testLog, iss, key)
	dial := map[string]string{"issuer.example": o.addr, "other.example": o.addr}
	at := time.UnixMilli(1_800_000_000_000)
	f := o.fetcher(t, Config{Dial: dial, Clock: func() time.Time { return at }})
	ctl, err := f.Check(context.Background(), testLog, iss, key)
	if err != nil {
		t.Fatal(err)
	}
	if want := (schema.OriginControl{Method: schema.ControlHTTPS, URL: schema.ChallengeURL(testLog, iss, key), Time: at.UnixMilli()}); *ctl != want {
		t.Errorf("proof %+v, want %+v", *ctl, want)
	}

	// Served for another key, another log: what was fetched and what was
	// expected are both named.
	for name, check := range map[string]func() error{
		"another key": func() error { _, err := f.Check(context.Background(), testLog, iss, testKey(2)); return err },
		"another log": func() error { _, err := f.Check(context.Background(), "other.example/log", iss, key); return err },
	} {
		err := check()
		if err == nil || !strings.Contains(err.Error(), "got status 404 Not Found") || !strings.Contains(err.Error(), "want 200 with exactly") || !strings.Contains(err.Error(), `"keycommit-challenge/v1\nlog `) {
			t.Errorf("%s: %v, want a refusal naming the 404 and the expected bytes", name, err)
		}
	}

	// Wrong content.
	o.resp.Put(schema.ChallengeURL(testLog, iss, testKey(3)), []byte("hello\n"))
	_, err = f.Check(context.Background(), testLog, iss, testKey(3))
	if err == nil || !strings.Contains(err.Error(), `got 6 bytes "hello\n"; want exactly`) || !strings.Contains(err.Error(), "the log fetched https://issuer.example:"+o.port()+"/.well-known/keycommit-challenge/") {
		t.Errorf("wrong content: %v", err)
	}

	// Too big.
	big := append(schema.Challenge(testLog, iss, testKey(4)), bytes.Repeat([]byte{'x'}, DefaultMaxBytes)...)
	o.resp.Put(schema.ChallengeURL(testLog, iss, testKey(4)), big)
	if _, err := f.Check(context.Background(), testLog, iss, testKey(4)); err == nil || !strings.Contains(err.Error(), "more than 4096 bytes") {
		t.Errorf("oversized challenge: %v", err)
	}
}

func TestRedirects(t *testing.T) {
	o := newOrigin(t, "issuer.example", "other.example")
	iss := "https://issuer.example:" + o.port()
	key := testKey(1)
	u := schema.ChallengeURL(testLog, iss, key)
	path := u[len(iss):]
	o.mux.HandleFunc("/same/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, path, http.StatusFound) })
	o.mux.HandleFunc("/other/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://other.example:"+o.port()+path, http.StatusFound)
	})
	o.mux.HandleFunc("/plain/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://issuer.example:"+o.port()+path, http.StatusFound)
	})
	o.mux.HandleFunc("/loop/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, r.URL.Path, http.StatusFound) })
	f := o.fetcher(t, Config{Dial: map[string]string{"issuer.example": o.addr, "other.example": o.addr}})
	// The challenge itself sits behind each redirect: serve it, and point
	// its URL at a redirecting handler by fetching through Judge's caller.
	want := schema.Challenge(testLog, iss, key)
	o.resp.Put(u, want)
	for prefix, refusal := range map[string]string{
		"/same/":  "",
		"/other/": "a challenge may only redirect to https://issuer.example:" + o.port(),
		"/plain/": "a challenge may only redirect to https://",
		"/loop/":  "more than 3 redirects",
	} {
		req, _ := http.NewRequest(http.MethodGet, iss+prefix+"x", nil)
		res, err := f.client.Do(req)
		if refusal == "" {
			if err != nil {
				t.Errorf("%s: %v", prefix, err)
				continue
			}
			if err := Judge(res.StatusCode, res.Body, DefaultMaxBytes, want); err != nil {
				t.Errorf("%s: %v", prefix, err)
			}
			res.Body.Close()
			continue
		}
		if err == nil {
			res.Body.Close()
			t.Errorf("%s: followed, want refused (%s)", prefix, refusal)
		} else if !strings.Contains(err.Error(), refusal) {
			t.Errorf("%s: %v, want %q", prefix, err, refusal)
		}
	}
}

// TestPrivateAddressesRefused: without an allowance, the log refuses to
// connect to loopback, whether the origin names the address or a name
// that resolves to it ("localhost"): the check is on the resolved
// address, at dial time.
func TestPrivateAddressesRefused(t *testing.T) {
	o := newOrigin(t, "localhost", "127.0.0.1")
	key := testKey(1)
	for _, iss := range []string{"https://127.0.0.1:" + o.port(), "https://localhost:" + o.port()} {
		o.resp.Serve(testLog, iss, key)
		f := o.fetcher(t, Config{})
		_, err := f.Check(context.Background(), testLog, iss, key)
		if err == nil || !strings.Contains(err.Error(), "refusing to connect to 127.0.0.1: a loopback address") {
			t.Errorf("%s: %v, want the loopback address refused", iss, err)
		}
		// The operator may allow it.
		if _, err := o.fetcher(t, Config{AllowPrivate: true}).Check(context.Background(), testLog, iss, key); err != nil {
			t.Errorf("%s with AllowPrivate: %v", iss, err)
		}
	}
	// A dial allowance covers its own address only.
	f := o.fetcher(t, Config{Dial: map[string]string{"issuer.example": "127.0.0.2:1"}})
	if _, err := f.Check(context.Background(), testLog, "https://localhost:"+o.port(), key); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("a dial allowance for another host let localhost through: %v", err)
	}
}

func TestHTTPSOnlyAndCertificates(t *testing.T) {
	o := newOrigin(t, "issuer.example")
	iss := "https://issuer.example:" + o.port()
	key := testKey(1)
	o.resp.Serve(testLog, iss, key)
	// The system roots do not know the test CA.
	f, err := New(Config{Dial: map[string]string{"issuer.example": o.addr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Check(context.Background(), testLog, iss, key); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
	// A certificate for another name.
	o2 := newOrigin(t, "wrong.example")
	iss2 := "https://issuer.example:" + o2.port()
	o2.resp.Serve(testLog, iss2, key)
	if _, err := o2.fetcher(t, Config{Dial: map[string]string{"issuer.example": o2.addr}}).Check(context.Background(), testLog, iss2, key); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("certificate for another name: %v", err)
	}
}

// TestTimeBound: a server that accepts and never answers is cut off by
// the timeout instead of holding the fetch.
func TestTimeBound(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	f, err := New(Config{Dial: map[string]string{"issuer.example": ln.Addr().String()}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if _, err := f.Check(context.Background(), testLog, "https://issuer.example:"+port, testKey(1)); err == nil || !strings.Contains(err.Error(), "couldn't fetch the challenge") {
		t.Errorf("silent server: %v", err)
	}
}

func TestNonPublic(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1": "a loopback", "::1": "a loopback", "10.1.2.3": "a private", "192.168.0.1": "a private",
		"172.16.0.1": "a private", "fd00::1": "a private", "169.254.169.254": "a link-local", "fe80::1": "a link-local",
		"0.0.0.0": "an unspecified", "::": "an unspecified", "239.1.1.1": "a multicast", "224.0.0.1": "a link-local", "100.64.0.1": "a special-purpose (100.64.0.0/10)",
		"::ffff:127.0.0.1": "a loopback", "64:ff9b::a00:1": "a special-purpose (64:ff9b::/96)", "255.255.255.255": "a non-unicast", "240.0.0.1": "a special-purpose (240.0.0.0/4)",
		"8.8.8.8": "", "2606:4700::1111": "",
	} {
		if got := NonPublic(netip.MustParseAddr(addr)); got != want {
			t.Errorf("NonPublic(%s) = %q, want %q", addr, got, want)
		}
	}
}

func TestNewRefusesBadDial(t *testing.T) {
	for _, d := range []map[string]string{{"issuer.example": "not-an-ip"}, {"": "127.0.0.1"}, {"a/b": "127.0.0.1"}} {
		if _, err := New(Config{Dial: d}); err == nil {
			t.Errorf("New accepted Dial %v", d)
		}
	}
}

// FuzzJudge: the response handling accepts exactly a 200 whose body is
// the challenge, never reads more than the bound, and always says what it
// got and wanted.
func FuzzJudge(f *testing.F) {
	want := schema.Challenge(testLog, "https://issuer.example", testKey(1))
	f.Add(200, want)
	f.Add(200, append(want, '\n'))
	f.Add(404, []byte("not found"))
	f.Add(200, bytes.Repeat([]byte{0xff}, 5000))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r := &countingReader{r: bytes.NewReader(body)}
		err := Judge(status, r, 64+int64(len(want)), want)
		if ok := status == 200 && bytes.Equal(body, want); ok != (err == nil) {
			t.Fatalf("Judge(%d, %q) = %v", status, body, err)
		}
		if r.n > 65+int64(len(want)) {
			t.Fatalf("read %d bytes, over the bound", r.n)
		}
		if err != nil && !strings.Contains(err.Error(), "want") {
			t.Fatalf("error does not say what was wanted: %v", err)
		}
	})
}

type countingReader struct {
	r *bytes.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
