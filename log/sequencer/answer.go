package sequencer

// Step 3, continued, on the answering goroutine: inclusion proofs for
// the submitters of a durable, published batch, then the checkpoint's
// hand-over to the witness loop (step 4).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

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
	if s.cfg.Witnesses != nil {
		select {
		case <-s.witnessCh:
		default:
		}
		s.witnessCh <- st.signed
	}
}
