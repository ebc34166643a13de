// Package logtest starts a complete keycommit log for tests: a sequencer
// and its HTTP server (every route log/server mounts) on a loopback
// httptest server, over any storage backend, with a settable clock.
package logtest

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
)

// Origin is the origin of test logs (the log test issuers sign for).
const Origin = issuertest.DefaultLog

// T0 is where test clocks start.
var T0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Set sets the clock.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Log is a running test log.
type Log struct {
	Backend  storage.Backend
	Seq      *sequencer.Sequencer
	Server   *httptest.Server
	URL      string
	Client   *client.Client
	Clock    *Clock
	VKey     string
	Signer   c2sp.Signer
	Verifier c2sp.Verifier
	Registry *prometheus.Registry
	// Config is the sequencer's configuration (for Restart).
	Config sequencer.Config

	opts Options
}

// Options tweak Start.
type Options struct {
	// Witness is passed to the sequencer.
	Witness func(ctx context.Context, signed []byte) ([]byte, error)
	// Witnesses, if set, is called with the log's clock, storage and
	// verifier key and returns the sequencer's Witnesses (e.g. a
	// witnessing.Collector proving from the backend).
	Witnesses func(clock *Clock, b storage.Backend, vkey string) sequencer.Witnesses
	// CosignInterval, CosignRetryMin and CosignRetryMax are passed to the
	// sequencer.
	CosignInterval, CosignRetryMin, CosignRetryMax time.Duration
	// Timer, if set, is the witness loop's fake timer (see NewTimer;
	// over Log.Clock, so make it with NewTimer(nil) and Start sets it).
	Timer *Timer
	// OnCosignature is passed to the sequencer.
	OnCosignature func(witnessName string, cosigTime, localTime time.Time)
	// MaxBodyBytes is passed to the server.
	MaxBodyBytes int64
	// Mount is passed to the server (extra handlers, e.g. "/").
	Mount map[string]http.Handler
	// OriginControl is passed to the sequencer (default
	// issuertest.AssumeControl).
	OriginControl func(ctx context.Context, log, origin string, accountKey ed25519.PublicKey) (*schema.OriginControl, error)
}

// Start initializes a log on the empty backend b and serves it. It is
// stopped when the test ends (the backend is not closed).
func Start(tb testing.TB, b storage.Backend, opts *Options) *Log {
	tb.Helper()
	if opts == nil {
		opts = &Options{}
	}
	skey, vkey, err := checkpoint.GenerateKey(Origin)
	if err != nil {
		tb.Fatal(err)
	}
	s, _ := checkpoint.NewSigner(skey)
	v, _ := checkpoint.NewVerifier(vkey)
	clock := &Clock{t: T0}
	control := opts.OriginControl
	if control == nil {
		control = issuertest.AssumeControl
	}
	cfg := sequencer.Config{Backend: b, Signer: s, Verifier: v, Clock: clock.Now, Witness: opts.Witness,
		CosignInterval: opts.CosignInterval, CosignRetryMin: opts.CosignRetryMin, CosignRetryMax: opts.CosignRetryMax,
		OnCosignature: opts.OnCosignature, OriginControl: control}
	if opts.Witnesses != nil {
		cfg.Witnesses = opts.Witnesses(clock, b, vkey)
	}
	if opts.Timer != nil {
		opts.Timer.clock = clock
		cfg.After = opts.Timer.After
		cfg.Jitter = func() float64 { return 0 }
	}
	if _, err := sequencer.Init(context.Background(), cfg); err != nil {
		tb.Fatalf("logtest: Init: %v", err)
	}
	l := &Log{Backend: b, Clock: clock, VKey: vkey, Signer: s, Verifier: v, Config: cfg, opts: *opts}
	l.start(tb)
	return l
}

func (l *Log) start(tb testing.TB) {
	tb.Helper()
	l.Registry = prometheus.NewRegistry()
	cfg := l.Config
	cfg.Registerer = l.Registry
	seq, err := sequencer.New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("logtest: sequencer.New: %v", err)
	}
	srv, err := server.New(server.Config{Reader: l.Backend, Log: seq, Registerer: l.Registry, Gatherer: l.Registry, MaxBodyBytes: l.opts.MaxBodyBytes, Mount: l.opts.Mount})
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	c, err := client.New(hs.URL, l.VKey, hs.Client())
	if err != nil {
		tb.Fatal(err)
	}
	l.Seq, l.Server, l.URL, l.Client = seq, hs, hs.URL, c
	tb.Cleanup(func() { hs.Close(); seq.Close() })
}

// Restart stops the sequencer and server and starts them again over
// backend b (the same one, or a reopened one), as a process restart would.
func (l *Log) Restart(tb testing.TB, b storage.Backend) {
	tb.Helper()
	l.Server.Close()
	l.Seq.Close()
	l.Backend = b
	l.Config.Backend = b
	l.opts.MaxBodyBytes = 0
	l.start(tb)
}
