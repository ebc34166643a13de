package trillianstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultLease is the writer's lease: a writer that stops renewing it
// (killed, cut off from MariaDB) is replaced within about DefaultLease
// plus a quarter of it (the others look every quarter), plus the time to
// catch up and load the policy state.
const DefaultLease = time.Second

// FrontendConfig configures a Frontend.
type FrontendConfig struct {
	// ID names this frontend in the lease (default: random).
	ID string
	// Advertise is the base URL (http://host:port) at which the other
	// frontends reach this frontend's log API when it is the writer.
	// Required.
	Advertise string
	// VKey is the log's verifier key: the answers of the writer to a
	// forwarded submission are verified with it (log/client). Required.
	VKey string
	// Lease is the writer's lease (default DefaultLease), renewed every
	// quarter of it.
	Lease time.Duration
	// HTTPClient forwards submissions (default: a client with a 30 s
	// timeout).
	HTTPClient *http.Client
	// ForwardsInFlight bounds the batches of forwarded submissions in
	// flight to the writer at once (default DefaultForwardsInFlight);
	// the submissions that arrive meanwhile wait and go together in the
	// next batch.
	ForwardsInFlight int
}

// Frontend is one keycommit frontend over a Trillian tree: the log's
// writer while it holds the lease, a forwarder otherwise. There is one
// writer at a time, and any frontend can become it:
//
//   - The writer runs the log's sequencer over the Store (batches, policy
//     in log order across the whole log, signing, witnesses) and renews the
//     lease every Lease/4. Each of its batches is one MariaDB transaction
//     that checks its fencing token (Store.Append), so a writer that lost
//     the lease can never write again.
//   - The others forward submissions to the writer (Lease.Addr), several
//     per request (POST api.PathForward with ForwardedHeader: the ones
//     that arrive while ForwardsInFlight batches are in flight go
//     together in the next, see forward.go), and answer each submitter
//     with the writer's answer to its submission, verified (the entry
//     records it, inclusion proof against a checkpoint signed by the log
//     key) by log/client. They answer every read from
//     their cache and a sequencer.View of the policy state, both kept up
//     to date from the shared store (Store.Sync, then View.Advance on
//     every growth).
//   - Every Lease/4 a frontend that is not the writer reads the lease; when
//     it expired (or nobody holds it) it takes it (the fencing token grows),
//     catches up with the shared store, hands its View to a new sequencer
//     (no replay) and is the writer. A writer whose renewal is refused
//     because another took over, or who could not renew for a whole
//     Lease, steps down: its sequencer closes, and queued submissions are
//     forwarded to the new writer.
//
// A submission the writer committed but did not answer (it died) is
// refused by the prev rule when the submitter retries; the frontend then
// answers with the logged entry (see Submit), so the submitter gets the
// same verified result.
type Frontend struct {
	cfg    FrontendConfig
	seqCfg sequencer.Config
	store  *Store
	log    *slog.Logger
	fwd    *http.Client
	m      *frontendMetrics

	mu        sync.RWMutex
	seq       *sequencer.Sequencer // while the writer
	view      *sequencer.View      // while not the writer
	lease     Lease                // as last read
	renewedAt time.Time
	fwdr      *forwarder // to the writer at fwdr.addr

	// ctx ends when the frontend stops (forwarded batches in flight).
	ctx        context.Context
	cancel     context.CancelFunc
	stop, done chan struct{}
	closeOnce  sync.Once
	closed     atomic.Bool
}

var (
	_ server.WritingLog   = (*Frontend)(nil)
	_ server.ForwardKeyer = (*Frontend)(nil)
)

// ForwardKey implements server.ForwardKeyer: the key the frontends of the
// tree share to authenticate the batches they forward to the writer.
func (f *Frontend) ForwardKey() []byte { return f.store.fwdKey }

type frontendMetrics struct {
	writer               prometheus.Gauge
	takeovers, stepdowns prometheus.Counter
	forwarded            *prometheus.CounterVec
	forwardBatches       prometheus.Counter
	forwardBatchSize     prometheus.Histogram
}

func newFrontendMetrics(r prometheus.Registerer) (*frontendMetrics, error) {
	m := &frontendMetrics{
		writer:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "keycommit_trillian_writer", Help: "1 while this frontend holds the writer's lease."}),
		takeovers:      prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_takeovers_total", Help: "Times this frontend took the writer's lease."}),
		stepdowns:      prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_stepdowns_total", Help: "Times this frontend stopped being the writer."}),
		forwarded:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keycommit_trillian_forwarded_total", Help: "Submissions forwarded to the writer, by outcome (ok, refused, error)."}, []string{"outcome"}),
		forwardBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_forward_batches_total", Help: "Requests that forwarded submissions to the writer (several submissions each)."}),
		forwardBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keycommit_trillian_forward_batch_submissions", Help: "Submissions per request forwarded to the writer.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9)}),
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.writer, m.takeovers, m.stepdowns, m.forwarded, m.forwardBatches, m.forwardBatchSize} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("couldn't register Trillian frontend metrics: %w", err)
			}
		}
	}
	return m, nil
}

// NewFrontend starts a frontend over store with the sequencer
// configuration cfg (whose Backend must be store). It loads the policy
// state, tries once to become the writer, and keeps trying in the
// background.
func NewFrontend(ctx context.Context, cfg sequencer.Config, store *Store, fc FrontendConfig) (*Frontend, error) {
	if cfg.Backend != store {
		return nil, errors.New("trillianstore: the sequencer's backend must be the Store")
	}
	if fc.Advertise == "" || fc.VKey == "" {
		return nil, errors.New("trillianstore: a frontend needs the URL it is reached at (Advertise) and the log's vkey")
	}
	if fc.ID == "" {
		var b [8]byte
		rand.Read(b[:])
		fc.ID = hex.EncodeToString(b[:])
	}
	if fc.Lease <= 0 {
		fc.Lease = DefaultLease
	}
	if fc.ForwardsInFlight <= 0 {
		fc.ForwardsInFlight = DefaultForwardsInFlight
	}
	fwd := fc.HTTPClient
	if fwd == nil {
		fwd = &http.Client{Timeout: 30 * time.Second}
	}
	base := fwd.Transport
	if base == nil {
		// Keep a connection per forwarded batch in flight (the default
		// keeps 2 per host, and forwarding would open and close
		// connections all the time).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		base = t
	}
	fwd = &http.Client{Transport: forwardedTransport{base}, Timeout: fwd.Timeout, CheckRedirect: fwd.CheckRedirect, Jar: fwd.Jar}
	// One set of sequencer metrics for every sequencer this frontend
	// runs: they stay registered and live across takeovers.
	if cfg.Metrics == nil {
		ms, err := sequencer.NewMetrics(cfg.Registerer)
		if err != nil {
			return nil, err
		}
		cfg.Metrics = ms
	}
	m, err := newFrontendMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	cfg.Registerer = nil
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	view, err := sequencer.NewView(ctx, cfg)
	if err != nil {
		return nil, err
	}
	f := &Frontend{cfg: fc, seqCfg: cfg, store: store, log: logger, fwd: fwd, m: m, view: view,
		stop: make(chan struct{}), done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.tick(ctx)
	go f.loop()
	return f, nil
}

// forwardedTransport marks forwarded submissions.
type forwardedTransport struct{ base http.RoundTripper }

func (t forwardedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(server.ForwardedHeader, "1")
	return t.base.RoundTrip(r)
}

// ID returns the frontend's name in the lease.
func (f *Frontend) ID() string { return f.cfg.ID }

// Writer reports whether this frontend is the log's writer.
func (f *Frontend) Writer() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.seq != nil
}

// Sequencer returns the sequencer while this frontend is the writer, or
// nil.
func (f *Frontend) Sequencer() *sequencer.Sequencer {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.seq
}

func (f *Frontend) loop() {
	defer close(f.done)
	t := time.NewTicker(f.cfg.Lease / 4)
	defer t.Stop()
	for {
		grown := f.store.Grown()
		select {
		case <-f.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Lease)
			f.tick(ctx)
			cancel()
		case <-grown:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			f.advance(ctx)
			cancel()
		}
	}
}

// advance brings the view up to the cache.
func (f *Frontend) advance(ctx context.Context) {
	f.mu.RLock()
	v := f.view
	f.mu.RUnlock()
	if v == nil {
		return
	}
	if err := v.Advance(ctx); err != nil {
		f.log.Warn("couldn't bring the policy view up to date; loading it again", "err", err)
		f.mu.Lock()
		if f.view == v {
			f.view = nil
		}
		f.mu.Unlock()
	}
}

// tick renews the lease (writer) or looks whether to take it over.
func (f *Frontend) tick(ctx context.Context) {
	f.mu.RLock()
	seq, view := f.seq, f.view
	f.mu.RUnlock()
	if seq != nil {
		err := f.store.Renew(ctx, f.cfg.Lease)
		f.mu.Lock()
		if err == nil {
			f.renewedAt = time.Now()
		}
		lost := errors.Is(err, ErrNotWriter) || err != nil && time.Since(f.renewedAt) >= f.cfg.Lease
		f.mu.Unlock()
		if err != nil {
			f.log.Warn("couldn't renew the writer's lease", "err", err)
		}
		if lost {
			f.stepDown(ctx, seq)
		}
		return
	}
	if view == nil {
		v, err := sequencer.NewView(ctx, f.seqCfg)
		if err != nil {
			f.log.Warn("couldn't load the policy view", "err", err)
			return
		}
		f.mu.Lock()
		f.view = v
		f.mu.Unlock()
	}
	l, err := f.store.Lease(ctx)
	if err != nil {
		f.log.Warn("couldn't read the writer's lease", "err", err)
		return
	}
	f.mu.Lock()
	f.lease = l
	f.mu.Unlock()
	if l.Held() && l.Holder != f.cfg.ID {
		f.advance(ctx)
		return
	}
	ok, err := f.store.Acquire(ctx, f.cfg.ID, f.cfg.Advertise, f.cfg.Lease)
	if err != nil {
		f.log.Warn("couldn't take the writer's lease", "err", err)
		return
	}
	if ok {
		f.takeOver(ctx)
	}
}

// takeOver starts the sequencer once this frontend holds the lease.
func (f *Frontend) takeOver(ctx context.Context) {
	t0 := time.Now()
	fail := func(err error) {
		f.log.Error("couldn't take over as the log's writer; giving up the lease", "err", err)
		f.store.Release(ctx)
	}
	// Nobody else writes now: catch up with everything committed.
	if err := f.store.Sync(ctx); err != nil {
		fail(err)
		return
	}
	f.mu.Lock()
	view := f.view
	f.view = nil
	f.mu.Unlock()
	cfg := f.seqCfg
	cfg.View = view
	seq, err := sequencer.New(ctx, cfg)
	if err != nil {
		fail(err)
		return
	}
	f.mu.Lock()
	f.seq, f.renewedAt = seq, time.Now()
	f.lease = Lease{Holder: f.cfg.ID, Addr: f.cfg.Advertise}
	f.mu.Unlock()
	f.m.writer.Set(1)
	f.m.takeovers.Inc()
	size, _ := seq.Checkpoint()
	f.log.Info("this frontend is the log's writer", "id", f.cfg.ID, "size", size, "took", time.Since(t0).String())
}

// stepDown stops seq, the sequencer of a lease this frontend lost.
func (f *Frontend) stepDown(ctx context.Context, seq *sequencer.Sequencer) {
	f.mu.Lock()
	if f.seq != seq {
		f.mu.Unlock()
		return
	}
	f.seq = nil
	f.mu.Unlock()
	f.m.writer.Set(0)
	f.m.stepdowns.Inc()
	f.log.Warn("this frontend is no longer the log's writer", "id", f.cfg.ID)
	go seq.Close() // queued submissions get ErrClosed and are forwarded
	f.store.Release(ctx)
	if v, err := sequencer.NewView(ctx, f.seqCfg); err == nil {
		f.mu.Lock()
		f.view = v
		f.mu.Unlock()
	} else {
		f.log.Warn("couldn't load the policy view", "err", err)
	}
}

// Close stops the frontend: its sequencer finishes the batches it staged,
// and the lease is given up so that another frontend takes over at once.
func (f *Frontend) Close() error {
	f.closed.Store(true)
	f.closeOnce.Do(func() { close(f.stop); f.cancel() })
	<-f.done
	f.mu.Lock()
	seq := f.seq
	f.seq = nil
	f.mu.Unlock()
	if seq != nil {
		seq.Close()
		f.m.writer.Set(0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f.store.Release(ctx)
}

// Crash stops the frontend as kill -9 would leave it for the others: it
// stops renewing and writing, and keeps the lease until it expires
// (tests of failover).
func (f *Frontend) Crash() {
	f.closed.Store(true)
	f.closeOnce.Do(func() { close(f.stop); f.cancel() })
	<-f.done
	f.mu.Lock()
	seq := f.seq
	f.seq = nil
	f.mu.Unlock()
	f.store.Abandon()
	if seq != nil {
		seq.Close() // its writes are refused: the store gave up its token
	}
}

// Check implements server.Log: the writer's sequencer, or the view.
func (f *Frontend) Check(ctx context.Context, sub *schema.Submission) policy.Decision {
	f.mu.RLock()
	seq, view := f.seq, f.view
	f.mu.RUnlock()
	switch {
	case seq != nil:
		return seq.Check(ctx, sub)
	case view != nil:
		return view.Check(ctx, sub)
	}
	return policy.Decision{Rule: policy.RuleMalformed, Reason: "the frontend is loading the log's policy state; try again"}
}

// Status implements server.Log.
func (f *Frontend) Status(origin string) (*policy.IssuerStatus, bool) {
	f.mu.RLock()
	seq, view := f.seq, f.view
	f.mu.RUnlock()
	switch {
	case seq != nil:
		return seq.Status(origin)
	case view != nil:
		return view.Status(origin)
	}
	return nil, false
}

// Params implements server.Log.
func (f *Frontend) Params() schema.PolicyParams {
	f.mu.RLock()
	seq, view := f.seq, f.view
	f.mu.RUnlock()
	switch {
	case seq != nil:
		return seq.Params()
	case view != nil:
		return view.Params()
	}
	return policy.DefaultParams()
}

// Submit sequences sub on the writer: here, or forwarded to it. It goes
// on through takeovers (until ctx ends, at most a minute without a
// writer). When sub is refused by the prev rule because it is already
// logged (its batch was committed but not answered, or the submitter
// repeats a logged statement), Submit answers with that entry.
func (f *Frontend) Submit(ctx context.Context, sub *schema.Submission) (*sequencer.Result, error) {
	giveUp := time.Now().Add(time.Minute)
	var last error
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, errors.Join(err, last)
		}
		if f.closed.Load() {
			return nil, errors.Join(sequencer.ErrClosed, last)
		}
		if attempt > 0 {
			if time.Now().After(giveUp) {
				return nil, fmt.Errorf("no writer took the submission within a minute: %w", last)
			}
			select {
			case <-ctx.Done():
				return nil, errors.Join(ctx.Err(), last)
			case <-time.After(min(time.Duration(attempt)*10*time.Millisecond, f.cfg.Lease/4)):
			}
		}
		f.mu.RLock()
		seq, l := f.seq, f.lease
		f.mu.RUnlock()
		var res *sequencer.Result
		var err error
		if seq != nil {
			res, err = seq.Submit(ctx, sub)
			if errors.Is(err, ErrNotWriter) {
				f.stepDown(ctx, seq)
			}
		} else {
			if server.Forwarded(ctx) {
				// Never forwarded twice: the forwarder asks the writer
				// it reads from the lease again.
				return nil, fmt.Errorf("%w: %w", server.ErrUnavailable, ErrNotWriter)
			}
			if !l.Held() || l.Addr == "" || l.Holder == f.cfg.ID {
				last = errors.New("no frontend holds the writer's lease")
				f.refreshLease(ctx)
				continue
			}
			res, err = f.forward(ctx, l.Addr, sub)
		}
		if err == nil {
			return res, nil
		}
		last = err
		var re *policy.RejectError
		switch {
		case errors.As(err, &re):
			if re.Rule == policy.RulePrev {
				if res, ok, lerr := f.logged(ctx, sub); lerr != nil {
					return nil, errors.Join(err, lerr)
				} else if ok {
					return res, nil
				}
			}
			return nil, err
		case errors.Is(err, ErrNotWriter), errors.Is(err, sequencer.ErrClosed), errors.Is(err, storage.ErrConflict),
			errors.Is(err, errForward):
			if seq == nil {
				f.refreshLease(ctx)
			}
			continue
		default:
			var ce *sequencer.ClockError
			if errors.As(err, &ce) {
				return nil, err
			}
			if seq != nil && ctx.Err() == nil {
				continue // a failed batch: the sequencer rebuilt its state
			}
			return nil, err
		}
	}
}

func (f *Frontend) refreshLease(ctx context.Context) {
	if l, err := f.store.Lease(ctx); err == nil {
		f.mu.Lock()
		if f.seq == nil {
			f.lease = l
		}
		f.mu.Unlock()
	}
}

// errForward marks a forwarding failure that is worth retrying.
var errForward = errors.New("couldn't forward the submission to the writer")

// forward submits sub to the writer at addr, in the next batch
// forwarded there, and returns its verified answer.
func (f *Frontend) forward(ctx context.Context, addr string, sub *schema.Submission) (*sequencer.Result, error) {
	w, err := f.forwarder(addr)
	if err != nil {
		return nil, err
	}
	return w.submit(ctx, sub)
}

// forwarder returns the forwarder to the writer at addr (kept while the
// writer stays, so that its client keeps its connections and the
// checkpoint it verified last).
func (f *Frontend) forwarder(addr string) (*forwarder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fwdr != nil && f.fwdr.addr == addr {
		return f.fwdr, nil
	}
	c, err := client.New(addr, f.cfg.VKey, f.fwd)
	if err != nil {
		return nil, fmt.Errorf("the writer's address in the lease: %w", err)
	}
	f.fwdr = &forwarder{f: f, c: c, addr: addr}
	return f.fwdr, nil
}

// logged looks for sub among its issuer's logged entries (the same
// statement and signature; the log time may differ) and returns its
// result in the latest checkpoint.
func (f *Frontend) logged(ctx context.Context, sub *schema.Submission) (*sequencer.Result, bool, error) {
	if err := f.store.Sync(ctx); err != nil {
		return nil, false, err
	}
	idxs, err := f.store.IssuerEntries(ctx, sub.Issuer)
	if err != nil || len(idxs) == 0 {
		return nil, false, err
	}
	size, cp, err := f.store.Checkpoint(ctx)
	if err != nil {
		return nil, false, err
	}
	// The statement can only be one of the issuer's latest entries: look
	// at a few, newest first.
	for i := len(idxs) - 1; i >= 0 && i >= len(idxs)-16; i-- {
		idx := idxs[i]
		if idx >= size {
			continue
		}
		es, err := f.store.Entries(ctx, idx, idx+1)
		if err != nil {
			return nil, false, err
		}
		e, err := schema.ParseEntry(es[0])
		if err != nil {
			return nil, false, err
		}
		if e.Kind != sub.Kind || !bytes.Equal(e.Prev, sub.Prev) || !bytes.Equal(e.Body, sub.Body) || !bytes.Equal(e.Sig, sub.Sig) {
			continue
		}
		hr := tiles.HashReader(func(t tlog.Tile) ([]byte, error) { return f.store.Tile(ctx, t.L, t.N) })
		proof, err := tlog.ProveRecord(int64(size), int64(idx), hr)
		if err != nil {
			return nil, false, fmt.Errorf("couldn't prove logged entry %d: %w", idx, err)
		}
		return &sequencer.Result{Index: idx, LeafHash: tiles.LeafHash(es[0]), Entry: es[0], Proof: proof, Size: size, Checkpoint: cp}, true, nil
	}
	return nil, false, nil
}
