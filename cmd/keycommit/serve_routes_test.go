package main

import (
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/trillianstore/trilliantest"
)

// routeProbes reach every route the server library mounts, and one path
// it does not.
var routeProbes = []struct{ method, path string }{
	{"GET", api.PathCheckpoint},
	{"GET", "/tile/0/000.p/1"},
	{"GET", "/tile/entries/000.p/1"},
	{"GET", api.PathInclusionProof + "?index=0&tree_size=1"},
	{"GET", api.PathConsistencyProof + "?old=1&new=1"},
	{"GET", api.PathEntries + "?start=0&end=1"},
	{"GET", api.PathIssuers + url.PathEscape("https://issuer.example")},
	{"GET", api.PathKeys},
	{"GET", api.PathPolicy},
	{"GET", api.PathPolicyPage},
	{"POST", api.PathSubmit},
	{"POST", api.PathCheck},
	{"GET", bundle.BundlePath},
	{"GET", bundle.IssuerProofPath + "?issuer=https://issuer.example"},
	{"GET", api.PathMetrics},
	{"GET", "/no/such/route"},
}

// probeRoutes returns, for each probe, the status code and whether the
// answer is the server's "no such endpoint".
func probeRoutes(t *testing.T, base string) []string {
	t.Helper()
	var out []string
	for _, p := range routeProbes {
		req, err := http.NewRequest(p.method, base+p.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", p.method, p.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		unrouted := strings.Contains(string(b), "no such endpoint")
		out = append(out, p.method+" "+p.path+" "+resp.Status+map[bool]string{true: " unrouted"}[unrouted])
	}
	return out
}

// TestServeRoutesSameForSQLiteAndTrillian starts `log serve` over SQLite
// and over Trillian, each on a freshly initialized log, and checks that
// both answer every route of the server library the same way (only the
// unknown path is unrouted).
func TestServeRoutesSameForSQLiteAndTrillian(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.Options{})
	bin := buildBinary(t)
	const origin = "keycommit.example/log/routes"

	sqliteDir := filepath.Join(t.TempDir(), "sqlite")
	if out, err := exec.Command(bin, "log", "init", "--data", sqliteDir, "--origin", origin).CombinedOutput(); err != nil {
		t.Fatalf("log init: %v\n%s", err, out)
	}
	_, sqliteURL := startServe(t, bin, sqliteDir)

	trillianDir := filepath.Join(t.TempDir(), "trillian")
	if out, err := exec.Command(bin, "log", "init", "--data", trillianDir, "--origin", origin, "--storage", "trillian", "--trillian", env.RPCAddr, "--trillian-mysql", env.MySQLURI).CombinedOutput(); err != nil {
		t.Fatalf("log init --storage trillian: %v\n%s", err, out)
	}
	_, trillianURL := startServe(t, bin, trillianDir, "--storage", "trillian")

	sq := probeRoutes(t, strings.TrimSuffix(sqliteURL, "/"))
	tr := probeRoutes(t, strings.TrimSuffix(trillianURL, "/"))
	for i := range routeProbes {
		if sq[i] != tr[i] {
			t.Errorf("SQLite and Trillian serve differ:\n  sqlite:   %s\n  trillian: %s", sq[i], tr[i])
		}
		last := i == len(routeProbes)-1
		if strings.HasSuffix(sq[i], " unrouted") != last {
			t.Errorf("sqlite: %s", sq[i])
		}
	}
	t.Logf("routes:\n%s", strings.Join(sq, "\n"))
}
