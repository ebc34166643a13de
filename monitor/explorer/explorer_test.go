package explorer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/monitor"
	"github.com/keycommit/keycommit/monitor/explorer"
)

type fakeMonitor struct {
	alerts   []monitor.Alert
	evidence []monitor.EvidenceInfo
	gossip   []monitor.GossipStatus
}

func (f *fakeMonitor) Status() []monitor.LogStatus {
	return []monitor.LogStatus{{Origin: "keycommit.example/log/<i>x</i>", URL: "http://127.0.0.1:1", VerifiedSize: 90, AnchorSize: 100, Position: 90}}
}
func (f *fakeMonitor) Alerts(context.Context) ([]monitor.Alert, error) { return f.alerts, nil }
func (f *fakeMonitor) Evidence(context.Context) ([]monitor.EvidenceInfo, error) {
	return f.evidence, nil
}
func (f *fakeMonitor) Gossip() []monitor.GossipStatus { return f.gossip }
func (f *fakeMonitor) Watches(context.Context) ([]string, error) {
	return []string{"https://watched.example"}, nil
}

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
	f := &fakeMonitor{}
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
