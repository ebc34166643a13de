package explorer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/explorer"
	"github.com/keycommit/keycommit/log/storage"
	"golang.org/x/mod/sumdb/note"
)

func TestPages(t *testing.T) {
	d := startDeployment(t, "keycommit.example/log/explorer")
	is := d.issuer(t, "https://issuer.example")
	em := d.history(t, is, report("key exposed in a backup"))
	other := d.issuer(t, "https://other.example")
	other.Contact = "mailto:keys@other.example"
	d.submit(t, other, other.Register(t))

	res, home := get(t, d.URL+"/")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("home: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, w := range []string{"keycommit.example/log/explorer", `href="/checkpoint"`, `href="/issuers"`, `href="/v1/policy.html"`, "Minimum rotation interval", "Emergencies in 2026",
		// html/template writes "+" as "&#43;"
		strings.ReplaceAll(d.VKey, "+", "&#43;")} {
		mustContain(t, home, w)
	}
	if res.Header.Get("ETag") == "" || !strings.Contains(res.Header.Get("Cache-Control"), "max-age") || res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("home headers: %v", res.Header)
	}
	// A conditional request with the ETag is answered 304.
	req, _ := http.NewRequest("GET", d.URL+"/", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: %d, want 304", r2.StatusCode)
	}

	_, list := get(t, d.URL+"/issuers")
	mustContain(t, list, `href="/issuers/issuer.example"`)
	mustContain(t, list, `href="/issuers/other.example"`)
	_, found := get(t, d.URL+"/issuers?q=OTHER")
	mustContain(t, found, "other.example")
	if strings.Contains(found, `href="/issuers/issuer.example"`) {
		t.Error("search for OTHER lists issuer.example")
	}
	res, js := get(t, d.URL+"/issuers?q=other&format=json")
	if res.Header.Get("Content-Type") != "application/json" || !strings.Contains(js, `"Origin":"https://other.example"`) {
		t.Errorf("issuer list JSON twin: %s %s", res.Header.Get("Content-Type"), js)
	}

	_, ip := get(t, d.URL+"/issuers/issuer.example")
	st, _ := d.Seq.Status("https://issuer.example")
	for _, w := range []string{"mailto:ops@example.com", "<svg", `class="em"`, `class="window"`, "emergency rotation",
		"key exposed in a backup", "final: key exposed in a backup", "61.0", "10.0",
		`href="/v1/issuers/issuer.example"`, fmt.Sprintf(`href="/v1/proof/inclusion?index=%d"`, em),
		strings.TrimSuffix(fmtMs(st.NextRotation), " UTC")} {
		mustContain(t, ip, w)
	}

	_, ep := get(t, d.URL+fmt.Sprintf("/entries/%d", em))
	mustContain(t, ep, "Verified: this entry is in the tree")
	mustContain(t, ep, fmt.Sprintf(`href="/v1/proof/inclusion?index=%d"`, em))
	var ents api.Entries
	_, ej := get(t, d.URL+fmt.Sprintf("/v1/entries?start=%d&end=%d", em, em+1))
	if err := json.Unmarshal([]byte(ej), &ents); err != nil {
		t.Fatal(err)
	}
	mustContain(t, ep, fmt.Sprintf("%x", ents.Entries[0].LeafHash))

	_, el := get(t, d.URL+"/entries?start=0")
	mustContain(t, el, `href="/entries/0"`)
	res, _ = get(t, d.URL+"/entries?index=3")
	if res.Request.URL.Path != "/entries/3" {
		t.Errorf("go-to form landed on %s", res.Request.URL)
	}
}

func TestBadInput(t *testing.T) {
	d := startDeployment(t, "keycommit.example/log/bad")
	for path, code := range map[string]int{
		"/entries/x":                             400,
		"/entries/-1":                            400,
		"/entries/999":                           404,
		"/entries?start=abc":                     400,
		"/issuers/not%20an%20origin":             400,
		"/issuers/unknown.example":               404,
		"/issuers?q=" + strings.Repeat("a", 201): 400,
		"/issuers?q=%01":                         400,
		"/issuers?page=x":                        400,
		"/nothing-here":                          404,
	} {
		res, body := get(t, d.URL+path)
		if res.StatusCode != code {
			t.Errorf("GET %s: %d, want %d", path, res.StatusCode, code)
		}
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `role="alert"`) {
			t.Errorf("GET %s: not an HTML error page: %s", path, body)
		}
	}
}

// TestMarkupIsText: an issuer's contact, incident report text and the
// log's origin that contain markup are shown as text, never as markup.
func TestMarkupIsText(t *testing.T) {
	const xss = `<script>alert(1)</script>`
	d := startDeployment(t, "keycommit.example/"+xss+`<img/src=x/onerror=alert(2)>`)
	is := d.issuer(t, "https://issuer.example")
	is.Contact = "mailto:" + xss + "@issuer.example"
	rep := report(xss + `<b onmouseover="alert(3)">bold</b>`)
	rep.Impact = `"><svg/onload=alert(4)>`
	em := d.history(t, is, rep)
	pages := []string{"/", "/issuers", "/issuers?q=" + "%3Cscript%3E", "/issuers/issuer.example", fmt.Sprintf("/entries/%d", em), fmt.Sprintf("/entries/%d", em+1), "/entries"}
	for _, p := range pages {
		res, body := get(t, d.URL+p)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d: %s", p, res.StatusCode, body)
		}
		for _, bad := range []string{"<script>alert", "<img/src=x", "<b onmouseover", "<svg/onload"} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s: markup %q is served as markup", p, bad)
			}
		}
	}
	_, home := get(t, d.URL+"/")
	mustContain(t, home, "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img/src=x/onerror=alert(2)&gt;")
	_, ip := get(t, d.URL+"/issuers/issuer.example")
	mustContain(t, ip, "mailto:&lt;script&gt;alert(1)&lt;/script&gt;@issuer.example")
	mustContain(t, ip, "&lt;b onmouseover=&#34;alert(3)&#34;&gt;bold&lt;/b&gt;")
	mustContain(t, ip, "&#34;&gt;&lt;svg/onload=alert(4)&gt;")
	_, search := get(t, d.URL+"/issuers?q=%3Cscript%3E")
	mustContain(t, search, `value="&lt;script&gt;"`)
}

// tailLog is a log whose whole-history read is counted, and whose
// bounded read records the largest count asked for.
type tailLog struct {
	storage.Reader
	mu         sync.Mutex
	full, maxN int
	tailReads  int
}

func (l *tailLog) IssuerEntries(ctx context.Context, origin string) ([]uint64, error) {
	l.mu.Lock()
	l.full++
	l.mu.Unlock()
	return l.Reader.IssuerEntries(ctx, origin)
}

func (l *tailLog) IssuerEntriesBefore(ctx context.Context, origin string, before uint64, n int) ([]uint64, int, error) {
	l.mu.Lock()
	l.tailReads++
	l.maxN = max(l.maxN, n)
	l.mu.Unlock()
	return l.Reader.(storage.IssuerTailReader).IssuerEntriesBefore(ctx, origin, before, n)
}

// TestIssuerPageReadsTail: the issuer page reads only the entries it
// shows (at most 200, through storage.IssuerTailReader), not the whole
// history. (Read IssuerEntries and keep the last 200, as the page once
// did, and full is 1.)
func TestIssuerPageReadsTail(t *testing.T) {
	d := startDeployment(t, "keycommit.example/log/explorer")
	is := d.issuer(t, "https://issuer.example")
	em := d.history(t, is, report("key exposed in a backup"))
	l := &tailLog{Reader: d.Backend}
	v, err := note.NewVerifier(d.VKey)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := explorer.New(explorer.Config{Log: l, VKey: d.VKey, Verifier: v, Now: d.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(ex)
	t.Cleanup(hs.Close)
	res, page := get(t, hs.URL+explorer.IssuerPath(is.Origin))
	if res.StatusCode != 200 {
		t.Fatalf("issuer page: %d %s", res.StatusCode, page)
	}
	mustContain(t, page, "key exposed in a backup")
	if l.full != 0 || l.tailReads != 1 || l.maxN > 200 {
		t.Errorf("issuer page: %d whole-history reads, %d bounded reads of up to %d; want 0, 1, ≤ 200", l.full, l.tailReads, l.maxN)
	}
	// The entry page reads only the issuer's entry before it.
	l.full, l.tailReads, l.maxN = 0, 0, 0
	res, page = get(t, fmt.Sprintf("%s/entries/%d", hs.URL, em))
	if res.StatusCode != 200 {
		t.Fatalf("entry page: %d %s", res.StatusCode, page)
	}
	mustContain(t, page, fmt.Sprintf(`href="/entries/%d"`, em-1))
	if l.full != 0 || l.tailReads != 1 || l.maxN != 1 {
		t.Errorf("entry page: %d whole-history reads, %d bounded reads of up to %d; want 0, 1, 1", l.full, l.tailReads, l.maxN)
	}
}
