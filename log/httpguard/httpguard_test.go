package httpguard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLimiter(t *testing.T) {
	l := NewLimiter(2)
	r1, ok1 := l.TryAcquire()
	r2, ok2 := l.TryAcquire()
	if !ok1 || !ok2 {
		t.Fatal("a free slot was refused")
	}
	if _, ok := l.TryAcquire(); ok {
		t.Fatal("a third request got a slot of two")
	}
	r1()
	r1() // releasing twice frees one slot only
	if _, ok := l.TryAcquire(); !ok {
		t.Fatal("a released slot was not reused")
	}
	if _, ok := l.TryAcquire(); ok {
		t.Fatal("a double release freed two slots")
	}
	r2()
	if l.Rejected() != 2 {
		t.Errorf("Rejected = %d, want 2", l.Rejected())
	}

	// Wrap answers 429 with Retry-After beyond the slots.
	hold := make(chan struct{})
	in := make(chan struct{})
	h := NewLimiter(1).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { in <- struct{}{}; <-hold }))
	go h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	<-in
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	close(hold)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("beyond the limit: %d, Retry-After %q; want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// TestBudget: requests take their announced length (at least the minimum
// cost, the whole body limit when none is announced) and a request that
// does not fit is refused until enough is released. (Charge every request
// the minimum cost and the near-limit ones all fit; drop the once in
// release and a double release frees twice.)
func TestBudget(t *testing.T) {
	post := func(length int64) *http.Request {
		r := httptest.NewRequest("POST", "/", nil)
		r.ContentLength = length
		return r
	}
	const maxBody = 1000
	b := NewBudget(2500, 100)
	for _, tc := range []struct {
		length, cost int64
	}{
		{10, 100},       // at least the minimum cost
		{0, 100},        // an empty body too
		{700, 700},      // its announced length
		{-1, maxBody},   // chunked: the whole body limit
		{1 << 30, 1000}, // over the limit: no more than the limit (ReadBody answers 413)
	} {
		if got := b.Cost(post(tc.length), maxBody); got != tc.cost {
			t.Errorf("Cost(Content-Length %d) = %d, want %d", tc.length, got, tc.cost)
		}
	}
	if got := NewBudget(500, 100).Cost(post(-1), maxBody); got != 500 {
		t.Errorf("a cost over the whole budget is %d, want the budget (500): one request alone must fit", got)
	}

	big1, ok1 := b.TryAcquire(post(-1), maxBody)
	big2, ok2 := b.TryAcquire(post(1000), maxBody)
	if !ok1 || !ok2 {
		t.Fatal("two requests of 1000 bytes were refused in a budget of 2500")
	}
	if _, ok := b.TryAcquire(post(1000), maxBody); ok {
		t.Fatal("a third request of 1000 bytes fit in 2500 with 2000 taken")
	}
	// The 500 left still admit five small requests, not a sixth.
	var small []func()
	for i := range 6 {
		rel, ok := b.TryAcquire(post(50), maxBody)
		if ok != (i < 5) {
			t.Fatalf("small request %d admitted: %v, want %v (used %d)", i, ok, i < 5, b.Used())
		}
		if ok {
			small = append(small, rel)
		}
	}
	big1()
	big1() // releasing twice gives back once
	if b.Used() != 1000+500 {
		t.Errorf("after one release (twice): used %d, want 1500", b.Used())
	}
	if _, ok := b.TryAcquire(post(1000), maxBody); !ok {
		t.Error("released room was not reused")
	}
	big2()
	for _, rel := range small {
		rel()
	}
	if b.Rejected() != 2 {
		t.Errorf("Rejected = %d, want 2", b.Rejected())
	}
}

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		length  int64 // -1: chunked
		tooBig  bool
		wantLen int
	}{
		{"at the limit", strings.Repeat("a", 10), 10, false, 10},
		{"empty", "", 0, false, 0},
		{"chunked at the limit", strings.Repeat("a", 10), -1, false, 10},
		{"one over", strings.Repeat("a", 11), 11, true, 0},
		{"chunked one over", strings.Repeat("a", 11), -1, true, 0},
		{"announced over, nothing read", "", 1 << 30, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.ContentLength = tc.length
			b, err := ReadBody(httptest.NewRecorder(), r, 10)
			if tc.tooBig != errors.Is(err, ErrTooLarge) || (!tc.tooBig && err != nil) {
				t.Fatalf("err = %v, want too large: %v", err, tc.tooBig)
			}
			if len(b) != tc.wantLen {
				t.Errorf("read %d bytes, want %d", len(b), tc.wantLen)
			}
		})
	}
}

func TestPage(t *testing.T) {
	r := httptest.NewRequest("GET", "/evidence?origin=o&after=41&limit=7", nil)
	after, limit, err := ParsePage(r, 10)
	if err != nil || after != "41" || limit != 7 {
		t.Fatalf("ParsePage = %q, %d, %v", after, limit, err)
	}
	for _, q := range []string{"limit=0", "limit=11", "limit=x", "limit=-1"} {
		if _, _, err := ParsePage(httptest.NewRequest("GET", "/l?"+q, nil), 10); err == nil {
			t.Errorf("ParsePage accepted %s with a maximum of 10", q)
		}
	}
	if _, limit, _ := ParsePage(httptest.NewRequest("GET", "/l", nil), 1000); limit != DefaultPage {
		t.Errorf("default page %d, want %d", limit, DefaultPage)
	}
	rec := httptest.NewRecorder()
	SetNext(rec, r, "48")
	if got := NextPage(rec.Header()); got != "48" {
		t.Errorf("NextPage = %q from Link %q", got, rec.Header().Get("Link"))
	}
	if !strings.Contains(rec.Header().Get("Link"), "origin=o") {
		t.Errorf("Link %q dropped the other parameters", rec.Header().Get("Link"))
	}
	if NextPage(http.Header{}) != "" {
		t.Error("NextPage without a Link header")
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	const secret = "0123456789abcdef0123"
	if _, err := LoadToken(write("open", secret, 0o644)); err == nil {
		t.Error("a token file readable by others was accepted")
	}
	if _, err := LoadToken(write("short", "abc", 0o600)); err == nil {
		t.Error("a 3-byte token was accepted")
	}
	if _, err := LoadToken(write("short2", "abc", 0o600)); err != nil && strings.Contains(err.Error(), "abc") {
		t.Error("the error shows the token")
	}
	tok, err := LoadToken(write("ok", secret+"\n", 0o600))
	if err != nil {
		t.Fatal(err)
	}
	h := tok.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for _, tc := range []struct {
		auth string
		code int
	}{
		{"Bearer " + secret, 204},
		{"bearer " + secret, 204},
		{"Bearer " + secret + "x", 401},
		{"Bearer " + secret[:len(secret)-1], 401},
		{"Basic " + secret, 401},
		{secret, 401},
		{"", 401},
	} {
		r := httptest.NewRequest("POST", "/watch", nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tc.code {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, rec.Code, tc.code)
		}
	}
	var none *Token
	rec := httptest.NewRecorder()
	none.Require(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("POST", "/watch", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("no token configured: %d, want 403", rec.Code)
	}
}

// TestForwardMAC: the MAC of a body under a key is valid for that body
// and key only; an empty key accepts nothing.
func TestForwardMAC(t *testing.T) {
	key, body := []byte("0123456789abcdef0123456789abcdef"), []byte(`{"submissions":[]}`)
	mac := ForwardMAC(key, body)
	if !ForwardMACValid(key, body, mac) {
		t.Fatal("the MAC of a body is not valid for it")
	}
	other := append([]byte(nil), body...)
	other[3] ^= 1
	for _, c := range []struct {
		name      string
		key, body []byte
		mac       string
	}{
		{"another body", key, other, mac},
		{"another key", []byte("0123456789abcdef0123456789abcdeF"), body, mac},
		{"no key", nil, body, ForwardMAC(nil, body)},
		{"no MAC", key, body, ""},
		{"truncated MAC", key, body, mac[:len(mac)-2]},
	} {
		if ForwardMACValid(c.key, c.body, c.mac) {
			t.Errorf("%s: accepted", c.name)
		}
	}
}
