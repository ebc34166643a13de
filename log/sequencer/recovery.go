package sequencer

// Recovery: at startup (New), and after a batch failed to persist, the
// sequencer rebuilds its policy state, appender and log time from what
// storage holds; see the package doc.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// load (re)builds the in-memory state from the backend. It runs on the
// sequencing goroutine (or before it starts) while no batch is in flight.
func (s *Sequencer) load(ctx context.Context) error { return s.loadFrom(ctx, nil) }

// loadFrom is load, taking the policy state of v (brought up to the
// stored size) when v is not nil.
func (s *Sequencer) loadFrom(ctx context.Context, v *View) error {
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
	var st *policy.State
	var from uint64
	var lastTime int64
	if v != nil {
		st, lastTime, err = v.take(ctx, size)
		from = size
		if err != nil {
			s.log.Warn("couldn't take the policy state of the view; loading it from storage", "err", err)
			st = nil
		}
	}
	if st == nil {
		st, from = s.loadPolicyState(ctx, size)
		lastTime, err = s.replay(ctx, st, from, size)
	}
	if err != nil && from > 0 {
		s.log.Warn("entries after the stored policy state don't apply; replaying every entry", "state_size", from, "err", err)
		st, from = policy.NewLogState(s.origin), 0
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
		return policy.NewLogState(s.origin), 0
	}
	ps, err := s.psr.PolicyState(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return policy.NewLogState(s.origin), 0
	}
	if err != nil {
		s.log.Warn("couldn't read the stored policy state; replaying every entry", "err", err)
		return policy.NewLogState(s.origin), 0
	}
	if ps.Size > size {
		s.log.Warn("stored policy state is beyond the stored tree; replaying every entry", "state_size", ps.Size, "size", size)
		return policy.NewLogState(s.origin), 0
	}
	st, err := policy.UnmarshalState(ps.Data)
	if err != nil {
		s.log.Warn("stored policy state doesn't load; replaying every entry", "err", err)
		return policy.NewLogState(s.origin), 0
	}
	if err := st.BindLog(s.origin); err != nil {
		s.log.Warn("stored policy state is for another log; replaying every entry", "err", err)
		return policy.NewLogState(s.origin), 0
	}
	if st.Size() != ps.Size {
		s.log.Warn("stored policy state covers another size than stored with it; replaying every entry", "state_size", st.Size(), "stored_size", ps.Size)
		return policy.NewLogState(s.origin), 0
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
