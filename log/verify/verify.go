package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/keysetroot"
	"github.com/keycommit/keycommit/witness/quorum"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// maxTimestamp bounds cosignature timestamps converted to time.Time; later
// ones never count as fresh.
const maxTimestamp = 1 << 40

// Defaults for Config.
const (
	DefaultMaxAge  = 24 * time.Hour
	DefaultMaxSkew = 5 * time.Minute
)

// Config configures a Verifier.
type Config struct {
	// LogKey is the log's C2SP signed-note verifier key (vkey), Ed25519
	// (type 0x01).
	LogKey string
	// Origin is the checkpoint origin to require; "" means the log key's
	// name (the usual C2SP convention).
	Origin string
	// Policy is the witness policy (see package quorum); required. If it
	// lists logs, LogKey must be one of them.
	Policy *quorum.Policy
	// MaxAge is how old a cosignature may be and still count toward the
	// quorum; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// MaxSkew is how far in the future a cosignature's timestamp may be
	// and still count; 0 means DefaultMaxSkew.
	MaxSkew time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// ConsistencyProof, if not nil, is asked for a consistency proof when
	// a bundle must be checked against a previous one of a smaller size
	// and carries no proof itself. The proof it returns is verified.
	ConsistencyProof func(oldSize, newSize uint64) ([][]byte, error)
}

// Verifier verifies keys bundles and tlog-proofs for one log under one
// witness policy. It is safe for concurrent use.
type Verifier struct {
	cfg       Config
	origin    string
	logName   string
	logKeyID  uint32
	logKey    c2sp.Verifier
	witnesses []quorum.Witness
}

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	if cfg.Policy == nil {
		return nil, errors.New("verifier needs a witness policy")
	}
	l, err := quorum.ParseLogVKey(cfg.LogKey)
	if err != nil {
		return nil, fmt.Errorf("bad log verifier key: %w", err)
	}
	if logs := cfg.Policy.Logs(); len(logs) > 0 {
		found := false
		for _, pl := range logs {
			if pl.KeyName == l.KeyName && pl.KeyID == l.KeyID && pl.PublicKey.Equal(l.PublicKey) {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("log key %s is not one of the %d logs the witness policy lists", cfg.LogKey, len(logs))
		}
	}
	if cfg.MaxAge < 0 || cfg.MaxSkew < 0 {
		return nil, errors.New("max age and max skew must not be negative")
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg, origin: cfg.Origin, logName: l.KeyName, logKeyID: l.KeyID,
		logKey: l.Verifier, witnesses: cfg.Policy.Witnesses()}
	if v.origin == "" {
		v.origin = l.KeyName
	}
	return v, nil
}

// Cosignature is a valid cosignature on a verified checkpoint.
type Cosignature struct {
	// Witness is the witness's name in the policy.
	Witness string
	// Time is the cosignature's timestamp.
	Time time.Time
	// Fresh reports whether it counted toward the quorum: not older than
	// the maximum age, not in the future beyond the skew (always true for
	// VerifyStored).
	Fresh bool
}

// VerifiedCheckpoint is a checkpoint whose log signature and witness quorum
// verified.
type VerifiedCheckpoint struct {
	Checkpoint
	// Note is the signed note, verbatim.
	Note []byte
	// Cosignatures lists the valid cosignatures from policy witnesses, in
	// policy order.
	Cosignatures []Cosignature
}

// Verified is a bundle that passed every check. Its methods are safe for
// concurrent use; its fields must not be changed.
//
// The bundle's bytes are assembled only when asked for (Raw, Bundle,
// Stored): a bundle Verify read is the bytes it was given, but one
// VerifyDelta built holds the key set as its typed records (KeySet), which
// it shares with the bundle held, and writes the key set's encoding when
// first asked, so that a delta's cost follows what changed.
type Verified struct {
	// Checkpoint is the verified checkpoint.
	Checkpoint *VerifiedCheckpoint
	// SnapshotIndex is the index of the snapshot entry in the log.
	SnapshotIndex uint64
	// SnapshotTime is the log's timestamp of the snapshot entry.
	SnapshotTime time.Time
	// SnapshotIssuers is the number of issuers the snapshot records.
	SnapshotIssuers int
	// Previous is the checkpoint size of the previous bundle it was
	// checked against, 0 if none.
	Previous uint64
	// Changes lists the issuers whose keys changed since the previous
	// bundle (nil without one).
	Changes []Change

	// parts is the bundle parsed, but for a bundle a delta built its
	// KeySet is nil (or, when the digest check had to read the bytes,
	// the encoding): the key set is enc.
	parts *Bundle
	// enc is the key set's encoding, shared by the bundles that hold the
	// same key set.
	enc *keySetEnc
	// rawOnce assembles raw and bundle for a bundle a delta built; for
	// one Verify read they are set when it is made.
	rawOnce sync.Once
	raw     []byte
	bundle  *Bundle

	keySetOnce sync.Once
	keySet     *KeySet
	keySetErr  error
	// members are the key set's members, for the multi-log merge: set by
	// readKeySet when asked for (VerifyLogs).
	members *keySetMembers
	// snap is the snapshot entry, parsed (a delta without a new entry
	// keeps it).
	snap *snapshotEntry
	// form ("root" or "digest") and commitment are the snapshot's key
	// set commitment.
	form       string
	commitment []byte
	// tree is the key set's Merkle tree when the snapshot commits to
	// its root (nil for a digest-form snapshot), kept so that a delta
	// hashes only the members it changes.
	tree *keysetroot.Tree
}

// keySetEnc is a verified key set's canonical encoding: the key set line
// of a bundle Verify read, or, for a key set a delta built, written from
// its typed records (KeySet.Marshal) when first needed. It is immutable
// once written and safe for concurrent use.
type keySetEnc struct {
	// size is the encoding's length.
	size int
	// from, if not nil, is the key set to write the encoding from; b is
	// then set by once.
	from *KeySet
	once sync.Once
	b    []byte
}

// bytes returns the encoding, writing it the first time for a key set a
// delta built.
func (e *keySetEnc) bytes() []byte {
	if e.from == nil {
		return e.b
	}
	e.once.Do(func() {
		keySetWrites.Add(1)
		e.b = e.from.appendEncoding(make([]byte, 0, e.size))
	})
	return e.b
}

// appendTo appends the encoding to dst (e.size bytes).
func (e *keySetEnc) appendTo(dst []byte) []byte {
	if e.from == nil {
		return append(dst, e.b...)
	}
	return e.from.appendEncoding(dst)
}

// Raw returns the bundle, byte for byte (save Stored() to check the next
// one). For a bundle Verify read it is the slice Verify was given; for one
// VerifyDelta built it is assembled on the first call (one copy of the
// key set), and the same slice is returned after. It must not be changed.
func (v *Verified) Raw() []byte {
	v.rawOnce.Do(v.assemble)
	return v.raw
}

// Bundle returns the bundle parsed; its parts share Raw's memory and must
// not be changed. For a bundle VerifyDelta built, the first call assembles
// it (Raw).
func (v *Verified) Bundle() *Bundle {
	v.rawOnce.Do(v.assemble)
	return v.bundle
}

// assemble builds raw and bundle from the parts and the key set, for a
// bundle a delta built.
func (v *Verified) assemble() {
	if v.raw != nil {
		return
	}
	raw, start := v.parts.encode(v.enc.size, v.enc.appendTo)
	b := *v.parts
	b.KeySet = raw[start : start+v.enc.size : start+v.enc.size]
	v.raw, v.bundle = raw, &b
}

// Commitment returns the key set commitment of the bundle's snapshot: its
// key set root, or for a snapshot of a log made before the root its key
// set digest. It identifies the bundle a delta applies to (the base line,
// and ?base= as hex: docs/bundle.md).
func (v *Verified) Commitment() []byte { return v.commitment }

// Stored returns the bundle to save for the next Verify (load it with
// VerifyStored): the verified bundle without its consistency proof, which
// served its purpose and could not be checked again without the bundle
// before it. Without a consistency proof it is Raw(); otherwise each call
// writes a new encoding (for a bundle a delta built, one copy of the key
// set, without assembling Raw).
func (v *Verified) Stored() []byte {
	if v.parts.Consistency == nil {
		return v.Raw()
	}
	b := *v.parts
	b.Consistency = nil
	out, _ := b.encode(v.enc.size, v.enc.appendTo)
	return out
}

// KeySet parses the verified key set bytes (Bundle().KeySet, which Verify
// authenticated: they are the key set the snapshot commits to) and runs
// the keyset check: canonical encoding, and as many issuers as the
// snapshot records. It is the only way to the typed keys, so keys are
// never used unchecked. Verify leaves the parse to this method, so that a
// user agent pays for it once, when it reads the keys; Verify with a
// previous bundle runs it on both. For a bundle VerifyDelta built, the
// typed key set is the held one with the delta's changes applied (the
// unchanged issuers shared), not a parse. Failures are *Error with
// CheckKeySet.
func (v *Verified) KeySet() (*KeySet, error) {
	v.keySetOnce.Do(func() { v.readKeySet(nil) })
	return v.keySet, v.keySetErr
}

// readKeySet parses the key set and runs the keyset check (for KeySet,
// once), recording its members in m if m is not nil.
func (v *Verified) readKeySet(m *keySetMembers) {
	ks, err := parseKeySetSized(v.enc.bytes(), m, v.SnapshotIssuers)
	if err != nil {
		v.keySetErr = failErr(CheckKeySet, err)
		return
	}
	v.useKeySet(ks, m)
}

// useKeySet makes ks (with its members m, if known) v's key set, if it has
// as many issuers as v's snapshot records.
func (v *Verified) useKeySet(ks *KeySet, m *keySetMembers) {
	// The log counts an issuer once per part (pst, privacy_pass).
	if n := len(ks.pst) + len(ks.pp); n != v.SnapshotIssuers {
		v.keySetErr = fail(CheckKeySet, "key set has %d issuer commitments (pst and privacy_pass), the snapshot says %d", n, v.SnapshotIssuers)
		return
	}
	v.keySet = ks
	if m != nil {
		v.members = m
	}
}

// Verify runs every check on a bundle. If prev is not nil (a bundle this
// user agent accepted before), the new bundle must also not roll back from
// it and must be consistent with it, and Changes reports the issuers whose
// keys changed. Every failure is an *Error naming its check.
func (v *Verifier) Verify(bundle []byte, prev *Verified) (*Verified, error) {
	return v.verify(bundle, prev, true)
}

// VerifyStored re-verifies a bundle this user agent saved after it passed
// Verify: every check except freshness, which held when it was accepted.
// Use it to load the previous bundle to pass to Verify.
func (v *Verifier) VerifyStored(bundle []byte) (*Verified, error) {
	return v.verify(bundle, nil, false)
}

func (v *Verifier) verify(raw []byte, prev *Verified, fresh bool) (*Verified, error) {
	b, err := ParseBundle(raw)
	if err != nil {
		return nil, err
	}
	return v.verifyParsed(raw, b, prev, fresh, nil)
}

// applied is a key set a delta produced from the held one, read without
// parsing or writing it whole, and the changes the delta made.
type applied struct {
	keySet  *KeySet
	enc     *keySetEnc
	changes []Change
	// snap, if not nil, is the new bundle's snapshot entry, parsed.
	snap *snapshotEntry
	// form and commitment, if commitment is not nil, are the key set's
	// commitment ("root" or "digest"), known without hashing the whole
	// key set: the held bundle's (verified) one when the delta leaves
	// the key set as it is, or the root of tree.
	form       string
	commitment []byte
	// tree is the key set's tree when form is "root".
	tree *keysetroot.Tree
}

// verifyParsed verifies the parsed bundle b (raw is its encoding). With
// pre (a delta's result; raw is nil, b.KeySet may be nil, and is not read
// unless the digest check must hash the key set), the key set's typed form
// and the changes since prev are taken from it instead of parsing the key
// set and comparing it with prev's.
func (v *Verifier) verifyParsed(raw []byte, b *Bundle, prev *Verified, fresh bool, pre *applied) (*Verified, error) {
	// The checks that only hash run first, so that a corrupt bundle costs
	// no signature verification; the signatures then bind everything.
	n, cp0, err := v.parseCheckpoint(b.Checkpoint)
	if err != nil {
		return nil, err
	}
	var snap *snapshotEntry
	if pre != nil {
		snap = pre.snap
	}
	if snap == nil {
		if snap, err = parseSnapshotEntry(b.Entry); err != nil {
			return nil, failErr(CheckSnapshot, err)
		}
	}
	if err := verifyInclusion(b.Entry, b.Index, b.Inclusion, cp0); err != nil {
		// A checkpoint whose size or root was changed fails here first:
		// name the check it breaks, the log's signature, if it does.
		if _, serr := v.verifySignatures(b.Checkpoint, n, cp0, fresh); serr != nil {
			return nil, serr
		}
		return nil, err
	}
	tree, err := checkCommitment(b, snap, pre)
	if err != nil {
		return nil, err
	}
	cp, err := v.verifySignatures(b.Checkpoint, n, cp0, fresh)
	if err != nil {
		return nil, err
	}
	if err := CheckEntryTime(b.Index, time.UnixMilli(snap.Time), cp.Size, cp.CosignatureTimes(), v.cfg.Policy); err != nil {
		return nil, err
	}
	form, commitment := snap.Body.commitment()
	out := &Verified{Checkpoint: cp, SnapshotIndex: b.Index, SnapshotTime: time.UnixMilli(snap.Time), SnapshotIssuers: snap.Body.Issuers,
		parts: b, snap: snap, form: form, commitment: commitment, tree: tree}
	if pre == nil {
		out.raw, out.bundle, out.enc = raw, b, &keySetEnc{size: len(b.KeySet), b: b.KeySet}
	} else {
		out.enc = pre.enc
		out.keySetOnce.Do(func() { out.useKeySet(pre.keySet, nil) })
	}
	if err := v.checkAgainstPrevious(out, prev, pre); err != nil {
		return nil, err
	}
	return out, nil
}

// checkCommitment runs the digest check: the key set b carries is the one
// the snapshot commits to, by its root (returning the key set's tree) or,
// for a digest-form snapshot, its SHA-256 digest. What pre knows of the
// key set (a delta's result) is used instead of hashing it whole.
func checkCommitment(b *Bundle, snap *snapshotEntry, pre *applied) (*keysetroot.Tree, error) {
	form, want := snap.Body.commitment()
	var got []byte
	var tree *keysetroot.Tree
	switch {
	case pre != nil && pre.commitment != nil && pre.form == form:
		got, tree = pre.commitment, pre.tree
	case form == "root":
		t, err := keysetroot.FromKeySetSized(b.KeySet, snap.Body.Issuers)
		if err != nil {
			return nil, fail(CheckDigest, "couldn't compute the key set root the snapshot at index %d commits to: %v", b.Index, err)
		}
		r := t.Root()
		got, tree = r[:], t
	default:
		d := sha256.Sum256(b.KeySet)
		got = d[:]
	}
	if !bytes.Equal(got, want) {
		what := "key set hashes to %s (hex SHA-256)"
		if form == "root" {
			what = "key set root is %s (hex; docs/entries.md)"
		}
		return nil, fail(CheckDigest, what+", the snapshot at index %d commits to %s", hex.EncodeToString(got), b.Index, hex.EncodeToString(want))
	}
	return tree, nil
}

// checkAgainstPrevious enforces no rollback and consistency with prev, and
// fills in Changes.
func (v *Verifier) checkAgainstPrevious(nv *Verified, prev *Verified, pre *applied) error {
	b, cp := nv.parts, nv.Checkpoint
	if prev == nil {
		if b.Consistency != nil {
			return fail(CheckConsistency, "bundle carries a consistency proof from size %d but there is no previous checkpoint to check it against", b.Consistency.OldSize)
		}
		return nil
	}
	old := prev.Checkpoint
	if old.Origin != cp.Origin {
		return fail(CheckConsistency, "previous checkpoint is for origin %q, this one for %q", old.Origin, cp.Origin)
	}
	if cp.Size < old.Size {
		return fail(CheckRollback, "checkpoint size %d is smaller than the previous checkpoint's %d", cp.Size, old.Size)
	}
	if c := b.Consistency; c != nil && (c.OldSize != old.Size || c.OldSize >= cp.Size) {
		return fail(CheckConsistency, "bundle carries a consistency proof from size %d to %d, but the previous checkpoint has size %d", c.OldSize, cp.Size, old.Size)
	}
	if cp.Size == old.Size {
		if cp.Hash != old.Hash {
			return fail(CheckConsistency, "checkpoint of size %d has root %s, the previous one of the same size had %s: the log forked", cp.Size, b64(cp.Hash[:]), b64(old.Hash[:]))
		}
	} else {
		var hashes [][]byte
		switch {
		case b.Consistency != nil:
			hashes = b.Consistency.Hashes
		case v.cfg.ConsistencyProof != nil:
			h, err := v.cfg.ConsistencyProof(old.Size, cp.Size)
			if err != nil {
				return fail(CheckConsistency, "couldn't get a consistency proof from size %d to %d: %v", old.Size, cp.Size, err)
			}
			hashes = h
		default:
			return fail(CheckConsistency, "no consistency proof from size %d to %d: fetch the bundle with ?old=%d or supply a proof", old.Size, cp.Size, old.Size)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, hashes, old.Hash[:], cp.Hash[:]); err != nil {
			return fail(CheckConsistency, "checkpoint of size %d (root %s) is not consistent with the previous one of size %d (root %s): %v", cp.Size, b64(cp.Hash[:]), old.Size, b64(old.Hash[:]), ProofError(err))
		}
	}
	pb := prev.parts
	switch {
	case b.Index < pb.Index:
		return fail(CheckRollback, "snapshot at index %d is older than the previous bundle's snapshot at index %d", b.Index, pb.Index)
	case b.Index == pb.Index && !bytes.Equal(b.Entry, pb.Entry):
		return fail(CheckConsistency, "snapshot at index %d differs from the previous bundle's entry at the same index", b.Index)
	}
	oks, err := prev.KeySet()
	if err != nil {
		return fmt.Errorf("previous bundle: %w", err)
	}
	nks, err := nv.KeySet()
	if err != nil {
		return err
	}
	nv.Previous = old.Size
	if pre != nil {
		nv.Changes = pre.changes
	} else {
		nv.Changes = Diff(oks, nks)
	}
	if nv.Changes == nil {
		nv.Changes = []Change{}
	}
	return nil
}

// VerifyCheckpoint verifies a signed checkpoint note: format and origin,
// the log's signature, every cosignature from a policy witness, and the
// quorum of fresh cosignatures.
func (v *Verifier) VerifyCheckpoint(note []byte) (*VerifiedCheckpoint, error) {
	return v.verifyCheckpoint(note, true)
}

func (v *Verifier) verifyCheckpoint(note []byte, fresh bool) (*VerifiedCheckpoint, error) {
	n, cp, err := v.parseCheckpoint(note)
	if err != nil {
		return nil, err
	}
	return v.verifySignatures(note, n, cp, fresh)
}

// parseCheckpoint splits a signed checkpoint note and parses its body for
// the expected origin.
func (v *Verifier) parseCheckpoint(note []byte) (*c2sp.Note, *Checkpoint, error) {
	n, err := c2sp.SplitNote(note)
	if err != nil {
		return nil, nil, failErr(CheckCheckpoint, err)
	}
	cp, err := c2sp.ParseCheckpoint(n.Text)
	if err != nil {
		return nil, nil, failErr(CheckCheckpoint, err)
	}
	if cp.Origin != v.origin {
		return nil, nil, fail(CheckCheckpoint, "checkpoint origin is %q, want %q", cp.Origin, v.origin)
	}
	return n, &cp, nil
}

// OpenCheckpoint verifies a signed checkpoint note's format and origin,
// the log's signature and every cosignature from a policy witness, and
// returns it with those cosignatures, without requiring a quorum or fresh
// ones: for monitors, which weigh the cosignatures they collect
// themselves (see CheckEntryTime). Cosignature.Fresh says whether each
// would count toward a quorum now.
func (v *Verifier) OpenCheckpoint(note []byte) (*VerifiedCheckpoint, error) {
	n, cp, err := v.parseCheckpoint(note)
	if err != nil {
		return nil, err
	}
	out, _, _, _, err := v.cosignatures(note, n, cp, true)
	return out, err
}

// verifySignatures checks the log signature, the cosignatures from policy
// witnesses, and the quorum of fresh ones (of all valid ones if !fresh).
func (v *Verifier) verifySignatures(note []byte, n *c2sp.Note, cp *Checkpoint, fresh bool) (*VerifiedCheckpoint, error) {
	out, valid, counted, unknown, err := v.cosignatures(note, n, cp, fresh)
	if err != nil {
		return nil, err
	}
	if !fresh {
		counted = valid
	}
	now := v.cfg.Now()
	if v.cfg.Policy.Satisfied(counted) {
		return out, nil
	}
	if v.cfg.Policy.Satisfied(valid) {
		var stale []string
		for _, c := range out.Cosignatures {
			if !c.Fresh {
				stale = append(stale, fmt.Sprintf("%s at %s", c.Witness, c.Time.UTC().Format(time.RFC3339)))
			}
		}
		return nil, fail(CheckFreshness, "quorum %q is met only with cosignatures outside [now-%v, now+%v] (now %s): %s",
			v.cfg.Policy.Quorum(), v.cfg.MaxAge, v.cfg.MaxSkew, now.UTC().Format(time.RFC3339), strings.Join(stale, ", "))
	}
	names := make([]string, 0, len(counted))
	for n := range counted {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fail(CheckQuorum, "quorum %q not met: valid fresh cosignatures from %d policy witnesses %v; %d signatures from keys not in the policy",
		v.cfg.Policy.Quorum(), len(names), names, unknown)
}

// cosignatures checks the log signature and every cosignature from a
// policy witness. It returns the checkpoint with its valid cosignatures,
// the witnesses with a valid one, those whose one is fresh (with
// markFresh; otherwise none are marked), and the number of signatures
// from keys outside the policy.
func (v *Verifier) cosignatures(note []byte, n *c2sp.Note, cp *Checkpoint, markFresh bool) (out *VerifiedCheckpoint, valid, counted map[string]bool, unknown int, err error) {
	if _, err := n.Verify(v.logKey); err != nil {
		return nil, nil, nil, 0, failErr(CheckLogSignature, fmt.Errorf("log signature: %w", err))
	}
	now := v.cfg.Now()
	oldest, newest := now.Add(-v.cfg.MaxAge), now.Add(v.cfg.MaxSkew)
	valid, counted = map[string]bool{}, map[string]bool{}
	stamps := map[string]time.Time{}
	for _, s := range n.Sigs {
		if s.Name == v.logName && s.Hash == v.logKeyID {
			continue
		}
		known := false
		for _, w := range v.witnesses {
			if s.Name != w.KeyName || s.Hash != w.KeyID {
				continue
			}
			known = true
			ts, err := c2sp.CosignatureTimestamp(s.Sig)
			if err != nil || !w.Verifier.Verify(n.Text, s.Sig) {
				return nil, nil, nil, 0, fail(CheckCosignature, "cosignature from witness %q (%s) does not verify", w.Name, w.VKey)
			}
			t := time.Unix(int64(min(ts, maxTimestamp)), 0)
			valid[w.Name] = true
			stamps[w.Name] = t
			if markFresh && ts < maxTimestamp && !t.Before(oldest) && !t.After(newest) {
				counted[w.Name] = true
			}
		}
		if !known {
			unknown++
		}
	}
	out = &VerifiedCheckpoint{Checkpoint: *cp, Note: note}
	for _, w := range v.witnesses {
		if valid[w.Name] {
			out.Cosignatures = append(out.Cosignatures, Cosignature{Witness: w.Name, Time: stamps[w.Name], Fresh: counted[w.Name] || !markFresh})
		}
	}
	return out, valid, counted, unknown, nil
}

// verifyInclusion checks the RFC 6962 inclusion of leaf at index in cp.
func verifyInclusion(leaf []byte, index uint64, hashes [][]byte, cp *Checkpoint) error {
	if index >= cp.Size {
		return fail(CheckInclusion, "index %d is not in the checkpoint's tree of size %d", index, cp.Size)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, rfc6962.DefaultHasher.HashLeaf(leaf), hashes, cp.Hash[:]); err != nil {
		return fail(CheckInclusion, "entry at index %d is not in the checkpoint's tree of size %d: %v", index, cp.Size, ProofError(err))
	}
	return nil
}

// logEntry mirrors schema.Entry: member order and types must stay the same
// (a test checks).
type logEntry struct {
	V       int             `json:"v"`
	Kind    string          `json:"kind"`
	Time    int64           `json:"time"`
	Log     string          `json:"log,omitempty"`
	Issuer  string          `json:"issuer"`
	Prev    []byte          `json:"prev"`
	Body    json.RawMessage `json:"body"`
	Sig     []byte          `json:"sig"`
	Control *originControl  `json:"control,omitempty"`
}

// originControl mirrors schema.OriginControl.
type originControl struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Time   int64  `json:"time"`
}

// snapshotBody mirrors schema.Snapshot.
type snapshotBody struct {
	Issuers int    `json:"issuers"`
	Digest  []byte `json:"digest,omitempty"`
	Root    []byte `json:"root,omitempty"`
}

// commitment returns which commitment b carries ("root" or "digest") and
// its value.
func (b *snapshotBody) commitment() (form string, value []byte) {
	if b.Root != nil {
		return "root", b.Root
	}
	return "digest", b.Digest
}

type snapshotEntry struct {
	logEntry
	Body snapshotBody
}

// SnapshotEntry is a parsed snapshot entry.
type SnapshotEntry struct {
	// Time is the log's timestamp of the entry.
	Time time.Time
	// Issuers is the number of issuers in the key set.
	Issuers int
	// Root is the key set root (package log/keysetroot), what the log
	// writes; nil for a snapshot of a log made before it, which has
	// Digest instead.
	Root []byte
	// Digest is SHA-256 of the key set's canonical encoding, for a
	// snapshot of a log made before the key set root; nil otherwise.
	Digest []byte
}

// Commitment returns the snapshot's key set commitment: Root, or Digest
// for a digest-form snapshot.
func (s *SnapshotEntry) Commitment() []byte {
	if s.Root != nil {
		return s.Root
	}
	return s.Digest
}

// CommitsTo reports whether the snapshot commits to the key set whose
// canonical encoding is keySet (by its root, or its digest for a
// digest-form snapshot), and returns the key set's commitment in that
// form (nil if the key set does not split into members).
func (s *SnapshotEntry) CommitsTo(keySet []byte) (bool, []byte) {
	return keysetroot.CommitsTo(keySet, s.Root, s.Digest)
}

// ParseSnapshotEntry parses a snapshot entry (exact leaf bytes) with the
// rules of the snapshot check. Errors are *Error with CheckSnapshot.
func ParseSnapshotEntry(entry []byte) (*SnapshotEntry, error) {
	e, err := parseSnapshotEntry(entry)
	if err != nil {
		return nil, failErr(CheckSnapshot, err)
	}
	return &SnapshotEntry{Time: time.UnixMilli(e.Time), Issuers: e.Body.Issuers, Root: e.Body.Root, Digest: e.Body.Digest}, nil
}

// schemaVersion is the entry schema version the log writes;
// legacyVersion that of logs made before it (see docs/entries.md). This
// verifier reads both: what it checks is the same in each.
const (
	schemaVersion = 2
	legacyVersion = 1
)

// knownVersion reports whether v is an entry schema version this
// verifier reads.
func knownVersion(v int) bool { return v == schemaVersion || v == legacyVersion }

// parseSnapshotEntry parses a snapshot entry strictly: canonical JSON,
// schema version 2 (or 1), kind snapshot, written by the log (no log,
// issuer, prev, signature or control), exactly one of a 32-byte root and
// a 32-byte digest.
func parseSnapshotEntry(b []byte) (*snapshotEntry, error) {
	var e logEntry
	if err := strictJSON(b, &e); err != nil {
		return nil, fmt.Errorf("malformed entry: %w", err)
	}
	if !knownVersion(e.V) {
		return nil, fmt.Errorf("entry has schema version %d, want %d (or %d)", e.V, schemaVersion, legacyVersion)
	}
	if e.Kind != "snapshot" {
		return nil, fmt.Errorf("entry is a %q, not a snapshot", e.Kind)
	}
	if e.Log != "" || e.Issuer != "" || len(e.Prev) != 0 || len(e.Sig) != 0 || e.Control != nil {
		return nil, errors.New("snapshot entry has an issuer, prev or signature; snapshots are written by the log")
	}
	var body snapshotBody
	if err := strictJSON(e.Body, &body); err != nil {
		return nil, fmt.Errorf("malformed snapshot body: %w", err)
	}
	switch {
	case body.Root != nil && body.Digest != nil:
		return nil, errors.New("snapshot body has both a root and a digest; want exactly one")
	case body.Root == nil && body.Digest == nil:
		return nil, errors.New("snapshot body has neither a root nor a digest; want exactly one")
	}
	if form, v := body.commitment(); len(v) != sha256.Size || body.Issuers < 0 {
		return nil, fmt.Errorf("snapshot body has a %d-byte %s and %d issuers", len(v), form, body.Issuers)
	}
	return &snapshotEntry{logEntry: e, Body: body}, nil
}

// strictJSON decodes b into v refusing unknown members, and requires b to
// be v's canonical encoding (compact, declared member order, no HTML
// escaping), as package schema writes it.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	if !bytes.Equal(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), b) {
		return errors.New("not in canonical encoding")
	}
	return nil
}
