// Package sequencer is the log's single writer. It batches submissions,
// admits each through policy.Evaluate in log order, assigns indexes and
// log time, appends a snapshot entry after every batch that changed the key
// set, computes the changed tiles, signs the new checkpoint, and persists
// everything in one atomic durable step before it answers anyone.
//
// Commit order of one batch, and where a crash can land:
//
//  1. Evaluate and Apply each submission to the in-memory policy state,
//     append the snapshot entry, compute tiles and root, sign the
//     checkpoint. Nothing is durable; nothing is visible outside the
//     process except through Check and Issuer (see their docs).
//     A crash here loses the batch; no submitter was answered.
//  2. storage.Writer.Append: entries, tiles, checkpoint and key set in one
//     atomic durable transaction. A crash before it commits loses the
//     batch (no submitter was answered); a crash after it commits keeps
//     the batch although no submitter was answered (they retry and are
//     refused by the prev rule; the entry is in the log). If Append
//     returns an error, the submitters get the error and the sequencer
//     rebuilds its state from storage before the next batch, whichever
//     way the write went.
//  3. Publish: the checkpoint becomes the latest in memory, each
//     submitter's future resolves with its index, inclusion proof and the
//     checkpoint. A crash here is the same as after 2.
//  4. Asynchronously, the witness hook cosigns the checkpoint and the
//     result is stored with SetCosigned. A crash or failure here only
//     delays cosigning; it never blocks steps 1-3.
//
// At startup the sequencer replays every stored entry into a fresh policy
// state and checks that the stored tiles give the root of the stored
// checkpoint, so a restarted log continues exactly where the durable state
// ends and its next checkpoint is consistent with every one before.
package sequencer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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

// Config configures a Sequencer.
type Config struct {
	// Backend stores the log. Required.
	Backend storage.Backend
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
	// submissions queue up while the previous batch is being persisted).
	MaxBatchDelay time.Duration
	// QueueSize bounds the submissions waiting to be sequenced (default
	// 4*MaxBatchSize). Submit blocks while the queue is full.
	QueueSize int
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
	sub   *schema.Submission
	start time.Time
	done  chan outcome
	// set while sequencing
	answered bool
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

// Sequencer is the log's single writer.
type Sequencer struct {
	cfg     Config
	log     *slog.Logger
	origin  string
	metrics *metrics

	queue   chan *pending
	stop    chan struct{}
	stopped chan struct{}
	closing sync.Once
	wg      sync.WaitGroup

	// mu guards the policy state (written by the loop, read by Check,
	// Issuer, Params) and the published checkpoint.
	mu       sync.RWMutex
	st       *policy.State
	cpSize   uint64
	cp       []byte
	lastTime int64

	// Loop-only state.
	app    *tiles.Appender
	broken error // set when state must be rebuilt from storage

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
	return &Sequencer{
		cfg: cfg, log: cfg.Logger, origin: cfg.Signer.Name(), metrics: m,
		queue: make(chan *pending, cfg.QueueSize), stop: make(chan struct{}), stopped: make(chan struct{}),
		witnessCh: make(chan []byte, 1),
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
	p := &pending{ctx: ctx, start: time.Now(), done: make(chan outcome, 1)}
	if err := s.sequenceEntries(ctx, []*pending{p}, []*schema.Entry{e}); err != nil {
		return nil, err
	}
	o := <-p.done
	return o.res, o.err
}

// New starts a sequencer over an initialized backend: it replays every
// stored entry into the policy state and checks the stored tiles against
// the stored checkpoint.
func New(ctx context.Context, cfg Config) (*Sequencer, error) {
	s, err := newSequencer(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go s.run()
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

// load (re)builds the in-memory state from the backend.
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
	st := policy.NewState()
	var lastTime int64
	const chunk = 1024
	for start := uint64(0); start < size; start += chunk {
		end := min(start+chunk, size)
		es, err := b.Entries(ctx, start, end)
		if err != nil {
			return fmt.Errorf("couldn't read entries [%d, %d) to replay: %w", start, end, err)
		}
		for i, data := range es {
			idx := start + uint64(i)
			// Stored entries were canonical when written: decode without
			// re-checking canonicality (Apply parses the body).
			var e schema.Entry
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("couldn't parse stored entry %d: %w", idx, err)
			}
			if err := st.Apply(&e, idx, tiles.LeafHash(data)); err != nil {
				return fmt.Errorf("couldn't replay stored entry %d: %w", idx, err)
			}
			lastTime = max(lastTime, e.Time)
		}
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
	s.broken = nil
	s.metrics.treeSize.Set(float64(size))
	s.log.Info("log state loaded", "origin", s.origin, "size", size)
	return nil
}

// Submit sequences sub and returns once its entry is durable and inside a
// published checkpoint. A refusal by the policy is a *policy.RejectError.
// If ctx ends first, Submit returns ctx's error; the entry may still be
// logged.
func (s *Sequencer) Submit(ctx context.Context, sub *schema.Submission) (*Result, error) {
	p := &pending{ctx: ctx, sub: sub, start: time.Now(), done: make(chan outcome, 1)}
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
// appended now, without logging anything. The state may include a batch
// that is still being persisted.
func (s *Sequencer) Check(sub *schema.Submission) policy.Decision {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := max(s.cfg.Clock().UnixMilli(), s.lastTime)
	return policy.Evaluate(s.st, schema.NewEntry(sub, now), s.st.Size())
}

// Issuer returns the policy state of the issuer origin. Like Check, it may
// reflect a batch that is still being persisted.
func (s *Sequencer) Issuer(origin string) (policy.Issuer, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.Issuer(origin)
}

// Status returns the policy status of the issuer origin as of the log's
// current time, or false if it is not registered. Like Check, it may
// reflect a batch that is still being persisted.
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
// batch in progress completes, and the witness hook is cancelled.
func (s *Sequencer) Close() error {
	s.closing.Do(func() { close(s.stop) })
	s.wg.Wait()
	return nil
}

func (s *Sequencer) run() {
	defer s.wg.Done()
	for {
		var first *pending
		select {
		case first = <-s.queue:
		case <-s.stop:
			s.drain()
			return
		}
		batch := []*pending{first}
		if d := s.cfg.MaxBatchDelay; d > 0 {
			t := time.NewTimer(d)
		wait:
			for len(batch) < s.cfg.MaxBatchSize {
				select {
				case p := <-s.queue:
					batch = append(batch, p)
				case <-t.C:
					break wait
				case <-s.stop:
					break wait
				}
			}
			t.Stop()
		}
	more:
		for len(batch) < s.cfg.MaxBatchSize {
			select {
			case p := <-s.queue:
				batch = append(batch, p)
			default:
				break more
			}
		}
		s.sequence(batch)
	}
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

// sequence admits, persists and publishes one batch.
func (s *Sequencer) sequence(batch []*pending) {
	ctx := context.Background()
	if s.broken != nil {
		if err := s.load(ctx); err != nil {
			s.log.Error("couldn't rebuild state from storage", "err", err)
			for _, p := range batch {
				p.done <- outcome{err: fmt.Errorf("log unavailable: storage failed and state couldn't be rebuilt: %w", err)}
			}
			return
		}
	}
	s.metrics.batchSize.Observe(float64(len(batch)))
	entries := make([]*schema.Entry, 0, len(batch))
	live := batch[:0:0]
	s.mu.RLock()
	now := max(s.cfg.Clock().UnixMilli(), s.lastTime)
	s.mu.RUnlock()
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.done <- outcome{err: err}
			continue
		}
		entries = append(entries, schema.NewEntry(p.sub, now))
		live = append(live, p)
	}
	if err := s.sequenceEntries(ctx, live, entries); err != nil {
		s.log.Error("couldn't sequence batch", "err", err, "submissions", len(live))
	}
}

// sequenceEntries runs steps 1-4 of the commit order for entries (all with
// the same time), answering ps[i] for entries[i].
func (s *Sequencer) sequenceEntries(ctx context.Context, ps []*pending, entries []*schema.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	now := entries[0].Time
	// Step 1: admit in log order.
	defer func() {
		for _, p := range ps { // never leave a submitter waiting
			p.answer(outcome{err: errors.New("internal error: submission was not answered")})
		}
	}()
	s.mu.Lock()
	start := s.st.Size()
	var stored []storage.Entry
	var accepted []*pending
	changedKeys := false
	fail := func(err error) error {
		s.broken = err
		s.mu.Unlock()
		for _, p := range ps {
			p.answer(outcome{err: err})
		}
		return err
	}
	for i, e := range entries {
		p := ps[i]
		data, err := e.Marshal()
		if err != nil {
			s.metrics.rejections.WithLabelValues(policy.RuleMalformed).Inc()
			p.answer(outcome{err: &policy.RejectError{Rule: policy.RuleMalformed, Reason: err.Error()}})
			continue
		}
		idx := start + uint64(len(stored))
		if d := policy.Evaluate(s.st, e, idx); !d.Accept {
			s.metrics.rejections.WithLabelValues(d.Rule).Inc()
			p.answer(outcome{err: d.Err()})
			continue
		}
		leaf := tiles.LeafHash(data)
		if err := s.st.Apply(e, idx, leaf); err != nil {
			return fail(fmt.Errorf("couldn't apply admitted entry %d: %w", idx, err))
		}
		p.idx, p.data, p.leaf = idx, data, leaf
		stored = append(stored, storage.Entry{Data: data, LeafHash: leaf, Issuer: e.Issuer})
		accepted = append(accepted, p)
		if e.Kind == schema.KindKeyCommitment {
			changedKeys = true
		}
	}
	var keySet *storage.KeySet
	if changedKeys {
		idx := start + uint64(len(stored))
		ks := s.st.KeySet(now)
		ksData, err := ks.Marshal()
		if err != nil {
			return fail(fmt.Errorf("couldn't encode the key set: %w", err))
		}
		digest, err := ks.Digest()
		if err != nil {
			return fail(fmt.Errorf("couldn't digest the key set: %w", err))
		}
		e, err := schema.NewLogEntry(schema.KindSnapshot, now, schema.Snapshot{Issuers: len(ks.PST) + len(ks.PrivacyPass), Digest: digest})
		if err != nil {
			return fail(fmt.Errorf("couldn't make the snapshot entry: %w", err))
		}
		data, err := e.Marshal()
		if err != nil {
			return fail(fmt.Errorf("couldn't encode the snapshot entry: %w", err))
		}
		if d := policy.Evaluate(s.st, e, idx); !d.Accept {
			return fail(fmt.Errorf("policy refused the log's own snapshot entry %d: %w", idx, d.Err()))
		}
		leaf := tiles.LeafHash(data)
		if err := s.st.Apply(e, idx, leaf); err != nil {
			return fail(fmt.Errorf("couldn't apply snapshot entry %d: %w", idx, err))
		}
		stored = append(stored, storage.Entry{Data: data, LeafHash: leaf})
		keySet = &storage.KeySet{Index: idx, Data: ksData}
	}
	if len(stored) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.lastTime = max(s.lastTime, now)
	s.mu.Unlock()

	hashes := make([]tlog.Hash, len(stored))
	for i, e := range stored {
		hashes[i] = e.LeafHash
	}
	u, err := s.app.Append(hashes)
	if err != nil {
		s.mu.Lock()
		return fail(fmt.Errorf("couldn't compute tiles: %w", err))
	}
	size := uint64(u.Size)
	signed, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: s.origin, Size: size, Hash: u.Root}, s.cfg.Signer)
	if err != nil {
		s.mu.Lock()
		return fail(err)
	}

	// Step 2: persist atomically and durably.
	b := &storage.Batch{Start: start, Entries: stored, Tiles: u.Tiles, Checkpoint: signed, KeySet: keySet}
	if err := s.cfg.Backend.Append(ctx, b); err != nil {
		s.metrics.storageErrors.Inc()
		s.mu.Lock()
		return fail(fmt.Errorf("couldn't persist entries [%d, %d): %w", start, size, err))
	}

	// Step 3: publish, then answer.
	s.mu.Lock()
	s.cpSize, s.cp = size, signed
	s.mu.Unlock()
	s.metrics.treeSize.Set(float64(size))
	s.metrics.appended.Add(float64(len(stored)))
	pr := newProver(u, s.app, func(t tlog.Tile) ([]byte, error) { return s.cfg.Backend.Tile(ctx, t.L, t.N) })
	for _, p := range accepted {
		proof, err := tlog.ProveRecord(int64(size), int64(p.idx), pr)
		if err != nil {
			// The entry is durable and published; only the proof failed.
			p.answer(outcome{err: fmt.Errorf("entry %d is logged but its inclusion proof couldn't be computed: %w", p.idx, err)})
			continue
		}
		p.answer(outcome{res: &Result{Index: p.idx, LeafHash: p.leaf, Entry: p.data, Proof: proof, Size: size, Checkpoint: signed}})
		s.metrics.latency.Observe(time.Since(p.start).Seconds())
	}

	// Step 4: hand the checkpoint to the witness hook, latest wins.
	if s.cfg.Witness != nil {
		select {
		case <-s.witnessCh:
		default:
		}
		s.witnessCh <- signed
	}
	return nil
}

// newProver returns a hash reader for proofs in the tree just built: the
// stored hashes of the new leaves are computed from the batch's tiles,
// older ones from the appender's edge and, rarely, the backend. Hashes are
// memoized, since a batch's proofs share most of their nodes.
func newProver(u *tiles.Update, app *tiles.Appender, read tiles.TileFunc) tlog.HashReader {
	batch := make(map[[2]int64][]byte, len(u.Tiles))
	for _, t := range u.Tiles {
		batch[[2]int64{int64(t.L), t.N}] = t.Data
	}
	base := tiles.HashReader(func(t tlog.Tile) ([]byte, error) {
		if d, ok := batch[[2]int64{int64(t.L), t.N}]; ok && len(d) >= t.W*tlog.HashSize {
			return d, nil
		}
		if d, ok := app.EdgeTile(t.L, t.N); ok && len(d) >= t.W*tlog.HashSize {
			return d, nil
		}
		return read(t)
	})
	memo := map[int64]tlog.Hash{}
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		var miss []int64
		for i, x := range idx {
			if h, ok := memo[x]; ok {
				out[i] = h
			} else {
				miss = append(miss, x)
			}
		}
		if len(miss) == 0 {
			return out, nil
		}
		hs, err := base.ReadHashes(miss)
		if err != nil {
			return nil, err
		}
		for i, x := range miss {
			memo[x] = hs[i]
		}
		for i, x := range idx {
			out[i] = memo[x]
		}
		return out, nil
	})
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
