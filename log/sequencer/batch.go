package sequencer

// Step 1, the sequencing goroutine: admit submissions into the open batch
// (evaluate and apply), then finish it (snapshot entry, tiles, root,
// signed checkpoint, serialised policy state) and hand it to the
// persisting goroutine. Nothing here is durable.

import (
	"context"
	"fmt"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

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
// rebuilt, or if the clock check refuses the log's clock. The persisting goroutine is idle when a rebuild is needed.
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
	now := s.cfg.Clock()
	if v := s.checkClock(now); v.state == clockRefused {
		// Neither freeze time at the last entry's nor date entries with
		// a clock the witnesses contradict (clock.go).
		s.clock.m.refusals.Add(float64(len(ps)))
		err := &ClockError{Reason: v.reason}
		for _, p := range ps {
			p.done <- outcome{err: err}
		}
		return nil
	}
	s.lastTime = now.UnixMilli()
	return &builder{gen: s.gen, now: s.lastTime, start: s.st.Size()}
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
		if c := e.Control; c != nil && c.Time > e.Time {
			// Checked while this batch was open: the batch's time is the
			// entry's, and the proof is dated no later.
			c.Time = e.Time
		}
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
	snap, err := schema.NewSnapshot(ks)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't compute the key set root: %w", err)
	}
	e, err := schema.NewLogEntry(schema.KindSnapshot, now, snap)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't make the snapshot entry: %w", err)
	}
	return e, ksData, nil
}
