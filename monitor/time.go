package monitor

// The time checks (docs/time.md): entry times against the cosignatures
// of the checkpoints the monitor sees, and against its own clock. A
// violation is a KindTime alert with TimeEvidence anyone can check
// offline (VerifyTimeEvidence, keycommit monitor check-evidence).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
	"github.com/keycommit/keycommit/witness/quorum"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// KindTime: an entry's time breaks the time rule (docs/time.md) against
// witness cosignatures, or is in the future of the monitor's clock;
// Evidence names the stored TimeEvidence.
const KindTime = "time"

// The rules of time alerts and evidence.
const (
	// RuleAfterCosignatures: the entry is dated more than the skew after
	// the cosignatures, by a quorum, of a checkpoint that contains it.
	RuleAfterCosignatures = "after-cosignatures"
	// RuleBeforeCosignatures: the entry is dated more than the skew
	// before the cosignatures, by a quorum, of a checkpoint that does not
	// contain it.
	RuleBeforeCosignatures = "before-cosignatures"
	// RuleAfterMonitorClock: the entry is dated more than the skew after
	// the monitor's clock (no witness needed; whoever checks the evidence
	// uses their own clock).
	RuleAfterMonitorClock = "after-monitor-clock"
)

// TimeEvidenceType is the type string of time evidence.
const TimeEvidenceType = "keycommit/time/v1"

// TimeEvidence shows that a log dated an entry in a way the time rule
// refuses. Anyone holding the log's verifier key (and, for the
// cosignature rules, the witness policy) can check it offline with
// VerifyTimeEvidence.
type TimeEvidence struct {
	Type   string `json:"type"`
	Origin string `json:"origin"`
	// VKey is the log's C2SP verifier key (informational: a checker uses
	// the key it trusts).
	VKey string `json:"vkey"`
	// Rule is RuleAfterCosignatures, RuleBeforeCosignatures or
	// RuleAfterMonitorClock.
	Rule string `json:"rule"`
	// Index and Entry are the entry (exact leaf bytes).
	Index int64  `json:"index"`
	Entry []byte `json:"entry"`
	// Checkpoint is a checkpoint signed by the log that contains the
	// entry, and Proof the entry's RFC 6962 inclusion proof in it. For
	// RuleAfterCosignatures its cosignatures are those the entry's time
	// contradicts.
	Checkpoint string   `json:"checkpoint"`
	Proof      [][]byte `json:"proof"`
	// Cosigned, for RuleBeforeCosignatures, is a checkpoint signed by the
	// log of size at most Index, whose cosignatures the entry's time
	// contradicts.
	Cosigned string    `json:"cosigned,omitempty"`
	Reason   string    `json:"reason"`
	Found    time.Time `json:"found"`
}

// ID returns the evidence's identifier: the hex SHA-256 of its origin,
// rule, index and entry, so that every monitor that finds the same
// violation names it the same way.
func (e *TimeEvidence) ID() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%d\n", TimeEvidenceType, e.Origin, e.Rule, e.Index)
	h.Write(e.Entry)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// ErrNoTimeViolation is returned (wrapped) by VerifyTimeEvidence when
// everything in the evidence verifies but the entry's time breaks no
// rule.
var ErrNoTimeViolation = errors.New("evidence does not show a time violation")

// VerifyTimeEvidence checks time evidence offline against the log
// verifier key vkey and, for the cosignature rules, the witness policy
// pol: the checkpoints carry valid log signatures for the evidence's
// origin, the entry is included at Index in Checkpoint, and its time
// breaks the rule (verify.CheckEntryTime against the policy witnesses'
// valid cosignatures; for RuleAfterMonitorClock, against now).
func VerifyTimeEvidence(data []byte, vkey string, pol *quorum.Policy, now time.Time) (*TimeEvidence, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the log verifier key: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e TimeEvidence
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("malformed evidence: %w", err)
	}
	switch {
	case e.Type != TimeEvidenceType:
		return nil, fmt.Errorf("evidence type %q, want %q", e.Type, TimeEvidenceType)
	case e.VKey != "" && e.VKey != vkey:
		return nil, fmt.Errorf("evidence is for log key %q, not the key given (%q)", e.VKey, vkey)
	case e.Index < 0:
		return nil, fmt.Errorf("negative entry index %d", e.Index)
	}
	cp, err := openCheckpoint([]byte(e.Checkpoint), v, e.Origin)
	if err != nil {
		return nil, fmt.Errorf("the checkpoint containing the entry: %w", err)
	}
	if e.Index >= cp.Size {
		return nil, fmt.Errorf("entry %d is not in the checkpoint of size %d", e.Index, cp.Size)
	}
	proof := make(tlog.RecordProof, len(e.Proof))
	for i, h := range e.Proof {
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d is %d bytes, want %d", i, len(h), tlog.HashSize)
		}
		copy(proof[i][:], h)
	}
	if err := tlog.CheckRecord(proof, cp.Size, cp.Root, e.Index, tlog.RecordHash(e.Entry)); err != nil {
		return nil, fmt.Errorf("entry %d is not included in the checkpoint of size %d: %w", e.Index, cp.Size, err)
	}
	ent, err := schema.ParseEntry(e.Entry)
	if err != nil {
		return nil, fmt.Errorf("entry %d does not parse: %w", e.Index, err)
	}
	t := time.UnixMilli(ent.Time)
	if e.Rule == RuleAfterMonitorClock {
		if !t.After(now.Add(verify.TimeSkew)) {
			return nil, fmt.Errorf("%w: entry %d is dated %s, not more than %v after this clock's %s", ErrNoTimeViolation,
				e.Index, t.UTC().Format(time.RFC3339Nano), verify.TimeSkew, now.UTC().Format(time.RFC3339))
		}
		return &e, nil
	}
	if e.Rule != RuleAfterCosignatures && e.Rule != RuleBeforeCosignatures {
		return nil, fmt.Errorf("unknown time evidence rule %q", e.Rule)
	}
	if pol == nil {
		return nil, errors.New("checking cosignature time evidence needs the witness policy")
	}
	wv, err := verify.New(verify.Config{LogKey: vkey, Origin: e.Origin, Policy: pol})
	if err != nil {
		return nil, err
	}
	against := e.Checkpoint
	if e.Rule == RuleBeforeCosignatures {
		against = e.Cosigned
	} else if e.Cosigned != "" {
		return nil, errors.New("after-cosignatures evidence carries a second checkpoint")
	}
	vc, err := wv.OpenCheckpoint([]byte(against))
	if err != nil {
		return nil, fmt.Errorf("the cosigned checkpoint: %w", err)
	}
	if want := verify.Contained; e.Rule == RuleBeforeCosignatures && verify.Relation(uint64(e.Index), vc.Size) == want {
		return nil, fmt.Errorf("before-cosignatures evidence: the cosigned checkpoint of size %d contains entry %d", vc.Size, e.Index)
	}
	if err := verify.CheckEntryTime(uint64(e.Index), t, vc.Size, vc.CosignatureTimes(), pol); err == nil {
		return nil, fmt.Errorf("%w: entry %d dated %s agrees with the cosignatures of the checkpoint of size %d", ErrNoTimeViolation,
			e.Index, t.UTC().Format(time.RFC3339Nano), vc.Size)
	}
	return &e, nil
}

// EvidenceTypeOf returns the type member of an evidence bundle
// (EvidenceType or TimeEvidenceType), "" if it has none.
func EvidenceTypeOf(data []byte) string {
	var t struct {
		Type string `json:"type"`
	}
	json.Unmarshal(data, &t)
	return t.Type
}

// latestEntry is the latest-dated entry the monitor replayed from a log,
// kept to check it against cosigned checkpoints seen later.
type latestEntry struct {
	index int64
	time  int64
	entry []byte
}

// timeFinding is a time violation found during a round, turned into
// evidence by flush.
type timeFinding struct {
	rule     string
	index    int64
	entry    []byte
	in       *Checkpoint // contains the entry
	cosigned *Checkpoint // RuleBeforeCosignatures: does not
	reason   string
}

// timeCheck runs the time checks over one replay round of a follower:
// each entry against the anchor it is replayed to (which contains it),
// against the checkpoint the round started from (which does not), and
// against the monitor's clock. It raises at most one alert per rule per
// round.
type timeCheck struct {
	f            *follower
	anchor, from *Checkpoint
	anchorCosigs map[string]time.Time
	fromCosigs   map[string]time.Time
	found        []timeFinding
	seen         map[string]bool
	latest       latestEntry
	changed      bool
}

// newTimeCheck prepares the checks of a round replaying up to anchor from
// the verified checkpoint from (nil if none).
func (f *follower) newTimeCheck(ctx context.Context, anchor, from *Checkpoint) (*timeCheck, error) {
	l, err := f.m.store.latestEntry(ctx, f.origin)
	if err != nil {
		return nil, err
	}
	tc := &timeCheck{f: f, anchor: anchor, from: from, anchorCosigs: f.cosignatureTimes(anchor), latest: l, seen: map[string]bool{}}
	if from != nil {
		tc.fromCosigs = f.cosignatureTimes(from)
	}
	return tc, nil
}

// cosignatureTimes returns the timestamps of cp's valid cosignatures by
// the policy's witnesses, nil without a policy.
func (f *follower) cosignatureTimes(cp *Checkpoint) map[string]time.Time {
	if f.tv == nil || cp == nil {
		return nil
	}
	vc, err := f.tv.OpenCheckpoint(cp.Note)
	if err != nil {
		f.m.log.Warn("checkpoint with cosignatures that do not verify; its cosignatures are not used", "log", f.origin, "size", cp.Size, "err", err)
		return nil
	}
	return vc.CosignatureTimes()
}

// entry checks entry idx (raw bytes, parsed e).
func (tc *timeCheck) entry(idx int64, raw []byte, e *schema.Entry) {
	if e == nil {
		return
	}
	t := time.UnixMilli(e.Time)
	if now := tc.f.m.now(); t.After(now.Add(verify.TimeSkew)) {
		tc.add(timeFinding{rule: RuleAfterMonitorClock, index: idx, entry: raw, in: tc.anchor,
			reason: fmt.Sprintf("entry %d is dated %s, more than %v after the monitor's clock (%s)", idx,
				t.UTC().Format(time.RFC3339Nano), verify.TimeSkew, now.UTC().Format(time.RFC3339))})
	}
	if pol := tc.f.m.cfg.WitnessPolicy; pol != nil {
		if err := verify.CheckEntryTime(uint64(idx), t, uint64(tc.anchor.Size), tc.anchorCosigs, pol); err != nil {
			tc.add(timeFinding{rule: RuleAfterCosignatures, index: idx, entry: raw, in: tc.anchor, reason: errors.Unwrap(err).Error()})
		}
		if tc.from != nil && tc.from.Size <= idx {
			if err := verify.CheckEntryTime(uint64(idx), t, uint64(tc.from.Size), tc.fromCosigs, pol); err != nil {
				tc.add(timeFinding{rule: RuleBeforeCosignatures, index: idx, entry: raw, in: tc.anchor, cosigned: tc.from, reason: errors.Unwrap(err).Error()})
			}
		}
	}
	if tc.latest.entry == nil || e.Time > tc.latest.time {
		tc.latest = latestEntry{index: idx, time: e.Time, entry: raw}
		tc.changed = true
	}
}

func (tc *timeCheck) add(fd timeFinding) {
	if tc.seen[fd.rule] {
		return
	}
	tc.seen[fd.rule] = true
	tc.found = append(tc.found, fd)
}

// flush stores the latest entry and the evidence of what was found. It
// runs before the replay position is saved, so a crash repeats the
// checks rather than lose them.
func (tc *timeCheck) flush(ctx context.Context) error {
	if tc.changed {
		if err := tc.f.m.store.saveLatestEntry(ctx, tc.f.origin, tc.latest); err != nil {
			return err
		}
		tc.changed = false
	}
	found := tc.found
	tc.found = nil
	for _, fd := range found {
		if err := tc.f.recordTime(ctx, fd); err != nil {
			return err
		}
	}
	return nil
}

// checkLatest checks the latest-dated entry replayed against the
// cosignatures of cp, a checkpoint consistent with the monitor's view,
// when cp contains it: a checkpoint cosigned after its entries were
// replayed (the monitor saw its entries first, or the cosignatures came
// from a witness or a peer).
func (f *follower) checkLatest(ctx context.Context, cp *Checkpoint) error {
	pol := f.m.cfg.WitnessPolicy
	if pol == nil {
		return nil
	}
	l, err := f.m.store.latestEntry(ctx, f.origin)
	if err != nil || l.entry == nil || l.index >= cp.Size {
		return err
	}
	cosigs := f.cosignatureTimes(cp)
	if len(cosigs) == 0 {
		return nil
	}
	if err := verify.CheckEntryTime(uint64(l.index), time.UnixMilli(l.time), uint64(cp.Size), cosigs, pol); err != nil {
		return f.recordTime(ctx, timeFinding{rule: RuleAfterCosignatures, index: l.index, entry: l.entry, in: cp, reason: errors.Unwrap(err).Error()})
	}
	return nil
}

// recordTime builds the evidence of fd (the entry's inclusion proof in
// fd.in, from the log's tiles authenticated against it), stores it and
// raises its alert.
func (f *follower) recordTime(ctx context.Context, fd timeFinding) error {
	thr := tlog.TileHashReader(fd.in.tree(), &tileReader{ctx: ctx, c: f.client})
	p, err := tlog.ProveRecord(fd.in.Size, fd.index, thr)
	if err != nil {
		return fmt.Errorf("couldn't prove the inclusion of entry %d for time evidence: %w", fd.index, err)
	}
	ev := &TimeEvidence{Type: TimeEvidenceType, Origin: f.origin, VKey: f.vkey, Rule: fd.rule, Index: fd.index,
		Entry: fd.entry, Checkpoint: string(fd.in.Note), Reason: fd.reason, Found: f.m.now().UTC()}
	for _, h := range p {
		ev.Proof = append(ev.Proof, append([]byte(nil), h[:]...))
	}
	if fd.cosigned != nil {
		ev.Cosigned = string(fd.cosigned.Note)
	}
	return f.m.recordTimeEvidence(ctx, ev)
}

// recordTimeEvidence stores time evidence and raises its alert.
func (m *Monitor) recordTimeEvidence(ctx context.Context, ev *TimeEvidence) error {
	a := Alert{Time: m.now().UTC(), Log: ev.Origin, Kind: KindTime, Rule: ev.Rule, Index: index(ev.Index), Evidence: ev.ID(),
		Message: fmt.Sprintf("time: %s; evidence %s", ev.Reason, ev.ID())}
	isNew, err := m.store.addEvidence(ctx, ev.ID(), ev.Origin, ev, ev.Found, a)
	if err != nil {
		return err
	}
	if isNew {
		m.log.Error("log time broken", "log", ev.Origin, "rule", ev.Rule, "index", ev.Index, "evidence", ev.ID(), "reason", ev.Reason)
	}
	return m.deliver(ctx)
}

// latestEntry returns the stored latest-dated entry of log origin (entry
// nil if none).
func (s *store) latestEntry(ctx context.Context, origin string) (latestEntry, error) {
	var l latestEntry
	err := s.db.QueryRowContext(ctx, `SELECT idx, time, entry FROM latest_entry WHERE origin = ?`, origin).Scan(&l.index, &l.time, &l.entry)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return latestEntry{}, fmt.Errorf("couldn't read the latest entry of log %s: %w", origin, err)
	}
	return l, nil
}

func (s *store) saveLatestEntry(ctx context.Context, origin string, l latestEntry) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO latest_entry (origin, idx, time, entry) VALUES (?, ?, ?, ?)
		ON CONFLICT (origin) DO UPDATE SET idx = excluded.idx, time = excluded.time, entry = excluded.entry`,
		origin, l.index, l.time, l.entry); err != nil {
		return fmt.Errorf("couldn't save the latest entry of log %s: %w", origin, err)
	}
	return nil
}
