// Package sequencer is the log's single writer. It batches submissions,
// admits each through the policy in log order, assigns indexes and log
// time, appends a snapshot entry after every batch that changed the key
// set, computes the changed tiles, signs the new checkpoint, and persists
// everything in one atomic durable step before it answers anyone.
//
// Issuer signatures are checked before sequencing, on the submitter's
// goroutine (Prepare), against the account key the current state says
// must sign; the sequencer skips the check only when that key is still
// the one in force when the entry is evaluated (policy.EvaluatePreverified)
// and checks it again otherwise.
//
// Batches go through a pipeline: the sequencing goroutine admits
// submissions into batch N+1 as they arrive (step 1) while the persisting
// goroutine makes batch N durable and publishes it (steps 2 and 3), and
// an answering goroutine computes the inclusion proofs of batch N-1 and
// answers its submitters. Batch N+1 is finished and handed over when the
// persisting goroutine is idle, so it takes everything that arrived in
// the meantime. Batches are persisted, published and answered strictly
// in order, and no submitter is answered before its batch, and every
// batch before it, is durable and published.
//
// Commit order of one batch, and where a crash can land:
//
//  1. Evaluate and Apply each submission to the in-memory policy state,
//     append the snapshot entry, compute tiles and root, sign the
//     checkpoint, and every so often serialise the policy state. Nothing
//     is durable; nothing is visible outside the process except through
//     Check, Issuer and Status (see their docs). A crash here loses the
//     batch (and any batch staged before it and not yet persisted); no
//     submitter of theirs was answered.
//  2. storage.Writer.Append: entries, tiles, checkpoint, key set and the
//     serialised policy state in one atomic durable transaction. A crash
//     before it commits loses the batch (no submitter was answered); a
//     crash after it commits keeps the batch although no submitter was
//     answered (they retry and are refused by the prev rule; the entry is
//     in the log). If Append returns an error, the submitters of that
//     batch and of every batch staged after it get an error (those later
//     batches are not written), and the sequencer rebuilds its state from
//     storage before it stages another batch, whichever way the write
//     went.
//  3. Publish: the checkpoint becomes the latest in memory, each
//     submitter's future resolves with its index, inclusion proof and the
//     checkpoint (or with its policy refusal). A crash here is the same
//     as after 2.
//  4. Asynchronously, the witness hook cosigns the checkpoint and the
//     result is stored with SetCosigned. A crash or failure here only
//     delays cosigning; it never blocks steps 1-3.
//
// At startup the sequencer loads the latest serialised policy state, if
// the backend stores one (storage.PolicyStateReader), and applies only the
// entries after it; otherwise, or if that state does not load or the
// entries after it do not apply, it replays every stored entry into a
// fresh policy state. Stored entries were admitted when they were
// written, so they are applied, not evaluated again. It then checks that
// the stored tiles give the root of the stored checkpoint, so a restarted
// log continues exactly where the durable state ends and its next
// checkpoint is consistent with every one before.
package sequencer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Store is what a Sequencer needs of a backend: the log core, read back
// at startup (recovery) and by the witness loop's proofs, and written with
// every batch. The backend also stores the indexes each batch carries
// (storage.Batch), and, if it implements storage.PolicyStateReader, the
// policy states the sequencer hands it; the sequencer itself never reads
// the other indexes.
type Store interface {
	storage.LogReader
	storage.Writer
}

var _ Store = storage.Backend(nil)

// Config configures a Sequencer.
type Config struct {
	// Backend stores the log. Required.
	Backend Store
	// Signer is the log key; its name is the log's origin. Required.
	Signer note.Signer
	// Verifier is the log key's verifier, used to check what the Witness
	// hook returns and the stored checkpoint at startup. Required.
	Verifier note.Verifier
	// Clock gives the log's time (default time.Now). Entry times are
	// never taken from clients and never decrease.
	Clock func() time.Time
	// MaxBatchSize bounds the submissions sequenced together (default
	// 4096).
	MaxBatchSize int
	// MaxBatchDelay is how long the sequencer waits for more submissions
	// after the first of a batch (default 0: it takes what is queued, and
	// submissions queue up while the previous batches are being
	// persisted).
	MaxBatchDelay time.Duration
	// QueueSize bounds the submissions waiting to be sequenced (default
	// 4*MaxBatchSize). Submit blocks while the queue is full.
	QueueSize int
	// StateEvery and StateInterval say how often the policy state is
	// serialised and stored with a batch, when the backend can store it
	// (storage.PolicyStateReader): once StateEvery entries (default
	// 16384) were appended since the last stored state, or StateInterval
	// (default 5 minutes) passed and at least one entry was appended. A
	// restart then applies only the entries after it.
	StateEvery    uint64
	StateInterval time.Duration
	// Witness, when set, is called asynchronously with every newly
	// published checkpoint (the latest one, if several are published
	// while a call is in progress) and returns the same note with witness
	// cosignatures added. Its result is stored as the cosigned checkpoint.
	Witness func(ctx context.Context, signedCheckpoint []byte) (cosigned []byte, err error)
	// WitnessTimeout bounds each Witness call (default 30s).
	WitnessTimeout time.Duration
	// Logger receives operational logs (default: discard).
	Logger *slog.Logger
	// Registerer receives the sequencer's metrics (default: none).
	Registerer prometheus.Registerer
}

// Result is what a submitter gets once its entry is durable and inside a
// published checkpoint.
type Result struct {
	Index    uint64
	LeafHash tlog.Hash
	// Entry is the logged entry's canonical bytes.
	Entry []byte
	// Proof is the inclusion proof of the entry in the tree of Size.
	Proof []tlog.Hash
	Size  uint64
	// Checkpoint is the signed checkpoint of size Size.
	Checkpoint []byte
}

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("sequencer is closed")

// ErrNotInitialized is returned by New for a backend without a log.
var ErrNotInitialized = errors.New("log is not initialized")

type pending struct {
	ctx   context.Context
	e     *schema.Entry // the sequencer's own copy; Time is set in step 1
	key   ed25519.PublicKey
	start time.Time
	done  chan outcome
	// set while sequencing
	answered bool
	rejected error
	idx      uint64
	data     []byte
	leaf     tlog.Hash
}

func (p *pending) answer(o outcome) {
	if !p.answered {
		p.answered = true
		p.done <- o
	}
}

type outcome struct {
	res *Result
	err error
}

// staged is a batch through step 1, waiting to be persisted.
type staged struct {
	gen uint64
	// ps are the batch's submitters in order: accepted ones (with idx,
	// data and leaf set) and refused ones (with rejected set).
	ps []*pending
	// b is nil when nothing is to be appended (every submission refused).
	b      *storage.Batch
	u      *tiles.Update
	signed []byte
	// edge holds the tiles of the tree's right edge after the batch: with
	// u.Tiles, every hash an inclusion proof of a new entry needs.
	edge map[[2]int64][]byte
}

// Sequencer is the log's single writer.
type Sequencer struct {
	cfg     Config
	log     *slog.Logger
	origin  string
	metrics *metrics
	psr     storage.PolicyStateReader // nil if the backend can't store states

	queue   chan *pending
	persist chan *staged  // at most one batch at a time, see run
	ready   chan struct{} // the persisting goroutine finished a batch
	stop    chan struct{}
	closing sync.Once
	wg      sync.WaitGroup

	// mu guards the policy state (written by the sequencing goroutine,
	// read by Prepare, Check, Issuer, Params), the log time and the
	// published checkpoint (written by the persisting goroutine).
	mu       sync.RWMutex
	st       *policy.State
	cpSize   uint64
	cp       []byte
	lastTime int64

	// failed is the generation whose persisting failed: its remaining
	// staged batches are dropped, and the sequencing goroutine rebuilds
	// the state (starting generation gen+1) before staging more.
	failed    atomic.Uint64
	failedErr atomic.Pointer[error]

	// Sequencing-goroutine state.
	gen        uint64
	needReload bool
	app        *tiles.Appender
	stateSize  uint64    // size of the latest serialised policy state
	stateTime  time.Time // when it was made (or the state loaded)

	witnessCh chan []byte
}

func (c *Config) defaults() error {
	if c.Backend == nil || c.Signer == nil || c.Verifier == nil {
		return errors.New("sequencer config needs a Backend, a Signer and a Verifier")
	}
	if c.Signer.Name() != c.Verifier.Name() || c.Signer.KeyHash() != c.Verifier.KeyHash() {
		return errors.New("sequencer config: Signer and Verifier are not the same key")
	}
	if err := checkpoint.CheckOrigin(c.Signer.Name()); err != nil {
		return err
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.MaxBatchSize <= 0 {
		c.MaxBatchSize = 4096
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 4 * c.MaxBatchSize
	}
	if c.StateEvery == 0 {
		c.StateEvery = 16384
	}
	if c.StateInterval <= 0 {
		c.StateInterval = 5 * time.Minute
	}
	if c.WitnessTimeout <= 0 {
		c.WitnessTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func newSequencer(cfg Config) (*Sequencer, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	psr, _ := cfg.Backend.(storage.PolicyStateReader)
	return &Sequencer{
		cfg: cfg, log: cfg.Logger, origin: cfg.Signer.Name(), metrics: m, psr: psr,
		queue: make(chan *pending, cfg.QueueSize), persist: make(chan *staged, 1), ready: make(chan struct{}, 1), stop: make(chan struct{}),
		witnessCh: make(chan []byte, 1), gen: 1,
	}, nil
}

// Init writes the first entry of a new log: the policy parameters in force
// (policy.DefaultParams), at index 0, with the first checkpoint. The
// backend must be empty.
func Init(ctx context.Context, cfg Config) (*Result, error) {
	s, err := newSequencer(cfg)
	if err != nil {
		return nil, err
	}
	if _, _, err := cfg.Backend.Checkpoint(ctx); err == nil {
		return nil, errors.New("refusing to initialize a log that already has a checkpoint")
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("couldn't check that the log is empty: %w", err)
	}
	s.st = policy.NewState()
	if s.app, err = tiles.NewAppender(0, nil); err != nil {
		return nil, err
	}
	now := s.cfg.Clock().UnixMilli()
	e, err := schema.NewLogEntry(schema.KindPolicyParams, now, policy.DefaultParams())
	if err != nil {
		return nil, fmt.Errorf("couldn't make the policy parameters entry: %w", err)
	}
	p := &pending{ctx: ctx, e: e, start: time.Now(), done: make(chan outcome, 1)}
	b := &builder{gen: s.gen, now: now}
	if !s.admit(b, []*pending{p}) {
		return nil, (<-p.done).err
	}
	st, err := s.stage(b)
	if err != nil {
		return nil, err
	}
	s.persistStaged(ctx, st)()
	o := <-p.done
	return o.res, o.err
}

// New starts a sequencer over an initialized backend: it loads the policy
// state (see the package doc) and checks the stored tiles against the
// stored checkpoint.
func New(ctx context.Context, cfg Config) (*Sequencer, error) {
	s, err := newSequencer(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	s.wg.Add(2)
	go s.run()
	go s.persistLoop()
	if cfg.Witness != nil {
		s.wg.Add(1)
		go s.witnessLoop()
		s.mu.RLock()
		cp := s.cp
		s.mu.RUnlock()
		s.witnessCh <- cp // cosign the current checkpoint at startup
	}
	return s, nil
}

// load (re)builds the in-memory state from the backend. It runs on the
// sequencing goroutine (or before it starts) while no batch is in flight.
func (s *Sequencer) load(ctx context.Context) error {
	b := s.cfg.Backend
	size, cp, err := b.Checkpoint(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: no checkpoint in storage (run log init first)", ErrNotInitialized)
	}
	if err != nil {
		return fmt.Errorf("couldn't read the latest checkpoint: %w", err)
	}
	c, _, err := checkpoint.Open(cp, s.cfg.Verifier)
	if err != nil {
		return fmt.Errorf("stored checkpoint: %w", err)
	}
	if c.Size != size {
		return fmt.Errorf("stored checkpoint has size %d, storage says %d", c.Size, size)
	}
	st, from := s.loadPolicyState(ctx, size)
	lastTime, err := s.replay(ctx, st, from, size)
	if err != nil && from > 0 {
		s.log.Warn("entries after the stored policy state don't apply; replaying every entry", "state_size", from, "err", err)
		st, from = policy.NewState(), 0
		lastTime, err = s.replay(ctx, st, 0, size)
	}
	if err != nil {
		return err
	}
	app, err := tiles.NewAppender(int64(size), func(t tlog.Tile) ([]byte, error) {
		return b.Tile(ctx, t.L, t.N)
	})
	if err != nil {
		return fmt.Errorf("couldn't load the edge of the tree: %w", err)
	}
	root, err := app.Root()
	if err != nil {
		return fmt.Errorf("couldn't compute the root of the stored tree: %w", err)
	}
	if root != c.Hash {
		return fmt.Errorf("stored tiles give root %x for size %d, the stored checkpoint says %x", root[:], size, c.Hash[:])
	}
	s.mu.Lock()
	s.st, s.cpSize, s.cp, s.lastTime = st, size, cp, lastTime
	s.mu.Unlock()
	s.app = app
	s.stateSize, s.stateTime = from, time.Now()
	s.needReload = false
	s.gen++
	s.metrics.treeSize.Set(float64(size))
	s.log.Info("log state loaded", "origin", s.origin, "size", size, "policy_state_size", from, "replayed", size-from)
	return nil
}

// loadPolicyState returns the stored policy state and the size it covers
// if there is a usable one, or a fresh state and 0.
func (s *Sequencer) loadPolicyState(ctx context.Context, size uint64) (*policy.State, uint64) {
	if s.psr == nil {
		return policy.NewState(), 0
	}
	ps, err := s.psr.PolicyState(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return policy.NewState(), 0
	}
	if err != nil {
		s.log.Warn("couldn't read the stored policy state; replaying every entry", "err", err)
		return policy.NewState(), 0
	}
	if ps.Size > size {
		s.log.Warn("stored policy state is beyond the stored tree; replaying every entry", "state_size", ps.Size, "size", size)
		return policy.NewState(), 0
	}
	st, err := policy.UnmarshalState(ps.Data)
	if err != nil {
		s.log.Warn("stored policy state doesn't load; replaying every entry", "err", err)
		return policy.NewState(), 0
	}
	if st.Size() != ps.Size {
		s.log.Warn("stored policy state covers another size than stored with it; replaying every entry", "state_size", st.Size(), "stored_size", ps.Size)
		return policy.NewState(), 0
	}
	return st, ps.Size
}

// replay applies the stored entries [from, size) to st and returns the
// latest entry time of the log (entry times never decrease, so for from
// > 0 the time of entry from-1 counts too).
func (s *Sequencer) replay(ctx context.Context, st *policy.State, from, size uint64) (int64, error) {
	var lastTime int64
	first := from
	if from > 0 {
		first = from - 1
	}
	const chunk = 1024
	for start := first; start < size; start += chunk {
		end := min(start+chunk, size)
		es, err := s.cfg.Backend.Entries(ctx, start, end)
		if err != nil {
			return 0, fmt.Errorf("couldn't read entries [%d, %d) to replay: %w", start, end, err)
		}
		for i, data := range es {
			idx := start + uint64(i)
			// Stored entries were canonical when written: decode without
			// re-checking canonicality (Apply parses the body).
			var e schema.Entry
			if err := json.Unmarshal(data, &e); err != nil {
				return 0, fmt.Errorf("couldn't parse stored entry %d: %w", idx, err)
			}
			lastTime = max(lastTime, e.Time)
			if idx < from {
				continue // entry from-1, read for its time only
			}
			if err := st.Apply(&e, idx, tiles.LeafHash(data)); err != nil {
				return 0, fmt.Errorf("couldn't replay stored entry %d: %w", idx, err)
			}
		}
	}
	return lastTime, nil
}

// Prepared is a submission ready for sequencing: the sequencer's own copy
// of it, with its issuer signature checked against the account key the
// current state says must sign it. Make one with Prepare and submit it
// once with SubmitPrepared.
type Prepared struct {
	e    *schema.Entry
	key  ed25519.PublicKey
	used atomic.Bool
}

// Prepare copies sub and verifies its issuer signature against the
// account key that must sign it in the current state (the key of a
// first registration is the one it registers). It is safe for concurrent
// use, so signatures are checked in parallel on the submitters'
// goroutines. A signature that does not verify is not refused here: the
// sequencer checks it again, against the key in force when the entry is
// evaluated, and refuses it then, as it does when the account key
// changed since Prepare.
func (s *Sequencer) Prepare(sub *schema.Submission) *Prepared {
	e := &schema.Entry{V: schema.Version, Kind: sub.Kind, Issuer: sub.Issuer,
		Prev: bytes.Clone(sub.Prev), Body: bytes.Clone(sub.Body), Sig: bytes.Clone(sub.Sig)}
	s.mu.RLock()
	key := policy.SigningKey(s.st, e)
	s.mu.RUnlock()
	p := &Prepared{e: e}
	if key != nil && e.VerifySignature(key) == nil {
		p.key = key
	}
	return p
}

// Submit sequences sub and returns once its entry is durable and inside a
// published checkpoint. A refusal by the policy is a *policy.RejectError.
// If ctx ends first, Submit returns ctx's error; the entry may still be
// logged. Submit is SubmitPrepared(ctx, Prepare(sub)).
func (s *Sequencer) Submit(ctx context.Context, sub *schema.Submission) (*Result, error) {
	return s.SubmitPrepared(ctx, s.Prepare(sub))
}

// SubmitPrepared is Submit for a submission made ready by Prepare. Each
// Prepared can be submitted once.
func (s *Sequencer) SubmitPrepared(ctx context.Context, prep *Prepared) (*Result, error) {
	if prep.used.Swap(true) {
		return nil, errors.New("prepared submission was already submitted")
	}
	p := &pending{ctx: ctx, e: prep.e, key: prep.key, start: time.Now(), done: make(chan outcome, 1)}
	s.metrics.submissions.Inc()
	select {
	case <-s.stop:
		return nil, ErrClosed
	default:
	}
	select {
	case s.queue <- p:
	case <-s.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case o := <-p.done:
		return o.res, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Check evaluates sub against the current policy state as if it were
// appended now, without logging anything. The state may include batches
// that are still being persisted.
func (s *Sequencer) Check(sub *schema.Submission) policy.Decision {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := max(s.cfg.Clock().UnixMilli(), s.lastTime)
	return policy.Evaluate(s.st, schema.NewEntry(sub, now), s.st.Size())
}

// Issuer returns the policy state of the issuer origin. Like Check, it may
// reflect batches that are still being persisted.
func (s *Sequencer) Issuer(origin string) (policy.Issuer, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.Issuer(origin)
}

// Status returns the policy status of the issuer origin as of the log's
// current time, or false if it is not registered. Like Check, it may
// reflect batches that are still being persisted.
func (s *Sequencer) Status(origin string) (*policy.IssuerStatus, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.Status(origin, max(s.cfg.Clock().UnixMilli(), s.lastTime))
}

// Params returns the policy parameters in force.
func (s *Sequencer) Params() schema.PolicyParams {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.Params()
}

// Now returns the log's current time (what the next entry would get).
func (s *Sequencer) Now() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return time.UnixMilli(max(s.cfg.Clock().UnixMilli(), s.lastTime))
}

// Checkpoint returns the latest published checkpoint and its size.
func (s *Sequencer) Checkpoint() (uint64, []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cpSize, s.cp
}

// Close stops the sequencer: queued submissions fail with ErrClosed, the
// batches already staged are persisted and answered, and the witness hook
// is cancelled.
func (s *Sequencer) Close() error {
	s.closing.Do(func() { close(s.stop) })
	s.wg.Wait()
	return nil
}

// run is the sequencing goroutine. It keeps one open batch: submissions
// are admitted into it as they arrive (step 1, evaluate and apply), and
// it is finished (snapshot entry, tiles, checkpoint) and handed to the
// persisting goroutine as soon as that one is idle, so that admitting the
// next batch overlaps with persisting the previous one, and a batch takes
// everything that arrived while the previous one was being persisted.
func (s *Sequencer) run() {
	defer s.wg.Done()
	defer close(s.persist)
	var open *builder
	idle := true // the persisting goroutine waits for a batch
	var delay <-chan time.Time
	var timer *time.Timer
	for {
		if open != nil && idle && (delay == nil || open.full(s.cfg.MaxBatchSize)) {
			if timer != nil {
				timer.Stop()
				timer = nil
			}
			idle = !s.finish(open)
			open, delay = nil, nil
			continue
		}
		queue := s.queue
		if open != nil && open.full(s.cfg.MaxBatchSize) {
			queue = nil // wait until the persisting goroutine takes it
		}
		var ready <-chan struct{}
		if !idle {
			ready = s.ready
		}
		select {
		case p := <-queue:
			ps := s.take(p, open)
			if open == nil {
				if !idle && (s.needReload || s.failed.Load() == s.gen) {
					<-s.ready // let the batch in flight finish before rebuilding
					idle = true
				}
				if open = s.begin(ps); open == nil {
					continue
				}
				if d := s.cfg.MaxBatchDelay; d > 0 {
					timer = time.NewTimer(d)
					delay = timer.C
				}
			}
			if !s.admit(open, ps) {
				open, delay = nil, nil // failed; the next batch rebuilds the state
				if timer != nil {
					timer.Stop()
					timer = nil
				}
			}
		case <-ready:
			idle = true
		case <-delay:
			delay = nil
			timer = nil
		case <-s.stop:
			// The open batch completes; what is still queued fails.
			if timer != nil {
				timer.Stop()
			}
			if open != nil {
				if !idle {
					<-s.ready
				}
				s.finish(open)
			}
			s.drain()
			return
		}
	}
}

// take returns p and whatever else is queued, up to what fits in the
// open batch.
func (s *Sequencer) take(p *pending, open *builder) []*pending {
	room := s.cfg.MaxBatchSize
	if open != nil {
		room -= len(open.ps)
	}
	ps := []*pending{p}
	for len(ps) < room {
		select {
		case p := <-s.queue:
			ps = append(ps, p)
		default:
			return ps
		}
	}
	return ps
}

func (s *Sequencer) drain() {
	for {
		select {
		case p := <-s.queue:
			p.done <- outcome{err: ErrClosed}
		default:
			return
		}
	}
}

// builder is the open batch of the sequencing goroutine: entries
// admitted (evaluated and applied to the policy state) but not yet handed
// to the persisting goroutine.
type builder struct {
	gen         uint64
	now         int64
	start       uint64
	ps          []*pending
	stored      []storage.Entry
	changedKeys bool
}

func (b *builder) full(max int) bool { return len(b.ps) >= max }

// begin opens a batch, first rebuilding the state from storage if a batch
// failed. It returns nil (having answered ps) if the state can't be
// rebuilt. The persisting goroutine is idle when a rebuild is needed.
func (s *Sequencer) begin(ps []*pending) *builder {
	if s.needReload || s.failed.Load() == s.gen {
		if err := s.load(context.Background()); err != nil {
			s.log.Error("couldn't rebuild state from storage", "err", err)
			s.needReload = true
			for _, p := range ps {
				p.done <- outcome{err: fmt.Errorf("log unavailable: storage failed and state couldn't be rebuilt: %w", err)}
			}
			return nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := max(s.cfg.Clock().UnixMilli(), s.lastTime)
	s.lastTime = now
	return &builder{gen: s.gen, now: now, start: s.st.Size()}
}

// admit runs step 1 for ps in the open batch b: evaluate each in log
// order and apply the accepted ones to the policy state. If that fails,
// it answers every submitter of b with the error, marks the state for a
// rebuild and returns false.
func (s *Sequencer) admit(b *builder, ps []*pending) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range ps {
		if i > 0 && i%256 == 0 {
			// Let Prepare, Check and Status in between.
			s.mu.Unlock()
			s.mu.Lock()
		}
		b.ps = append(b.ps, p)
		if err := p.ctx.Err(); err != nil {
			p.rejected = err
			continue
		}
		e := p.e
		e.Time = b.now
		data, err := e.Marshal()
		if err != nil {
			s.metrics.rejections.WithLabelValues(policy.RuleMalformed).Inc()
			p.rejected = &policy.RejectError{Rule: policy.RuleMalformed, Reason: err.Error()}
			continue
		}
		idx := b.start + uint64(len(b.stored))
		if d := policy.EvaluatePreverified(s.st, e, idx, p.key); !d.Accept {
			s.metrics.rejections.WithLabelValues(d.Rule).Inc()
			p.rejected = d.Err()
			continue
		}
		leaf := tiles.LeafHash(data)
		if err := s.st.Apply(e, idx, leaf); err != nil {
			// The state may be half-changed: fail the batch, rebuild.
			b.ps = append(b.ps, ps[i+1:]...)
			s.breakBatch(b, fmt.Errorf("couldn't apply admitted entry %d: %w", idx, err))
			return false
		}
		p.idx, p.data, p.leaf = idx, data, leaf
		b.stored = append(b.stored, storage.Entry{Data: data, LeafHash: leaf, Issuer: e.Issuer})
		if e.Kind == schema.KindKeyCommitment {
			b.changedKeys = true
		}
	}
	return true
}

// breakBatch fails every submission of b with err and marks the state for
// a rebuild. s.mu is held.
func (s *Sequencer) breakBatch(b *builder, err error) {
	s.log.Error("couldn't sequence batch", "err", err, "submissions", len(b.ps))
	s.needReload = true
	for _, p := range b.ps {
		p.answer(outcome{err: err})
	}
	b.gen = 0 // broken: nothing more is admitted, nothing is persisted
}

func (b *builder) broken() bool { return b.gen == 0 }

// finish completes step 1 for b (snapshot entry, tiles, checkpoint,
// policy state) and hands it to the persisting goroutine, which must be
// idle. It reports whether it handed over a batch.
func (s *Sequencer) finish(b *builder) bool {
	if b.broken() {
		return false
	}
	st, err := s.stage(b)
	if err != nil {
		s.mu.Lock()
		s.breakBatch(b, err)
		s.mu.Unlock()
		return false
	}
	s.metrics.batchSize.Observe(float64(len(b.ps)))
	s.persist <- st
	return true
}

// persistLoop is the persisting goroutine: steps 2 and 3, one batch at a
// time, in order. It tells the sequencing goroutine when it is idle, and
// leaves computing proofs and answering to a goroutine of its own, in
// order, so that the next batch is persisted meanwhile.
func (s *Sequencer) persistLoop() {
	defer s.wg.Done()
	answers := make(chan func(), 1)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		for answer := range answers {
			answer()
		}
	}()
	for st := range s.persist {
		answers <- s.persistStaged(context.Background(), st)
		s.ready <- struct{}{}
	}
	close(answers)
	<-answered
}

// stage finishes step 1 for the admitted entries of b: the snapshot
// entry, tiles, root, signed checkpoint and, when due, the serialised
// policy state. On error the policy state and appender may be partly
// updated: the caller must rebuild them from storage.
func (s *Sequencer) stage(b *builder) (*staged, error) {
	st := &staged{gen: b.gen, ps: b.ps}
	stored := b.stored
	var keySet *storage.KeySet
	if b.changedKeys {
		s.mu.Lock()
		e, ks, err := s.snapshotEntry(b.now)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		idx := b.start + uint64(len(stored))
		data, err := e.Marshal()
		if err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("couldn't encode the snapshot entry: %w", err)
		}
		if d := policy.Evaluate(s.st, e, idx); !d.Accept {
			s.mu.Unlock()
			return nil, fmt.Errorf("policy refused the log's own snapshot entry %d: %w", idx, d.Err())
		}
		leaf := tiles.LeafHash(data)
		if err := s.st.Apply(e, idx, leaf); err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("couldn't apply snapshot entry %d: %w", idx, err)
		}
		s.mu.Unlock()
		stored = append(stored, storage.Entry{Data: data, LeafHash: leaf})
		keySet = &storage.KeySet{Index: idx, Data: ks}
	}
	if len(stored) == 0 {
		return st, nil
	}
	hashes := make([]tlog.Hash, len(stored))
	for i, e := range stored {
		hashes[i] = e.LeafHash
	}
	u, err := s.app.Append(hashes)
	if err != nil {
		return nil, fmt.Errorf("couldn't compute tiles: %w", err)
	}
	size := uint64(u.Size)
	signed, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: s.origin, Size: size, Hash: u.Root}, s.cfg.Signer)
	if err != nil {
		return nil, err
	}
	st.u, st.signed = u, signed
	st.edge = make(map[[2]int64][]byte)
	for _, t := range tiles.EdgeTiles(u.Size) {
		if d, ok := s.app.EdgeTile(t.L, t.N); ok {
			st.edge[[2]int64{int64(t.L), t.N}] = d
		}
	}
	st.b = &storage.Batch{Start: b.start, Entries: stored, Tiles: u.Tiles, Checkpoint: signed, KeySet: keySet}
	if s.psr != nil && (size-s.stateSize >= s.cfg.StateEvery || time.Since(s.stateTime) >= s.cfg.StateInterval) {
		// Only this goroutine writes the state: reading it unlocked is
		// safe.
		data, err := s.st.MarshalBinary()
		if err != nil {
			return nil, err
		}
		st.b.PolicyState = &storage.PolicyState{Size: size, Data: data}
		s.stateSize, s.stateTime = size, time.Now()
	}
	return st, nil
}

// snapshotEntry makes the snapshot entry of the key set at time now, and
// the key set's encoding. s.mu is held.
func (s *Sequencer) snapshotEntry(now int64) (*schema.Entry, []byte, error) {
	ks := s.st.KeySet(now)
	ksData, err := ks.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't encode the key set: %w", err)
	}
	digest, err := ks.Digest()
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't digest the key set: %w", err)
	}
	e, err := schema.NewLogEntry(schema.KindSnapshot, now, schema.Snapshot{Issuers: len(ks.PST) + len(ks.PrivacyPass), Digest: digest})
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't make the snapshot entry: %w", err)
	}
	return e, ksData, nil
}

// persistStaged runs steps 2 and 3 for st (persist, publish) and returns
// the rest (answer every submitter of st, hand the checkpoint to the
// witness hook), for the caller to run after it, in batch order.
func (s *Sequencer) persistStaged(ctx context.Context, st *staged) func() {
	fail := func(err error) func() {
		return func() {
			for _, p := range st.ps {
				p.answer(outcome{err: err})
			}
		}
	}
	if s.failed.Load() == st.gen {
		// A batch before this one failed to persist; this one was staged
		// on top of it and must not be written.
		return fail(fmt.Errorf("batch dropped after an earlier batch failed: %w", *s.failedErr.Load()))
	}
	if st.b == nil { // nothing to append: every submission was refused
		return func() {
			for _, p := range st.ps {
				p.answer(outcome{err: p.rejected})
			}
		}
	}
	b := st.b
	size := b.Size()

	// Step 2: persist atomically and durably.
	if err := s.cfg.Backend.Append(ctx, b); err != nil {
		s.metrics.storageErrors.Inc()
		err = fmt.Errorf("couldn't persist entries [%d, %d): %w", b.Start, size, err)
		s.log.Error("couldn't persist batch", "err", err, "submissions", len(st.ps))
		s.failedErr.Store(&err)
		s.failed.Store(st.gen)
		return fail(err)
	}

	// Step 3: publish, then answer.
	s.mu.Lock()
	s.cpSize, s.cp = size, st.signed
	s.mu.Unlock()
	s.metrics.treeSize.Set(float64(size))
	s.metrics.appended.Add(float64(len(b.Entries)))
	return func() { s.answer(ctx, st) }
}

// answer answers every submitter of st, which is durable and published,
// with its proof (or its refusal), and hands the checkpoint to the
// witness hook.
func (s *Sequencer) answer(ctx context.Context, st *staged) {
	defer func() {
		for _, p := range st.ps { // never leave a submitter waiting
			p.answer(outcome{err: errors.New("internal error: submission was not answered")})
		}
	}()
	size := st.b.Size()
	pr := newProver(st.u, st.edge, func(t tlog.Tile) ([]byte, error) { return s.cfg.Backend.Tile(ctx, t.L, t.N) })
	for _, p := range st.ps {
		if p.rejected != nil {
			p.answer(outcome{err: p.rejected})
			continue
		}
		proof, err := tlog.ProveRecord(int64(size), int64(p.idx), pr)
		if err != nil {
			// The entry is durable and published; only the proof failed.
			p.answer(outcome{err: fmt.Errorf("entry %d is logged but its inclusion proof couldn't be computed: %w", p.idx, err)})
			continue
		}
		p.answer(outcome{res: &Result{Index: p.idx, LeafHash: p.leaf, Entry: p.data, Proof: proof, Size: size, Checkpoint: st.signed}})
		s.metrics.latency.Observe(time.Since(p.start).Seconds())
	}

	// Step 4: hand the checkpoint to the witness hook, latest wins.
	if s.cfg.Witness != nil {
		select {
		case <-s.witnessCh:
		default:
		}
		s.witnessCh <- st.signed
	}
}

// witnessLoop calls the Witness hook with the latest checkpoint, one call
// at a time, and stores what it returns once verified.
func (s *Sequencer) witnessLoop() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for {
		var signed []byte
		select {
		case signed = <-s.witnessCh:
		case <-s.stop:
			return
		}
		if err := s.cosign(ctx, signed); err != nil {
			s.metrics.witnessErrors.Inc()
			s.log.Warn("couldn't get checkpoint cosigned", "err", err)
		}
	}
}

func (s *Sequencer) cosign(ctx context.Context, signed []byte) error {
	c, _, err := checkpoint.Open(signed, s.cfg.Verifier)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.WitnessTimeout)
	defer cancel()
	cosigned, err := s.cfg.Witness(wctx, signed)
	if err != nil {
		return fmt.Errorf("witness hook failed for checkpoint of size %d: %w", c.Size, err)
	}
	c2, n, err := checkpoint.Open(cosigned, s.cfg.Verifier)
	if err != nil {
		return fmt.Errorf("witness hook returned a bad note: %w", err)
	}
	if c2.Size != c.Size || c2.Hash != c.Hash || string(c2.Marshal()) != string(c.Marshal()) || len(n.Sigs) != 1 {
		return fmt.Errorf("witness hook returned a different checkpoint (size %d) for size %d", c2.Size, c.Size)
	}
	if err := s.cfg.Backend.SetCosigned(ctx, c.Size, cosigned); err != nil {
		return err
	}
	s.log.Debug("checkpoint cosigned", "size", c.Size, "signatures", len(n.UnverifiedSigs)+1)
	return nil
}
