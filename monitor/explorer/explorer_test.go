package explorer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/monitor"
	"github.com/keycommit/keycommit/monitor/explorer"
)

// fakeMonitor serves the lists from memory and records the rows each
// request read (rows) and the largest page asked for (maxLimit).
type fakeMonitor struct {
	alerts   []monitor.Alert
	evidence []monitor.EvidenceInfo
	gossip   []monitor.GossipStatus
	watches  []string

	mu       sync.Mutex
	rows     int
	maxLimit int
}

func (f *fakeMonitor) read(n, limit int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows += n
	f.maxLimit = max(f.maxLimit, limit)
}

func (f *fakeMonitor) Status() []monitor.LogStatus {
	return []monitor.LogStatus{{Origin: "keycommit.example/log/<i>x</i>", URL: "http://127.0.0.1:1", VerifiedSize: 90, AnchorSize: 100, Position: 90}}
}

func (f *fakeMonitor) matches(flt monitor.AlertFilter) []monitor.Alert {
	var out []monitor.Alert
	for i := len(f.alerts) - 1; i >= 0; i-- {
		a := f.alerts[i]
		if (flt.Kind == "" || a.Kind == flt.Kind) && strings.Contains(strings.ToLower(a.Issuer), strings.ToLower(flt.Issuer)) {
			out = append(out, a)
		}
	}
	return out
}

func (f *fakeMonitor) AlertsPage(_ context.Context, flt monitor.AlertFilter, offset, limit int) ([]monitor.Alert, error) {
	m := f.matches(flt)
	lo := min(len(m), offset)
	out := m[lo:min(len(m), lo+limit)]
	f.read(len(out), limit)
	return out, nil
}

func (f *fakeMonitor) AlertCount(_ context.Context, flt monitor.AlertFilter) (int, error) {
	return len(f.matches(flt)), nil
}

func (f *fakeMonitor) EvidencePage(_ context.Context, after string, limit int) ([]monitor.EvidenceInfo, error) {
	var out []monitor.EvidenceInfo
	for _, e := range f.evidence {
		if e.ID > after && len(out) < limit {
			out = append(out, e)
		}
	}
	f.read(len(out), limit)
	return out, nil
}

func (f *fakeMonitor) EvidenceCount(context.Context) (int, error) { return len(f.evidence), nil }
func (f *fakeMonitor) Gossip() []monitor.GossipStatus             { return f.gossip }

func (f *fakeMonitor) WatchesPage(_ context.Context, after string, limit int) ([]string, error) {
	var out []string
	for _, w := range f.watches {
		if w > after && len(out) < limit {
			out = append(out, w)
		}
	}
	f.read(len(out), limit)
	return out, nil
}

func (f *fakeMonitor) WatchCount(context.Context) (int, error) { return len(f.watches), nil }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func start(t *testing.T, f *fakeMonitor) string {
	t.Helper()
	ex, err := explorer.New(explorer.Config{Monitor: f, Now: func() time.Time { return t0.Add(time.Hour) }, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", ex)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func fixture() *fakeMonitor {
	f := &fakeMonitor{watches: []string{"https://watched.example"}}
	for i := range 25 {
		idx := int64(i)
		a := monitor.Alert{Time: t0.Add(time.Duration(i) * time.Minute), Log: "keycommit.example/log", Kind: monitor.KindPolicy,
			Index: &idx, Rule: "rotation-interval", Issuer: fmt.Sprintf("https://issuer%d.example", i%3), Message: fmt.Sprintf("alert number %d", i)}
		if i == 24 {
			a.Kind, a.Evidence, a.Issuer, a.Message = monitor.KindSplitView, "abc123", "", `<script>alert(1)</script>`
		}
		f.alerts = append(f.alerts, a)
	}
	f.evidence = []monitor.EvidenceInfo{{ID: "abc123", Origin: "keycommit.example/log", Found: t0}}
	f.gossip = []monitor.GossipStatus{
		{Kind: "peer", URL: "http://peer.example", LastPull: t0.Add(50 * time.Minute), LastOK: t0.Add(50 * time.Minute)},
		{Kind: "witness", URL: "http://w.example", LastPull: t0.Add(50 * time.Minute), Error: `<b>refused</b>`},
	}
	return f
}

func TestMonitorPage(t *testing.T) {
	u := start(t, fixture())
	res, page := get(t, u+"/")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" || res.Header.Get("ETag") == "" {
		t.Fatalf("GET /: %d %v", res.StatusCode, res.Header)
	}
	for _, w := range []string{"90 (90.0 %)", "25 of 25 alerts", `href="/v1/evidence/abc123"`, "download", "http://peer.example", "10 min ago",
		"&lt;b&gt;refused&lt;/b&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;", "keycommit.example/log/&lt;i&gt;x&lt;/i&gt;",
		`href="/v1/checkpoints"`, `href="/v1/gossip"`, `href="/v1/evidence"`, "https://watched.example", `href="/?page=1"`} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	for _, bad := range []string{"<script>alert", "<b>refused", "<i>x</i>"} {
		if strings.Contains(page, bad) {
			t.Errorf("markup %q served as markup", bad)
		}
	}
	// Newest first, 10 a page: the first page has alerts 24..15.
	if !strings.Contains(page, "alert number 15") || strings.Contains(page, "alert number 14") {
		t.Error("first page is not the 10 newest alerts")
	}
	_, p2 := get(t, u+"/?page=2")
	if !strings.Contains(p2, "alert number 4") || strings.Contains(p2, "alert number 5<") {
		t.Error("page 3 is not the oldest alerts")
	}
	_, f := get(t, u+"/?kind=split-view")
	if !strings.Contains(f, "1 of 25 alerts match") || strings.Contains(f, "alert number") {
		t.Error("kind filter")
	}
	_, fi := get(t, u+"/?issuer=ISSUER1.example")
	if !strings.Contains(fi, "8 of 25 alerts match") {
		t.Error("issuer filter")
	}
	res, js := get(t, u+"/?kind=policy&issuer=issuer2&format=json")
	var out struct {
		Alerts []monitor.Alert `json:"alerts"`
		Total  int             `json:"total"`
	}
	if err := json.Unmarshal([]byte(js), &out); err != nil || res.Header.Get("Content-Type") != "application/json" || out.Total != 8 || len(out.Alerts) != 8 {
		t.Errorf("JSON twin: %v %d %d %s", err, out.Total, len(out.Alerts), js)
	}
	for _, q := range []string{"?kind=nope", "?page=x", "?issuer=" + strings.Repeat("a", 301), "?issuer=%01"} {
		if res, body := get(t, u+"/"+q); res.StatusCode != 400 || !strings.Contains(body, `role="alert"`) {
			t.Errorf("GET /%s: %d", q, res.StatusCode)
		}
	}
}

// TestMonitorPageReadsOnePage: with far more alerts, evidence and watches
// than a page, a request reads at most one page of each list (the totals
// come from counts), and the page still shows the right totals and links.
// (Load every alert and slice out a page, as the page once did, and rows
// reaches 5,000.)
func TestMonitorPageReadsOnePage(t *testing.T) {
	f := &fakeMonitor{}
	for i := range 5000 {
		kind := monitor.KindPolicy
		if i%10 == 0 {
			kind = monitor.KindKeyChange
		}
		f.alerts = append(f.alerts, monitor.Alert{Time: t0, Log: "keycommit.example/log", Kind: kind, Message: fmt.Sprintf("alert number %d", i)})
	}
	for i := range 300 {
		f.evidence = append(f.evidence, monitor.EvidenceInfo{ID: fmt.Sprintf("ev%04d", i), Origin: "keycommit.example/log", Found: t0})
	}
	for i := range 200 {
		f.watches = append(f.watches, fmt.Sprintf("https://w%04d.example", i))
	}
	u := start(t, f)
	for _, c := range []struct {
		q    string
		want []string
		not  []string
	}{
		{"/", []string{"5000 of 5000 alerts", `href="/?page=1"`, "alert number 4999<", "alert number 4990<", "300 bundles", `href="/v1/evidence?after=ev0009"`,
			"200 watched", `href="/watch?after=https%3a%2f%2fw0009.example"`}, []string{"alert number 4989<", "ev0010", "w0010"}},
		{"/?page=499", []string{"5000 of 5000 alerts", `href="/?page=498"`, "alert number 0<"}, []string{`rel="next"`}},
		{"/?kind=key-change&page=3", []string{"500 of 5000 alerts match", `href="/?kind=key-change&amp;page=4"`, "alert number 4690<", "alert number 4600<"}, []string{"alert number 4590<", "alert number 4700<"}},
	} {
		f.rows, f.maxLimit = 0, 0
		res, body := get(t, u+c.q)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d", c.q, res.StatusCode)
		}
		if f.maxLimit > 10 || f.rows > 3*10 {
			t.Errorf("GET %s read %d rows, asking for pages of up to %d; want at most one page (10) of each of 3 lists", c.q, f.rows, f.maxLimit)
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q", c.q, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(body, w) {
				t.Errorf("GET %s has %q", c.q, w)
			}
		}
	}
}
