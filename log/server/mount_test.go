package server_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/sqlitestore"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, b := getBody(t, url)
	return resp.StatusCode, string(b)
}

// getBody GETs url and returns the response and its body, read.
func getBody(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestMountAtRoot: a handler mounted at "/" (a web explorer) answers the
// paths the log does not route, while the log's own routes, the bundle
// routes among them, still answer.
func TestMountAtRoot(t *testing.T) {
	store, err := sqlitestore.Create(t.Context(), filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	explorer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "explorer "+r.URL.Path) })
	l := logtest.Start(t, store, &logtest.Options{Mount: map[string]http.Handler{"/": explorer}})
	if code, body := get(t, l.URL+"/"); code != 200 || body != "explorer /" {
		t.Errorf("GET / = %d %q, want the explorer", code, body)
	}
	if code, body := get(t, l.URL+"/issuers/x"); code != 200 || body != "explorer /issuers/x" {
		t.Errorf("GET /issuers/x = %d %q, want the explorer", code, body)
	}
	if code, body := get(t, l.URL+api.PathCheckpoint); code != 200 || !strings.HasPrefix(body, logtest.Origin+"\n") {
		t.Errorf("GET /checkpoint = %d %q, want the log's checkpoint", code, body)
	}
}

// TestMountWithoutRoot: without a "/" handler, unknown paths get the JSON
// 404 naming the endpoint, and the bundle routes are mounted.
func TestMountWithoutRoot(t *testing.T) {
	store, err := sqlitestore.Create(t.Context(), filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	l := logtest.Start(t, store, &logtest.Options{Mount: map[string]http.Handler{"GET /extra": http.NotFoundHandler()}})
	if code, body := get(t, l.URL+"/nothing"); code != 404 || !strings.Contains(body, "no such endpoint: GET /nothing") {
		t.Errorf("GET /nothing = %d %q", code, body)
	}
	if _, body := get(t, l.URL+bundle.BundlePath); strings.Contains(body, "no such endpoint") {
		t.Errorf("GET %s is not routed: %q", bundle.BundlePath, body)
	}
}

// TestMountConflict: an extra handler whose pattern conflicts with a log
// route is a configuration error, not a panic.
func TestMountConflict(t *testing.T) {
	store, err := sqlitestore.Create(t.Context(), filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, p := range []string{"GET " + api.PathCheckpoint, "GET " + bundle.BundlePath, "GET /{x"} {
		_, err := server.New(server.Config{Reader: store, Mount: map[string]http.Handler{p: http.NotFoundHandler()}})
		if err == nil || !strings.Contains(err.Error(), "can't mount") {
			t.Errorf("Mount %q: err = %v, want a can't-mount error", p, err)
		}
	}
	if _, err := server.New(server.Config{Reader: store, Mount: map[string]http.Handler{"/x": nil}}); err == nil {
		t.Error("Mount of a nil handler: no error")
	}
}
