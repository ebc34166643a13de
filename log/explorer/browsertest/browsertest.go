// Package browsertest drives a real headless Chromium (Debian's chromium
// package) for the explorers' browser tests: it finds the binary (a test
// fails without it under CI=true, where .ci/run installs it, and skips
// elsewhere), starts it with the flags this closed-network machine needs
// and a fresh profile, and offers the few steps the tests take.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is one headless Chromium tab, closed when the test ends.
type Browser struct {
	t *testing.T
	// Ctx is the tab's context, for chromedp actions the helpers lack.
	Ctx context.Context
	// Shots is the directory screenshots are saved in (a test temp dir).
	Shots string
}

// Start opens a tab of 1200×900 pixels that may run for at most a minute.
func Start(t *testing.T) *Browser {
	t.Helper()
	bin := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	actx, acancel := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(bin),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900))
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() { bcancel(); acancel(); cancel() })
	return &Browser{t: t, Ctx: bctx, Shots: t.TempDir()}
}

// chromium returns the path of the Chromium binary, or ends the test.
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

// Do runs steps, failing the test with what on error.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Text returns the trimmed text of the first element matching the CSS
// selector sel.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// Count returns how many elements match the CSS selector sel.
func (b *Browser) Count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
	if err != nil {
		b.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

// Click clicks the first element matching sel by script (a synthesized
// mouse click can miss after a full-page screenshot scrolled the page).
func (b *Browser) Click(sel string) {
	b.t.Helper()
	ok, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`(()=>{const a=document.querySelector(`+strconv.Quote(sel)+`); if(!a) return false; a.click(); return true})()`))
	if err != nil || !ok {
		b.t.Fatalf("click %s: found %v, %v", sel, ok, err)
	}
}

// Shot saves a full-page screenshot as Shots/name.png.
func (b *Browser) Shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.Shots, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
