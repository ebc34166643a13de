package bundle

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/prometheus/client_golang/prometheus"
)

// Paths the Handler serves.
const (
	BundlePath      = "/v1/keys.bundle"
	DeltaPath       = "/v1/keys.delta"
	IssuerProofPath = "/v1/issuer-proof"
)

// Content types of the responses.
const (
	BundleContentType = "application/x-keycommit-bundle"
	DeltaContentType  = "application/x-keycommit-delta"
	ProofContentType  = "text/plain; charset=utf-8"
)

// Config configures a Handler.
type Config struct {
	// Source reads the log; required.
	Source Source
	// Logger receives build failures; nil means slog.New(slog.DiscardHandler).
	Logger *slog.Logger
	// Registerer, if not nil, receives the handler's metrics.
	Registerer prometheus.Registerer
	// MaxAge is the Cache-Control max-age, in seconds, of responses (the
	// checkpoint they carry changes as the log grows); 0 means 10.
	MaxAge int
}

// Handler serves GET /v1/keys.bundle[?old=N] and
// GET /v1/issuer-proof?issuer=ORIGIN. The bundle without ?old is built
// once per checkpoint and cached, gzipped as well as plain.
type Handler struct {
	src      Source
	log      *slog.Logger
	maxAge   string
	requests *prometheus.CounterVec

	mu    sync.Mutex
	cache *cached // for the latest checkpoint, without a consistency proof
	// recent holds the bundles of the snapshots served before the
	// latest, by hex key set commitment of their snapshot (root, or
	// digest in logs made before it; at most maxRecent), so that deltas
	// can be served from them.
	recent      map[string]*verify.Bundle
	recentOrder []string
	// deltas caches the deltas built for cache.note, by "old/base".
	deltas map[string]*cached
}

// maxRecent bounds the snapshots deltas are served from; maxDeltas the
// deltas cached per checkpoint.
const (
	maxRecent = 32
	maxDeltas = 256
)

type cached struct {
	note, raw, gz []byte
	etag          string
	bundle        *verify.Bundle // parsed raw, for the latest bundle
	commitment    string         // hex key set commitment of bundle's snapshot
}

// NewHandler returns a Handler for cfg.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Source == nil {
		return nil, errors.New("bundle handler needs a source")
	}
	h := &Handler{src: cfg.Source, log: cfg.Logger, maxAge: "public, max-age=10"}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxAge > 0 {
		h.maxAge = "public, max-age=" + strconv.Itoa(cfg.MaxAge)
	}
	h.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keycommit_bundle_requests_total",
		Help: "Keys bundle and issuer proof requests, by path and HTTP status code.",
	}, []string{"path", "code"})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.requests); err != nil {
			return nil, fmt.Errorf("couldn't register bundle metrics: %w", err)
		}
	}
	return h, nil
}

// Register mounts the handler's endpoints on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+BundlePath, h.ServeBundle)
	mux.HandleFunc("GET "+DeltaPath, h.ServeDelta)
	mux.HandleFunc("GET "+IssuerProofPath, h.ServeIssuerProof)
}

func (h *Handler) error(w http.ResponseWriter, path string, code int, msg string) {
	h.requests.WithLabelValues(path, strconv.Itoa(code)).Inc()
	api.WriteError(w, code, &api.Error{Error: msg})
}

// fail answers a 5xx: msg, which names what failed and nothing of its
// cause, with a request id; the cause err (nil for an expected state such
// as a snapshot not cosigned yet) and attrs go to the log with that id.
func (h *Handler) fail(w http.ResponseWriter, path string, code int, msg string, err error, attrs ...any) {
	id := httpguard.RequestID()
	attrs = append(attrs, "path", path, "status", code, "request_id", id)
	if err != nil {
		h.log.Error(msg, append(attrs, "err", err)...)
	} else {
		h.log.Warn(msg, attrs...)
	}
	h.error(w, path, code, msg+" (request id "+id+")")
}

// failure is a 5xx to answer with fail.
type failure struct {
	code  int
	msg   string
	err   error
	attrs []any
}

// ServeBundle serves the keys bundle; ?old=N adds the consistency proof
// from tree size N when N is smaller than the checkpoint's size.
func (h *Handler) ServeBundle(w http.ResponseWriter, r *http.Request) {
	var old uint64
	if s := r.URL.Query().Get("old"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			h.error(w, BundlePath, http.StatusBadRequest, fmt.Sprintf("old=%q is not a tree size", s))
			return
		}
		old = n
	}
	note, err := h.src.Checkpoint(r.Context())
	if errors.Is(err, ErrNotLogged) {
		h.error(w, BundlePath, http.StatusNotFound, "the log has no checkpoint yet")
		return
	}
	if err != nil {
		h.fail(w, BundlePath, http.StatusServiceUnavailable, "couldn't read the checkpoint", err)
		return
	}
	var c *cached
	if old == 0 {
		c, err = h.latest(r, note)
		if errors.Is(err, ErrSnapshotPending) {
			// Keep serving the last bundle until the new snapshot is
			// cosigned.
			h.mu.Lock()
			c = h.cache
			h.mu.Unlock()
			if c != nil {
				err = nil
			}
		}
	} else {
		var raw []byte
		if raw, err = BuildFor(r.Context(), h.src, note, old); err == nil {
			c = newCached(note, raw, false)
		}
	}
	if err != nil {
		if errors.Is(err, ErrNotLogged) {
			h.error(w, BundlePath, http.StatusNotFound, "the log has no snapshot yet")
			return
		}
		if errors.Is(err, ErrSnapshotPending) {
			w.Header().Set("Retry-After", "1")
			h.fail(w, BundlePath, http.StatusServiceUnavailable, "the latest snapshot is not cosigned yet; retry shortly", nil)
			return
		}
		h.fail(w, BundlePath, http.StatusInternalServerError, "couldn't build the keys bundle", err)
		return
	}
	w.Header().Set("Content-Type", BundleContentType)
	w.Header().Set("Cache-Control", h.maxAge)
	w.Header().Set("ETag", c.etag)
	w.Header().Set("Vary", "Accept-Encoding")
	if match := r.Header.Get("If-None-Match"); match != "" && match == c.etag {
		h.requests.WithLabelValues(BundlePath, "304").Inc()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := c.raw
	if c.gz != nil && AcceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		body = c.gz
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	h.requests.WithLabelValues(BundlePath, "200").Inc()
	_, _ = w.Write(body)
}

// latest returns the cached bundle for note, building it if the
// checkpoint changed.
func (h *Handler) latest(r *http.Request, note []byte) (*cached, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cache != nil && bytes.Equal(h.cache.note, note) {
		return h.cache, nil
	}
	raw, err := BuildFor(r.Context(), h.src, note, 0)
	if err != nil {
		return nil, err
	}
	c := newCached(note, raw, true)
	if c.bundle, err = verify.ParseBundle(raw); err != nil {
		return nil, err
	}
	if c.commitment, err = commitmentHex(c.bundle.Entry); err != nil {
		return nil, err
	}
	if old := h.cache; old != nil && old.commitment != c.commitment {
		h.remember(old.commitment, old.bundle)
	}
	h.cache = c
	h.deltas = map[string]*cached{}
	return h.cache, nil
}

// remember keeps b as a base for deltas.
func (h *Handler) remember(d string, b *verify.Bundle) {
	if h.recent == nil {
		h.recent = map[string]*verify.Bundle{}
	}
	if _, ok := h.recent[d]; !ok {
		h.recentOrder = append(h.recentOrder, d)
	}
	h.recent[d] = b
	if len(h.recentOrder) > maxRecent {
		delete(h.recent, h.recentOrder[0])
		h.recentOrder = h.recentOrder[1:]
	}
}

// commitmentHex returns the hex key set commitment (root or digest) of
// the snapshot entry.
func commitmentHex(entry []byte) (string, error) {
	s, err := verify.ParseSnapshotEntry(entry)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(s.Commitment()), nil
}

// ServeDelta serves the delta from the bundle of tree size ?old=N whose
// snapshot has the key set commitment ?base=HEX (its key set root, or
// its key set digest in logs made before the root) to the latest bundle
// (docs/bundle.md). 404 when the log does not hold that key set any more:
// the user agent then fetches the full bundle.
func (h *Handler) ServeDelta(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	old, err := strconv.ParseUint(q.Get("old"), 10, 64)
	if err != nil || old == 0 {
		h.error(w, DeltaPath, http.StatusBadRequest, fmt.Sprintf("old=%q is not a tree size (a positive decimal)", q.Get("old")))
		return
	}
	base := q.Get("base")
	if len(base) != 64 || strings.ToLower(base) != base {
		h.error(w, DeltaPath, http.StatusBadRequest, fmt.Sprintf("base=%q is not a key set commitment (64 lower-case hex digits)", base))
		return
	}
	if _, err := hex.DecodeString(base); err != nil {
		h.error(w, DeltaPath, http.StatusBadRequest, fmt.Sprintf("base=%q is not a key set commitment (64 lower-case hex digits)", base))
		return
	}
	note, err := h.src.Checkpoint(r.Context())
	if errors.Is(err, ErrNotLogged) {
		h.error(w, DeltaPath, http.StatusNotFound, "the log has no checkpoint yet")
		return
	}
	if err != nil {
		h.fail(w, DeltaPath, http.StatusServiceUnavailable, "couldn't read the checkpoint", err)
		return
	}
	c, err := h.latest(r, note)
	if errors.Is(err, ErrSnapshotPending) {
		h.mu.Lock()
		c = h.cache
		h.mu.Unlock()
		if c != nil {
			err = nil
		}
	}
	if err != nil {
		if errors.Is(err, ErrNotLogged) || errors.Is(err, ErrSnapshotPending) {
			h.error(w, DeltaPath, http.StatusNotFound, "the log has no cosigned snapshot yet")
			return
		}
		h.fail(w, DeltaPath, http.StatusInternalServerError, "couldn't build the delta", err)
		return
	}
	d, code, msg, f := h.delta(r, c, old, base)
	if f != nil {
		h.fail(w, DeltaPath, f.code, f.msg, f.err, f.attrs...)
		return
	}
	if d == nil {
		h.error(w, DeltaPath, code, msg)
		return
	}
	w.Header().Set("Content-Type", DeltaContentType)
	w.Header().Set("Cache-Control", h.maxAge)
	w.Header().Set("ETag", d.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && match == d.etag {
		h.requests.WithLabelValues(DeltaPath, "304").Inc()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(d.raw)))
	h.requests.WithLabelValues(DeltaPath, "200").Inc()
	_, _ = w.Write(d.raw)
}

// delta returns the (cached) delta from (old, base) to c, or a 4xx status
// and message, or a 5xx failure.
func (h *Handler) delta(r *http.Request, c *cached, old uint64, base string) (*cached, int, string, *failure) {
	next := *c.bundle
	cp, err := verify.ParseCheckpoint(next.Checkpoint)
	if err != nil {
		return nil, 0, "", &failure{http.StatusInternalServerError, "couldn't parse the checkpoint", err, nil}
	}
	if old > cp.Size {
		return nil, http.StatusBadRequest, fmt.Sprintf("old=%d is beyond the checkpoint's tree size %d", old, cp.Size), nil
	}
	key := strconv.FormatUint(old, 10) + "/" + base
	h.mu.Lock()
	var b *verify.Bundle
	if c.commitment == base {
		b = c.bundle
	} else {
		b = h.recent[base]
	}
	d := h.deltas[key]
	h.mu.Unlock()
	if d != nil && bytes.Equal(d.note, c.note) {
		return d, 0, "", nil
	}
	if b == nil {
		// Not seen by this handler (the log restarted, or it is older
		// than maxRecent): the source may still hold it.
		index, entry, keySet, err := h.src.LatestSnapshot(r.Context(), old)
		var held string
		if err == nil {
			held, err = commitmentHex(entry)
		}
		if err == nil && held == base {
			if s, _ := verify.ParseSnapshotEntry(entry); s != nil {
				if ok, _ := s.CommitsTo(keySet); !ok {
					err = fmt.Errorf("key set stored for the snapshot at index %d is not the one it commits to", index)
				}
			}
		}
		switch {
		case err == nil && held == base:
			b = &verify.Bundle{KeySet: keySet, Entry: entry, Index: index}
		case err == nil, errors.Is(err, ErrNotLogged), errors.Is(err, ErrSnapshotPending):
		default:
			return nil, 0, "", &failure{http.StatusInternalServerError, "couldn't read the snapshot of the base", err, []any{"old", old, "base", base}}
		}
	}
	if b == nil {
		return nil, http.StatusNotFound, fmt.Sprintf("no delta from key set %s at tree size %d: the log no longer holds it; fetch %s", base, old, BundlePath), nil
	}
	if old < cp.Size {
		hashes, err := h.src.ConsistencyProof(r.Context(), old, cp.Size)
		if err != nil {
			return nil, 0, "", &failure{http.StatusInternalServerError, "couldn't build the consistency proof", err, []any{"old", old, "size", cp.Size}}
		}
		next.Consistency = &verify.ConsistencyProof{OldSize: old, Hashes: hashes}
	}
	dl, err := verify.MakeDelta(b, old, &next)
	if err != nil {
		return nil, 0, "", &failure{http.StatusInternalServerError, "couldn't build the delta", err, []any{"old", old, "base", base}}
	}
	raw, err := dl.Marshal()
	if err != nil {
		return nil, 0, "", &failure{http.StatusInternalServerError, "couldn't encode the delta", err, []any{"old", old, "base", base}}
	}
	d = newCached(c.note, raw, false)
	h.mu.Lock()
	if h.cache == c && len(h.deltas) < maxDeltas {
		h.deltas[key] = d
	}
	h.mu.Unlock()
	return d, 0, "", nil
}

func newCached(note, raw []byte, compress bool) *cached {
	sum := sha256.Sum256(raw)
	c := &cached{note: bytes.Clone(note), raw: raw, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	if compress {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(raw)
		if zw.Close() == nil {
			c.gz = buf.Bytes()
		}
	}
	return c
}

// AcceptsGzip reports whether r's Accept-Encoding accepts gzip (listed
// without a zero quality value, RFC 9110 section 12.5.3). The log's tile
// server uses it too.
func AcceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		k, v, ok := strings.Cut(strings.ReplaceAll(params, " ", ""), "=")
		if !ok || !strings.EqualFold(k, "q") {
			return true
		}
		if q, err := strconv.ParseFloat(v, 64); err == nil && q > 0 {
			return true
		}
	}
	return false
}

// ServeIssuerProof serves the C2SP tlog-proof of the latest key
// commitment entry of ?issuer=ORIGIN.
func (h *Handler) ServeIssuerProof(w http.ResponseWriter, r *http.Request) {
	issuer := r.URL.Query().Get("issuer")
	if issuer == "" {
		h.error(w, IssuerProofPath, http.StatusBadRequest, "missing ?issuer=<issuer origin>")
		return
	}
	p, err := BuildIssuerProof(r.Context(), h.src, issuer)
	if err != nil {
		if errors.Is(err, ErrNotLogged) {
			h.error(w, IssuerProofPath, http.StatusNotFound, fmt.Sprintf("no key commitment for issuer %q", issuer))
			return
		}
		h.fail(w, IssuerProofPath, http.StatusInternalServerError, "couldn't build the proof", err, "issuer", issuer)
		return
	}
	w.Header().Set("Content-Type", ProofContentType)
	w.Header().Set("Cache-Control", h.maxAge)
	w.Header().Set("Content-Length", strconv.Itoa(len(p)))
	h.requests.WithLabelValues(IssuerProofPath, "200").Inc()
	_, _ = w.Write(p)
}
