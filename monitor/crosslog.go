package monitor

// The cross-log check (docs/monitor.md, "Cross-log"): a monitor that
// follows several logs compares, for every issuer it sees in two or more
// of them, the commitments each log holds over time. An issuer whose
// commitments in two logs differ for longer than the grace window, as
// shown by the logs' own snapshots, is a KindCrossLog alert with
// CrossLogEvidence that anyone can check offline (CheckCrossLog,
// keycommit monitor check-evidence).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/keycommit/keycommit/witness/quorum"
	"golang.org/x/mod/sumdb/tlog"
)

// KindCrossLog: an issuer's commitments in two followed logs differ for
// longer than the cross-log grace window; Evidence names the stored
// CrossLogEvidence.
const KindCrossLog = "cross-log"

// RuleCrossLog is the rule of cross-log alerts.
const RuleCrossLog = "cross-log"

// CrossLogEvidenceType is the type string of cross-log evidence.
const CrossLogEvidenceType = "keycommit/cross-log/v1"

// CrossLogEvidence shows that one issuer had different commitments in
// force in two logs at once, for longer than Grace. Each side proves, by
// the log's signature, its witnesses' cosignatures and two inclusion
// proofs, that the log holds the issuer's commitment entry (the start of
// the commitment's period, its logged time) and a later snapshot whose key
// set still holds exactly that commitment for the issuer (a time up to
// which it was still in force). The overlap is the period from the later
// of the two commitment times to the earlier of the two snapshot times.
//
// Every member is checked (CheckCrossLog); Reason is what CheckCrossLog
// derives from the rest, so no byte of the file is left unchecked.
type CrossLogEvidence struct {
	Type string `json:"type"`
	// Issuer is the issuer origin both sides are about.
	Issuer string `json:"issuer"`
	// Grace is the grace window the evidence was found with, as a Go
	// duration (e.g. "10m0s"): the overlap is longer than it.
	Grace string `json:"grace"`
	// Logs are the two sides, in origin order.
	Logs [2]CrossLogSide `json:"logs"`
	// Reason states the finding; CheckCrossLog requires it to be exactly
	// what it derives from the proven entries.
	Reason string `json:"reason"`
}

// CrossLogSide is one log's side of cross-log evidence.
type CrossLogSide struct {
	// Origin is the log's checkpoint origin and VKey its C2SP verifier
	// key (the checker must name it among the keys it trusts).
	Origin string `json:"origin"`
	VKey   string `json:"vkey"`
	// Checkpoint is a checkpoint signed by the log and cosigned by its
	// witnesses that contains both entries. It carries no other
	// signatures.
	Checkpoint string `json:"checkpoint"`
	// CommitmentIndex, Commitment and CommitmentProof are the issuer's
	// key_commitment entry (exact leaf bytes) and its RFC 6962 inclusion
	// proof in Checkpoint.
	CommitmentIndex int64    `json:"commitment_index"`
	Commitment      []byte   `json:"commitment"`
	CommitmentProof [][]byte `json:"commitment_proof"`
	// SnapshotIndex, Snapshot and SnapshotProof are a later snapshot entry
	// and its inclusion proof in Checkpoint; KeySet is the key set it
	// commits to (canonical encoding, hashing to the snapshot's digest),
	// which holds exactly the commitment for the issuer.
	SnapshotIndex int64    `json:"snapshot_index"`
	Snapshot      []byte   `json:"snapshot"`
	SnapshotProof [][]byte `json:"snapshot_proof"`
	KeySet        []byte   `json:"key_set"`
}

// ID returns the evidence's identifier: the hex SHA-256 of the issuer and
// of each side's origin and commitment index, so that every monitor that
// finds the same two commitments in force together names them the same
// way (whichever snapshots it proves the overlap with).
func (e *CrossLogEvidence) ID() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", CrossLogEvidenceType, e.Issuer)
	for _, s := range e.Logs {
		fmt.Fprintf(h, "%d\n%s\n%d\n", len(s.Origin), s.Origin, s.CommitmentIndex)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// ErrNoCrossLogOverlap is returned (wrapped) by CheckCrossLog when
// everything in the evidence verifies but the two commitments are not
// shown in force together for longer than the grace.
var ErrNoCrossLogOverlap = errors.New("evidence does not show two different commitments in force together beyond the grace")

// CrossLogCheck is what CheckCrossLog needs besides the evidence.
type CrossLogCheck struct {
	// VKeys are the log verifier keys the checker trusts: each side's
	// vkey must be one of them.
	VKeys []string
	// Policies are the witness policies: one for every log, or one per
	// VKeys entry, in the same order. Cross-log evidence rests on logged
	// times, which only the witnesses anchor (docs/time.md), so a policy
	// is required.
	Policies []*quorum.Policy
	// MinGrace is the grace the checker insists on: the overlap must be
	// longer than both it and the evidence's own Grace.
	MinGrace time.Duration
}

// crossLogSideFacts is what CheckCrossLog proved about one side.
type crossLogSideFacts struct {
	commitTime, snapTime time.Time
	value                []byte // the issuer's key set member (see memberValue)
}

// CheckCrossLog checks cross-log evidence offline. The file must be the
// evidence's canonical encoding (as the monitor writes it: indented with
// two spaces, or compact; an optional final newline). For each side: the
// vkey is one the checker trusts; the checkpoint carries a valid signature
// by it for the side's origin, valid cosignatures by a quorum of the
// policy's witnesses and no other signatures; both entries are included
// in it at their indices; the commitment entry is a key_commitment for
// the issuer; the snapshot comes after it, hashes the key set given,
// whose member for the issuer is exactly the commitment; neither entry is
// dated later than the cosignatures allow (verify.CheckEntryTime). Then:
// the two sides are different logs with different commitments, in force
// together from the later commitment time to the earlier snapshot time
// for longer than the grace, and Reason says exactly that.
func CheckCrossLog(data []byte, c CrossLogCheck) (*CrossLogEvidence, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e CrossLogEvidence
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("malformed evidence: %w", err)
	}
	if err := checkCanonical(data, &e); err != nil {
		return nil, err
	}
	if e.Type != CrossLogEvidenceType {
		return nil, fmt.Errorf("evidence type %q, want %q", e.Type, CrossLogEvidenceType)
	}
	grace, err := time.ParseDuration(e.Grace)
	if err != nil || grace < 0 || grace.String() != e.Grace {
		return nil, fmt.Errorf("evidence grace %q is not a duration of zero or more written as Go writes it (e.g. 10m0s)", e.Grace)
	}
	if e.Logs[0].Origin >= e.Logs[1].Origin {
		return nil, fmt.Errorf("evidence sides %q and %q are not two different logs in origin order", e.Logs[0].Origin, e.Logs[1].Origin)
	}
	if len(c.Policies) == 0 {
		return nil, errors.New("checking cross-log evidence needs the witness policy (one for every log, or one per log key)")
	}
	if len(c.Policies) != 1 && len(c.Policies) != len(c.VKeys) {
		return nil, fmt.Errorf("%d witness policies for %d log keys: give one for every log, or one per log key", len(c.Policies), len(c.VKeys))
	}
	if e.Logs[0].VKey == e.Logs[1].VKey {
		return nil, errors.New("both sides are signed by the same log key")
	}
	var sides [2]*checkedSide
	for i := range e.Logs {
		cs, err := checkSideHashes(&e.Logs[i], c)
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", e.Logs[i].Origin, err)
		}
		sides[i] = cs
	}
	var facts [2]crossLogSideFacts
	for i, cs := range sides {
		f, err := checkSideSignatures(cs, e.Issuer)
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", e.Logs[i].Origin, err)
		}
		facts[i] = f
	}
	if bytes.Equal(facts[0].value, facts[1].value) {
		return nil, fmt.Errorf("%w: both logs hold the same commitment for %s", ErrNoCrossLogOverlap, e.Issuer)
	}
	start, end := maxTime(facts[0].commitTime, facts[1].commitTime), minTime(facts[0].snapTime, facts[1].snapTime)
	need := max(grace, c.MinGrace)
	if end.Sub(start) <= need {
		return nil, fmt.Errorf("%w: the commitments are shown in force together from %s to %s (%v), not more than the grace %v",
			ErrNoCrossLogOverlap, fmtTime(start), fmtTime(end), end.Sub(start), need)
	}
	if want := crossLogReason(&e, facts, grace); e.Reason != want {
		return nil, fmt.Errorf("evidence reason %q is not what the evidence shows: %q", e.Reason, want)
	}
	return &e, nil
}

// checkCanonical requires data to be e's encoding as the monitor writes
// it (indented, or compact), so that no byte of the file goes unchecked.
func checkCanonical(data []byte, e *CrossLogEvidence) error {
	body := bytes.TrimSuffix(data, []byte("\n"))
	indented, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	compact, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if !bytes.Equal(body, indented) && !bytes.Equal(body, compact) {
		return errors.New("evidence is not in its canonical encoding (JSON as the monitor writes it, indented with two spaces or compact)")
	}
	return nil
}

// checkedSide is one side of evidence being checked.
type checkedSide struct {
	s    *CrossLogSide
	pol  *quorum.Policy
	cp   c2sp.Checkpoint
	snap *verify.SnapshotEntry
}

// checkSideHashes is the first step of checking a side (see
// CheckCrossLog): the cheap checks (the log key is trusted, the
// checkpoint's body, both inclusion proofs, the key set's hash), run for
// both sides before checkSideSignatures, so that most damage is found
// before any signature is verified.
func checkSideHashes(s *CrossLogSide, c CrossLogCheck) (*checkedSide, error) {
	k := -1
	for i, v := range c.VKeys {
		if v == s.VKey {
			k = i
		}
	}
	if k < 0 {
		return nil, fmt.Errorf("log key %q is not one of the log keys given", s.VKey)
	}
	cs := &checkedSide{s: s, pol: c.Policies[0]}
	if len(c.Policies) > 1 {
		cs.pol = c.Policies[k]
	}
	n, err := c2sp.SplitNote([]byte(s.Checkpoint))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if cs.cp, err = c2sp.ParseCheckpoint(n.Text); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if cs.cp.Origin != s.Origin {
		return nil, fmt.Errorf("checkpoint origin %q, want %q", cs.cp.Origin, s.Origin)
	}
	size := int64(cs.cp.Size)
	switch {
	case s.CommitmentIndex < 0 || s.SnapshotIndex <= s.CommitmentIndex:
		return nil, fmt.Errorf("commitment index %d and snapshot index %d: want 0 ≤ commitment < snapshot", s.CommitmentIndex, s.SnapshotIndex)
	case s.SnapshotIndex >= size:
		return nil, fmt.Errorf("snapshot %d is not in the checkpoint of size %d", s.SnapshotIndex, size)
	}
	for _, p := range []struct {
		what  string
		idx   int64
		entry []byte
		proof [][]byte
	}{{"commitment", s.CommitmentIndex, s.Commitment, s.CommitmentProof}, {"snapshot", s.SnapshotIndex, s.Snapshot, s.SnapshotProof}} {
		if err := checkInclusion(p.idx, p.entry, p.proof, size, tlog.Hash(cs.cp.Hash)); err != nil {
			return nil, fmt.Errorf("%s entry %d: %w", p.what, p.idx, err)
		}
	}
	if cs.snap, err = verify.ParseSnapshotEntry(s.Snapshot); err != nil {
		return nil, fmt.Errorf("entry %d: %w", s.SnapshotIndex, err)
	}
	if ok, _ := cs.snap.CommitsTo(s.KeySet); !ok {
		return nil, fmt.Errorf("the key set given is not the one snapshot %d commits to", s.SnapshotIndex)
	}
	return cs, nil
}

// checkSideSignatures finishes checking a side that passed
// checkSideHashes.
func checkSideSignatures(cs *checkedSide, issuer string) (crossLogSideFacts, error) {
	var facts crossLogSideFacts
	s, pol := cs.s, cs.pol
	wv, err := verify.New(verify.Config{LogKey: s.VKey, Origin: s.Origin, Policy: pol})
	if err != nil {
		return facts, err
	}
	vc, err := wv.OpenCheckpoint([]byte(s.Checkpoint))
	if err != nil {
		return facts, fmt.Errorf("checkpoint: %w", err)
	}
	if err := onlyKnownSignatures([]byte(s.Checkpoint), s.VKey, pol); err != nil {
		return facts, err
	}
	valid := map[string]bool{}
	for _, c := range vc.Cosignatures {
		valid[c.Witness] = true
	}
	if !pol.Satisfied(valid) {
		return facts, fmt.Errorf("checkpoint of size %d is not cosigned by the quorum %q of the witness policy", vc.Size, pol.Quorum())
	}
	ent, err := schema.ParseEntry(s.Commitment)
	if err != nil {
		return facts, fmt.Errorf("commitment entry %d does not parse: %w", s.CommitmentIndex, err)
	}
	switch {
	case ent.Kind != schema.KindKeyCommitment:
		return facts, fmt.Errorf("entry %d is a %s, not a key commitment", s.CommitmentIndex, ent.Kind)
	case ent.Issuer != issuer:
		return facts, fmt.Errorf("commitment entry %d is for issuer %s, not %s", s.CommitmentIndex, ent.Issuer, issuer)
	case ent.Log != "" && ent.Log != s.Origin:
		return facts, fmt.Errorf("commitment entry %d names log %s", s.CommitmentIndex, ent.Log)
	}
	value, err := memberValue(issuer, ent)
	if err != nil {
		return facts, fmt.Errorf("commitment entry %d: %w", s.CommitmentIndex, err)
	}
	ks, err := schema.ParseKeySet(s.KeySet)
	if err != nil {
		return facts, fmt.Errorf("key set of snapshot %d: %w", s.SnapshotIndex, err)
	}
	held, ok := keySetMember(issuer, ks)
	if !ok {
		return facts, fmt.Errorf("the key set of snapshot %d holds no commitment for %s", s.SnapshotIndex, issuer)
	}
	if !bytes.Equal(held, value) {
		return facts, fmt.Errorf("the key set of snapshot %d holds another commitment for %s than entry %d", s.SnapshotIndex, issuer, s.CommitmentIndex)
	}
	ct, st := time.UnixMilli(ent.Time), cs.snap.Time
	if st.Before(ct) {
		return facts, fmt.Errorf("snapshot %d is dated %s, before commitment entry %d (%s)", s.SnapshotIndex, fmtTime(st), s.CommitmentIndex, fmtTime(ct))
	}
	cosigs := vc.CosignatureTimes()
	for _, et := range []struct {
		idx int64
		t   time.Time
	}{{s.CommitmentIndex, ct}, {s.SnapshotIndex, st}} {
		if err := verify.CheckEntryTime(uint64(et.idx), et.t, vc.Size, cosigs, pol); err != nil {
			return facts, fmt.Errorf("entry %d: %w", et.idx, err)
		}
	}
	return crossLogSideFacts{commitTime: ct, snapTime: st, value: value}, nil
}

// onlyKnownSignatures refuses a note with a signature by any key other
// than the log's and the policy's witnesses'.
func onlyKnownSignatures(note []byte, vkey string, pol *quorum.Policy) error {
	n, err := c2sp.SplitNote(note)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	lk, err := quorum.ParseLogVKey(vkey)
	if err != nil {
		return err
	}
	for _, s := range n.Sigs {
		if s.Name == lk.KeyName && s.Hash == lk.KeyID {
			continue
		}
		known := false
		for _, w := range pol.Witnesses() {
			known = known || s.Name == w.KeyName && s.Hash == w.KeyID
		}
		if !known {
			return fmt.Errorf("checkpoint carries a signature by %s (key id %08x), neither the log nor a witness of the policy", s.Name, s.Hash)
		}
	}
	return nil
}

// checkInclusion checks that entry is leaf idx of the tree (size, root).
func checkInclusion(idx int64, entry []byte, proof [][]byte, size int64, root tlog.Hash) error {
	p := make(tlog.RecordProof, len(proof))
	for i, h := range proof {
		if len(h) != tlog.HashSize {
			return fmt.Errorf("proof hash %d is %d bytes, want %d", i, len(h), tlog.HashSize)
		}
		copy(p[i][:], h)
	}
	if err := tlog.CheckRecord(p, size, root, idx, tlog.RecordHash(entry)); err != nil {
		return fmt.Errorf("not included in the checkpoint of size %d: %w", size, err)
	}
	return nil
}

// memberValue returns the key set member a key commitment entry gives its
// issuer, as the canonical encoding of a key set holding only it: what
// user agents get for the issuer (schema.KeySet keeps the PST commitment
// when there is one, else the Privacy Pass directory; the emergency
// report is not part of it). Two commitments are the same when their
// member values are equal.
func memberValue(issuer string, e *schema.Entry) ([]byte, error) {
	body, err := e.ParsedBody()
	if err != nil {
		return nil, err
	}
	kc, ok := body.(*schema.KeyCommitment)
	if !ok {
		return nil, fmt.Errorf("entry body is a %T, not a key commitment", body)
	}
	ks := &schema.KeySet{PST: map[string]schema.PSTCommitment{}, PrivacyPass: map[string]schema.IssuerDirectory{}}
	switch {
	case len(kc.PST) != 0:
		ks.PST[issuer] = kc.PST
	case kc.PrivacyPass != nil:
		ks.PrivacyPass[issuer] = *kc.PrivacyPass
	default:
		return nil, errors.New("key commitment holds no keys")
	}
	return ks.Marshal()
}

// keySetMember returns issuer's member of ks in the form of memberValue.
func keySetMember(issuer string, ks *schema.KeySet) ([]byte, bool) {
	one := &schema.KeySet{PST: map[string]schema.PSTCommitment{}, PrivacyPass: map[string]schema.IssuerDirectory{}}
	if c, ok := ks.PST[issuer]; ok {
		one.PST[issuer] = c
	} else if d, ok := ks.PrivacyPass[issuer]; ok {
		one.PrivacyPass[issuer] = d
	} else {
		return nil, false
	}
	b, err := one.Marshal()
	return b, err == nil
}

// crossLogReason is the Reason of evidence whose sides showed facts.
func crossLogReason(e *CrossLogEvidence, facts [2]crossLogSideFacts, grace time.Duration) string {
	start, end := maxTime(facts[0].commitTime, facts[1].commitTime), minTime(facts[0].snapTime, facts[1].snapTime)
	side := func(i int) string {
		s := e.Logs[i]
		return fmt.Sprintf("%s (entry %d logged %s, still in force at snapshot %d logged %s)", s.Origin,
			s.CommitmentIndex, fmtTime(facts[i].commitTime), s.SnapshotIndex, fmtTime(facts[i].snapTime))
	}
	return fmt.Sprintf("issuer %s committed different keys to %s and to %s: both were in force from %s to %s (%v), more than the grace %v",
		e.Issuer, side(0), side(1), fmtTime(start), fmtTime(end), end.Sub(start), grace)
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Detection.
//
// The monitor records, for every log, each key_commitment entry (index,
// logged time, member value) and each snapshot entry (index, logged time),
// in memory as it replays them and in the database (crosslog_commitments,
// crosslog_snapshots) with the next save of the replay position. A commitment's period in a log starts at its logged
// time; the latest snapshot of that log after it and before the issuer's
// next commitment there is the last logged time it is proven in force.
// After each replayed batch the monitor compares, for the issuers that
// batch touched and that it knows in two or more logs, the periods of
// different commitments in the other logs. A finding becomes evidence:
// both logs' entries are fetched again through their tiles, the key sets
// of the snapshots are rebuilt by applying each log's entries up to them
// (a rare cost: one pass per log and round, however many findings), and
// the evidence and its alert
// are stored in one transaction, under an id that a restart finds again
// and does not raise twice.

// clCommit is a recorded key_commitment entry.
type clCommit struct {
	idx, time int64
	value     [32]byte // SHA-256 of memberValue
}

// clSnap is a recorded snapshot entry.
type clSnap struct{ idx, time int64 }

// clReg is a recorded registration entry: from index idx on, the issuer's
// registration lapses at expires (ms), and snapshots from then on leave
// the issuer out.
type clReg struct{ idx, expires int64 }

// clLog is what the cross-log check knows of one log.
type clLog struct {
	commits map[string][]clCommit // by issuer, in index order
	regs    map[string][]clReg    // by issuer, in index order
	snaps   []clSnap              // in index order
	last    int64                 // highest index recorded, -1 if none
}

// clFinding is two commitments shown in force together beyond the grace.
type clFinding struct {
	issuer string
	// logs[i], commit[i], snap[i]: side i's log, commitment entry index
	// and snapshot index, the logs in origin order.
	logs         [2]string
	commit, snap [2]int64
	start, end   int64 // the overlap shown, ms
}

// crossLog is a monitor's cross-log state.
type crossLog struct {
	grace time.Duration

	mu      sync.Mutex
	logs    map[string]*clLog
	pending map[string]clFinding // by evidence id, not yet stored
	done    map[string]bool      // evidence ids stored or given up on
	// peerSkip holds "peer id" of peer evidence refused or of no log
	// followed (skipPeer).
	peerSkip map[string]bool

	procMu sync.Mutex // one evidence build at a time
}

func newCrossLog(grace time.Duration) *crossLog {
	return &crossLog{grace: grace, logs: map[string]*clLog{}, pending: map[string]clFinding{}, done: map[string]bool{}, peerSkip: map[string]bool{}}
}

func (c *crossLog) log(origin string) *clLog {
	l := c.logs[origin]
	if l == nil {
		l = &clLog{commits: map[string][]clCommit{}, regs: map[string][]clReg{}, last: -1}
		c.logs[origin] = l
	}
	return l
}

// clRecord is what one replayed batch of a log adds.
type clRecord struct {
	commits []clRow
	regs    []clRegRow
	snaps   []clSnap
}

type clRow struct {
	issuer string
	clCommit
}

type clRegRow struct {
	issuer string
	clReg
}

// entry records entry idx of the batch if the cross-log check needs it;
// st is the replay's policy state with the entry applied.
func (r *clRecord) entry(idx int64, e *schema.Entry, st *policy.State) {
	if e == nil {
		return
	}
	switch e.Kind {
	case schema.KindRegistration:
		if st == nil {
			return
		}
		if is, ok := st.Issuer(e.Issuer); ok {
			r.regs = append(r.regs, clRegRow{issuer: e.Issuer, clReg: clReg{idx: idx, expires: is.Expires}})
		}
	case schema.KindKeyCommitment:
		v, err := memberValue(e.Issuer, e)
		if err != nil {
			return // the replay reports it
		}
		r.commits = append(r.commits, clRow{issuer: e.Issuer, clCommit: clCommit{idx: idx, time: e.Time, value: sha256.Sum256(v)}})
	case schema.KindSnapshot:
		r.snaps = append(r.snaps, clSnap{idx: idx, time: e.Time})
	}
}

// add adds what r recorded for log origin to the in-memory state (the
// follower stores it with its next save) and looks for findings among the
// issuers it touched. Entries already known (replayed again after a failed
// round) are skipped.
func (c *crossLog) add(origin string, r *clRecord) {
	if len(r.commits) == 0 && len(r.regs) == 0 && len(r.snaps) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.log(origin)
	touched := map[string]bool{}
	newSnap := false
	for _, s := range r.snaps {
		if s.idx > l.last {
			l.snaps = append(l.snaps, s)
			newSnap = true
		}
	}
	for _, cm := range r.commits {
		if cm.idx > l.last {
			l.commits[cm.issuer] = append(l.commits[cm.issuer], cm.clCommit)
			touched[cm.issuer] = true
		}
	}
	for _, rg := range r.regs {
		if rg.idx > l.last {
			l.regs[rg.issuer] = append(l.regs[rg.issuer], rg.clReg)
			touched[rg.issuer] = true
		}
	}
	for _, s := range r.snaps {
		l.last = max(l.last, s.idx)
	}
	for _, cm := range r.commits {
		l.last = max(l.last, cm.idx)
	}
	for _, rg := range r.regs {
		l.last = max(l.last, rg.idx)
	}
	if newSnap {
		// A snapshot extends the proven period of every issuer's
		// commitment in force in this log.
		for issuer := range l.commits {
			touched[issuer] = true
		}
	}
	for issuer := range touched {
		c.findLocked(issuer, origin)
	}
}

// merge appends o to r.
func (r *clRecord) merge(o *clRecord) {
	r.commits = append(r.commits, o.commits...)
	r.regs = append(r.regs, o.regs...)
	r.snaps = append(r.snaps, o.snaps...)
}

// findLocked adds to c.pending the findings for issuer between log origin
// and every other log that holds it. c.mu is held.
func (c *crossLog) findLocked(issuer, origin string) {
	a := c.logs[origin]
	for other, b := range c.logs {
		if other == origin || len(b.commits[issuer]) == 0 {
			continue
		}
		x, y, ox, oy := a, b, origin, other
		if oy < ox {
			x, y, ox, oy = b, a, other, origin
		}
		cx, cy := x.commits[issuer], y.commits[issuer]
		for i := range cx {
			sx, ok := x.provenEnd(issuer, i)
			if !ok {
				continue
			}
			for j := range cy {
				if cx[i].value == cy[j].value {
					continue
				}
				sy, ok := y.provenEnd(issuer, j)
				if !ok {
					continue
				}
				start, end := max(cx[i].time, cy[j].time), min(sx.time, sy.time)
				if end-start <= c.grace.Milliseconds() {
					continue
				}
				fd := clFinding{issuer: issuer, logs: [2]string{ox, oy}, commit: [2]int64{cx[i].idx, cy[j].idx},
					snap: [2]int64{sx.idx, sy.idx}, start: start, end: end}
				id := (&CrossLogEvidence{Issuer: issuer, Logs: [2]CrossLogSide{{Origin: ox, CommitmentIndex: cx[i].idx}, {Origin: oy, CommitmentIndex: cy[j].idx}}}).ID()
				if c.done[id] {
					continue
				}
				if p, ok := c.pending[id]; !ok || p.end < end {
					c.pending[id] = fd
				}
			}
		}
	}
}

// provenEnd returns the latest snapshot of l after issuer's commitment i
// and before its next one that holds the issuer: one taken while its
// registration was in force (a snapshot leaves out an issuer whose
// registration lapsed).
func (l *clLog) provenEnd(issuer string, i int) (clSnap, bool) {
	cs := l.commits[issuer]
	lo := cs[i].idx
	k := len(l.snaps)
	if i+1 < len(cs) {
		hi := cs[i+1].idx
		k = sort.Search(len(l.snaps), func(k int) bool { return l.snaps[k].idx >= hi })
	}
	// Walk back through the registrations in force over the snapshots
	// (few), searching each one's stretch of snapshots by time.
	regs := l.regs[issuer]
	r := sort.Search(len(regs), func(r int) bool { return regs[r].idx >= lo }) - 1
	for k > 0 && l.snaps[k-1].idx > lo {
		// The registration in force at snapshot k-1 and the snapshots it
		// covers: indices in (from, snaps[k-1].idx].
		for r+1 < len(regs) && regs[r+1].idx < l.snaps[k-1].idx {
			r++
		}
		for r >= 0 && regs[r].idx > l.snaps[k-1].idx {
			r--
		}
		// Without a recorded registration (history replayed before the
		// check existed), the snapshot is taken to hold the issuer; the
		// evidence checks it.
		from, expires := lo, int64(math.MaxInt64)
		if r >= 0 {
			from, expires = max(lo, regs[r].idx), regs[r].expires
		}
		first := sort.Search(k, func(j int) bool { return l.snaps[j].idx > from })
		// Snapshot times do not go backwards: those before expires are a
		// prefix of the stretch [first, k).
		j := first + sort.Search(k-first, func(j int) bool { return l.snaps[first+j].time >= expires })
		if j > first {
			return l.snaps[j-1], true
		}
		k = first
		r--
	}
	return clSnap{}, false
}

// keepOnly forgets the logs not in followed.
func (c *crossLog) keepOnly(followed map[string]*follower) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for o := range c.logs {
		if followed[o] == nil {
			delete(c.logs, o)
		}
	}
}

// findAll looks for findings among every issuer known in two or more
// logs (after loading the state at startup).
func (c *crossLog) findAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]int{}
	for _, l := range c.logs {
		for issuer := range l.commits {
			seen[issuer]++
		}
	}
	for issuer, n := range seen {
		if n < 2 {
			continue
		}
		for origin, l := range c.logs {
			if len(l.commits[issuer]) > 0 {
				c.findLocked(issuer, origin)
			}
		}
	}
}

// processCrossLog turns pending findings into stored evidence and alerts.
// The snapshots' key sets are rebuilt in one pass over each log involved,
// however many findings need them.
func (m *Monitor) processCrossLog(ctx context.Context) error {
	c := m.cross
	c.procMu.Lock()
	defer c.procMu.Unlock()
	c.mu.Lock()
	todo := map[string]clFinding{}
	for id, fd := range c.pending {
		todo[id] = fd
	}
	c.mu.Unlock()
	need := map[string]map[int64][]byte{} // log -> snapshot index -> key set
	for id, fd := range todo {
		if _, err := m.store.evidence(ctx, id); err == nil {
			c.settle(id)
			delete(todo, id)
			continue
		} else if !errors.Is(err, errNotFound) {
			return err
		}
		for i, origin := range fd.logs {
			if need[origin] == nil {
				need[origin] = map[int64][]byte{}
			}
			need[origin][fd.snap[i]] = nil
		}
	}
	for origin, want := range need {
		f := m.byOrigin[origin]
		if f == nil {
			continue
		}
		if err := f.keySetsAt(ctx, want); err != nil {
			return fmt.Errorf("couldn't rebuild the key sets of log %s for cross-log evidence: %w", origin, err)
		}
	}
	for id, fd := range todo {
		ev, err := m.crossLogEvidence(ctx, fd, need)
		if err != nil {
			var fe *fetchError
			if errors.As(err, &fe) || ctx.Err() != nil {
				return err // retried on the next round
			}
			// Not something a retry mends (say, the issuer's registration
			// had lapsed in that log, so the snapshot leaves it out): the
			// finding is dropped, and kept dropped across restarts.
			m.log.Error("couldn't build cross-log evidence; the finding is dropped", "issuer", fd.issuer,
				"logs", fd.logs[0]+" "+fd.logs[1], "entries", fmt.Sprintf("%d %d", fd.commit[0], fd.commit[1]), "err", err)
			if err := m.store.dropCrossLog(ctx, id, err.Error()); err != nil {
				return err
			}
			c.settle(id)
			continue
		}
		if err := m.recordCrossLog(ctx, ev, ""); err != nil {
			return err
		}
		c.settle(id)
	}
	return nil
}

func (c *crossLog) settle(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.done[id] = true
	c.mu.Unlock()
}

// recordCrossLog stores cross-log evidence and raises its alert; source
// is where the evidence came from ("peer URL"), empty when the monitor
// found it itself. The alert's key is the evidence id, so evidence found
// here and by peers is raised once.
func (m *Monitor) recordCrossLog(ctx context.Context, ev *CrossLogEvidence, source string) error {
	id := ev.ID()
	from, logSource := "", "this monitor"
	if source != "" {
		from, logSource = " (evidence from "+source+")", source
	}
	a := Alert{Time: m.now().UTC(), Log: ev.Logs[0].Origin, Kind: KindCrossLog, Rule: RuleCrossLog, Issuer: ev.Issuer, Evidence: id,
		Message: fmt.Sprintf("cross-log%s: %s; evidence %s", from, ev.Reason, id)}
	isNew, err := m.store.addEvidence(ctx, id, ev.Logs[0].Origin, ev, m.now(), a)
	if err != nil {
		return err
	}
	if isNew {
		m.log.Error("issuer committed different keys to different logs", "issuer", ev.Issuer, "logs", ev.Logs[0].Origin+" "+ev.Logs[1].Origin, "evidence", id, "source", logSource)
	}
	return m.deliver(ctx)
}

// skipPeer records that evidence id from peer was refused or is of no
// log followed, so that this process does not fetch it from that peer
// again (another peer's copy is still fetched; a restart tries again).
func (c *crossLog) skipPeer(peer, id string) {
	c.mu.Lock()
	c.peerSkip[peer+" "+id] = true
	c.mu.Unlock()
}

func (c *crossLog) peerSkipped(peer, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerSkip[peer+" "+id]
}

// crossLogEvidence builds the evidence of fd with the key sets in
// keySets (log -> snapshot index -> key set).
func (m *Monitor) crossLogEvidence(ctx context.Context, fd clFinding, keySets map[string]map[int64][]byte) (*CrossLogEvidence, error) {
	ev := &CrossLogEvidence{Type: CrossLogEvidenceType, Issuer: fd.issuer, Grace: m.cross.grace.String()}
	var facts [2]crossLogSideFacts
	for i := range 2 {
		f := m.byOrigin[fd.logs[i]]
		if f == nil {
			return nil, fmt.Errorf("not following log %s", fd.logs[i])
		}
		s, fc, err := f.crossLogSide(ctx, fd.issuer, fd.commit[i], fd.snap[i], keySets[f.origin][fd.snap[i]])
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", f.origin, err)
		}
		ev.Logs[i], facts[i] = *s, fc
	}
	ev.Reason = crossLogReason(ev, facts, m.cross.grace)
	return ev, nil
}

// crossLogSide builds this log's side of cross-log evidence for issuer's
// commitment entry ci, proven in force at snapshot si whose key set is ks.
func (f *follower) crossLogSide(ctx context.Context, issuer string, ci, si int64, ks []byte) (*CrossLogSide, crossLogSideFacts, error) {
	var facts crossLogSideFacts
	anchor := f.getAnchor()
	if anchor == nil || anchor.Size <= si {
		return nil, facts, fmt.Errorf("snapshot %d is not in the monitor's checkpoint", si)
	}
	note, err := f.evidenceNote(anchor)
	if err != nil {
		return nil, facts, err
	}
	s := &CrossLogSide{Origin: f.origin, VKey: f.vkey, Checkpoint: string(note), CommitmentIndex: ci, SnapshotIndex: si}
	thr := tlog.TileHashReader(anchor.tree(), &tileReader{ctx: ctx, c: f.client})
	for _, p := range []struct {
		idx   int64
		entry *[]byte
		proof *[][]byte
	}{{ci, &s.Commitment, &s.CommitmentProof}, {si, &s.Snapshot, &s.SnapshotProof}} {
		n := p.idx / tileWidth
		es, err := f.client.bundle(ctx, n, int(min(tileWidth, anchor.Size-n*tileWidth)))
		if err != nil {
			return nil, facts, &fetchError{err}
		}
		*p.entry = es[p.idx%tileWidth]
		rp, err := tlog.ProveRecord(anchor.Size, p.idx, thr)
		if err != nil {
			return nil, facts, &fetchError{fmt.Errorf("couldn't prove the inclusion of entry %d: %w", p.idx, err)}
		}
		if tlog.CheckRecord(rp, anchor.Size, anchor.Root, p.idx, tlog.RecordHash(*p.entry)) != nil {
			return nil, facts, fmt.Errorf("entry %d served by the log is not the one its checkpoint holds", p.idx)
		}
		for _, h := range rp {
			*p.proof = append(*p.proof, append([]byte(nil), h[:]...))
		}
	}
	ent, err := schema.ParseEntry(s.Commitment)
	if err != nil {
		return nil, facts, err
	}
	if facts.value, err = memberValue(issuer, ent); err != nil {
		return nil, facts, err
	}
	snap, err := verify.ParseSnapshotEntry(s.Snapshot)
	if err != nil {
		return nil, facts, err
	}
	if s.KeySet = ks; ks == nil {
		return nil, facts, fmt.Errorf("no key set rebuilt for snapshot %d", si)
	}
	if ok, _ := snap.CommitsTo(s.KeySet); !ok {
		return nil, facts, fmt.Errorf("the key set rebuilt for snapshot %d is not the one it commits to (see the snapshot alert)", si)
	}
	ksp, err := schema.ParseKeySet(s.KeySet)
	if err != nil {
		return nil, facts, err
	}
	if held, ok := keySetMember(issuer, ksp); !ok || !bytes.Equal(held, facts.value) {
		return nil, facts, fmt.Errorf("the key set of snapshot %d does not hold commitment %d for %s", si, ci, issuer)
	}
	facts.commitTime, facts.snapTime = time.UnixMilli(ent.Time), snap.Time
	return s, facts, nil
}

// evidenceNote returns the anchor's note with only the log's signature
// and, with a witness policy, its witnesses' valid cosignatures (other
// signatures cannot be checked by whoever checks the evidence).
func (f *follower) evidenceNote(cp *Checkpoint) ([]byte, error) {
	if f.tv == nil {
		return cp.Note, nil
	}
	n, err := c2sp.SplitNote(cp.Note)
	if err != nil {
		return nil, err
	}
	lk, err := quorum.ParseLogVKey(f.vkey)
	if err != nil {
		return nil, err
	}
	if _, err := f.tv.OpenCheckpoint(cp.Note); err != nil {
		f.m.log.Warn("checkpoint cosignatures do not verify; cross-log evidence carries only the log's signature", "log", f.origin, "err", err)
		keep := n.Sigs[:0]
		for _, s := range n.Sigs {
			if s.Name == lk.KeyName && s.Hash == lk.KeyID {
				keep = append(keep, s)
			}
		}
		n.Sigs = keep
		return n.Marshal(), nil
	}
	keep := n.Sigs[:0]
	for _, s := range n.Sigs {
		ok := s.Name == lk.KeyName && s.Hash == lk.KeyID
		for _, w := range f.m.cfg.WitnessPolicy.Witnesses() {
			ok = ok || s.Name == w.KeyName && s.Hash == w.KeyID
		}
		if ok {
			keep = append(keep, s)
		}
	}
	n.Sigs = keep
	return n.Marshal(), nil
}

// errKeySetsDone stops the stream of keySetsAt.
var errKeySetsDone = errors.New("key sets rebuilt")

// keySetsAt rebuilds the key set of every snapshot index in want (filling
// in its value) by applying the log's entries, fetched and proven against
// the anchor, to a fresh policy state, as the replay does: the log serves
// only its latest key set. One pass, up to the last snapshot wanted.
func (f *follower) keySetsAt(ctx context.Context, want map[int64][]byte) error {
	anchor := f.getAnchor()
	last := int64(-1)
	for si := range want {
		last = max(last, si)
	}
	if anchor == nil || anchor.Size <= last {
		return fmt.Errorf("snapshot %d is not in the monitor's checkpoint", last)
	}
	r := &replayer{origin: f.origin, st: policy.NewLogState(f.origin), now: f.m.now}
	err := f.stream(ctx, anchor.tree(), 0, nil, func(batch []*bundleData) error {
		for _, bd := range batch {
			for j, raw := range bd.entries {
				idx := bd.n*tileWidth + int64(j)
				e, err := schema.ParseEntry(raw)
				if _, ok := want[idx]; ok && err == nil && e.Kind == schema.KindSnapshot {
					// The key set a snapshot commits to is that of the
					// entries before it, at its time.
					ks, err := r.st.KeySet(e.Time).Marshal()
					if err != nil {
						return err
					}
					want[idx] = ks
				}
				if idx == last {
					return errKeySetsDone
				}
				if err != nil || r.st.Apply(e, uint64(idx), bd.leaves[j]) != nil {
					if err := r.skip(idx); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if errors.Is(err, errKeySetsDone) {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("the log's entries end before snapshot %d", last)
	}
	return err
}

// Store.

// insertCrossLog records, in tx, the commitments and snapshots of log
// origin in r (a replay repeated after a crash records them again: those
// already there are left as they are).
func insertCrossLog(ctx context.Context, tx *sql.Tx, origin string, r *clRecord) error {
	if r == nil {
		return nil
	}
	for _, c := range r.commits {
		if _, err := tx.ExecContext(ctx, `INSERT INTO crosslog_commitments (log, idx, issuer, time, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			origin, c.idx, c.issuer, c.time, c.value[:]); err != nil {
			return fmt.Errorf("couldn't record commitment %d of log %s: %w", c.idx, origin, err)
		}
	}
	for _, rg := range r.regs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO crosslog_registrations (log, idx, issuer, expires) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			origin, rg.idx, rg.issuer, rg.expires); err != nil {
			return fmt.Errorf("couldn't record registration %d of log %s: %w", rg.idx, origin, err)
		}
	}
	for _, sn := range r.snaps {
		if _, err := tx.ExecContext(ctx, `INSERT INTO crosslog_snapshots (log, idx, time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			origin, sn.idx, sn.time); err != nil {
			return fmt.Errorf("couldn't record snapshot %d of log %s: %w", sn.idx, origin, err)
		}
	}
	return nil
}

// dropCrossLog records that the finding with evidence id id could not be
// made into evidence, so that later starts do not try again.
func (s *store) dropCrossLog(ctx context.Context, id, reason string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO crosslog_dropped (id, reason, time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		id, reason, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("couldn't record the dropped cross-log finding %s: %w", id, err)
	}
	return nil
}

// loadCrossLog reads the recorded commitments and snapshots of every log,
// and the findings dropped.
func (s *store) loadCrossLog(ctx context.Context, c *crossLog) error {
	drows, err := s.db.QueryContext(ctx, `SELECT id FROM crosslog_dropped`)
	if err != nil {
		return fmt.Errorf("couldn't read dropped cross-log findings: %w", err)
	}
	for drows.Next() {
		var id string
		if err := drows.Scan(&id); err != nil {
			drows.Close()
			return err
		}
		c.done[id] = true
	}
	drows.Close()
	if err := drows.Err(); err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT log, idx, issuer, time, value FROM crosslog_commitments ORDER BY log, idx`)
	if err != nil {
		return fmt.Errorf("couldn't read recorded commitments: %w", err)
	}
	for rows.Next() {
		var origin, issuer string
		var cm clCommit
		var v []byte
		if err := rows.Scan(&origin, &cm.idx, &issuer, &cm.time, &v); err != nil {
			rows.Close()
			return err
		}
		copy(cm.value[:], v)
		l := c.log(origin)
		l.commits[issuer] = append(l.commits[issuer], cm)
		l.last = max(l.last, cm.idx)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT log, idx, issuer, expires FROM crosslog_registrations ORDER BY log, idx`)
	if err != nil {
		return fmt.Errorf("couldn't read recorded registrations: %w", err)
	}
	for rows.Next() {
		var origin, issuer string
		var rg clReg
		if err := rows.Scan(&origin, &rg.idx, &issuer, &rg.expires); err != nil {
			rows.Close()
			return err
		}
		l := c.log(origin)
		l.regs[issuer] = append(l.regs[issuer], rg)
		l.last = max(l.last, rg.idx)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT log, idx, time FROM crosslog_snapshots ORDER BY log, idx`)
	if err != nil {
		return fmt.Errorf("couldn't read recorded snapshots: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var origin string
		var sn clSnap
		if err := rows.Scan(&origin, &sn.idx, &sn.time); err != nil {
			return err
		}
		l := c.log(origin)
		l.snaps = append(l.snaps, sn)
		l.last = max(l.last, sn.idx)
	}
	return rows.Err()
}
