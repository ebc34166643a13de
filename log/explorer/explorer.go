// Package explorer serves the log's web explorer: server-rendered HTML
// pages (html/template, no JavaScript) for people to look at the log: its
// home (checkpoint, witnesses, policy, counts), the issuers (a searchable
// list; per issuer its registration, every commitment with its keys,
// rotations on a timeline, incident reports and what the policy allows
// next) and the entries (browsable by index, each decoded, with its raw
// bytes, leaf hash and an inclusion proof the explorer verifies against
// the log-signed checkpoint).
//
// Every page links its JSON twin in the log's API. Pages are bounded in
// size (lists are paginated), carry an ETag and a short Cache-Control,
// and every input is validated; all text from the log is escaped.
//
// The explorer reads the log through the small interfaces Log and Policy:
// storage.Reader is a Log, and *sequencer.Sequencer a Policy.
package explorer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/keycommit/keycommit/witness/quorum"
)

// Log is what the pages read from the log's storage (storage.Reader has
// these methods).
type Log interface {
	// Checkpoint and Cosigned return the latest log-signed and cosigned
	// checkpoints, or storage.ErrNotFound.
	Checkpoint(ctx context.Context) (size uint64, note []byte, err error)
	Cosigned(ctx context.Context) (size uint64, note []byte, err error)
	// Tile returns the widest stored data of hash tile n at level l.
	Tile(ctx context.Context, l int, n int64) ([]byte, error)
	// Entries returns the entries start ≤ i < end.
	Entries(ctx context.Context, start, end uint64) ([][]byte, error)
	// IssuerEntries returns the indexes of the issuer's entries.
	IssuerEntries(ctx context.Context, origin string) ([]uint64, error)
}

var _ Log = storage.Reader(nil)

// Policy is the log's policy engine (*sequencer.Sequencer has these
// methods): an issuer's status (what it may do next) and the parameters
// in force.
type Policy interface {
	Status(origin string) (*policy.IssuerStatus, bool)
	Params() schema.PolicyParams
}

// Config configures an Explorer.
type Config struct {
	// Log is read for every page. Required.
	Log Log
	// Verifier is the log's checkpoint key; proofs are verified against
	// checkpoints it signed. Required.
	Verifier c2sp.Verifier
	// VKey is the log's verifier key in C2SP vkey form, shown on the
	// home page for readers to configure their verifiers (optional).
	VKey string
	// Policy, when set, gives each issuer's next allowed rotation and the
	// parameters in force; without it the parameters come from the log's
	// latest policy_params entry.
	Policy Policy
	// Witnesses, when set, is the witness policy whose cosignatures the
	// home page checks.
	Witnesses *quorum.Policy
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Logger receives errors (default: discard).
	Logger *slog.Logger
	// PageSize is the number of rows on a list page (default 50, at most
	// 500).
	PageSize int
}

// Explorer is an http.Handler serving the pages at /, /issuers,
// /issuers/<origin>, /entries and /entries/<index>; any other path gets an
// HTML 404, so it can be mounted at / behind the API.
type Explorer struct {
	cfg   Config
	log   *slog.Logger
	dir   *directory
	mux   *http.ServeMux
	tmpl  *template.Template
	wvers []witnessVerifier
}

//go:embed templates/*.html
var templateFS embed.FS

// Page sizes of both explorers' list pages.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Defaults fills in the settings both explorers (this one and
// monitor/explorer) default the same way: the clock (time.Now), the
// logger (discard) and the page size (DefaultPageSize, at most
// MaxPageSize).
func Defaults(now *func() time.Time, logger **slog.Logger, pageSize *int) {
	if *now == nil {
		*now = time.Now
	}
	if *logger == nil {
		*logger = slog.New(slog.DiscardHandler)
	}
	if *pageSize <= 0 {
		*pageSize = DefaultPageSize
	}
	*pageSize = min(*pageSize, MaxPageSize)
}

// New returns an explorer.
func New(cfg Config) (*Explorer, error) {
	if cfg.Log == nil {
		return nil, errors.New("explorer config needs a Log")
	}
	if cfg.Verifier == nil {
		return nil, errors.New("explorer config needs the log's Verifier")
	}
	Defaults(&cfg.Now, &cfg.Logger, &cfg.PageSize)
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	wv, err := witnessVerifiers(cfg.Witnesses)
	if err != nil {
		return nil, err
	}
	e := &Explorer{cfg: cfg, log: cfg.Logger, dir: newDirectory(cfg.Log), mux: http.NewServeMux(), tmpl: t, wvers: wv}
	e.handle("GET /{$}", e.home)
	e.handle("GET /issuers", e.issuers)
	e.handle("GET /issuers/{origin...}", e.issuer)
	e.handle("GET /entries", e.entries)
	e.handle("GET /entries/{index}", e.entry)
	e.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/tile/") {
			// Mounted at / of the log's server: the API's unknown paths
			// still answer as the API does.
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(&api.Error{Error: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)})
			return
		}
		e.fail(w, r, errorf(http.StatusNotFound, "no such endpoint: %s %s (and no explorer page there)", r.Method, r.URL.Path))
	})
	return e, nil
}

// ServeHTTP implements http.Handler.
func (e *Explorer) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// pageError is an error with the status to answer.
type pageError struct {
	code int
	msg  string
}

func (p *pageError) Error() string { return p.msg }

func errorf(code int, format string, args ...any) error {
	return &pageError{code: code, msg: fmt.Sprintf(format, args...)}
}

// page is what every template gets.
type page struct {
	Title string
	// JSON are the page's twins in the log's API.
	JSON []link
	// Nav is the current section ("home", "issuers", "entries").
	Nav  string
	Data any
}

type link struct {
	Label, Href string
}

// maxAge is how long a page may be cached: the log grows, so briefly.
const maxAge = "public, max-age=10"

type pageFunc func(r *http.Request) (*page, error)

func (e *Explorer) handle(pattern string, f pageFunc) {
	e.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := f(r)
		var ja *jsonAnswer
		var rd *redirect
		switch {
		case errors.As(err, &ja):
			b, err := json.Marshal(ja.v)
			if err != nil {
				e.fail(w, r, err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Cache-Control", maxAge)
			w.Write(append(b, '\n'))
			return
		case errors.As(err, &rd):
			http.Redirect(w, r, rd.to, http.StatusSeeOther)
			return
		case err != nil:
			e.fail(w, r, err)
			return
		}
		e.render(w, r, http.StatusOK, p)
	})
}

func (e *Explorer) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	msg := "internal error"
	var pe *pageError
	switch {
	case errors.As(err, &pe):
		code, msg = pe.code, pe.msg
	case errors.Is(err, storage.ErrNotFound):
		code, msg = http.StatusNotFound, err.Error()
	default:
		id := httpguard.RequestID()
		msg = "internal error (request id " + id + ")"
		e.log.Error("explorer page failed", "path", r.URL.Path, "request_id", id, "err", err)
	}
	e.render(w, r, code, &page{Title: http.StatusText(code), Data: msg})
}

// render writes p with the headers every page has. The body is rendered
// in full first, so a template error becomes a 500 and the ETag is the
// body's hash.
func (e *Explorer) render(w http.ResponseWriter, r *http.Request, code int, p *page) {
	name := "error"
	if code == http.StatusOK {
		name = templateName(p)
	}
	var buf bytes.Buffer
	if err := e.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		id := httpguard.RequestID()
		e.log.Error("explorer template failed", "template", name, "request_id", id, "err", err)
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("<!doctype html><title>Internal error</title><p>internal error (request id " + id + ")</p>")
	}
	WriteHTML(w, r, code, buf.Bytes(), maxAge)
}

// WriteHTML answers with an HTML page: the security headers every
// explorer page carries (no sniffing, no referrer, no framing, a CSP that
// allows no script), and for a 200 an ETag, cacheControl and a 304 to a
// matching If-None-Match; other statuses are not cached. The monitor's
// page (monitor/explorer) writes through it too.
func WriteHTML(w http.ResponseWriter, r *http.Request, code int, body []byte, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	if code != http.StatusOK {
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		w.Write(body)
		return
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", etag)
	h.Set("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}

func templateName(p *page) string {
	switch p.Data.(type) {
	case *homeData:
		return "home"
	case *issuersData:
		return "issuers"
	case *issuerData:
		return "issuer"
	case *entriesData:
		return "entries"
	case *entryData:
		return "entry"
	}
	return "error"
}

// latest returns the latest log-signed checkpoint's size and note, and
// brings the directory up to it.
func (e *Explorer) latest(ctx context.Context) (uint64, []byte, error) {
	n, cp, err := e.cfg.Log.Checkpoint(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil, errorf(http.StatusServiceUnavailable, "the log has no checkpoint yet")
	}
	if err != nil {
		return 0, nil, err
	}
	if err := e.dir.update(ctx, n); err != nil {
		return 0, nil, err
	}
	return n, cp, nil
}
