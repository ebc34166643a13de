package explorer_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/explorer/browsertest"
)

// TestBrowser opens a running log's explorer in headless Chromium and
// follows links from the home page to an issuer and on to an entry,
// checking what each page shows against the log's JSON API, and saves a
// screenshot of each page (desktop and phone width) in the test's temp
// directory.
func TestBrowser(t *testing.T) {
	b := browsertest.Start(t)
	do, text, count, shot := b.Do, b.Text, b.Count, b.Shot
	d := startDeployment(t, "keycommit.example/log/browser")
	is := d.issuer(t, "https://issuer.example")
	is.Contact = "mailto:keys@issuer.example"
	d.history(t, is, report("signing key exposed in a backup"))

	// The API's view, to check the pages against.
	_, cpText := get(t, d.URL+api.PathCheckpoint)
	apiSize := strings.Split(cpText, "\n")[1]
	var iss api.Issuer
	_, ij := get(t, d.URL+api.PathIssuers+"issuer.example")
	if err := json.Unmarshal([]byte(ij), &iss); err != nil {
		t.Fatal(err)
	}

	do("open home", chromedp.Navigate(d.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#tree-size")))
	title, err := chromedp.Run(b.Ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	size, issuers := text("#tree-size"), text("#issuer-count")
	shot("1-home")
	if size != apiSize || issuers != "1" || !strings.Contains(title, "keycommit.example/log/browser") {
		t.Errorf("home shows size %q, %q issuers, title %q; the API has size %s and 1 issuer", size, issuers, title, apiSize)
	}

	do("follow the issuers link", chromedp.Click(chromedp.CSS(`nav a[href="/issuers"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/issuers/issuer.example"]`)))
	shot("2-issuers")
	do("follow the issuer link", chromedp.Click(chromedp.CSS(`a[href="/issuers/issuer.example"]`)),
		chromedp.WaitVisible(chromedp.CSS("#origin")))
	origin, contact, next := text("#origin"), text("#contact"), text("#next-rotation")
	windows, emergencies := count("svg.timeline rect.window"), count("svg.timeline polygon.em")
	shot("3-issuer")
	do("phone width", chromedp.EmulateViewport(390, 844))
	shot("3-issuer-phone")
	do("desktop width", chromedp.EmulateViewport(1200, 900))
	st := iss.Status
	if origin != st.Origin || contact != st.Contact || next != fmtMs(st.NextRotation) {
		t.Errorf("issuer page shows %q, %q, next rotation %q; the API has %q, %q, %q", origin, contact, next, st.Origin, st.Contact, fmtMs(st.NextRotation))
	}
	if windows != 3 || emergencies != 1 {
		t.Errorf("timeline has %d rotation windows and %d emergencies, want 3 and 1", windows, emergencies)
	}

	// The latest commitment's entry, from the commitments table.
	idx := *st.Commitment
	do("follow the entry link", chromedp.Click(chromedp.CSS(`#com ~ .table a[href="/entries/`+strconv.FormatUint(idx, 10)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#leaf-b64")))
	leaf, proof, kind := text("#leaf-b64"), text("#proof-status"), text("#kind")
	shot("4-entry")
	var ents api.Entries
	_, ej := get(t, d.URL+api.PathEntries+"?start="+strconv.FormatUint(idx, 10)+"&end="+strconv.FormatUint(idx+1, 10))
	if err := json.Unmarshal([]byte(ej), &ents); err != nil {
		t.Fatal(err)
	}
	if want := base64.StdEncoding.EncodeToString(ents.Entries[0].LeafHash); leaf != want {
		t.Errorf("entry %d shows leaf hash %s, the API %s", idx, leaf, want)
	}
	if !strings.HasPrefix(proof, "Verified") || kind != "key_commitment" {
		t.Errorf("entry %d: kind %q, proof status %q", idx, kind, proof)
	}
	t.Logf("screenshots in %s", b.Shots)
	if dir := os.Getenv("EXPLORER_SCREENSHOTS"); dir != "" {
		// For looking at them after the test: copy out of the temp dir.
		es, _ := os.ReadDir(b.Shots)
		for _, e := range es {
			b, _ := os.ReadFile(filepath.Join(b.Shots, e.Name()))
			os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
		}
	}
}
