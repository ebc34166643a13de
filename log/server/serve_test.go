package server_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"golang.org/x/mod/sumdb/note"
)

// newLogDir makes a log as log init does: key files in dir and an
// initialized SQLite database, returned open.
func newLogDir(t *testing.T) (string, *sqlitestore.Store) {
	t.Helper()
	dir := t.TempDir()
	skey, vkey, err := checkpoint.GenerateKey("keycommit.example/log/start")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.WriteKeyFiles(dir, skey, vkey); err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	store, err := sqlitestore.Create(t.Context(), filepath.Join(dir, "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sequencer.Init(t.Context(), sequencer.Config{Backend: store, Signer: s, Verifier: v}); err != nil {
		t.Fatal(err)
	}
	return dir, store
}

// opener opens store, after checking it is given the log's key and a
// registry, as a backend does.
func opener(store *sqlitestore.Store, close func() error) func(context.Context, server.Opening) (*server.Opened, error) {
	return func(_ context.Context, o server.Opening) (*server.Opened, error) {
		if o.Signer == nil || o.Signer.Name() != "keycommit.example/log/start" || o.Registry == nil {
			return nil, errors.New("Open was not given the log's key and registry")
		}
		return &server.Opened{Backend: store, Close: close}, nil
	}
}

// TestStartExtra: Start serves the log's routes and the handlers its
// Extra hook returns, which are given the running log (here its policy
// parameters and key); Shutdown closes the backend.
func TestStartExtra(t *testing.T) {
	dir, store := newLogDir(t)
	var m server.Mounting
	r, err := server.Start(t.Context(), server.StartConfig{
		Dir: dir, Open: opener(store, nil), Listen: "127.0.0.1:0",
		Extra: func(got server.Mounting) (map[string]http.Handler, error) {
			m = got
			return map[string]http.Handler{"/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("explorer of " + got.Verifier.Name()))
			})}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Log == nil || m.Backend != store || m.Log.Params() != r.Log.Params() {
		t.Errorf("Extra got %+v", m)
	}
	if code, body := get(t, r.URL+"/"); code != 200 || body != "explorer of keycommit.example/log/start" {
		t.Errorf("GET / = %d %q", code, body)
	}
	if code, body := get(t, r.URL+api.PathCheckpoint); code != 200 || !strings.HasPrefix(body, "keycommit.example/log/start\n") {
		t.Errorf("GET /checkpoint = %d %q", code, body)
	}
	if code, body := get(t, r.URL+api.PathMetrics); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("GET /metrics = %d, no Go collector", code)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Checkpoint(context.Background()); err == nil {
		t.Error("backend still open after Shutdown")
	}
}

// TestStartErrorClosesBackend: when Start fails (here the Extra hook),
// it closes the backend it was handed, through Close.
func TestStartErrorClosesBackend(t *testing.T) {
	dir, store := newLogDir(t)
	closed := false
	_, err := server.Start(t.Context(), server.StartConfig{
		Dir: dir, Listen: "127.0.0.1:0",
		Open:  opener(store, func() error { closed = true; return store.Close() }),
		Extra: func(server.Mounting) (map[string]http.Handler, error) { return nil, errors.New("no explorer") },
	})
	if err == nil || err.Error() != "no explorer" {
		t.Fatalf("err = %v", err)
	}
	if !closed {
		t.Error("backend not closed")
	}
}
