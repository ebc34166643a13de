package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/keycommit/keycommit/log/bundle"

	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/witnessing"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"
)

// storeProver proves consistency between two sizes of the tree stored in r.
func storeProver(r storage.Reader) witnessing.ProveFunc {
	return func(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
		hr := tiles.HashReader(func(t tlog.Tile) ([]byte, error) { return r.Tile(ctx, t.L, t.N) })
		p, err := tlog.ProveTree(int64(newSize), int64(oldSize), hr)
		if err != nil {
			return nil, fmt.Errorf("couldn't prove consistency of %d with %d: %w", oldSize, newSize, err)
		}
		out := make([][]byte, len(p))
		for i := range p {
			out[i] = p[i][:]
		}
		return out, nil
	}
}

// witnessHook reads the witness policy file at path and returns the hook
// that collects cosignatures from its witnesses for every checkpoint the
// log publishes.
func witnessHook(path string, r storage.Reader, logger *slog.Logger, reg prometheus.Registerer) (func(context.Context, []byte) ([]byte, error), error) {
	pol, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read witness policy: %w", err)
	}
	c, err := witnessing.New(witnessing.Config{Policy: pol, Prove: storeProver(r), Logger: logger, Metrics: reg})
	if err != nil {
		return nil, fmt.Errorf("witness policy %s: %w", path, err)
	}
	return c.Witness, nil
}

// withBundles puts the user-agent endpoints (GET /v1/keys.bundle and GET
// /v1/issuer-proof, see log/bundle) in front of the log's handler h.
func withBundles(h http.Handler, r storage.Reader, logger *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	bh, err := bundle.NewHandler(bundle.Config{Source: bundle.NewStorageSource(r), Logger: logger, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("couldn't set up the bundle endpoints: %w", err)
	}
	mux := http.NewServeMux()
	bh.Register(mux)
	mux.Handle("/", h)
	return mux, nil
}
