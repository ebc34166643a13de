// Package explorer serves the monitor's web page at /: the logs it
// follows and how far replay has got, its alerts (filterable by kind and
// issuer, paginated), split-view, time and cross-log evidence with download links, and the
// peers and witnesses it gossips with and when it last heard from each.
// Server-rendered with html/template, no JavaScript; every section links
// its JSON twin in the monitor's API; input is validated and all text
// escaped.
//
// It reads the monitor through the small interface Monitor, which
// *monitor.Monitor implements.
package explorer

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	page "github.com/keycommit/keycommit/log/explorer"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/monitor"
)

// Monitor is what the page reads (*monitor.Monitor has these methods).
// Every list is read one bounded page at a time, and totals come from
// counts, so a request's memory does not grow with the store.
type Monitor interface {
	Status() []monitor.LogStatus
	AlertsPage(ctx context.Context, f monitor.AlertFilter, offset, limit int) ([]monitor.Alert, error)
	AlertCount(ctx context.Context, f monitor.AlertFilter) (int, error)
	EvidencePage(ctx context.Context, after string, limit int) ([]monitor.EvidenceInfo, error)
	EvidenceCount(ctx context.Context) (int, error)
	Gossip() []monitor.GossipStatus
	WatchesPage(ctx context.Context, after string, limit int) ([]string, error)
	WatchCount(ctx context.Context) (int, error)
}

var _ Monitor = (*monitor.Monitor)(nil)

// Config configures an Explorer.
type Config struct {
	// Monitor is read for every page. Required.
	Monitor Monitor
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Logger receives errors (default: discard).
	Logger *slog.Logger
	// PageSize is the number of alerts on a page, and of evidence
	// entries and watches shown (default 50, at most 500); the rest of
	// those two lists are in their paginated JSON twins.
	PageSize int
}

// Explorer is an http.Handler for GET / (mount it with the pattern
// "GET /{$}" beside the monitor's Handler).
type Explorer struct {
	cfg  Config
	tmpl *template.Template
}

//go:embed page.html
var pageHTML string

// New returns an explorer.
func New(cfg Config) (*Explorer, error) {
	if cfg.Monitor == nil {
		return nil, errors.New("monitor explorer config needs a Monitor")
	}
	page.Defaults(&cfg.Now, &cfg.Logger, &cfg.PageSize)
	t, err := template.New("page").Funcs(template.FuncMap{
		"date": page.Date,
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return page.Ago(cfg.Now(), t)
		},
		"hexOrigin": func(o string) string { s := sha256.Sum256([]byte(o)); return hex.EncodeToString(s[:]) },
		"dec":       func(n int) int { return n - 1 },
	}).Parse(pageHTML)
	if err != nil {
		return nil, err
	}
	return &Explorer{cfg: cfg, tmpl: t}, nil
}

type logRow struct {
	monitor.LogStatus
	Percent string
}

type data struct {
	Logs     []logRow
	Alerts   []monitor.Alert
	Total    int // alerts matching the filter
	All      int // alerts stored
	Kinds    []string
	Kind     string
	Issuer   string
	Prev     string
	Next     string
	JSON     string
	Evidence []monitor.EvidenceInfo
	EvTotal  int // evidence bundles stored
	Gossip   []monitor.GossipStatus
	Watches  []string
	WTotal   int // watches stored
	Error    string
}

const maxIssuer = 300

// ServeHTTP implements http.Handler.
func (e *Explorer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		e.render(w, r, http.StatusMethodNotAllowed, &data{Error: "only GET"})
		return
	}
	q := r.URL.Query()
	d := &data{Kind: q.Get("kind"), Issuer: strings.TrimSpace(q.Get("issuer"))}
	if d.Kind != "" && !slices.Contains(kinds, d.Kind) {
		e.render(w, r, http.StatusBadRequest, &data{Error: fmt.Sprintf("unknown alert kind %q", page.Truncate(d.Kind, 40))})
		return
	}
	if len(d.Issuer) > maxIssuer || !utf8.ValidString(d.Issuer) || strings.IndexFunc(d.Issuer, unicode.IsControl) >= 0 {
		e.render(w, r, http.StatusBadRequest, &data{Error: fmt.Sprintf("issuer must be at most %d printable characters", maxIssuer)})
		return
	}
	pg := 0
	if v := q.Get("page"); v != "" {
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			e.render(w, r, http.StatusBadRequest, &data{Error: fmt.Sprintf("page %q is not a page number", page.Truncate(v, 40))})
			return
		}
		pg = int(n)
	}
	ctx := r.Context()
	ps := e.cfg.PageSize
	f := monitor.AlertFilter{Kind: d.Kind, Issuer: d.Issuer}
	var err error
	if d.Alerts, err = e.cfg.Monitor.AlertsPage(ctx, f, pg*ps, ps); err != nil {
		e.fail(w, r, err)
		return
	}
	if d.Total, err = e.cfg.Monitor.AlertCount(ctx, f); err != nil {
		e.fail(w, r, err)
		return
	}
	d.All, d.Kinds = d.Total, kinds
	if f != (monitor.AlertFilter{}) {
		if d.All, err = e.cfg.Monitor.AlertCount(ctx, monitor.AlertFilter{}); err != nil {
			e.fail(w, r, err)
			return
		}
	}
	link := func(p int, format string) string {
		v := url.Values{}
		if d.Kind != "" {
			v.Set("kind", d.Kind)
		}
		if d.Issuer != "" {
			v.Set("issuer", d.Issuer)
		}
		if p > 0 {
			v.Set("page", strconv.Itoa(p))
		}
		if format != "" {
			v.Set("format", format)
		}
		if len(v) == 0 {
			return "/"
		}
		return "/?" + v.Encode()
	}
	if pg > 0 {
		d.Prev = link(pg-1, "")
	}
	if pg*ps+len(d.Alerts) < d.Total {
		d.Next = link(pg+1, "")
	}
	d.JSON = link(pg, "json")
	if q.Get("format") == "json" {
		b, _ := json.Marshal(map[string]any{"alerts": d.Alerts, "total": d.Total})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(append(b, '\n'))
		return
	}
	for _, s := range e.cfg.Monitor.Status() {
		row := logRow{LogStatus: s}
		if s.AnchorSize > 0 {
			row.Percent = strconv.FormatFloat(100*float64(s.Position)/float64(s.AnchorSize), 'f', 1, 64)
		}
		d.Logs = append(d.Logs, row)
	}
	if d.Evidence, err = e.cfg.Monitor.EvidencePage(ctx, "", ps); err != nil {
		e.fail(w, r, err)
		return
	}
	if d.EvTotal, err = e.cfg.Monitor.EvidenceCount(ctx); err != nil {
		e.fail(w, r, err)
		return
	}
	d.Gossip = e.cfg.Monitor.Gossip()
	if d.Watches, err = e.cfg.Monitor.WatchesPage(ctx, "", ps); err != nil {
		e.fail(w, r, err)
		return
	}
	if d.WTotal, err = e.cfg.Monitor.WatchCount(ctx); err != nil {
		e.fail(w, r, err)
		return
	}
	e.render(w, r, http.StatusOK, d)
}

var kinds = []string{monitor.KindPolicy, monitor.KindSnapshot, monitor.KindTimestamp, monitor.KindNonCanonical,
	monitor.KindMalformed, monitor.KindInclusion, monitor.KindCheckpoint, monitor.KindSplitView,
	monitor.KindTime, monitor.KindKeyChange, monitor.KindAccountKeyChange, monitor.KindReclaim}

func (e *Explorer) fail(w http.ResponseWriter, r *http.Request, err error) {
	id := httpguard.RequestID()
	e.cfg.Logger.Error("monitor explorer failed", "request_id", id, "err", err)
	e.render(w, r, http.StatusInternalServerError, &data{Error: "internal error (request id " + id + ")"})
}

func (e *Explorer) render(w http.ResponseWriter, r *http.Request, code int, d *data) {
	var buf bytes.Buffer
	if err := e.tmpl.Execute(&buf, d); err != nil {
		id := httpguard.RequestID()
		e.cfg.Logger.Error("monitor explorer template failed", "request_id", id, "err", err)
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("<!doctype html><title>Internal error</title><p>internal error (request id " + id + ")</p>")
	}
	page.WriteHTML(w, r, code, buf.Bytes(), "public, max-age=5")
}
