package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/witnessing"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/mod/sumdb/tlog"
)

// WritingLog is the writing side Start runs over the backend: a
// *sequencer.Sequencer, or a frontend sharing a backend with others
// (trillianstore.Frontend).
type WritingLog interface {
	Log
	Close() error
}

var _ WritingLog = (*sequencer.Sequencer)(nil)

// StartConfig configures Start: one log process over any backend.
type StartConfig struct {
	// Dir holds the log's key files, log.key and log.vkey (see
	// log/checkpoint). Required.
	Dir string
	// Open opens the log's storage, holding an initialized log, once the
	// key is loaded. Required. Start owns what it returns: it is closed on
	// Shutdown, or before Start returns an error.
	Open func(ctx context.Context, o Opening) (*Opened, error)
	// Listen is the address to listen on (port 0 picks one), unless
	// Listener is set, which is used instead.
	Listen   string
	Listener net.Listener
	// ClockOffset shifts the log's clock (tests only).
	ClockOffset time.Duration
	// Witness is the optional witness hook (see sequencer.Config).
	Witness func(ctx context.Context, signed []byte) ([]byte, error)
	// WitnessPolicy, if set and Witness is nil, is a witness policy file
	// (Sigsum/Tessera format) naming the witnesses to ask for
	// cosignatures on every checkpoint.
	WitnessPolicy string
	// CosignInterval and CosignRetryMax are the witness loop's interval
	// and backoff cap (see sequencer.Config; zero means the defaults).
	CosignInterval, CosignRetryMax time.Duration
	// OriginControl checks proofs of origin control (see
	// sequencer.Config.OriginControl; log/challenge fetches them). Without
	// it the log admits no first registration and no reclaim.
	OriginControl func(ctx context.Context, log, origin string, accountKey ed25519.PublicKey) (*schema.OriginControl, error)
	// Registry receives every metric of the process (the backend's may
	// already be there) and is served at /metrics; nil means a new one.
	// Start adds the Go and process collectors.
	Registry *prometheus.Registry
	// Extra, if set, returns handlers to mount beside the log's routes
	// (see Config.Mount), given the running log: e.g. a web explorer at
	// "/" that reads the backend and asks the log's policy.
	Extra func(Mounting) (map[string]http.Handler, error)
	// Logger receives the log's logs (default: discard).
	Logger *slog.Logger
}

// Opening is what StartConfig.Open is given.
type Opening struct {
	// Signer is the log's key (a backend may sign its own checkpoints).
	Signer c2sp.Signer
	// Registry receives the backend's metrics.
	Registry *prometheus.Registry
	Logger   *slog.Logger
}

// Opened is a backend StartConfig.Open opened.
type Opened struct {
	// Backend is the log's storage. Required.
	Backend storage.Backend
	// Close releases the backend and whatever was opened with it (e.g. a
	// gRPC connection); nil means Backend.Close.
	Close func() error
	// NewLog starts the writing side over Backend from the sequencer
	// configuration Start builds; nil means sequencer.New.
	NewLog func(ctx context.Context, cfg sequencer.Config) (WritingLog, error)
	// LogAttrs are added to the "log serving" line (e.g. the backend's
	// name).
	LogAttrs []any
}

// Mounting is what a StartConfig.Extra hook is given: the parts of the
// log extra handlers read.
type Mounting struct {
	// Backend is the log's storage (read only, for handlers).
	Backend storage.Backend
	// Log is the writing side; its Status and Params answer policy
	// questions.
	Log WritingLog
	// Verifier is the log's checkpoint key, and VKey its text form.
	Verifier c2sp.Verifier
	VKey     string
	// WitnessPolicy is the witness policy file (StartConfig.WitnessPolicy),
	// if any.
	WitnessPolicy string
	Logger        *slog.Logger
	Registry      *prometheus.Registry
}

// Running is a log being served.
type Running struct {
	// URL is the base URL it is served at (http://host:port).
	URL string
	// VKey is the log's verifier key.
	VKey string
	// Log is the writing side.
	Log WritingLog

	srv    *http.Server
	logger *slog.Logger
	close  func() error
	errc   chan error
}

// Start opens the writing side of the log in backend, with the key in
// cfg.Dir, and serves every route (New) on cfg.Listen.
func Start(ctx context.Context, cfg StartConfig) (_ *Running, err error) {
	if cfg.Open == nil {
		return nil, errors.New("server start config needs Open")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	signer, err := checkpoint.LoadSigner(cfg.Dir)
	if err != nil {
		return nil, err
	}
	vkey, err := checkpoint.LoadVerifierKey(cfg.Dir)
	if err != nil {
		return nil, err
	}
	verifier, err := checkpoint.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opened, err := cfg.Open(ctx, Opening{Signer: signer, Registry: reg, Logger: logger})
	if err != nil {
		return nil, err
	}
	if opened == nil || opened.Backend == nil {
		return nil, errors.New("server start config: Open returned no Backend")
	}
	backend := opened.Backend
	closeBackend := opened.Close
	if closeBackend == nil {
		closeBackend = backend.Close
	}
	var wlog WritingLog
	defer func() {
		if err != nil {
			if wlog != nil {
				wlog.Close()
			}
			closeBackend()
		}
	}()
	clock := time.Now
	if off := cfg.ClockOffset; off != 0 {
		clock = func() time.Time { return time.Now().Add(off) }
		logger.Warn("log clock is shifted (unsafe, for tests only)", "offset", off.String())
	}
	var witnesses sequencer.Witnesses
	if cfg.Witness == nil && cfg.WitnessPolicy != "" {
		if witnesses, err = Witnesses(cfg.WitnessPolicy, backend, clock, logger, reg); err != nil {
			return nil, err
		}
	}
	newLog := opened.NewLog
	if newLog == nil {
		newLog = func(ctx context.Context, c sequencer.Config) (WritingLog, error) { return sequencer.New(ctx, c) }
	}
	wlog, err = newLog(ctx, sequencer.Config{
		Backend: backend, Signer: signer, Verifier: verifier, Clock: clock,
		Witness: cfg.Witness, Witnesses: witnesses, CosignInterval: cfg.CosignInterval, CosignRetryMax: cfg.CosignRetryMax,
		Logger: logger, Registerer: reg, OriginControl: cfg.OriginControl,
	})
	if err != nil {
		return nil, err
	}
	var extra map[string]http.Handler
	if cfg.Extra != nil {
		extra, err = cfg.Extra(Mounting{Backend: backend, Log: wlog, Verifier: verifier, VKey: vkey, WitnessPolicy: cfg.WitnessPolicy, Logger: logger, Registry: reg})
		if err != nil {
			return nil, err
		}
	}
	h, err := New(Config{Reader: backend, Log: wlog, Logger: logger, Registerer: reg, Gatherer: reg, Mount: extra})
	if err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("couldn't listen on %s: %w", cfg.Listen, err)
		}
	}
	r := &Running{
		URL: "http://" + ln.Addr().String(), VKey: vkey, Log: wlog,
		srv: NewHTTPServer(ln.Addr().String(), h, logger), logger: logger, errc: make(chan error, 1),
	}
	r.close = func() error {
		wlog.Close()
		return closeBackend()
	}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.errc <- err
		}
	}()
	size, _, _ := backend.Checkpoint(ctx)
	logger.Info("log serving", append([]any{"origin", signer.Name(), "size", size, "url", r.URL}, opened.LogAttrs...)...)
	return r, nil
}

// Shutdown stops serving, finishes the batch in progress and closes the
// backend.
func (r *Running) Shutdown(ctx context.Context) error {
	err := r.srv.Shutdown(ctx)
	if cerr := r.close(); err == nil {
		err = cerr
	}
	return err
}

// Done returns a channel that receives the error if the server stops on
// its own.
func (r *Running) Done() <-chan error { return r.errc }

// Wait serves until ctx is done, then shuts down (allowing in-flight
// requests 10 seconds), or until the server stops on its own.
func (r *Running) Wait(ctx context.Context) error {
	select {
	case err := <-r.errc:
		r.Shutdown(context.Background())
		return fmt.Errorf("log server stopped: %w", err)
	case <-ctx.Done():
	}
	r.logger.Info("log shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(sctx); err != nil {
		return fmt.Errorf("couldn't shut down the log cleanly: %w", err)
	}
	return nil
}

// Witnesses reads the witness policy file at path and returns the
// collector the sequencer's witness loop asks for cosignatures, proving
// consistency from the tiles in r and stamping answers with clock.
func Witnesses(path string, r storage.Reader, clock func() time.Time, logger *slog.Logger, reg prometheus.Registerer) (*witnessing.Collector, error) {
	pol, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read witness policy: %w", err)
	}
	c, err := witnessing.New(witnessing.Config{Policy: pol, Prove: StoreProver(r), Logger: logger, Metrics: reg, Clock: clock})
	if err != nil {
		return nil, fmt.Errorf("witness policy %s: %w", path, err)
	}
	return c, nil
}

// StoreProver proves consistency between two sizes of the tree stored in r.
func StoreProver(r storage.Reader) witnessing.ProveFunc {
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
