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
//  2. storage.Appender.Append: entries, tiles, checkpoint, key set and the
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
//  4. Asynchronously, the witness loop gets the checkpoint cosigned by
//     the witnesses and stores the result with SetCosigned, and keeps it
//     cosigned afresh every CosignInterval, retrying missing witnesses
//     (witness.go). A crash or failure here only delays cosigning; it
//     never blocks steps 1-3.
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
//
// Before each batch the log's clock is checked (clock.go, docs/time.md):
// the sequencer refuses to sequence while the clock is behind its last
// entry's time, or while a quorum of witnesses' recent cosignature
// timestamps disagrees with it by more than verify.TimeSkew.
//
// The files follow these steps: sequencer.go (configuration, startup and
// the read side), admission.go (Prepare and Submit, on the submitter's
// goroutine), batch.go (step 1, the sequencing goroutine), persist.go
// (steps 2 and 3, the persisting goroutine), answer.go (inclusion proofs
// and answers, then the hand-over to step 4), witness.go (step 4) and
// recovery.go (rebuilding the state from storage, at startup and after a
// failed Append); clock.go is the clock check.
package sequencer

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
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
	Signer c2sp.Signer
	// Verifier is the log key's verifier, used to check what the Witness
	// hook returns and the stored checkpoint at startup. Required.
	Verifier c2sp.Verifier
	// Clock gives the log's time (default time.Now). Entry times are
	// never taken from clients and never decrease: while Clock reads
	// earlier than the last entry's time, the sequencer refuses to
	// sequence (ClockError) rather than reuse that time.
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
	// Witnesses, when set, are the log's witnesses (a
	// *witnessing.Collector): the witness loop (step 4) asks them to
	// cosign every newly published checkpoint (the latest one, if several
	// are published while a round is in progress), asks them again every
	// CosignInterval even when nothing changed, retries the ones that
	// failed with backoff until the quorum is met, and stores what they
	// cosigned with SetCosigned. See witness.go.
	Witnesses Witnesses
	// Witness is the simple form of Witnesses, used when Witnesses is
	// nil: called like Witnesses (rounds, interval, retries), it returns
	// the same note with witness cosignatures added, and an error if the
	// quorum is not met. Its result is stored as the cosigned checkpoint
	// when it returns no error. OnCosignature is not called for it.
	Witness func(ctx context.Context, signedCheckpoint []byte) (cosigned []byte, err error)
	// OriginControl, when set, checks that the origin lets accountKey
	// register it with this log (log is the log's origin), and returns
	// the record the registration entry carries (package log/challenge
	// fetches the HTTPS challenge). The sequencer calls it, on the
	// submitter's goroutine, for every registration the policy says
	// needs one (policy.NeedsOriginControl: a first registration, or one
	// after a lapse) whose signature verifies; an error is the refusal,
	// by rule origin-control, and must say what was fetched and what was
	// expected. The record's Time is replaced by the log's clock when the
	// check returns. Without it such registrations are refused.
	OriginControl func(ctx context.Context, log, origin string, accountKey ed25519.PublicKey) (*schema.OriginControl, error)
	// WitnessTimeout bounds each call to the witnesses (default 30s).
	WitnessTimeout time.Duration
	// CosignInterval is how often the latest checkpoint is sent to every
	// witness again when nothing changed (default DefaultCosignInterval),
	// so that the served cosignatures stay fresh on an idle log.
	CosignInterval time.Duration
	// CosignRetryMin and CosignRetryMax bound the backoff between retries
	// of the witnesses that failed while the quorum is not met (defaults
	// 1s and DefaultCosignRetryMax, the latter at most CosignInterval):
	// the n-th retry waits min(CosignRetryMin*2^n, CosignRetryMax),
	// scaled by a factor in [0.5, 1) from Jitter.
	CosignRetryMin, CosignRetryMax time.Duration
	// Jitter returns a number in [0, 1) (default math/rand/v2.Float64).
	Jitter func() float64
	// After is the witness loop's timer (default time.After); tests pass
	// a fake one driven by a fake Clock.
	After func(d time.Duration) <-chan time.Time
	// OnCosignature, if set, is called by the witness loop for every
	// verified cosignature a witness returned (Witnesses only), with the
	// witness's policy name, the cosignature's timestamp and the log's
	// Clock when the answer arrived. It must not block. The clock check
	// (clock.go) sees every such call as well.
	OnCosignature func(witnessName string, cosigTime, localTime time.Time)
	// ClockQuorum is the witness policy's quorum (default
	// Witnesses.Satisfied): when the witnesses whose recent cosignatures
	// disagree with Clock by more than verify.TimeSkew meet it, the
	// sequencer refuses to sequence (see clock.go and docs/time.md).
	// Without it (and without Witnesses) the clock is never checked
	// against witnesses, only against the last entry's time.
	ClockQuorum func(witnesses map[string]bool) bool
	// ClockMaxAge is how long a witness's cosignature counts for the
	// clock check (default DefaultClockMaxAge).
	ClockMaxAge time.Duration
	// Logger receives operational logs (default: discard).
	Logger *slog.Logger
	// Registerer receives the sequencer's metrics (default: none).
	// Ignored when Metrics is set.
	Registerer prometheus.Registerer
	// Metrics, when set, are the metrics this sequencer updates (see
	// NewMetrics), shared with the sequencers it replaces or that replace
	// it in this process.
	Metrics *Metrics
	// View, when set, is the policy state New starts from instead of
	// loading one from the backend and replaying the entries after it:
	// New brings the View up to the backend's size and takes its state
	// (the View must not be used afterwards). See View.
	View *View
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

	clock *clockCheck
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
	if c.CosignInterval <= 0 {
		c.CosignInterval = DefaultCosignInterval
	}
	if c.CosignRetryMin <= 0 {
		c.CosignRetryMin = time.Second
	}
	if c.CosignRetryMax <= 0 {
		c.CosignRetryMax = DefaultCosignRetryMax
	}
	c.CosignRetryMax = max(min(c.CosignRetryMax, c.CosignInterval), c.CosignRetryMin)
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
	if c.After == nil {
		c.After = time.After
	}
	if c.Witnesses == nil && c.Witness != nil {
		c.Witnesses = hookWitnesses(c.Witness)
	}
	if c.ClockMaxAge <= 0 {
		c.ClockMaxAge = DefaultClockMaxAge
	}
	if c.ClockQuorum == nil && c.Witnesses != nil {
		c.ClockQuorum = c.Witnesses.Satisfied
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
	ms := cfg.Metrics
	if ms == nil {
		var err error
		if ms, err = NewMetrics(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	m, cm := ms.m, ms.cm
	psr, _ := cfg.Backend.(storage.PolicyStateReader)
	s := &Sequencer{
		cfg: cfg, log: cfg.Logger, origin: cfg.Signer.Name(), metrics: m, psr: psr,
		queue: make(chan *pending, cfg.QueueSize), persist: make(chan *staged, 1), ready: make(chan struct{}, 1), stop: make(chan struct{}),
		witnessCh: make(chan []byte, 1), gen: 1,
	}
	if cfg.Witnesses != nil {
		if err := ms.registerWitnessing(s.quorumAge); err != nil {
			return nil, err
		}
	}
	s.clock = &clockCheck{quorum: cfg.ClockQuorum, maxAge: cfg.ClockMaxAge, m: cm, logf: s.logClock}
	user := cfg.OnCosignature
	s.cfg.OnCosignature = func(w string, cosig, local time.Time) {
		s.observeCosignature(w, cosig, local)
		if user != nil {
			user(w, cosig, local)
		}
	}
	return s, nil
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
	s.st = policy.NewLogState(s.origin)
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
	if err := s.loadFrom(ctx, cfg.View); err != nil {
		return nil, err
	}
	s.cfg.View = nil
	s.mu.RLock()
	s.checkClock(s.cfg.Clock()) // says at once whether the clock is checked
	s.mu.RUnlock()
	s.wg.Add(2)
	go s.run()
	go s.persistLoop()
	if s.cfg.Witnesses != nil {
		s.wg.Add(1)
		go s.witnessLoop()
		s.mu.RLock()
		cp := s.cp
		s.mu.RUnlock()
		s.witnessCh <- cp // cosign the current checkpoint at startup
	}
	return s, nil
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

// Now returns the log's current time: what the next entry would get,
// unless the clock is behind the last entry's time (then the next batch
// is refused, see ClockError) and Now is that time.
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
