package sequencer

// Steps 2 and 3, the persisting goroutine: make each staged batch durable
// in one atomic Append, then publish its checkpoint, in batch order.

import (
	"context"
	"fmt"
)

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
