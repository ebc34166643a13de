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
