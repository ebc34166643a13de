package sequencer

// Step 4, the witness loop: keep the latest published checkpoint
// cosigned by a fresh quorum of witnesses, and store it with
// SetCosigned. It never blocks steps 1-3.
//
// The loop works in rounds. A round starts when a checkpoint is
// published, when the loop starts, and CosignInterval after the previous
// round met its quorum (an idle log is re-cosigned: tlog-witness lets a
// log submit the checkpoint a witness already cosigned, with old equal to
// its size and an empty proof, and the witness answers with a cosignature
// carrying a new timestamp). A round asks every witness; while the
// witnesses that cosigned during the round do not meet the quorum, the
// ones that did not are asked again after a backoff (CosignRetryMin
// doubling up to CosignRetryMax, jittered). The loop keeps, per witness,
// its newest cosignature of the current checkpoint; whenever those meet
// the quorum and one of them is new, the checkpoint with all of them is
// stored with SetCosigned, which merges per witness the same way.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
)

const (
	// DefaultCosignInterval is how often an idle log asks its witnesses
	// again. A user agent's default maximum cosignature age is 24 hours
	// (log/verify.DefaultMaxAge): with healthy witnesses the served
	// quorum is never older than the interval plus one round, a margin of
	// about 23 hours.
	DefaultCosignInterval = time.Hour
	// DefaultCosignRetryMax caps the backoff between retries of failed
	// witnesses: a witness that comes back is asked again within it.
	DefaultCosignRetryMax = time.Minute
)

// Witnesses is what the witness loop needs of the log's witnesses.
// *witnessing.Collector implements it.
type Witnesses interface {
	// Cosign asks the witnesses named in names (every witness when names
	// is nil) to cosign signed, the checkpoint with the log's signature
	// only. It returns the verified cosignatures it got, and why each
	// other witness asked did not cosign. It returns within the context's
	// deadline.
	Cosign(ctx context.Context, signed []byte, names []string) ([]Cosignature, map[string]error)
	// Cosignatures returns the verified cosignatures of the policy's
	// witnesses in a cosigned note of the log's checkpoint.
	Cosignatures(note []byte) []Cosignature
	// Satisfied reports whether cosignatures from the named witnesses
	// meet the quorum.
	Satisfied(names map[string]bool) bool
	// Names lists the witnesses, in policy order.
	Names() []string
}

// Cosignature is one witness's verified cosignature.
type Cosignature struct {
	// Witness is the witness's name in the policy.
	Witness string
	// Time is the cosignature's timestamp (zero if it has none).
	Time time.Time
	// Line is the note signature line, with its newline.
	Line []byte
	// Received is when the answer arrived (zero for cosignatures read
	// from a stored note).
	Received time.Time
}

// witnessState is the witness loop's view of the current checkpoint.
type witnessState struct {
	signed []byte
	size   uint64
	text   []byte
	// have holds, per witness, its newest cosignature of signed.
	have map[string]Cosignature
	// round holds the witnesses that cosigned since the round started.
	round map[string]bool
	// retries counts the retries of the round.
	retries int
}

// witnessLoop runs the rounds (see the top of this file).
func (s *Sequencer) witnessLoop() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	var ws *witnessState
	select {
	case signed := <-s.witnessCh: // the current checkpoint, at startup
		ws = s.newWitnessState(ctx, signed)
	case <-s.stop:
		return
	}
	s.metrics.cosignRounds.WithLabelValues("start").Inc()
	s.cosignRound(ctx, ws, nil)
	for {
		var wait time.Duration
		met := s.cfg.Witnesses.Satisfied(ws.round)
		if met {
			wait = s.cfg.CosignInterval
		} else {
			wait = s.backoff(ws.retries)
		}
		timer := s.cfg.After(wait)
		select {
		case signed := <-s.witnessCh:
			ws = s.newWitnessState(ctx, signed)
			s.metrics.cosignRounds.WithLabelValues("checkpoint").Inc()
			s.cosignRound(ctx, ws, nil)
		case <-timer:
			if met {
				ws.round, ws.retries = map[string]bool{}, 0
				s.metrics.cosignRounds.WithLabelValues("interval").Inc()
				s.cosignRound(ctx, ws, nil)
				continue
			}
			ws.retries++
			s.metrics.cosignRetries.Inc()
			s.cosignRound(ctx, ws, s.missing(ws))
		case <-s.stop:
			return
		}
	}
}

// backoff is the wait before retry n (0-based) of a round.
func (s *Sequencer) backoff(n int) time.Duration {
	d := s.cfg.CosignRetryMax
	if n < 62 {
		if b := s.cfg.CosignRetryMin << n; b > 0 && b < d {
			d = b
		}
	}
	j := min(max(s.cfg.Jitter(), 0), 1)
	return d/2 + time.Duration(float64(d/2)*j)
}

// missing lists the witnesses that did not cosign in the current round.
func (s *Sequencer) missing(ws *witnessState) []string {
	var out []string
	for _, name := range s.cfg.Witnesses.Names() {
		if !ws.round[name] {
			out = append(out, name)
		}
	}
	return out
}

// newWitnessState starts the state of a newly published checkpoint,
// with the cosignatures already stored for it.
func (s *Sequencer) newWitnessState(ctx context.Context, signed []byte) *witnessState {
	ws := &witnessState{signed: signed, have: map[string]Cosignature{}, round: map[string]bool{}}
	c, _, err := checkpoint.Open(signed, s.cfg.Verifier)
	if err != nil {
		s.log.Error("published checkpoint does not verify", "err", err)
		return ws
	}
	ws.size = c.Size
	ws.text = signed[:bytes.LastIndex(signed, []byte("\n\n"))+1]
	if n, note, err := s.cfg.Backend.Cosigned(ctx); err == nil && n == c.Size && bytes.HasPrefix(note, ws.text) {
		for _, cs := range s.cfg.Witnesses.Cosignatures(note) {
			ws.have[cs.Witness] = cs
		}
	}
	return ws
}

// cosignRound asks the named witnesses (all if nil) to cosign the
// current checkpoint, merges what they return and stores the result if
// it meets the quorum.
func (s *Sequencer) cosignRound(ctx context.Context, ws *witnessState, names []string) {
	if ws.text == nil {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.WitnessTimeout)
	got, failed := s.cfg.Witnesses.Cosign(wctx, ws.signed, names)
	cancel()
	changed := false
	for _, c := range got {
		ws.round[c.Witness] = true
		if s.cfg.OnCosignature != nil && !c.Time.IsZero() {
			s.cfg.OnCosignature(c.Witness, c.Time, c.Received)
		}
		if old, ok := ws.have[c.Witness]; !ok || c.Time.After(old.Time) || c.Time.IsZero() {
			ws.have[c.Witness] = c
			changed = true
		}
	}
	for name, err := range failed {
		s.metrics.cosignFailures.WithLabelValues(name).Inc()
		s.log.Warn("witness did not cosign", "witness", name, "size", ws.size, "err", err)
	}
	if ctx.Err() != nil {
		return
	}
	if !s.cfg.Witnesses.Satisfied(ws.round) {
		s.metrics.witnessErrors.Inc()
		s.log.Warn("witness quorum not met; retrying the missing witnesses", "size", ws.size,
			"cosigned", slices.Sorted(mapsKeys(ws.round)), "retry", ws.retries)
	}
	have := map[string]bool{}
	for name := range ws.have {
		have[name] = true
	}
	if !changed || !s.cfg.Witnesses.Satisfied(have) {
		return
	}
	if err := s.storeCosigned(ctx, ws); err != nil {
		s.metrics.witnessErrors.Inc()
		s.log.Error("couldn't store the cosigned checkpoint", "size", ws.size, "err", err)
		return
	}
	s.log.Debug("checkpoint cosigned", "size", ws.size, "witnesses", len(ws.have))
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// storeCosigned stores the checkpoint with every cosignature held, in
// witness policy order.
func (s *Sequencer) storeCosigned(ctx context.Context, ws *witnessState) error {
	note := bytes.Clone(ws.signed)
	for _, name := range s.cfg.Witnesses.Names() {
		if c, ok := ws.have[name]; ok {
			note = append(note, c.Line...)
		}
	}
	c2, _, err := checkpoint.Open(note, s.cfg.Verifier)
	if err != nil {
		return fmt.Errorf("cosigned note does not verify: %w", err)
	}
	if c2.Size != ws.size {
		return errors.New("cosigned note is not of the checkpoint's size")
	}
	return s.cfg.Backend.SetCosigned(ctx, ws.size, note)
}

// quorumTime returns the time of the freshest quorum among cs: the
// latest t such that the cosignatures dated t or later meet the quorum.
func quorumTime(w Witnesses, cs []Cosignature) (time.Time, bool) {
	cs = slices.DeleteFunc(slices.Clone(cs), func(c Cosignature) bool { return c.Time.IsZero() })
	slices.SortFunc(cs, func(a, b Cosignature) int { return b.Time.Compare(a.Time) })
	names := map[string]bool{}
	for _, c := range cs {
		names[c.Witness] = true
		if w.Satisfied(names) {
			return c.Time, true
		}
	}
	return time.Time{}, false
}

// quorumAge is the age, by the log's clock, of the oldest cosignature of
// the freshest quorum in the stored cosigned checkpoint: what /checkpoint
// and the bundles serve (NaN when there is none). It reads the backend,
// not this sequencer's memory, so it stays true when another sequencer
// (a Trillian frontend's replacement, another frontend) stores it.
func (s *Sequencer) quorumAge() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, note, err := s.cfg.Backend.Cosigned(ctx)
	if err != nil {
		return math.NaN()
	}
	t, ok := quorumTime(s.cfg.Witnesses, s.cfg.Witnesses.Cosignatures(note))
	if !ok {
		return math.NaN()
	}
	return s.cfg.Clock().Sub(t).Seconds()
}

// hookWitnesses adapts Config.Witness to Witnesses: one pseudo-witness
// whose cosignature is every line the hook added, present when the hook
// says the quorum is met.
type hookWitnesses func(ctx context.Context, signedCheckpoint []byte) ([]byte, error)

const hookName = "witness hook"

func (h hookWitnesses) Cosign(ctx context.Context, signed []byte, _ []string) ([]Cosignature, map[string]error) {
	cosigned, err := h(ctx, signed)
	if err != nil {
		return nil, map[string]error{hookName: err}
	}
	if !bytes.HasPrefix(cosigned, signed) {
		return nil, map[string]error{hookName: errors.New("witness hook returned a note that does not extend the checkpoint")}
	}
	return []Cosignature{{Witness: hookName, Line: cosigned[len(signed):]}}, nil
}

func (h hookWitnesses) Cosignatures([]byte) []Cosignature { return nil }

func (h hookWitnesses) Satisfied(names map[string]bool) bool { return names[hookName] }

func (h hookWitnesses) Names() []string { return []string{hookName} }
