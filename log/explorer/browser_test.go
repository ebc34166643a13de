package explorer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/testissuer"
)

// chromium returns the path of the Chromium binary; without one the test
// fails under CI=true (.ci/run installs it) and skips elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (.ci/run installs Debian's chromium package)")
	}
	t.Skip("chromium is not installed: apt-get install -y chromium to run the browser test")
	return ""
}

// TestBrowser opens a running log's explorer in headless Chromium and
// follows links from the home page to an issuer and on to an entry,
// checking what each page shows against the log's JSON API, and saves a
// screenshot of each page (desktop and phone width) in the test's temp
// directory.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	d := startDeployment(t, "keycommit.example/log/browser")
	is := testissuer.New(t, "https://issuer.example")
	is.Contact = "mailto:keys@issuer.example"
	d.history(t, is, report("signing key exposed in a backup"))

	shots := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}

	// The API's view, to check the pages against.
	_, cpText := get(t, d.URL+api.PathCheckpoint)
	apiSize := strings.Split(cpText, "\n")[1]
	var iss api.Issuer
	_, ij := get(t, d.URL+api.PathIssuers+"issuer.example")
	if err := json.Unmarshal([]byte(ij), &iss); err != nil {
		t.Fatal(err)
	}

	do("open home", chromedp.Navigate(d.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#tree-size")))
	title, err := chromedp.Run(bctx, chromedp.Title())
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
	t.Logf("screenshots in %s", shots)
	if dir := os.Getenv("EXPLORER_SCREENSHOTS"); dir != "" {
		// For looking at them after the test: copy out of the temp dir.
		es, _ := os.ReadDir(shots)
		for _, e := range es {
			b, _ := os.ReadFile(filepath.Join(shots, e.Name()))
			os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
		}
	}
}
