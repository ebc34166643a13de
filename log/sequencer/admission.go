package sequencer

// Admission, on the submitter's goroutine: Prepare checks the issuer
// signature against the current state, Submit queues the submission for
// the sequencing goroutine and waits for its answer (step 3).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
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
	// dryRun is set for a statement signed for POST /v1/check.
	dryRun bool
	// control is set when the policy needs a proof of origin control.
	control bool
	// refused is set when the log refuses the submission before the
	// policy sees it (an implausible incident discovery time).
	refused error
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
	e := &schema.Entry{V: schema.Version, Kind: sub.Kind, Log: sub.Log, Issuer: sub.Issuer,
		Prev: bytes.Clone(sub.Prev), Body: bytes.Clone(sub.Body), Sig: bytes.Clone(sub.Sig)}
	s.mu.RLock()
	// The entry's time is set when it is sequenced; until then the
	// current log time says whether the registration in force lapsed.
	e.Time = max(s.cfg.Clock().UnixMilli(), s.lastTime)
	key := policy.SigningKey(s.st, e)
	control := policy.NeedsOriginControl(s.st, e)
	s.mu.RUnlock()
	p := &Prepared{e: e, dryRun: sub.DryRun, control: control, refused: s.admissionProblem(e)}
	if key != nil && !sub.DryRun && e.VerifySignature(key) == nil {
		p.key = key
	}
	return p
}

// admissionProblem is what the log refuses in a new submission although
// the policy's replay accepts it: an incident report whose discovered
// time is not a plausible date in milliseconds (seconds or microseconds
// given instead), which the policy cannot tell from a real date because
// entries logged before this check must replay the same. Parsing the body
// here, on the submitter's goroutine, also leaves it cached for the
// sequencer's evaluation.
func (s *Sequencer) admissionProblem(e *schema.Entry) error {
	if err := e.CheckIncidentTimes(s.cfg.Clock()); err != nil {
		return &policy.RejectError{Rule: policy.RuleIncidentReport, Reason: err.Error()}
	}
	return nil
}

// errDryRun refuses to log a statement signed for a dry run.
var errDryRun = &policy.RejectError{Rule: policy.RuleLogBinding,
	Reason: "the statement was signed for a dry run (POST /v1/check, dry_run true) and can never be logged; sign it again for submission"}

// proveControl asks cfg.OriginControl for the proof of control of e's
// origin and records it in e. It asks only for a statement that can be
// admitted otherwise as far as Prepare could tell (for this log, its
// signature verified under key), so a statement that would be refused
// anyway never makes the log fetch anything.
func (s *Sequencer) proveControl(ctx context.Context, e *schema.Entry, key ed25519.PublicKey) error {
	if e.Log != s.origin || key == nil {
		return nil // refused by the policy: log-binding, prev or signature
	}
	if s.cfg.OriginControl == nil {
		return &policy.RejectError{Rule: policy.RuleOriginControl,
			Reason: fmt.Sprintf("registering %s needs proof of control of the origin, and this log is configured to check none", e.Issuer)}
	}
	ctl, err := s.cfg.OriginControl(ctx, s.origin, e.Issuer, key)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &policy.RejectError{Rule: policy.RuleOriginControl,
			Reason: fmt.Sprintf("registering %s with account key %s needs proof of control of the origin: %v", e.Issuer, base64.StdEncoding.EncodeToString(key), err)}
	}
	// The proof is dated in log time, when the check completed: never
	// after the entry's time, which is assigned later.
	c := *ctl
	s.mu.RLock()
	c.Time = max(s.cfg.Clock().UnixMilli(), s.lastTime)
	s.mu.RUnlock()
	e.Control = &c
	return nil
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
	if prep.dryRun {
		return nil, errDryRun
	}
	if prep.refused != nil {
		s.metrics.rejections.WithLabelValues(policy.RuleIncidentReport).Inc()
		return nil, prep.refused
	}
	if prep.control {
		if err := s.proveControl(ctx, prep.e, prep.key); err != nil {
			return nil, err
		}
	}
	res, err := s.sequence(ctx, prep)
	var re *policy.RejectError
	if errors.As(err, &re) && re.Rule == policy.RuleOriginControl && !prep.control && prep.e.Control == nil {
		// The state changed between Prepare and sequencing (the
		// registration in force lapsed, or the state was rebuilt after a
		// failed write) and the registration needs proof of control after
		// all: prepare it again, once, which checks the proof.
		again := s.Prepare(prep.e.Submission())
		if again.control {
			again.used.Store(true)
			if err := s.proveControl(ctx, again.e, again.key); err != nil {
				return nil, err
			}
			return s.sequence(ctx, again)
		}
	}
	return res, err
}

// sequence queues prep for the sequencing goroutine and waits for its
// answer.
func (s *Sequencer) sequence(ctx context.Context, prep *Prepared) (*Result, error) {
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

// Check evaluates sub, a dry-run statement (DryRun set, signed in the
// dry-run context, so that it can never be logged), against the current
// policy state as if it were appended now, without logging anything; a
// statement that is not a dry run is refused by rule log-binding. A
// registration that needs proof of origin control gets it checked as
// Submit would. The state may include batches that are still being
// persisted.
func (s *Sequencer) Check(ctx context.Context, sub *schema.Submission) policy.Decision {
	if !sub.DryRun {
		return policy.Decision{Rule: policy.RuleLogBinding,
			Reason: "POST /v1/check takes only dry-run statements (dry_run true, signed in the dry-run context), which can never be logged"}
	}
	s.mu.RLock()
	e := schema.NewEntry(sub, max(s.cfg.Clock().UnixMilli(), s.lastTime))
	key := policy.SigningKey(s.st, e)
	control := policy.NeedsOriginControl(s.st, e)
	s.mu.RUnlock()
	var re *policy.RejectError
	if errors.As(s.admissionProblem(e), &re) {
		return policy.Decision{Rule: re.Rule, Reason: re.Reason}
	}
	if key != nil && sub.Verify(key) != nil {
		key = nil
	}
	if control {
		if err := s.proveControl(ctx, e, key); errors.As(err, &re) {
			return policy.Decision{Rule: re.Rule, Reason: re.Reason}
		} else if err != nil {
			return policy.Decision{Rule: policy.RuleOriginControl, Reason: err.Error()}
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e.Time = max(s.cfg.Clock().UnixMilli(), s.lastTime)
	if key == nil {
		// Refused by prev or signature: a dry-run signature never
		// verifies as a statement to log.
		return policy.Evaluate(s.st, e, s.st.Size())
	}
	return policy.EvaluatePreverified(s.st, e, s.st.Size(), key)
}
