package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/sqlitestore"
)

// TestHTTPErrorsAreJSON: every error the log answers, on its own routes,
// the keys bundle and issuer proofs, wrong methods and unknown paths, is a
// JSON api.Error with the right status; a wrong method is 405 with Allow.
// GET /v1/issuers/https://issuer.example (as curl sends it) answers the
// issuer, not a redirect; GET /v1/version answers the build.
func TestHTTPErrorsAreJSON(t *testing.T) {
	store, err := sqlitestore.Create(t.Context(), filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	l := logtest.Start(t, store, nil)
	is := issuertest.New(t, "https://issuer.example")
	if _, err := l.Client.Submit(t.Context(), is.Register(t)); err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string) (*http.Response, []byte) {
		req, err := http.NewRequest(method, l.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", api.PathSubmit, 405, "POST"},
		{"PUT", api.PathCheck, 405, "POST"},
		{"POST", api.PathCheckpoint, 405, "GET, HEAD"},
		{"DELETE", "/tile/0/000", 405, "GET, HEAD"},
		{"POST", "/v1/keys.bundle", 405, "GET, HEAD"},
		{"POST", api.PathIssuers + "https://issuer.example", 405, "GET, HEAD"},
		{"GET", "/v1/keys.bundle?old=x", 400, ""},
		{"GET", "/v1/keys.bundle", 404, ""}, // no snapshot yet
		{"GET", "/v1/issuer-proof", 400, ""},
		{"GET", "/v1/issuer-proof?issuer=https://nobody.example", 404, ""},
		{"GET", "/v1/keys.delta?old=1", 400, ""},
		{"GET", api.PathIssuers + "https://nobody.example", 404, ""},
		{"GET", api.PathEntries + "?start=1", 400, ""},
		{"GET", "/no/such/path", 404, ""},
	} {
		resp, b := do(c.method, c.path)
		var e api.Error
		if resp.StatusCode != c.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || json.Unmarshal(b, &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %s %q %s, want %d with a JSON error", c.method, c.path, resp.Status, resp.Header.Get("Content-Type"), b, c.code)
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
	for _, path := range []string{api.PathIssuers + "https://issuer.example", api.PathIssuers + "https:%2F%2Fissuer.example", api.PathIssuers + "issuer.example"} {
		resp, b := do("GET", path)
		var st api.Issuer
		if resp.StatusCode != 200 || json.Unmarshal(b, &st) != nil || st.Status == nil || st.Status.Origin != "https://issuer.example" {
			t.Errorf("GET %s: %s %s", path, resp.Status, b)
		}
	}
	resp, b := do("GET", api.PathVersion)
	var v api.Version
	if resp.StatusCode != 200 || json.Unmarshal(b, &v) != nil || v.GoVersion != runtime.Version() || v.Module != "github.com/keycommit/keycommit" {
		t.Errorf("GET %s: %s %s", api.PathVersion, resp.Status, b)
	}
}
