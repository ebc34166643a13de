package sequencer

// Admission, on the submitter's goroutine: Prepare checks the issuer
// signature against the current state, Submit queues the submission for
// the sequencing goroutine and waits for its answer (step 3).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync/atomic"
	"time"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

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
