package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/httpguard"
	"github.com/keycommit/keycommit/monitor"
	"github.com/keycommit/keycommit/witness"
	"github.com/prometheus/client_golang/prometheus"
)

// holdAll takes every slot of l until the returned function is called.
func holdAll(t *testing.T, l *httpguard.Limiter) func() {
	t.Helper()
	var release []func()
	for range l.Cap() {
		r, ok := l.TryAcquire()
		if !ok {
			t.Fatal("a read slot is taken before the test")
		}
		release = append(release, r)
	}
	return func() {
		for _, r := range release {
			r()
		}
	}
}

// checkLimited: with every read slot held, each GET path is answered 429
// with Retry-After; with the slots free, none is.
func checkLimited(t *testing.T, what string, h http.Handler, l *httpguard.Limiter, paths ...string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	status := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	release := holdAll(t, l)
	for _, p := range paths {
		if code, ra := status(p); code != http.StatusTooManyRequests || ra == "" {
			t.Errorf("%s GET %s with every read slot taken: %d, Retry-After %q; want 429", what, p, code, ra)
		}
	}
	release()
	for _, p := range paths {
		if code, _ := status(p); code == http.StatusTooManyRequests {
			t.Errorf("%s GET %s with the slots free: 429", what, p)
		}
	}
}

// TestServeReadLimits: the routes the command mounts beside the monitor's
// and the witness's handlers (the explorer at /, /metrics, the version)
// are inside the same read in-flight limit as their other GETs. (Mount
// them bare, as the command once did, and they answer 200 while the
// limit is held.)
func TestServeReadLimits(t *testing.T) {
	ctx := t.Context()
	_, vkey, err := checkpoint.GenerateKey("limits.example/log")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := monitor.New(ctx, monitor.Config{DataDir: t.TempDir(), Logs: []monitor.LogConfig{{URL: "http://127.0.0.1:1", VKey: vkey}},
		Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mex, err := monitorExplorer(m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	checkLimited(t, "monitor", monitorMux(m, mex, reg), m.ReadLimit(), "/", "/metrics", api.PathVersion, "/v1/gossip")

	dir := filepath.Join(t.TempDir(), "w")
	if _, err := witness.InitDir(ctx, dir, "limits.example/witness"); err != nil {
		t.Fatal(err)
	}
	d, err := witness.OpenDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	wreg := prometheus.NewRegistry()
	w, err := witness.New(witness.Config{Store: d.Store, Signers: d.Signers, VKeys: d.VKeys, Logger: slog.New(slog.DiscardHandler), Metrics: wreg})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	checkLimited(t, "witness", witnessMux(w, wreg), w.ReadLimit(), "/", "/metrics", api.PathVersion)
}
