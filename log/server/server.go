// Package server is the log's HTTP front, the one place its routes are
// mounted for every backend: the C2SP tlog-tiles read path (GET
// /checkpoint, /tile/<L>/<N>[.p/<W>], /tile/entries/<N>[.p/<W>]), JSON
// convenience endpoints (proofs, entries, issuers, key set, policy and
// its requirements for inclusion, also as a page, /v1/policy.html),
// submission and dry-run checks, the user agents' keys bundle and issuer
// proofs (log/bundle), Prometheus metrics, and any extra handlers the
// caller mounts (Config.Mount, e.g. a web explorer at /).
//
// New builds the handler; Start opens a log's writing side over a backend
// the caller opened (SQLite, Trillian, ...) and serves it on a listener.
//
// Bad input gets a 4xx with a JSON body naming the problem (see
// api.Error) and changes nothing.
package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/mod/sumdb/tlog"
)

// Log is the writing side the server needs: *sequencer.Sequencer.
type Log interface {
	Submit(ctx context.Context, sub *schema.Submission) (*sequencer.Result, error)
	Check(ctx context.Context, sub *schema.Submission) policy.Decision
	Status(origin string) (*policy.IssuerStatus, bool)
	Params() schema.PolicyParams
}

var _ Log = (*sequencer.Sequencer)(nil)

// Config configures a Server.
type Config struct {
	// Reader serves the read path. Required.
	Reader storage.Reader
	// Log serves submissions, checks, issuer status and policy; without
	// it those endpoints answer 503.
	Log Log
	// Logger receives request errors (default: discard).
	Logger *slog.Logger
	// Registerer receives the server's metrics (default: none).
	Registerer prometheus.Registerer
	// Gatherer, when set, is served at /metrics.
	Gatherer prometheus.Gatherer
	// MaxBodyBytes bounds POST bodies; it is at most (and by default)
	// schema.MaxSubmissionSize, the largest submission that can be
	// admitted. A larger Content-Length is refused before any byte is read.
	MaxBodyBytes int64
	// MaxInFlight bounds the requests each endpoint works on at once
	// (default 4096 for submit and check, the sequencer's default
	// MaxBatchSize, and 256 for each read endpoint); beyond it the server
	// answers 429 with Retry-After, before reading the body.
	MaxInFlight int
	// MaxBodyBudget bounds the bytes of request bodies submit and check
	// each hold at once (default 64 x MaxBodyBytes, about 4 MiB): a
	// request takes its Content-Length (MaxBodyBytes when none is
	// announced), at least 1 KiB, before its body is read, and gets 429
	// with Retry-After when that does not fit. So 4,096 honest
	// submissions of about 1 KiB are worked on together, a full batch,
	// but only 64 near-limit ones, each holding its body and its parsed
	// copies (about 0.5 MiB): memory stays bounded by the budget, not by
	// the number of clients.
	MaxBodyBudget int64
	// TileCacheSize is how many tiles (hash tiles and entry bundles, 8 KiB
	// to 16 MiB each for bundles of large entries) are cached in memory
	// (default 4096).
	TileCacheSize int
	// TreeCacheSize is how many hash tiles are kept with the hashes of
	// their subtrees for serving proofs (16 KiB each; default 2048).
	TreeCacheSize int
	// Mount holds extra handlers by http.ServeMux pattern, e.g. "/" for a
	// web explorer or "GET /debug/x". A "/" handler takes the place of the
	// JSON 404 answered for unknown paths; a pattern that conflicts with
	// one of the log's routes is an error.
	Mount map[string]http.Handler
}

// Server is an http.Handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	cache   *lru.Cache[tlog.Tile, []byte]
	gz      *lru.Cache[tlog.Tile, []byte] // gzipped entry bundles
	trees   *lru.Cache[tlog.Tile, *tileTree]
	metrics *metrics
}

// New returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Reader == nil {
		return nil, errors.New("server config needs a Reader")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 || cfg.MaxBodyBytes > int64(schema.MaxSubmissionSize) {
		cfg.MaxBodyBytes = int64(schema.MaxSubmissionSize)
	}
	if cfg.MaxBodyBudget <= 0 {
		cfg.MaxBodyBudget = 64 * cfg.MaxBodyBytes
	}
	if cfg.TileCacheSize <= 0 {
		cfg.TileCacheSize = 4096
	}
	if cfg.TreeCacheSize <= 0 {
		cfg.TreeCacheSize = 2048
	}
	c, err := lru.New[tlog.Tile, []byte](cfg.TileCacheSize)
	if err != nil {
		return nil, err
	}
	trees, err := lru.New[tlog.Tile, *tileTree](cfg.TreeCacheSize)
	if err != nil {
		return nil, err
	}
	gz, err := lru.New[tlog.Tile, []byte](64)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), cache: c, gz: gz, trees: trees, metrics: m}
	writes, reads := 4096, 256
	if cfg.MaxInFlight > 0 {
		writes, reads = cfg.MaxInFlight, cfg.MaxInFlight
	}
	s.handle("GET "+api.PathCheckpoint, "checkpoint", reads, s.checkpoint)
	s.handle("GET /tile/", "tile", reads, s.tile)
	s.handle("GET "+api.PathInclusionProof, "inclusion", reads, s.inclusion)
	s.handle("GET "+api.PathConsistencyProof, "consistency", reads, s.consistency)
	// Up to MaxEntriesPerRequest entries of up to 64 KiB each: fewer at once.
	s.handle("GET "+api.PathEntries, "entries", max(1, reads/16), s.entries)
	s.handle("GET "+api.PathIssuers+"{origin...}", "issuer", reads, s.issuer)
	s.handle("GET "+api.PathKeys, "keys", reads, s.keys)
	s.handle("GET "+api.PathPolicy, "policy", reads, s.policy)
	s.handle("GET "+api.PathPolicyPage, "policy_page", reads, s.policyHTML)
	s.handle("POST "+api.PathSubmit, "submit", writes, s.bodyBudget("submit", s.submit))
	s.handle("POST "+api.PathCheck, "check", writes, s.bodyBudget("check", s.check))
	s.handle("POST "+api.PathForward, "forward", forwardInFlight, s.budget("forward", forwardBudget, api.MaxForwardBytes, s.forward))
	bh, err := bundle.NewHandler(bundle.Config{Source: bundle.NewStorageSource(cfg.Reader), Logger: cfg.Logger, Registerer: cfg.Registerer})
	if err != nil {
		return nil, fmt.Errorf("couldn't set up the bundle endpoints: %w", err)
	}
	bh.Register(s.mux)
	s.mux.Handle("GET "+api.PathVersion, VersionHandler())
	s.mountMethodNotAllowed()
	if cfg.Gatherer != nil {
		s.mux.Handle("GET "+api.PathMetrics, promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	if _, ok := cfg.Mount["/"]; !ok {
		s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s %s", r.Method, r.URL.Path))
		})
	}
	patterns := make([]string, 0, len(cfg.Mount))
	for p := range cfg.Mount {
		patterns = append(patterns, p)
	}
	sort.Strings(patterns)
	for _, p := range patterns {
		if err := mount(s.mux, p, cfg.Mount[p]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// mount registers h at pattern, turning ServeMux's panic on a bad or
// conflicting pattern into an error.
func mount(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	if h == nil {
		return fmt.Errorf("server config: Mount[%q] is nil", pattern)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("server config: can't mount %q: %v", pattern, r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, issuerPath(r))
}

// NewHTTPServer returns an http.Server for h with the timeouts a public
// log needs.
func NewHTTPServer(addr string, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr: addr, Handler: h,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// httpError is an error with the status to answer.
type httpError struct {
	code int
	err  error
	body *api.Error
}

func (e *httpError) Error() string { return e.err.Error() }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, err: fmt.Errorf(format, args...)}
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle mounts h at pattern under the metrics name, with a limiter of
// inFlight slots (429 beyond it).
func (s *Server) handle(pattern, name string, inFlight int, h handlerFunc) {
	lim := httpguard.NewLimiter(inFlight)
	s.metrics.inFlightLimit.WithLabelValues(name).Set(float64(inFlight))
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		release, ok := lim.TryAcquire()
		if !ok {
			httpguard.TooMany(w)
			writeError(w, http.StatusTooManyRequests, fmt.Errorf("too many %s requests in flight; retry after %d s", name, httpguard.RetryAfterSeconds))
			s.metrics.requests.WithLabelValues(name, strconv.Itoa(http.StatusTooManyRequests)).Inc()
			return
		}
		err := h(w, r)
		release()
		code := http.StatusOK
		if err != nil {
			var body *api.Error
			code, body = s.errorAnswer(name, r.URL.Path, err)
			api.WriteError(w, code, body)
		}
		s.metrics.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
		s.metrics.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	})
}

// errorAnswer is the status and body answering err, a handler's error.
// An error the server does not name on purpose stays in its log (it may
// name files, addresses or database state) under a request id.
func (s *Server) errorAnswer(name, path string, err error) (int, *api.Error) {
	var he *httpError
	switch {
	case errors.As(err, &he) && he.code >= 500:
		// A state the server names on purpose (shutting down,
		// read-only, its clock): that message and a request id.
		id := httpguard.RequestID()
		s.log.Warn("request refused", "handler", name, "path", path, "status", he.code, "request_id", id, "err", he.err)
		return he.code, &api.Error{Error: fmt.Sprintf("%v (request id %s)", he.err, id)}
	case errors.As(err, &he):
		if he.body != nil {
			return he.code, he.body
		}
		return he.code, &api.Error{Error: he.err.Error()}
	case errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound, &api.Error{Error: err.Error()}
	default:
		id := httpguard.RequestID()
		s.log.Error("request failed", "handler", name, "path", path, "request_id", id, "err", err)
		return http.StatusInternalServerError, &api.Error{Error: fmt.Sprintf("internal error (request id %s)", id)}
	}
}

// minRequestCost is what a request takes from an endpoint's body budget
// at the least: what it holds besides its body.
const minRequestCost = 1 << 10

// bodyBudget serves h within a budget of Config.MaxBodyBudget bytes of
// request bodies (429 with Retry-After beyond it, before the body is
// read).
func (s *Server) bodyBudget(name string, h handlerFunc) handlerFunc {
	return s.budget(name, s.cfg.MaxBodyBudget, s.cfg.MaxBodyBytes, h)
}

// budget serves h within a budget of capacity bytes of request bodies of
// at most maxBody bytes each (see bodyBudget).
func (s *Server) budget(name string, capacity, maxBody int64, h handlerFunc) handlerFunc {
	b := httpguard.NewBudget(capacity, minRequestCost)
	s.metrics.bodyBudget.WithLabelValues(name).Set(float64(b.Capacity()))
	return func(w http.ResponseWriter, r *http.Request) error {
		release, ok := b.TryAcquire(r, maxBody)
		if !ok {
			httpguard.TooMany(w)
			return errorf(http.StatusTooManyRequests, "too many %s request bytes in flight; retry after %d s", name, httpguard.RetryAfterSeconds)
		}
		defer release()
		return h(w, r)
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	api.WriteError(w, code, &api.Error{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"couldn't encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// size returns the size and note of the latest log-signed checkpoint.
func (s *Server) size(ctx context.Context) (uint64, []byte, error) {
	n, cp, err := s.cfg.Reader.Checkpoint(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil, errorf(http.StatusServiceUnavailable, "the log has no checkpoint yet")
	}
	return n, cp, err
}

func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) error {
	n, cp, err := s.size(r.Context())
	if err != nil {
		return err
	}
	// Prefer the cosigned checkpoint when it is of the latest size.
	if cn, cos, err := s.cfg.Reader.Cosigned(r.Context()); err == nil && cn == n {
		cp = cos
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp)
	return nil
}

// readTile returns exactly t.W hashes of hash tile t, through the cache.
func (s *Server) readTile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	t.H = tiles.Height
	if d, ok := s.cache.Get(t); ok {
		return d, nil
	}
	d, err := s.cfg.Reader.Tile(ctx, t.L, t.N)
	if err != nil {
		return nil, err
	}
	if len(d) < t.W*tlog.HashSize {
		return nil, fmt.Errorf("tile %s: %w", tiles.Path(t), storage.ErrNotFound)
	}
	d = d[:t.W*tlog.HashSize]
	s.cache.Add(t, d)
	return d, nil
}

func (s *Server) readBundle(ctx context.Context, t tlog.Tile) ([]byte, error) {
	if d, ok := s.cache.Get(t); ok {
		return d, nil
	}
	start := uint64(t.N) << tiles.Height
	es, err := s.cfg.Reader.Entries(ctx, start, start+uint64(t.W))
	if err != nil {
		return nil, err
	}
	b, err := c2sp.AppendEntryBundle(nil, es)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode entry bundle %s: %w", tiles.Path(t), err)
	}
	s.cache.Add(t, b)
	return b, nil
}

func (s *Server) tile(w http.ResponseWriter, r *http.Request) error {
	t, err := tiles.ParsePath(r.URL.Path)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	n, _, err := s.size(r.Context())
	if err != nil {
		return err
	}
	if !tiles.InTree(t, int64(n)) {
		return errorf(http.StatusNotFound, "tile %s is out of range: the tree has %d entries", tiles.Path(t), n)
	}
	var d []byte
	if t.L == tiles.EntriesLevel {
		d, err = s.readBundle(r.Context(), t)
	} else {
		d, err = s.readTile(r.Context(), t)
	}
	if err != nil {
		return err
	}
	s.writeTile(w, r, t, d)
	return nil
}

// hashReader reads hashes of the tree of the given size. It always reads
// each tile at its width in that tree (full, except on the right edge), so
// that the caches hold one version of each tile.
func (s *Server) hashReader(ctx context.Context, size uint64) tlog.HashReader {
	return treeHashReader{s: s, ctx: ctx, size: int64(size)}
}

func parseUint(q url.Values, name string) (uint64, bool, error) {
	v := q.Get(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, false, errorf(http.StatusBadRequest, "parameter %s=%q is not a non-negative integer", name, v)
	}
	return n, true, nil
}

func hashesJSON(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func (s *Server) inclusion(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	latest, cp, err := s.size(ctx)
	if err != nil {
		return err
	}
	size, hasSize, err := parseUint(q, "size")
	if err != nil {
		return err
	}
	if !hasSize {
		size = latest
	}
	if size > latest {
		return errorf(http.StatusNotFound, "tree size %d is beyond the latest checkpoint's %d", size, latest)
	}
	idx, hasIndex, err := parseUint(q, "index")
	if err != nil {
		return err
	}
	var leaf tlog.Hash
	switch hv := q.Get("hash"); {
	case hasIndex && hv != "":
		return errorf(http.StatusBadRequest, "give index or hash, not both")
	case hv != "":
		h, err := base64.StdEncoding.Strict().DecodeString(hv)
		if err != nil || len(h) != tlog.HashSize {
			return errorf(http.StatusBadRequest, "hash %q is not a 32-byte leaf hash in standard base64", hv)
		}
		copy(leaf[:], h)
		if idx, err = s.cfg.Reader.LeafIndex(ctx, leaf); err != nil {
			return err
		}
		if idx >= size {
			return errorf(http.StatusNotFound, "the entry with that leaf hash is at index %d, not in the tree of size %d", idx, size)
		}
	case hasIndex:
		if idx >= size {
			return errorf(http.StatusNotFound, "index %d is not in the tree of size %d", idx, size)
		}
		// The leaf hash is in the level-0 tile the proof reads anyway.
		hs, err := s.hashReader(ctx, size).ReadHashes([]int64{tlog.StoredHashIndex(0, int64(idx))})
		if err != nil {
			return fmt.Errorf("couldn't read the leaf hash of entry %d: %w", idx, err)
		}
		leaf = hs[0]
	default:
		return errorf(http.StatusBadRequest, "missing parameter index or hash")
	}
	p, err := tlog.ProveRecord(int64(size), int64(idx), s.hashReader(ctx, size))
	if err != nil {
		return fmt.Errorf("couldn't prove inclusion of %d in %d: %w", idx, size, err)
	}
	res := &api.InclusionProof{Index: idx, TreeSize: size, LeafHash: leaf[:], Proof: hashesJSON(p)}
	if size == latest {
		res.Checkpoint = string(cp)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) consistency(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	latest, _, err := s.size(ctx)
	if err != nil {
		return err
	}
	old, ok1, err := parseUint(q, "old")
	if err != nil {
		return err
	}
	nw, ok2, err := parseUint(q, "new")
	if err != nil {
		return err
	}
	if !ok1 || !ok2 {
		return errorf(http.StatusBadRequest, "missing parameter old or new")
	}
	if old > nw {
		return errorf(http.StatusBadRequest, "old size %d is larger than new size %d", old, nw)
	}
	if nw > latest {
		return errorf(http.StatusNotFound, "new size %d is beyond the latest checkpoint's %d", nw, latest)
	}
	var p tlog.TreeProof
	if old > 0 {
		if p, err = tlog.ProveTree(int64(nw), int64(old), s.hashReader(ctx, nw)); err != nil {
			return fmt.Errorf("couldn't prove consistency of %d with %d: %w", old, nw, err)
		}
	}
	writeJSON(w, http.StatusOK, &api.ConsistencyProof{Old: old, New: nw, Proof: hashesJSON(p)})
	return nil
}

func (s *Server) entries(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	start, ok1, err := parseUint(q, "start")
	if err != nil {
		return err
	}
	end, ok2, err := parseUint(q, "end")
	if err != nil {
		return err
	}
	if !ok1 || !ok2 {
		return errorf(http.StatusBadRequest, "missing parameter start or end")
	}
	if start >= end {
		return errorf(http.StatusBadRequest, "start %d is not below end %d", start, end)
	}
	if end-start > api.MaxEntriesPerRequest {
		return errorf(http.StatusBadRequest, "range [%d, %d) has over %d entries", start, end, api.MaxEntriesPerRequest)
	}
	latest, _, err := s.size(ctx)
	if err != nil {
		return err
	}
	if end > latest {
		return errorf(http.StatusNotFound, "end %d is beyond the tree of size %d", end, latest)
	}
	es, err := s.cfg.Reader.Entries(ctx, start, end)
	if err != nil {
		return err
	}
	if end < latest {
		// The cursor is start: the next page starts at this page's end.
		q := url.Values{"start": {strconv.FormatUint(end, 10)}, "end": {strconv.FormatUint(min(latest, 2*end-start), 10)}}
		w.Header().Set("Link", "<"+api.PathEntries+"?"+q.Encode()+`>; rel="next"`)
	}
	res := &api.Entries{Entries: make([]api.Entry, len(es))}
	for i, e := range es {
		h := tiles.LeafHash(e)
		res.Entries[i] = api.Entry{Index: start + uint64(i), LeafHash: h[:], Data: e}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) needLog() error {
	if s.cfg.Log == nil {
		return errorf(http.StatusServiceUnavailable, "this server is read-only")
	}
	return nil
}

func (s *Server) issuer(w http.ResponseWriter, r *http.Request) error {
	if err := s.needLog(); err != nil {
		return err
	}
	raw := r.PathValue("origin")
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	origin, err := schema.NormalizeOrigin(raw)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	st, ok := s.cfg.Log.Status(origin)
	if !ok {
		return errorf(http.StatusNotFound, "issuer %s is not registered", origin)
	}
	after, limit, err := issuerPage(r)
	if err != nil {
		return err
	}
	idx, err := s.cfg.Reader.IssuerEntries(r.Context(), origin)
	if err != nil {
		return err
	}
	// The status may include a batch not yet durable; list only what is.
	if after != nil {
		idx = idx[sort.Search(len(idx), func(i int) bool { return idx[i] > *after }):]
	}
	if len(idx) > limit {
		idx = idx[:limit]
		httpguard.SetNext(w, r, strconv.FormatUint(idx[limit-1], 10))
	}
	if idx == nil {
		idx = []uint64{}
	}
	writeJSON(w, http.StatusOK, &api.Issuer{Status: st, Entries: idx})
	return nil
}

// issuerPage reads the page of GET /v1/issuers/<origin> (api.Issuer):
// ?after, an entry index (nil without it), and ?limit.
func issuerPage(r *http.Request) (*uint64, int, error) {
	q := r.URL.Query()
	limit := api.DefaultIssuerEntriesPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > api.MaxIssuerEntriesPage {
			return nil, 0, errorf(http.StatusBadRequest, "limit=%q: want an integer from 1 to %d", v, api.MaxIssuerEntriesPage)
		}
		limit = n
	}
	if !q.Has("after") {
		return nil, limit, nil
	}
	a, err := strconv.ParseUint(q.Get("after"), 10, 64)
	if err != nil {
		return nil, 0, errorf(http.StatusBadRequest, "after=%q: want the index of the last entry of the previous page", q.Get("after"))
	}
	return &a, limit, nil
}

func (s *Server) keys(w http.ResponseWriter, r *http.Request) error {
	ks, err := s.cfg.Reader.KeySet(r.Context())
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(http.StatusNotFound, "no snapshot has been logged yet")
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(api.HeaderSnapshotIndex, strconv.FormatUint(ks.Index, 10))
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(ks.Data)
	return nil
}

func (s *Server) readSubmission(w http.ResponseWriter, r *http.Request) (*schema.Submission, error) {
	if err := s.needLog(); err != nil {
		return nil, err
	}
	// The size bound comes before any parsing or signature check.
	body, err := httpguard.ReadBody(w, r, s.cfg.MaxBodyBytes)
	if errors.Is(err, httpguard.ErrTooLarge) {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body is over the limit of %d bytes (the largest submission whose entry fits in %d bytes)", s.cfg.MaxBodyBytes, schema.MaxEntrySize)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "couldn't read request body: %v", err)
	}
	sub, err := schema.ParseSubmission(body)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	return sub, nil
}

// clockRetryAfter is the Retry-After, in seconds, of a submission refused
// because of the log's clock.
const clockRetryAfter = 60

func (s *Server) submit(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.readSubmission(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if r.Header.Get(ForwardedHeader) != "" {
		ctx = context.WithValue(ctx, forwardedKey{}, true)
	}
	res, err := s.cfg.Log.Submit(ctx, sub)
	if err != nil {
		retryAfter, err := s.submitError(err)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		return err
	}
	writeJSON(w, http.StatusOK, &api.SubmitResult{
		Index: res.Index, TreeSize: res.Size, LeafHash: res.LeafHash[:], Entry: res.Entry,
		InclusionProof: hashesJSON(res.Proof), Checkpoint: string(res.Checkpoint),
	})
	return nil
}

// submitError is the answer to a submission the Log did not take (err
// from Log.Submit): the error to return and the Retry-After to send with
// it ("" for none).
func (s *Server) submitError(err error) (string, error) {
	var re *policy.RejectError
	var ce *sequencer.ClockError
	switch {
	case errors.As(err, &re):
		s.metrics.rejections.WithLabelValues(re.Rule).Inc()
		return "", &httpError{code: http.StatusUnprocessableEntity, err: re, body: &api.Error{Error: re.Error(), Rule: re.Rule, Reason: re.Reason}}
	case errors.Is(err, sequencer.ErrClosed):
		return "", errorf(http.StatusServiceUnavailable, "the log is shutting down")
	case errors.Is(err, ErrUnavailable):
		return "1", errorf(http.StatusServiceUnavailable, "%s", err)
	case errors.As(err, &ce):
		// The operator must fix the clock, or the witnesses' next
		// cosignatures must vouch for it (docs/time.md).
		return strconv.Itoa(clockRetryAfter), &httpError{code: http.StatusServiceUnavailable, err: ce}
	}
	return "", err
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.readSubmission(w, r)
	if err != nil {
		return err
	}
	d := s.cfg.Log.Check(r.Context(), sub)
	writeJSON(w, http.StatusOK, &api.CheckResult{Accept: d.Accept, Rule: d.Rule, Reason: d.Reason})
	return nil
}
