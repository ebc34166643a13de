package explorer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// maxQuery bounds the issuer search text.
const maxQuery = 200

// maxIssuerEntries bounds the entries shown on one issuer page.
const maxIssuerEntries = 200

// IssuerPath returns the explorer path of an issuer's page: like the API,
// an https origin is written without its scheme.
func IssuerPath(origin string) string { return "/issuers/" + originPathPart(origin) }

func originPathPart(origin string) string {
	if rest, ok := strings.CutPrefix(origin, "https://"); ok {
		return url.PathEscape(rest)
	}
	return url.PathEscape(origin)
}

// parseOrigin validates an origin from a URL path, as the API does.
func parseOrigin(raw string) (string, error) {
	if raw == "" || len(raw) > 300 || !utf8.ValidString(raw) {
		return "", errorf(http.StatusBadRequest, "an issuer origin is 1 to 300 characters of UTF-8")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	o, err := schema.NormalizeOrigin(raw)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "%v", err)
	}
	return o, nil
}

// parseIndex parses a non-negative decimal parameter.
func parseIndex(name, v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "%s %q is not a non-negative integer", name, Truncate(v, 40))
	}
	return n, nil
}

// Truncate cuts s to at most n bytes, on a rune boundary, marking the cut
// with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// ---- home

type homeData struct {
	Origin     string
	VKey       string
	Size       uint64
	Root       string
	Time       time.Time // of the newest entry, if any
	Age        string
	Checkpoint string
	Witnesses  *witnessView
	Params     *schema.PolicyParams
	Stats      stats
	Year       int
	Recent     []entryRow
}

func (e *Explorer) home(r *http.Request) (*page, error) {
	ctx := r.Context()
	n, note, err := e.latest(ctx)
	if err != nil {
		return nil, err
	}
	cp, _, err := checkpoint.Open(note, e.cfg.Verifier)
	if err != nil {
		return nil, fmt.Errorf("the stored checkpoint does not verify with the log key: %w", err)
	}
	now := e.cfg.Now()
	y := time.Date(now.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	d := &homeData{Origin: cp.Origin, VKey: e.cfg.VKey, Size: n, Root: base64.StdEncoding.EncodeToString(cp.Hash[:]),
		Checkpoint: string(note), Stats: e.dir.stats(y.UnixMilli()), Year: now.Year()}
	if e.cfg.Policy != nil {
		p := e.cfg.Policy.Params()
		d.Params = &p
	} else {
		d.Params = d.Stats.Params
	}
	if d.Witnesses, err = e.witnesses(ctx, n, now); err != nil {
		return nil, err
	}
	if n > 0 {
		start := n - min(n, 10)
		rows, err := e.entryRows(ctx, start, n)
		if err != nil {
			return nil, err
		}
		for i := len(rows) - 1; i >= 0; i-- {
			d.Recent = append(d.Recent, rows[i])
		}
		if len(d.Recent) > 0 {
			d.Time = d.Recent[0].Time
			d.Age = Ago(now, d.Time)
		}
	}
	return &page{Title: cp.Origin, Nav: "home", Data: d, JSON: []link{
		{"checkpoint", api.PathCheckpoint}, {"policy", api.PathPolicy}, {"key set", api.PathKeys},
	}}, nil
}

// ---- issuer list

type issuersData struct {
	Query   string
	Page    int
	Issuers []issuerSummary
	Prev    string
	Next    string
	Total   int
}

func (e *Explorer) issuers(r *http.Request) (*page, error) {
	q := r.URL.Query()
	text := strings.TrimSpace(q.Get("q"))
	if len(text) > maxQuery || !utf8.ValidString(text) || strings.IndexFunc(text, unicode.IsControl) >= 0 {
		return nil, errorf(http.StatusBadRequest, "search text must be at most %d printable characters", maxQuery)
	}
	pg := 0
	if v := q.Get("page"); v != "" {
		n, err := parseIndex("page", v)
		if err != nil || n > 1_000_000 {
			return nil, errorf(http.StatusBadRequest, "page %q is not a page number", Truncate(v, 40))
		}
		pg = int(n)
	}
	if _, _, err := e.latest(r.Context()); err != nil {
		return nil, err
	}
	size := e.cfg.PageSize
	list, more := e.dir.search(text, pg*size, size)
	d := &issuersData{Query: text, Page: pg, Issuers: list, Total: e.dir.stats(0).Issuers}
	pageURL := func(p int) string {
		v := url.Values{}
		if text != "" {
			v.Set("q", text)
		}
		if p > 0 {
			v.Set("page", strconv.Itoa(p))
		}
		if len(v) == 0 {
			return "/issuers"
		}
		return "/issuers?" + v.Encode()
	}
	if pg > 0 {
		d.Prev = pageURL(pg - 1)
	}
	if more {
		d.Next = pageURL(pg + 1)
	}
	if q.Get("format") == "json" {
		return nil, &jsonAnswer{v: d}
	}
	js := pageURL(pg)
	if strings.Contains(js, "?") {
		js += "&format=json"
	} else {
		js += "?format=json"
	}
	title := "Issuers"
	if text != "" {
		title = "Issuers matching " + text
	}
	return &page{Title: title, Nav: "issuers", Data: d, JSON: []link{{"this list", js}}}, nil
}

// jsonAnswer is returned by a page that answers JSON instead (the issuer
// list's twin, which the API does not have).
type jsonAnswer struct{ v any }

func (j *jsonAnswer) Error() string { return "json" }

// ---- issuer page

type issuerData struct {
	Origin      string
	Summary     issuerSummary
	Status      *policy.IssuerStatus
	Now         time.Time
	Commitments []commitmentRow
	Reports     []reportView
	Entries     []entryRow
	Timeline    *timeline
	Older       bool // entries before those shown exist
	Shown       int
	Total       int
	PolicyNote  string
}

type commitmentRow struct {
	Index     uint64
	Time      time.Time
	Keys      []keyView
	Added     int
	Rotation  bool
	DaysSince string // days since the previous rotation
	Emergency bool
	Err       string
}

type keyView struct {
	ID       string
	Short    string
	Protocol string
	Label    string
	Expiry   string
}

type reportView struct {
	Index     uint64
	Final     bool
	Emergency uint64 // index of the emergency commitment
	Time      time.Time
	Report    schema.IncidentReport
}

func (e *Explorer) issuer(r *http.Request) (*page, error) {
	ctx := r.Context()
	origin, err := parseOrigin(r.PathValue("origin"))
	if err != nil {
		return nil, err
	}
	size, _, err := e.latest(ctx)
	if err != nil {
		return nil, err
	}
	sum, ok := e.dir.issuer(origin)
	if !ok {
		return nil, errorf(http.StatusNotFound, "issuer %s is not registered in this log", origin)
	}
	// Only the entries shown are read (through storage.IssuerTailReader
	// when the log implements it).
	idx, total, err := storage.IssuerEntriesBefore(ctx, e.cfg.Log, origin, size, maxIssuerEntries)
	if err != nil {
		return nil, err
	}
	d := &issuerData{Origin: origin, Summary: sum, Now: e.cfg.Now(), Total: total, Older: total > len(idx)}
	d.Shown = len(idx)
	if e.cfg.Policy != nil {
		if st, ok := e.cfg.Policy.Status(origin); ok {
			d.Status = st
		}
	} else {
		d.PolicyNote = "This server has no policy engine (a read-only frontend): see the log's API for what the policy allows next."
	}
	var prevKeys map[string]bool
	var lastRotation int64
	hasRotation := false
	var events []timelineEvent
	for _, i := range idx {
		es, err := e.cfg.Log.Entries(ctx, i, i+1)
		if err != nil {
			return nil, err
		}
		row := rowOf(i, es[0])
		d.Entries = append(d.Entries, row)
		if row.entry == nil {
			continue
		}
		body, err := row.entry.ParsedBody()
		if err != nil {
			continue
		}
		switch b := body.(type) {
		case *schema.KeyCommitment:
			c := commitmentRow{Index: i, Time: row.Time, Emergency: b.Emergency != nil}
			keys, err := b.Keys()
			if err != nil {
				c.Err = err.Error()
			}
			cur := map[string]bool{}
			for _, k := range keys {
				c.Keys = append(c.Keys, keyViewOf(k))
				id := k.ID.String()
				cur[id] = true
				if !prevKeys[id] {
					c.Added++
				}
			}
			prevKeys = cur
			c.Rotation = c.Added > 0
			if c.Rotation {
				if hasRotation {
					c.DaysSince = fmt.Sprintf("%.1f", float64(row.entry.Time-lastRotation)/float64(24*time.Hour/time.Millisecond))
				}
				lastRotation, hasRotation = row.entry.Time, true
			}
			d.Commitments = append(d.Commitments, c)
			events = append(events, timelineEvent{Index: i, Time: row.entry.Time, Rotation: c.Rotation, Emergency: c.Emergency})
			if b.Emergency != nil {
				d.Reports = append(d.Reports, reportView{Index: i, Emergency: i, Time: row.Time, Report: *b.Emergency})
			}
		case *schema.IncidentFinal:
			d.Reports = append(d.Reports, reportView{Index: i, Final: true, Emergency: b.Emergency, Time: row.Time, Report: b.Report})
		}
	}
	interval := e.params().MinRotationInterval * 1000
	d.Timeline = newTimeline(events, interval, d.Now.UnixMilli())
	js := []link{{"issuer", api.PathIssuers + originPathPart(origin)}}
	return &page{Title: origin, Nav: "issuers", Data: d, JSON: js}, nil
}

func (e *Explorer) params() schema.PolicyParams {
	if e.cfg.Policy != nil {
		return e.cfg.Policy.Params()
	}
	if p := e.dir.stats(0).Params; p != nil {
		return *p
	}
	return policy.DefaultParams()
}

func keyViewOf(k schema.CommittedKey) keyView {
	v := keyView{ID: k.ID.String(), Short: k.ID.Short(), Protocol: k.Protocol, Label: k.Label}
	if k.Expiry != 0 {
		v.Expiry = time.UnixMicro(int64(k.Expiry)).UTC().Format(time.RFC3339)
	} else if k.NotBefore != nil {
		v.Expiry = "not before " + time.Unix(*k.NotBefore, 0).UTC().Format(time.RFC3339)
	}
	return v
}

// ---- entry list

type entryRow struct {
	Index   uint64
	Kind    schema.Kind
	Issuer  string
	Time    time.Time
	Summary string
	Err     string
	entry   *schema.Entry
}

func rowOf(i uint64, b []byte) entryRow {
	row := entryRow{Index: i}
	en, err := schema.ParseEntry(b)
	if err != nil {
		row.Err = err.Error()
		return row
	}
	row.entry = en
	row.Kind, row.Issuer, row.Time = en.Kind, en.Issuer, time.UnixMilli(en.Time).UTC()
	return row
}

// lightRow decodes only what a list row shows (no key validation).
func lightRow(i uint64, b []byte) entryRow {
	row := entryRow{Index: i}
	var le lightEntry
	if err := json.Unmarshal(b, &le); err != nil {
		row.Err = "does not decode: " + err.Error()
		return row
	}
	row.Kind, row.Issuer, row.Time = le.Kind, le.Issuer, time.UnixMilli(le.Time).UTC()
	if le.Kind == schema.KindKeyCommitment && bytes.Contains(le.Body, []byte(`"emergency"`)) {
		row.Summary = "emergency"
	}
	return row
}

func (e *Explorer) entryRows(ctx context.Context, start, end uint64) ([]entryRow, error) {
	es, err := e.cfg.Log.Entries(ctx, start, end)
	if err != nil {
		return nil, err
	}
	rows := make([]entryRow, len(es))
	for i, b := range es {
		rows[i] = lightRow(start+uint64(i), b)
	}
	return rows, nil
}

type entriesData struct {
	Start, End uint64
	Size       uint64
	Rows       []entryRow
	Prev, Next string
	First      string
	Last       string
}

func (e *Explorer) entries(r *http.Request) (*page, error) {
	ctx := r.Context()
	q := r.URL.Query()
	if v := q.Get("index"); v != "" {
		// The "go to entry" form.
		i, err := parseIndex("index", v)
		if err != nil {
			return nil, err
		}
		return nil, &redirect{to: "/entries/" + strconv.FormatUint(i, 10)}
	}
	size, _, err := e.latest(ctx)
	if err != nil {
		return nil, err
	}
	ps := uint64(e.cfg.PageSize)
	var start uint64
	if v := q.Get("start"); v != "" {
		if start, err = parseIndex("start", v); err != nil {
			return nil, err
		}
		if start >= size && size > 0 {
			return nil, errorf(http.StatusNotFound, "start %d is beyond the log's %d entries", start, size)
		}
	} else if size > ps {
		start = (size - 1) / ps * ps // the latest page
	}
	end := min(size, start+ps)
	d := &entriesData{Start: start, End: end, Size: size}
	if end > start {
		if d.Rows, err = e.entryRows(ctx, start, end); err != nil {
			return nil, err
		}
	}
	at := func(s uint64) string { return "/entries?start=" + strconv.FormatUint(s, 10) }
	if start > 0 {
		d.Prev = at(start - min(start, ps))
		d.First = at(0)
	}
	if end < size {
		d.Next = at(end)
		d.Last = at((size - 1) / ps * ps)
	}
	var js []link
	if end > start {
		js = append(js, link{"these entries", fmt.Sprintf("%s?start=%d&end=%d", api.PathEntries, start, end)})
	}
	return &page{Title: fmt.Sprintf("Entries %d to %d", start, max(end, 1)-1), Nav: "entries", Data: d, JSON: js}, nil
}

// redirect is returned by a page that answers with a redirect.
type redirect struct{ to string }

func (r *redirect) Error() string { return "redirect to " + r.to }

// ---- one entry

type entryData struct {
	Row       entryRow
	Raw       string
	RawB64    string
	RawBytes  int
	LeafHex   string
	LeafB64   string
	Prev      string
	PrevEntry *uint64
	Sig       string
	Body      string
	Keys      []keyView
	Report    *schema.IncidentReport
	Emergency *uint64
	Proof     *proofView
	ProofErr  string
	Size      uint64
	Decoded   bool
}

type proofView struct {
	TreeSize uint64
	Root     string
	Hashes   []string
	Origin   string
}

func (e *Explorer) entry(r *http.Request) (*page, error) {
	ctx := r.Context()
	i, err := parseIndex("index", r.PathValue("index"))
	if err != nil {
		return nil, err
	}
	size, note, err := e.latest(ctx)
	if err != nil {
		return nil, err
	}
	if i >= size {
		return nil, errorf(http.StatusNotFound, "entry %d is not in the log of %d entries", i, size)
	}
	es, err := e.cfg.Log.Entries(ctx, i, i+1)
	if err != nil {
		return nil, err
	}
	b := es[0]
	leaf := tiles.LeafHash(b)
	d := &entryData{Row: rowOf(i, b), RawBytes: len(b), LeafHex: hex.EncodeToString(leaf[:]),
		LeafB64: base64.StdEncoding.EncodeToString(leaf[:]), Size: size}
	if utf8.Valid(b) {
		d.Raw = string(b)
	} else {
		d.RawB64 = base64.StdEncoding.EncodeToString(b)
	}
	if en := d.Row.entry; en != nil {
		d.Decoded = true
		d.Prev = hex.EncodeToString(en.Prev)
		d.Sig = base64.StdEncoding.EncodeToString(en.Sig)
		var ind bytes.Buffer
		if json.Indent(&ind, en.Body, "", "  ") == nil {
			d.Body = ind.String()
		}
		if len(en.Prev) == tlog.HashSize {
			var h tlog.Hash
			copy(h[:], en.Prev)
			if pi, err := e.prevIndex(ctx, en.Issuer, i, h); err == nil {
				d.PrevEntry = &pi
			}
		}
		if body, err := en.ParsedBody(); err == nil {
			switch b := body.(type) {
			case *schema.KeyCommitment:
				keys, _ := b.Keys()
				for _, k := range keys {
					d.Keys = append(d.Keys, keyViewOf(k))
				}
				d.Report = b.Emergency
			case *schema.IncidentFinal:
				d.Report = &b.Report
				em := b.Emergency
				d.Emergency = &em
			}
		}
	}
	if p, err := e.prove(ctx, note, i, leaf); err != nil {
		d.ProofErr = err.Error()
	} else {
		d.Proof = p
	}
	js := []link{
		{"entry", fmt.Sprintf("%s?start=%d&end=%d", api.PathEntries, i, i+1)},
		{"inclusion proof", fmt.Sprintf("%s?index=%d", api.PathInclusionProof, i)},
	}
	return &page{Title: fmt.Sprintf("Entry %d", i), Nav: "entries", Data: d, JSON: js}, nil
}

// prevIndex finds the issuer's entry before i whose leaf hash is h.
func (e *Explorer) prevIndex(ctx context.Context, origin string, i uint64, h tlog.Hash) (uint64, error) {
	// prev names the issuer's latest earlier entry: only it is read.
	idx, _, err := storage.IssuerEntriesBefore(ctx, e.cfg.Log, origin, i, 1)
	if err != nil {
		return 0, err
	}
	if len(idx) == 1 {
		es, err := e.cfg.Log.Entries(ctx, idx[0], idx[0]+1)
		if err != nil {
			return 0, err
		}
		if tiles.LeafHash(es[0]) == h {
			return idx[0], nil
		}
	}
	return 0, storage.ErrNotFound
}

// prove builds the inclusion proof of entry i from tiles checked against
// the log-signed checkpoint note, and verifies it.
func (e *Explorer) prove(ctx context.Context, note []byte, i uint64, leaf tlog.Hash) (*proofView, error) {
	cp, _, err := checkpoint.Open(note, e.cfg.Verifier)
	if err != nil {
		return nil, fmt.Errorf("the checkpoint does not verify with the log key: %v", err)
	}
	tree := tlog.Tree{N: int64(cp.Size), Hash: cp.Hash}
	hr := tlog.TileHashReader(tree, &tileReader{ctx: ctx, log: e.cfg.Log})
	p, err := tlog.ProveRecord(tree.N, int64(i), hr)
	if err != nil {
		return nil, fmt.Errorf("couldn't build the inclusion proof: %v", err)
	}
	if err := tlog.CheckRecord(p, tree.N, tree.Hash, int64(i), leaf); err != nil {
		return nil, fmt.Errorf("the inclusion proof does not verify: %v", err)
	}
	v := &proofView{TreeSize: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Hash[:]), Origin: cp.Origin}
	for _, h := range p {
		v.Hashes = append(v.Hashes, base64.StdEncoding.EncodeToString(h[:]))
	}
	return v, nil
}

// tileReader reads hash tiles for tlog.TileHashReader, which checks them
// against the tree hash.
type tileReader struct {
	ctx context.Context
	log Log
}

func (t *tileReader) Height() int { return tiles.Height }

func (t *tileReader) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, tl := range ts {
		d, err := t.log.Tile(t.ctx, tl.L, tl.N)
		if err != nil {
			return nil, err
		}
		if len(d) < tl.W*tlog.HashSize {
			return nil, fmt.Errorf("tile %s is shorter than its width: %w", tiles.Path(tl), storage.ErrNotFound)
		}
		out[i] = d[:tl.W*tlog.HashSize]
	}
	return out, nil
}

func (t *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}
