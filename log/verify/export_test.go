package verify

import "github.com/keycommit/keycommit/log/keysetroot"

// ParseKeySetScanning is ParseKeySet with the plain-text fast path off
// (every string scanned for bytes that need escapes), so that tests check
// both ways of reading strings.
func ParseKeySetScanning(b []byte) (*KeySet, error) {
	p := newOwnedParser(string(b))
	p.plain = false
	return parseKeySetWith(p, b, nil, 0)
}

// PlainText exposes plainText to tests.
var PlainText = plainText

// SetHeldTreeLeaf replaces leaf i of v's cached key set tree with h, so
// that a test can tell whether VerifyDelta used the cached tree or hashed
// the members again. It reports false if v has no tree.
func SetHeldTreeLeaf(v *Verified, i int, h [32]byte) bool {
	if v.tree == nil {
		return false
	}
	t, err := v.tree.Replace([]int{i}, []keysetroot.Hash{h})
	if err != nil {
		panic(err)
	}
	v.tree = t
	return true
}

// KeySetWrites returns how many times a key set has been written into a
// new buffer (a bundle's encoding, or a key set's alone), so that a test
// can tell that a delta writes none until its bytes are asked for.
func KeySetWrites() int64 { return keySetWrites.Load() }

// WithCommitment returns v as if its snapshot committed to the key set
// commitment c, for a test of a delta applied to another base.
func WithCommitment(v *Verified, c []byte) *Verified {
	w := &Verified{Checkpoint: v.Checkpoint, SnapshotIndex: v.SnapshotIndex, SnapshotTime: v.SnapshotTime, SnapshotIssuers: v.SnapshotIssuers,
		parts: v.parts, enc: v.enc, snap: v.snap, form: v.form, commitment: c, tree: v.tree}
	w.rawOnce.Do(func() { w.raw, w.bundle = v.Raw(), v.Bundle() })
	w.keySetOnce.Do(func() { w.keySet, w.keySetErr = v.KeySet() })
	return w
}

// WithKeySetSize returns v as if its key set's encoding were n bytes long
// (its bytes are not changed), for a test of the bundle size limit.
func WithKeySetSize(v *Verified, n int) *Verified {
	w := WithCommitment(v, v.commitment)
	w.enc = &keySetEnc{size: n, b: v.enc.bytes()}
	return w
}
