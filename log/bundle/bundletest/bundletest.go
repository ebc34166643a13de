// Package bundletest is an in-memory keycommit log for tests of bundles,
// issuer proofs and verifiers: it appends entries, keeps snapshots' key
// sets, signs checkpoints with a log key, collects cosignatures from test
// witnesses with chosen timestamps, and implements bundle.Source. Keys are
// derived from seeds, so its output is deterministic. Trees and proofs come
// from golang.org/x/mod/sumdb/tlog and signatures from sumdb/note, both
// independent of the code under test.
package bundletest

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/c2sp/mldsa"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Seed derives a 32-byte seed from a label.
func Seed(label string) []byte {
	s := sha256.Sum256([]byte("keycommit/bundletest/" + label))
	return s[:]
}

// Witness is a test witness with an Ed25519 cosignature/v1 key, or (made
// by NewMLDSAWitness) an ML-DSA-44 one.
type Witness struct {
	Name string // key name, as on its signature lines
	Priv ed25519.PrivateKey
	VKey string // C2SP vkey, type 0x04 (0x06 for ML-DSA-44)

	// ML-DSA-44 witnesses sign with transparency-dev/formats/note (an
	// implementation independent of log/c2sp/mldsa).
	pq     *fnote.SubtreeSigner
	pqSKey string
}

// NewMLDSAWitness returns the witness named name with an ML-DSA-44 key
// (type 0x06) derived from name.
func NewMLDSAWitness(name string) *Witness {
	skey, vkey, err := mldsa.GenerateKey(bytes.NewReader(Seed("mldsa-witness/"+name)), name)
	if err != nil {
		panic(err)
	}
	s, err := fnote.NewMLDSASigner(skey)
	if err != nil {
		panic(err)
	}
	return &Witness{Name: name, VKey: vkey, pq: s, pqSKey: skey}
}

// IsMLDSA reports whether w has an ML-DSA-44 key.
func (w *Witness) IsMLDSA() bool { return w.pq != nil }

// mldsaSig is w's ML-DSA-44 cosignature (timestamp and signature) of the
// checkpoint text at ts.
func (w *Witness) mldsaSig(text []byte, ts uint64) ([]byte, error) {
	c, err := c2sp.ParseCheckpoint(text)
	if err != nil {
		return nil, err
	}
	return w.pq.SignSubtree(ts, c.Origin, 0, c.Size, c.Hash[:])
}

// NewWitness returns the witness named name with a key derived from name.
func NewWitness(name string) *Witness {
	priv := ed25519.NewKeyFromSeed(Seed("witness/" + name))
	pub := priv.Public().(ed25519.PublicKey)
	return &Witness{Name: name, Priv: priv, VKey: c2sp.FormatVKey(name, c2sp.TypeCosignatureV1, pub)}
}

// SKey returns the witness's C2SP signer key (type 0x04), as
// formats/note.NewSignerForCosignatureV1 reads it.
func (w *Witness) SKey() string {
	if w.pq != nil {
		return w.pqSKey
	}
	pub := w.Priv.Public().(ed25519.PublicKey)
	return fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", w.Name, c2sp.KeyHash(w.Name, c2sp.TypeCosignatureV1, pub),
		base64.StdEncoding.EncodeToString(append([]byte{c2sp.TypeCosignatureV1}, w.Priv.Seed()...)))
}

// CosignatureLine returns the witness's C2SP tlog-cosignature line over
// the checkpoint text at timestamp ts (seconds).
func (w *Witness) CosignatureLine(text []byte, ts uint64) string {
	if w.pq != nil {
		sig, err := w.mldsaSig(text, ts)
		if err != nil {
			panic(err)
		}
		sig = append(binary.BigEndian.AppendUint32(nil, w.pq.KeyHash()), sig...)
		return "\u2014 " + w.Name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
	}
	msg := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, text)
	sig := make([]byte, 4, 4+8+ed25519.SignatureSize)
	binary.BigEndian.PutUint32(sig, c2sp.KeyHash(w.Name, c2sp.TypeCosignatureV1, w.Priv.Public().(ed25519.PublicKey)))
	sig = binary.BigEndian.AppendUint64(sig, ts)
	sig = append(sig, ed25519.Sign(w.Priv, msg)...)
	return "\u2014 " + w.Name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// Signer returns a tlog-cosignature note.Signer (cosignature/v1 or
// ML-DSA-44) for the witness
// whose timestamps come from now (formats/note's signer reads the wall
// clock), for witnesses living on a test clock.
func (w *Witness) Signer(now func() time.Time) note.Signer {
	return &clockSigner{w: w, now: now}
}

type clockSigner struct {
	w   *Witness
	now func() time.Time
}

func (s *clockSigner) Name() string { return s.w.Name }
func (s *clockSigner) KeyHash() uint32 {
	if s.w.pq != nil {
		return s.w.pq.KeyHash()
	}
	return c2sp.KeyHash(s.w.Name, c2sp.TypeCosignatureV1, s.w.Priv.Public().(ed25519.PublicKey))
}
func (s *clockSigner) Sign(msg []byte) ([]byte, error) {
	ts := uint64(s.now().Unix())
	if s.w.pq != nil {
		return s.w.mldsaSig(msg, ts)
	}
	sig := binary.BigEndian.AppendUint64(nil, ts)
	return append(sig, ed25519.Sign(s.w.Priv, fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, msg))...), nil
}

// Policy returns a witness policy text: the log (if logVKey is not ""),
// the witnesses, and a group of all of them with threshold k as quorum.
func Policy(logVKey string, k int, ws ...*Witness) string {
	var b strings.Builder
	if logVKey != "" {
		fmt.Fprintf(&b, "log %s\n", logVKey)
	}
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = fmt.Sprintf("w%d", i+1)
		fmt.Fprintf(&b, "witness %s %s\n", names[i], w.VKey)
	}
	fmt.Fprintf(&b, "group witnesses %d %s\nquorum witnesses\n", k, strings.Join(names, " "))
	return b.String()
}

// Log is an in-memory log. It is safe for concurrent use.
type Log struct {
	Origin string
	VKey   string // the log's C2SP vkey (Ed25519, type 0x01)
	// DigestSnapshots makes AppendSnapshot write snapshots in the digest
	// form of logs made before the key set root (docs/entries.md).
	DigestSnapshots bool

	signer note.Signer

	mu          sync.Mutex
	entries     [][]byte
	hashes      []tlog.Hash // stored hashes, as tlog.StoredHashIndex lays them out
	snapshots   []snapshot
	commitments map[string]uint64
	checkpoint  []byte
}

type snapshot struct {
	index  uint64
	keySet []byte
}

// NewLog returns an empty log with origin (also its key name) and a key
// derived from origin.
func NewLog(origin string) *Log {
	seed := Seed("log/" + origin)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", origin, c2sp.KeyHash(origin, c2sp.TypeEd25519, pub),
		base64.StdEncoding.EncodeToString(append([]byte{c2sp.TypeEd25519}, seed...)))
	signer, err := note.NewSigner(skey)
	if err != nil {
		panic(fmt.Sprintf("bundletest: bad log key: %v", err))
	}
	return &Log{Origin: origin, VKey: c2sp.FormatVKey(origin, c2sp.TypeEd25519, pub), signer: signer,
		commitments: map[string]uint64{}}
}

// Size returns the number of entries.
func (l *Log) Size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.entries))
}

// Append appends a leaf and returns its index.
func (l *Log) Append(leaf []byte) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appendLocked(leaf)
}

func (l *Log) appendLocked(leaf []byte) uint64 {
	n := int64(len(l.entries))
	hs, err := tlog.StoredHashes(n, leaf, l.hashReader())
	if err != nil {
		panic(fmt.Sprintf("bundletest: couldn't hash leaf %d: %v", n, err))
	}
	l.hashes = append(l.hashes, hs...)
	l.entries = append(l.entries, append([]byte(nil), leaf...))
	return uint64(n)
}

func (l *Log) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(l.hashes)) {
				return nil, fmt.Errorf("stored hash %d not present", x)
			}
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

// AppendSnapshot appends a snapshot entry for ks at time t and records ks
// as that snapshot's key set.
func (l *Log) AppendSnapshot(ks *schema.KeySet, t time.Time) (uint64, error) {
	b, err := ks.Marshal()
	if err != nil {
		return 0, err
	}
	// As the sequencer counts: one per issuer commitment in each part.
	snap, err := schema.NewSnapshot(ks)
	if err != nil {
		return 0, err
	}
	if l.DigestSnapshots {
		d := sha256.Sum256(b)
		snap.Root, snap.Digest = nil, d[:]
	}
	e, err := schema.NewLogEntry(schema.KindSnapshot, t.UnixMilli(), snap)
	if err != nil {
		return 0, err
	}
	leaf, err := e.Marshal()
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i := l.appendLocked(leaf)
	l.snapshots = append(l.snapshots, snapshot{index: i, keySet: b})
	return i, nil
}

// AppendCommitment appends an issuer's key commitment entry (signed by
// key) and records it as the issuer's latest.
func (l *Log) AppendCommitment(issuer string, body *schema.KeyCommitment, key ed25519.PrivateKey, prev []byte, t time.Time) (uint64, []byte, error) {
	raw, err := schema.CanonicalizeBody(schema.KindKeyCommitment, body)
	if err != nil {
		return 0, nil, err
	}
	sub, err := schema.Sign(schema.Statement{Kind: schema.KindKeyCommitment, Issuer: issuer, Prev: prev, Body: raw}, key)
	if err != nil {
		return 0, nil, err
	}
	leaf, err := schema.NewEntry(sub, t.UnixMilli()).Marshal()
	if err != nil {
		return 0, nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i := l.appendLocked(leaf)
	l.commitments[issuer] = i
	return i, leaf, nil
}

// Sign returns the log-signed checkpoint note for the current size,
// without cosignatures.
func (l *Log) Sign() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := int64(len(l.entries))
	root, err := tlog.TreeHash(n, l.hashReader())
	if err != nil {
		return nil, err
	}
	text := fmt.Sprintf("%s\n%d\n%s\n", l.Origin, n, base64.StdEncoding.EncodeToString(root[:]))
	return note.Sign(&note.Note{Text: text}, l.signer)
}

// Cosign appends a cosignature line from each witness, at time ts, to a
// signed checkpoint note.
func Cosign(signed []byte, ts time.Time, ws ...*Witness) []byte {
	text := signed[:strings.LastIndex(string(signed), "\n\n")+1]
	out := append([]byte(nil), signed...)
	for _, w := range ws {
		out = append(out, w.CosignatureLine(text, uint64(ts.Unix()))...)
	}
	return out
}

// Publish signs a checkpoint for the current size, cosigns it with ws at
// ts, makes it the log's latest and returns it.
func (l *Log) Publish(ts time.Time, ws ...*Witness) ([]byte, error) {
	signed, err := l.Sign()
	if err != nil {
		return nil, err
	}
	cp := Cosign(signed, ts, ws...)
	l.SetCheckpoint(cp)
	return cp, nil
}

// SetCheckpoint makes cp the checkpoint Checkpoint returns.
func (l *Log) SetCheckpoint(cp []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checkpoint = append([]byte(nil), cp...)
}

// Bundle builds the keys bundle for the latest checkpoint with
// bundle.Build.
func (l *Log) Bundle(oldSize uint64) ([]byte, error) {
	return bundle.Build(context.Background(), l, oldSize)
}

var _ bundle.Source = (*Log)(nil)

// Checkpoint implements bundle.Source.
func (l *Log) Checkpoint(context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checkpoint == nil {
		return nil, fmt.Errorf("no checkpoint published: %w", bundle.ErrNotLogged)
	}
	return append([]byte(nil), l.checkpoint...), nil
}

// LatestSnapshot implements bundle.Source.
func (l *Log) LatestSnapshot(_ context.Context, treeSize uint64) (uint64, []byte, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.snapshots) - 1; i >= 0; i-- {
		if s := l.snapshots[i]; s.index < treeSize {
			return s.index, l.entries[s.index], s.keySet, nil
		}
	}
	return 0, nil, nil, fmt.Errorf("no snapshot below size %d: %w", treeSize, bundle.ErrNotLogged)
}

// LatestCommitment implements bundle.Source (the latest commitment
// recorded, if it is below treeSize).
func (l *Log) LatestCommitment(_ context.Context, issuer string, treeSize uint64) (uint64, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := l.commitments[issuer]
	if !ok || i >= treeSize {
		return 0, nil, fmt.Errorf("no commitment for %q below size %d: %w", issuer, treeSize, bundle.ErrNotLogged)
	}
	return i, l.entries[i], nil
}

// InclusionProof implements bundle.Source.
func (l *Log) InclusionProof(_ context.Context, index, treeSize uint64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bundle.ProveInclusion(l.hashReader(), index, treeSize)
}

// ConsistencyProof implements bundle.Source.
func (l *Log) ConsistencyProof(_ context.Context, oldSize, newSize uint64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bundle.ProveConsistency(l.hashReader(), oldSize, newSize)
}

// KeySet returns a key set of n issuers (https://issuer-<i>.example), each
// with a PrivateStateTokenV1VOPRF commitment of keysEach keys: real P-384
// points (crypto/ecdh) from private keys derived from seed, so the same
// arguments give the same key set.
func KeySet(n, keysEach int, expiry time.Time, seed string) (*schema.KeySet, error) {
	ks := &schema.KeySet{PST: map[string]schema.PSTCommitment{}}
	for i := 0; i < n; i++ {
		keys := map[string]schema.PSTKey{}
		for j := 0; j < keysEach; j++ {
			id := uint32(i*keysEach + j + 1)
			pub, err := P384Point(fmt.Sprintf("%s/%d", seed, id))
			if err != nil {
				return nil, err
			}
			y := binary.BigEndian.AppendUint32(nil, id)
			y = append(y, pub...)
			keys[strconv.Itoa(j)] = schema.PSTKey{Y: base64.StdEncoding.EncodeToString(y),
				Expiry: strconv.FormatInt(expiry.UnixMicro(), 10)}
		}
		ks.PST[fmt.Sprintf("https://issuer-%d.example", i)] = schema.PSTCommitment{
			schema.PSTV1VOPRF: {ProtocolVersion: schema.PSTV1VOPRF, ID: 1, BatchSize: 10, Keys: keys},
		}
	}
	return ks, nil
}

// P384Point returns the uncompressed P-384 public point of a private key
// derived from label.
func P384Point(label string) ([]byte, error) {
	for ctr := 0; ctr < 100; ctr++ {
		d := sha512.Sum384([]byte(fmt.Sprintf("keycommit/bundletest/p384/%s/%d", label, ctr)))
		k, err := ecdh.P384().NewPrivateKey(d[:])
		if err == nil {
			return k.PublicKey().Bytes(), nil
		}
	}
	return nil, fmt.Errorf("couldn't derive a P-384 key for %q", label)
}
