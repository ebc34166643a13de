package trillianstore

// Forwarding: a frontend that is not the writer forwards its submissions
// to the writer, several per request (POST api.PathForward): while a
// forwarded batch is in flight, the submissions that arrive wait and go
// together in the next one. The writer admits a batch's submissions
// together (they join its sequencer's batches) and answers each with
// what POST /v1/submit would have answered; the forwarder verifies every
// answer (log/client: the entry records the submission, the leaf hash,
// the inclusion proof against a checkpoint signed by the log key, each
// distinct checkpoint's signature once per batch). The frontends of a
// tree authenticate their batches with a key they share in the shared
// store (api.HeaderForwardMAC); the writer takes only batches that carry
// it, and decodes their submissions as the forwarder encoded them, which
// its server parsed strictly when they were submitted (see
// server.ForwardKeyer).

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultForwardsInFlight is how many forwarded batches a frontend has in
// flight to the writer at once by default.
const DefaultForwardsInFlight = 2

// forwardOverhead bounds what a batch's encoding adds to its
// submissions' (the object around them, a comma between two).
const forwardOverhead = 64

// forwarder coalesces the submissions a frontend forwards to the writer
// at one address.
type forwarder struct {
	f    *Frontend
	c    *client.Client
	addr string

	mu       sync.Mutex
	queue    []*forwarded // waiting for a batch
	inFlight int          // batches being sent (goroutines running send)
}

// forwarded is one submission waiting for the writer's answer.
type forwarded struct {
	ctx  context.Context
	fw   *client.Forwarding
	done chan client.ForwardAnswer // buffered: the answer, once
}

// submit forwards sub within the next batch and returns the writer's
// verified answer (an error like Submit's for a policy refusal, errForward
// wrapped for anything worth retrying).
func (w *forwarder) submit(ctx context.Context, sub *schema.Submission) (*sequencer.Result, error) {
	fw, err := client.NewForwarding(sub)
	if err != nil {
		return nil, err
	}
	p := &forwarded{ctx: ctx, fw: fw, done: make(chan client.ForwardAnswer, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, p)
	if w.inFlight < w.f.cfg.ForwardsInFlight {
		w.inFlight++
		go w.send()
	}
	w.mu.Unlock()
	var a client.ForwardAnswer
	select {
	case a = <-p.done:
	case <-ctx.Done():
		// Still queued, it is dropped when its batch is made; already
		// sent, it may still be logged.
		return nil, ctx.Err()
	}
	if a.Err != nil {
		if re, ok := client.Reject(a.Err); ok {
			w.f.m.forwarded.WithLabelValues("refused").Inc()
			return nil, re
		}
		w.f.m.forwarded.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("%w at %s: %w", errForward, w.addr, a.Err)
	}
	w.f.m.forwarded.WithLabelValues("ok").Inc()
	res := a.Submitted
	proof := make([]tlog.Hash, len(res.InclusionProof))
	for i, h := range res.InclusionProof {
		copy(proof[i][:], h)
	}
	out := &sequencer.Result{Index: res.Index, Entry: res.Entry, Proof: proof, Size: res.TreeSize, Checkpoint: []byte(res.Checkpoint)}
	copy(out.LeafHash[:], res.LeafHash)
	return out, nil
}

// next takes the next batch off the queue (the submissions whose
// submitters still wait, at most api.MaxForwardSubmissions in at most
// api.MaxForwardBytes), or reports false and ends this sender when there
// is none.
func (w *forwarder) next() ([]*forwarded, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var batch []*forwarded
	size := forwardOverhead
	n := 0
	for _, p := range w.queue {
		if p.ctx.Err() != nil {
			n++
			continue
		}
		if len(batch) == api.MaxForwardSubmissions || len(batch) > 0 && size+p.fw.Size()+1 > api.MaxForwardBytes {
			break
		}
		batch = append(batch, p)
		size += p.fw.Size() + 1
		n++
	}
	w.queue = w.queue[n:]
	if len(w.queue) == 0 {
		w.queue = nil
	}
	if len(batch) == 0 {
		w.inFlight--
		return nil, false
	}
	return batch, true
}

// send forwards batches until the queue is empty.
func (w *forwarder) send() {
	for {
		batch, ok := w.next()
		if !ok {
			return
		}
		fws := make([]*client.Forwarding, len(batch))
		for i, p := range batch {
			fws[i] = p.fw
		}
		w.f.m.forwardBatches.Inc()
		w.f.m.forwardBatchSize.Observe(float64(len(batch)))
		// The batch is the writer's work for every submitter in it: it is
		// not cut short when one of them gives up, only when the frontend
		// stops (and by the HTTP client's timeout).
		answers, err := w.c.SubmitForwarded(w.f.ctx, w.f.store.fwdKey, fws)
		if err == nil && len(answers) != len(batch) {
			err = errors.New("wrong number of answers")
		}
		for i, p := range batch {
			if err != nil {
				p.done <- client.ForwardAnswer{Err: err}
			} else {
				p.done <- answers[i]
			}
		}
	}
}
