package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/explorer"
	"github.com/keycommit/keycommit/log/explorer/browsertest"
)

func httpGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// TestLogServeExplorer: `keycommit log serve` serves the explorer at /
// (HTML), its pages for the log's entries, and still answers unknown API
// paths with JSON.
func TestLogServeExplorer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	if out, err := exec.Command(keycommitBin, "log", "init", "--data", dir, "--origin", "keycommit.example/log/explorer").CombinedOutput(); err != nil {
		t.Fatalf("log init: %v\n%s", err, out)
	}
	_, url := startServe(t, keycommitBin, dir)
	res, home := httpGet(t, url+"/")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(home, "keycommit.example/log/explorer") {
		t.Fatalf("GET /: %d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), home)
	}
	if _, e := httpGet(t, url+"/entries/0"); !strings.Contains(e, "Verified: this entry is in the tree") || !strings.Contains(e, "policy_params") {
		t.Errorf("entry 0 page lacks its verified proof or kind:\n%s", e)
	}
	if res, _ := httpGet(t, url+"/v1/nothing"); res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /v1/nothing: %d %s, want a JSON 404", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// TestDevExplorerBrowser opens the dev deployment's explorer (the real
// binary) in headless Chromium, follows links from the home page to the
// demo issuer and on to its commitment's entry, checks each page against
// the log's JSON API, and saves screenshots in the test's temp dir. It
// fails under CI=true without Chromium and skips elsewhere.
func TestDevExplorerBrowser(t *testing.T) {
	b := browsertest.Start(t)
	do, text, shot := b.Do, b.Text, b.Shot
	_, info, _ := startDev(t, t.TempDir())

	do("open home", chromedp.Navigate(info.LogURL+"/"), chromedp.WaitVisible(chromedp.CSS("#tree-size")))
	shot("1-home")
	size, err := strconv.ParseUint(text("#tree-size"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	_, cp := httpGet(t, info.LogURL+api.PathCheckpoint)
	apiSize, _ := strconv.ParseUint(strings.Split(cp, "\n")[1], 10, 64)
	if size < 3 || size > apiSize {
		t.Errorf("home shows size %d; the API's checkpoint has %d", size, apiSize)
	}

	path := explorer.IssuerPath(info.Issuer.Origin)
	do("follow the issuers link", chromedp.Click(chromedp.CSS(`nav a[href="/issuers"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="`+path+`"]`)))
	shot("2-issuers")
	do("follow the issuer link", chromedp.Click(chromedp.CSS(`a[href="`+path+`"]`)), chromedp.WaitVisible(chromedp.CSS("#origin")))
	shot("3-issuer")
	var iss api.Issuer
	_, ij := httpGet(t, info.LogURL+api.PathIssuers+strings.TrimPrefix(info.Issuer.Origin, "https://"))
	if err := json.Unmarshal([]byte(ij), &iss); err != nil {
		t.Fatalf("%v: %s", err, ij)
	}
	if o, c := text("#origin"), text("#contact"); o != iss.Status.Origin || c != iss.Status.Contact {
		t.Errorf("issuer page shows %q, %q; the API %q, %q", o, c, iss.Status.Origin, iss.Status.Contact)
	}
	if iss.Status.Commitment == nil {
		t.Fatal("the demo issuer has no commitment")
	}
	idx := strconv.FormatUint(*iss.Status.Commitment, 10)
	b.Click(`#com ~ .table a[href="/entries/` + idx + `"]`)
	do("open the entry", chromedp.WaitVisible(chromedp.CSS("#leaf-b64")))
	shot("4-entry")
	var ents api.Entries
	_, ej := httpGet(t, info.LogURL+api.PathEntries+"?start="+idx+"&end="+strconv.FormatUint(*iss.Status.Commitment+1, 10))
	if err := json.Unmarshal([]byte(ej), &ents); err != nil {
		t.Fatalf("%v: %s", err, ej)
	}
	if leaf, want := text("#leaf-b64"), base64.StdEncoding.EncodeToString(ents.Entries[0].LeafHash); leaf != want {
		t.Errorf("entry %s shows leaf hash %s, the API %s", idx, leaf, want)
	}
	if p := text("#proof-status"); !strings.HasPrefix(p, "Verified") {
		t.Errorf("entry %s: proof status %q", idx, p)
	}

	// The dev monitor's page: the log it follows, as its JSON twin says,
	// and the witnesses it gossips with.
	do("open the monitor", chromedp.Navigate(info.MonitorURL+"/"), chromedp.WaitVisible(chromedp.CSS("#logs")))
	shot("5-monitor")
	var st []struct {
		Origin string `json:"origin"`
	}
	_, sj := httpGet(t, info.MonitorURL+"/v1/checkpoints")
	if err := json.Unmarshal([]byte(sj), &st); err != nil || len(st) != 1 {
		t.Fatalf("monitor /v1/checkpoints: %v %s", err, sj)
	}
	if o := text("#logs ~ .table tbody td .mono"); o != st[0].Origin || o != info.LogOrigin {
		t.Errorf("monitor page follows %q; its API %q, dev.json %q", o, st[0].Origin, info.LogOrigin)
	}
	if n := b.Count("#gossip ~ .table tbody tr"); n != len(info.Witnesses) {
		t.Errorf("monitor page lists %d peers and witnesses, dev has %d witnesses", n, len(info.Witnesses))
	}
	t.Logf("screenshots in %s", b.Shots)
}
