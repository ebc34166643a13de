package trillianstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// Frontend is the writing side of one keycommit frontend over a Trillian
// tree: a sequencer over a Store, made safe for several frontends.
//
// The sequencer keeps its policy state in memory and is written for a
// single writer. When another frontend appended, either its next batch
// conflicts (Store.Append returns ErrConflict after catching up, the
// sequencer rebuilds its state from the Store, and Submit runs the
// submission again, so it is evaluated against the entries that now
// precede it), or it refuses a submission against a stale state; then
// Frontend replaces the sequencer by one loaded from the caught-up Store
// and runs the submission again. A refusal is only answered when the
// sequencer that made it had seen the whole tree.
type Frontend struct {
	cfg   sequencer.Config
	store *Store
	cur   atomic.Pointer[sequencer.Sequencer]
	mu    sync.Mutex // serializes refreshes
	// MaxRetries bounds the re-runs of one submission (default 100).
	MaxRetries int
}

var _ server.Log = (*Frontend)(nil)

// NewFrontend starts a sequencer with cfg, whose Backend must be store,
// and returns the Frontend over it.
func NewFrontend(ctx context.Context, cfg sequencer.Config, store *Store) (*Frontend, error) {
	if cfg.Backend != store {
		return nil, errors.New("trillianstore: the sequencer's backend must be the Store")
	}
	seq, err := sequencer.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	f := &Frontend{cfg: cfg, store: store, MaxRetries: 100}
	if cfg.Registerer != nil {
		// A replacement sequencer cannot register its metrics again.
		f.cfg.Registerer = nil
	}
	f.cur.Store(seq)
	return f, nil
}

// Sequencer returns the current sequencer.
func (f *Frontend) Sequencer() *sequencer.Sequencer { return f.cur.Load() }

// Close stops the current sequencer.
func (f *Frontend) Close() error { return f.cur.Load().Close() }

// Check implements server.Log.
func (f *Frontend) Check(ctx context.Context, sub *schema.Submission) policy.Decision {
	return f.cur.Load().Check(ctx, sub)
}

// Status implements server.Log.
func (f *Frontend) Status(origin string) (*policy.IssuerStatus, bool) {
	return f.cur.Load().Status(origin)
}

// Params implements server.Log.
func (f *Frontend) Params() schema.PolicyParams { return f.cur.Load().Params() }

// stale reports whether the tree has grown beyond what seq has seen.
func (f *Frontend) stale(ctx context.Context, seq *sequencer.Sequencer) (bool, error) {
	if err := f.store.Sync(ctx); err != nil {
		return false, err
	}
	n, _, err := f.store.Checkpoint(ctx)
	if err != nil {
		return false, err
	}
	seen, _ := seq.Checkpoint()
	return n > seen, nil
}

// refresh replaces old by a sequencer loaded from the Store.
func (f *Frontend) refresh(ctx context.Context, old *sequencer.Sequencer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur.Load() != old {
		return nil
	}
	seq, err := sequencer.New(ctx, f.cfg)
	if err != nil {
		return fmt.Errorf("couldn't reload the sequencer from the caught-up store: %w", err)
	}
	f.cur.Store(seq)
	go old.Close() // queued submissions get ErrClosed and run again on seq
	return nil
}

// Submit sequences sub, running it again after conflicts with other
// frontends. When it is refused by the prev rule because sub itself is
// already logged (its batch was partly stored before a conflict, or the
// submitter repeats a logged statement), Submit answers with that entry.
func (f *Frontend) Submit(ctx context.Context, sub *schema.Submission) (*sequencer.Result, error) {
	var err error
	for attempt := 0; attempt <= f.MaxRetries; attempt++ {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		seq := f.cur.Load()
		var res *sequencer.Result
		res, err = seq.Submit(ctx, sub)
		if err == nil {
			return res, nil
		}
		var re *policy.RejectError
		switch {
		case errors.Is(err, storage.ErrConflict):
			continue // the sequencer rebuilds its state before its next batch
		case errors.Is(err, sequencer.ErrClosed) && f.cur.Load() != seq:
			continue // replaced by refresh
		case errors.As(err, &re):
			stale, serr := f.stale(ctx, seq)
			if serr != nil {
				return nil, errors.Join(err, serr)
			}
			if stale {
				if rerr := f.refresh(ctx, seq); rerr != nil {
					return nil, errors.Join(err, rerr)
				}
				continue
			}
			if re.Rule == policy.RulePrev {
				if res, ok, lerr := f.logged(ctx, sub); lerr != nil {
					return nil, errors.Join(err, lerr)
				} else if ok {
					return res, nil
				}
			}
			return nil, err
		default:
			return nil, err
		}
	}
	return nil, fmt.Errorf("gave up after %d conflicts with other frontends: %w", f.MaxRetries+1, err)
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
