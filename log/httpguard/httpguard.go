// Package httpguard bounds and authenticates the requests of keycommit's
// servers (the log, the witness and the monitor), so that each states its
// limits the same way:
//
//   - a Limiter per endpoint bounds how many requests it works on at once;
//     beyond that it answers 429 Too Many Requests with Retry-After before
//     reading the body, so the memory of in-flight requests is bounded by
//     the number of slots times what one request can hold;
//   - a Budget per endpoint bounds the bytes of request bodies it holds at
//     once (each request counts its announced length), so that many small
//     requests are served together while few near-limit ones are, with the
//     same 429 beyond it;
//   - ReadBody refuses a body over the endpoint's limit (413) before
//     reading more than the limit, and a Content-Length over it before
//     reading anything;
//   - ParsePage and SetNext give every list endpoint the same pagination:
//     ?after=<cursor>&limit=<n>, a bounded page, and a Link: <…>;
//     rel="next" header while more follows;
//   - Token is the operator's bearer token (--admin-token-file) for
//     endpoints that change state on material no trusted key signed;
//   - ForwardMAC authenticates the batches the frontends of a log forward
//     to its writer, under a key they share;
//   - RequestID names a failed request in the log and in the generic
//     answer, so internal error text never reaches clients.
//
// It uses only the standard library (and log/durable).
package httpguard

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keycommit/keycommit/log/durable"
)

// RetryAfterSeconds is the Retry-After sent with every 429.
const RetryAfterSeconds = 1

// Limiter bounds the requests one endpoint works on at once. The zero
// value is not usable; make one with NewLimiter.
type Limiter struct {
	slots    chan struct{}
	rejected atomic.Uint64
}

// NewLimiter returns a limiter with n slots (n >= 1).
func NewLimiter(n int) *Limiter {
	if n < 1 {
		n = 1
	}
	return &Limiter{slots: make(chan struct{}, n)}
}

// TryAcquire takes a slot if one is free, without waiting. When ok, the
// caller must call release once the request's memory is no longer held.
func (l *Limiter) TryAcquire() (release func(), ok bool) {
	select {
	case l.slots <- struct{}{}:
		var once atomic.Bool
		return func() {
			if !once.Swap(true) {
				<-l.slots
			}
		}, true
	default:
		l.rejected.Add(1)
		return nil, false
	}
}

// Cap is the number of slots.
func (l *Limiter) Cap() int { return cap(l.slots) }

// InFlight is the number of slots taken.
func (l *Limiter) InFlight() int { return len(l.slots) }

// Rejected is the number of requests refused for want of a slot.
func (l *Limiter) Rejected() uint64 { return l.rejected.Load() }

// Wrap serves h within the limiter's slots and answers TooMany beyond
// them (plain text).
func (l *Limiter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, ok := l.TryAcquire()
		if !ok {
			TooMany(w)
			http.Error(w, "too many requests in flight; retry later", http.StatusTooManyRequests)
			return
		}
		defer release()
		h.ServeHTTP(w, r)
	})
}

// Budget bounds the bytes of request bodies one endpoint holds at once:
// each request takes its cost (Cost) before its body is read and gives it
// back when done; a request whose cost does not fit gets 429. Unlike a
// Limiter's slots, it admits many small requests (honest submissions are
// about 1 KiB) and few large ones, so memory stays bounded by the bytes
// while honest concurrency is not refused. The zero value is not usable;
// make one with NewBudget.
type Budget struct {
	mu       sync.Mutex
	capacity int64
	used     int64
	minCost  int64
	rejected atomic.Uint64
}

// NewBudget returns a budget of capacity bytes in which every request
// costs at least minCost (what a request holds besides its body).
func NewBudget(capacity, minCost int64) *Budget {
	capacity, minCost = max(capacity, 1), max(minCost, 1)
	return &Budget{capacity: capacity, minCost: min(minCost, capacity)}
}

// Cost is what r takes from the budget when its body may be at most
// maxBody bytes: its Content-Length (at most maxBody: ReadBody refuses a
// longer one), or maxBody when no length is announced, and at least the
// budget's minimum cost. It is never more than the whole budget, so that
// one request alone is always admitted. The server reads no more than the
// announced Content-Length, so a request cannot hold more than it paid
// for.
func (b *Budget) Cost(r *http.Request, maxBody int64) int64 {
	n := r.ContentLength
	if n < 0 || n > maxBody {
		n = maxBody
	}
	return min(max(n, b.minCost), b.capacity)
}

// TryAcquire takes r's cost if it fits, without waiting. When ok, the
// caller must call release once the request's memory is no longer held.
func (b *Budget) TryAcquire(r *http.Request, maxBody int64) (release func(), ok bool) {
	cost := b.Cost(r, maxBody)
	b.mu.Lock()
	if b.used+cost > b.capacity {
		b.mu.Unlock()
		b.rejected.Add(1)
		return nil, false
	}
	b.used += cost
	b.mu.Unlock()
	var once atomic.Bool
	return func() {
		if !once.Swap(true) {
			b.mu.Lock()
			b.used -= cost
			b.mu.Unlock()
		}
	}, true
}

// Capacity is the budget's size in bytes.
func (b *Budget) Capacity() int64 { return b.capacity }

// Used is the bytes taken by requests in flight.
func (b *Budget) Used() int64 { b.mu.Lock(); defer b.mu.Unlock(); return b.used }

// Rejected is the number of requests refused for want of budget.
func (b *Budget) Rejected() uint64 { return b.rejected.Load() }

// TooMany sets the headers of a 429 answer: Retry-After, and Connection:
// close so that a flood does not keep its connections. The caller writes
// the status and body in its own format.
func TooMany(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	w.Header().Set("Connection", "close")
}

// ErrTooLarge is returned (wrapped) by ReadBody for a body over the limit.
var ErrTooLarge = errors.New("request body is too large")

// ReadBody reads r's body, at most max bytes. A Content-Length over max
// is refused before anything is read; a longer body is refused after
// max+1 bytes, and the connection is closed (http.MaxBytesReader).
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		w.Header().Set("Connection", "close")
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrTooLarge, r.ContentLength, max)
	}
	// Read into a buffer of the announced size, so a body is not copied
	// while growing (bytes.Buffer wants bytes.MinRead spare).
	n := r.ContentLength
	if n < 0 {
		n = min(max, 4096)
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, max)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Errorf("%w: over the limit of %d bytes", ErrTooLarge, max)
		}
		return nil, fmt.Errorf("couldn't read request body: %w", err)
	}
	return buf.Bytes(), nil
}

// Pagination bounds shared by the list endpoints.
const (
	// DefaultPage is the page size when ?limit is not given.
	DefaultPage = 100
)

// ParsePage reads ?after=<cursor>&limit=<n>: after is the cursor of the
// last item of the previous page ("" for the first page), limit is at
// most maxLimit (default min(DefaultPage, maxLimit)).
func ParsePage(r *http.Request, maxLimit int) (after string, limit int, err error) {
	q := r.URL.Query()
	after = q.Get("after")
	limit = min(DefaultPage, maxLimit)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return "", 0, fmt.Errorf("limit=%q: want an integer from 1 to %d", v, maxLimit)
		}
		limit = n
	}
	return after, limit, nil
}

// SetNext sets the Link: <…>; rel="next" header for the page after the
// item whose cursor is after, keeping r's other query parameters.
func SetNext(w http.ResponseWriter, r *http.Request, after string) {
	q := r.URL.Query()
	q.Set("after", after)
	// RawPath keeps a path-escaped segment (an origin's "//") escaped.
	u := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	w.Header().Set("Link", "<"+u.String()+`>; rel="next"`)
}

// NextPage returns the after cursor of the next page named by a Link
// header as SetNext writes it, or "" when there is none.
func NextPage(h http.Header) string {
	for _, l := range h.Values("Link") {
		target, params, ok := strings.Cut(l, ";")
		if !ok || !strings.Contains(params, `rel="next"`) {
			continue
		}
		u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err != nil {
			continue
		}
		return u.Query().Get("after")
	}
	return ""
}

// Token is the operator's bearer token.
type Token struct {
	sum [sha256.Size]byte
}

// MinTokenLen is the shortest token LoadToken accepts.
const MinTokenLen = 16

// LoadToken reads the token from path (surrounding white space is
// trimmed). The file must not be readable by group or others, and the
// token must be at least MinTokenLen bytes.
func LoadToken(path string) (*Token, error) {
	b, err := durable.ReadPrivate(path, "admin token file")
	if err != nil {
		return nil, err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < MinTokenLen || strings.ContainsAny(tok, " \t\r\n") {
		return nil, fmt.Errorf("admin token in %s must be one word of at least %d bytes (the token is not shown)", path, MinTokenLen)
	}
	return &Token{sum: sha256.Sum256([]byte(tok))}, nil
}

// Allows reports whether r carries the token as
// "Authorization: Bearer <token>". The comparison is constant-time (over
// SHA-256 digests, so not even the length leaks). A nil Token allows
// nothing.
func (t *Token) Allows(r *http.Request) bool {
	if t == nil {
		return false
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1
}

// Require serves h only for requests carrying the token; others get 401
// (403 when the server has no token configured: the endpoint is off).
func (t *Token) Require(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t == nil {
			http.Error(w, "this endpoint needs the operator's token, and none is configured (--admin-token-file)", http.StatusForbidden)
			return
		}
		if !t.Allows(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keycommit admin"`)
			http.Error(w, "this endpoint needs the operator's token: Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// RequestID returns a new random identifier for a failed request, to put
// in the server's log line and in the generic answer.
func RequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
