package sequencer

// The View: the read side of a sequencer without the writing side, for a
// process that serves a log another process writes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// View is the policy state after a backend's stored entries, kept up to
// date by Advance, for a process that serves a log without writing it (a
// frontend of log/trillianstore that is not the log's writer). It answers
// Check, Status, Issuer and Params exactly as a Sequencer over the same
// entries does, with the same code. It never appends, signs or asks
// witnesses.
//
// NewView loads the state as New does (the stored policy state, then the
// entries after it); Advance applies the entries stored since (they were
// admitted by the writer, so they are applied, not evaluated again),
// taken decoded from the backend when it holds them so (DecodedEntries),
// read and decoded otherwise. A
// process that becomes the writer hands its View to New (Config.View),
// which starts from the View's state instead of loading one.
type View struct {
	s      *Sequencer
	taken  bool // by New; guarded by s.mu
	broken bool // an Apply failed; guarded by s.mu
}

// NewView loads the policy state of the log in cfg.Backend. Of cfg it
// uses Backend, Signer, Verifier, Clock, OriginControl and Logger; it
// registers no metrics.
func NewView(ctx context.Context, cfg Config) (*View, error) {
	cfg.Registerer, cfg.Metrics, cfg.Witnesses, cfg.Witness, cfg.View = nil, nil, nil, nil, nil
	s, err := newSequencer(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return &View{s: s}, nil
}

// DecodedEntries is implemented by a backend that keeps the entries it
// stored last decoded, as View.Advance decodes entries (json.Unmarshal
// into schema.Entry), with their leaf hashes: a follower that has just
// read, checked and stored them (log/trillianstore). Advance takes them
// from it instead of reading them back and decoding them again.
type DecodedEntries interface {
	// TakeDecoded returns entries [start, end) and their leaf hashes, and
	// forgets them, or reports false when it does not hold them all. The
	// caller owns what it returns.
	TakeDecoded(start, end uint64) ([]schema.Entry, []tlog.Hash, bool)
}

// errViewTaken is returned once New took the View's state, or once an
// Apply failed.
var errViewTaken = errors.New("the view's policy state was handed to a sequencer, or is broken")

// Advance applies the entries stored since the view's size, up to the
// backend's latest checkpoint.
func (v *View) Advance(ctx context.Context) error {
	s := v.s
	size, cp, err := s.cfg.Backend.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the latest checkpoint: %w", err)
	}
	s.mu.RLock()
	have, taken := s.st.Size(), v.taken
	s.mu.RUnlock()
	if taken {
		return errViewTaken
	}
	if size < have {
		return fmt.Errorf("the backend has %d entries, fewer than the view's %d", size, have)
	}
	if size == have {
		return nil
	}
	c, _, err := checkpoint.Open(cp, s.cfg.Verifier)
	if err != nil || c.Size != size {
		return fmt.Errorf("stored checkpoint of size %d doesn't verify: %v", size, err)
	}
	// Read and parse outside the lock, then apply under it: readers wait
	// only for the Apply calls. An Apply that fails leaves the state
	// half-changed: the view is then unusable (broken) and must be made
	// again with NewView.
	type parsed struct {
		e    schema.Entry
		leaf [32]byte
	}
	var es []parsed
	const chunk = 1024
	dec, _ := s.cfg.Backend.(DecodedEntries)
	for start := have; start < size; start += chunk {
		end := min(start+chunk, size)
		if dec != nil {
			if des, leaves, ok := dec.TakeDecoded(start, end); ok {
				for i := range des {
					es = append(es, parsed{e: des[i], leaf: leaves[i]})
				}
				continue
			}
		}
		data, err := s.cfg.Backend.Entries(ctx, start, end)
		if err != nil {
			return fmt.Errorf("couldn't read entries [%d, %d): %w", start, end, err)
		}
		for i, d := range data {
			var p parsed
			if err := json.Unmarshal(d, &p.e); err != nil {
				return fmt.Errorf("couldn't parse stored entry %d: %w", start+uint64(i), err)
			}
			p.leaf = tiles.LeafHash(d)
			es = append(es, p)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v.taken || v.broken {
		return errViewTaken
	}
	if s.st.Size() != have {
		return fmt.Errorf("the view was advanced concurrently")
	}
	for i := range es {
		idx := have + uint64(i)
		if err := s.st.Apply(&es[i].e, idx, es[i].leaf); err != nil {
			v.broken = true
			return fmt.Errorf("couldn't apply stored entry %d to the view: %w", idx, err)
		}
		s.lastTime = max(s.lastTime, es[i].e.Time)
	}
	s.cpSize, s.cp = size, cp
	return nil
}

// take brings v to size and hands its state over (New, Config.View).
func (v *View) take(ctx context.Context, size uint64) (*policy.State, int64, error) {
	if err := v.Advance(ctx); err != nil {
		return nil, 0, err
	}
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if v.taken || v.broken {
		return nil, 0, errViewTaken
	}
	if s.st.Size() != size {
		return nil, 0, fmt.Errorf("the view has %d entries, the backend %d", s.st.Size(), size)
	}
	v.taken = true
	return s.st, s.lastTime, nil
}

// Size returns the number of entries the view's state covers.
func (v *View) Size() uint64 {
	v.s.mu.RLock()
	defer v.s.mu.RUnlock()
	return v.s.st.Size()
}

// Check is Sequencer.Check against the view's state.
func (v *View) Check(ctx context.Context, sub *schema.Submission) policy.Decision {
	return v.s.Check(ctx, sub)
}

// Status is Sequencer.Status against the view's state.
func (v *View) Status(origin string) (*policy.IssuerStatus, bool) { return v.s.Status(origin) }

// Issuer is Sequencer.Issuer against the view's state.
func (v *View) Issuer(origin string) (policy.Issuer, bool) { return v.s.Issuer(origin) }

// Params is Sequencer.Params against the view's state.
func (v *View) Params() schema.PolicyParams { return v.s.Params() }
