// Package keysetroot computes the key set root a snapshot entry commits
// to: the RFC 6962 Merkle tree hash over the key set's members (docs/entries.md,
// "Key set root").
//
// The leaves are the members of the canonical key set
// {"pst":{...},"privacy_pass":{...}} in order: every member of pst (sorted
// by origin, as the canonical encoding has them), then every member of
// privacy_pass. A leaf's data is the part name ("pst" or "privacy_pass"),
// one 0x00 byte, and the member's canonical bytes `"<origin>":<value>`
// exactly as they appear in the key set. The root is the RFC 6962 tree hash
// (github.com/transparency-dev/merkle/rfc6962: leaf hash SHA-256(0x00 ‖
// data), node hash SHA-256(0x01 ‖ left ‖ right)); the empty key set's root
// is SHA-256 of the empty string.
//
// Tree keeps every level of the tree, so that a delta replacing k members
// costs O(k log n) node hashes and one adding or removing members rebuilds
// the levels from the cached leaf hashes (about n 64-byte node hashes, no
// member hashed again).
//
// The package is pure (no I/O) and imports only the standard library and
// the merkle module, so that both the log (package schema) and user agents
// (package log/verify) use it.
package keysetroot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/bits"

	"github.com/transparency-dev/merkle/rfc6962"
)

// The key set's parts, in leaf order.
const (
	PST         = "pst"
	PrivacyPass = "privacy_pass"
)

// Hash is a leaf, node or root hash.
type Hash = [sha256.Size]byte

var (
	pstPrefix = []byte{rfc6962.RFC6962LeafHashPrefix, 'p', 's', 't', 0}
	ppPrefix  = append(append([]byte{rfc6962.RFC6962LeafHashPrefix}, PrivacyPass...), 0)
)

// Hasher hashes leaves with one reused SHA-256 state and output buffer
// (so that hashing a leaf allocates nothing: a buffer passed to Sum
// through the hash.Hash interface escapes). The zero value is ready; a
// Hasher is not safe for concurrent use.
type Hasher struct {
	h   hash.Hash
	sum Hash
}

// Leaf returns the leaf hash of member (canonical bytes `"<origin>":<value>`)
// of part, which must be PST or PrivacyPass.
func (hs *Hasher) Leaf(part string, member []byte) Hash {
	if hs.h == nil {
		hs.h = sha256.New()
	}
	prefix := pstPrefix
	if part != PST {
		if part != PrivacyPass {
			panic("keysetroot: unknown key set part " + part)
		}
		prefix = ppPrefix
	}
	hs.h.Reset()
	hs.h.Write(prefix)
	hs.h.Write(member)
	hs.h.Sum(hs.sum[:0])
	return hs.sum
}

// LeafHash returns the leaf hash of member of part (see Hasher.Leaf).
func LeafHash(part string, member []byte) Hash {
	var hs Hasher
	return hs.Leaf(part, member)
}

// nodeHash is rfc6962.DefaultHasher.HashChildren without allocating.
func nodeHash(l, r *Hash) Hash {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:], l[:])
	copy(buf[1+sha256.Size:], r[:])
	return sha256.Sum256(buf[:])
}

// emptyRoot is the root of the empty tree: SHA-256 of the empty string.
var emptyRoot = sha256.Sum256(nil)

// Root returns the key set root over the members of pst and privacy_pass
// (each in canonical order).
func Root(pst, pp [][]byte) Hash {
	var hs Hasher
	leaves := make([]Hash, 0, len(pst)+len(pp))
	for _, m := range pst {
		leaves = append(leaves, hs.Leaf(PST, m))
	}
	for _, m := range pp {
		leaves = append(leaves, hs.Leaf(PrivacyPass, m))
	}
	return New(leaves).Root()
}

// OfKeySet returns the root of the key set whose canonical encoding is b
// (see Split).
func OfKeySet(b []byte) (Hash, error) {
	t, err := FromKeySet(b)
	if err != nil {
		return Hash{}, err
	}
	return t.Root(), nil
}

// CommitsTo reports whether the snapshot commitment root or, if root is
// nil, digest (SHA-256 of the key set's bytes, the form of logs made
// before the root) is that of the key set whose canonical encoding is
// keySet, and returns the key set's commitment in that form (nil if it
// does not split into members).
func CommitsTo(keySet, root, digest []byte) (bool, []byte) {
	if root == nil {
		d := sha256.Sum256(keySet)
		return bytes.Equal(d[:], digest), d[:]
	}
	r, err := OfKeySet(keySet)
	if err != nil {
		return false, nil
	}
	return bytes.Equal(r[:], root), r[:]
}

// FromKeySet returns the tree of the key set whose canonical encoding is
// b (see Split).
func FromKeySet(b []byte) (*Tree, error) { return FromKeySetSized(b, 0) }

// FromKeySetSized sizes the leaves for at most one member per
// minMemberLen bytes of the key set, so that a count it is told (a
// snapshot's, which a forged bundle may get wrong) makes it allocate no more
// than the key set's own size. Members with keys take hundreds of bytes;
// a key set of smaller ones only grows the leaves as it goes.
const minMemberLen = len(Hash{})

// FromKeySetSized is FromKeySet for a key set that should have members
// members (as a snapshot records them): it sizes the leaves for them, at
// most len(b)/minMemberLen (a wrong count costs time or memory, never
// correctness).
func FromKeySetSized(b []byte, members int) (*Tree, error) {
	var hs Hasher
	leaves := make([]Hash, 0, min(max(members, 0), len(b)/minMemberLen))
	if err := Split(b, func(part string, member []byte) {
		leaves = append(leaves, hs.Leaf(part, member))
	}); err != nil {
		return nil, err
	}
	return New(leaves), nil
}

// Split calls fn with every member of the key set b in leaf order. It
// checks the key set's frame only: b must be exactly
// `{"pst":{` m1,...,mk `},"privacy_pass":{` m1,...,mj `}}`, where each
// member starts with '"' and ends at the first ',' or '}' outside strings
// and brackets. That is enough for the root to bind b (b is the members
// joined in that frame, so two key sets with the same leaves are the same
// bytes); whether each member is a well-formed canonical member is for the
// key set parser to say.
func Split(b []byte, fn func(part string, member []byte)) error {
	// Without a backslash no string has an escape, so every '"' opens or
	// closes one: strings are skipped to the next '"' (the key sets logs
	// serve are plain text).
	return split(b, bytes.IndexByte(b, '\\') < 0, fn)
}

// split is Split, skipping strings to the next '"' if plain (b has no
// backslash) and with skipString otherwise.
func split(b []byte, plain bool, fn func(part string, member []byte)) error {
	i, err := splitPart(b, 0, `{"pst":{`, PST, plain, fn)
	if err != nil {
		return err
	}
	if i, err = splitPart(b, i, `,"privacy_pass":{`, PrivacyPass, plain, fn); err != nil {
		return err
	}
	if i >= len(b) || b[i] != '}' {
		return fmt.Errorf("malformed key set at byte %d: want \"}\"", i)
	}
	if i+1 != len(b) {
		return fmt.Errorf("malformed key set at byte %d: trailing data", i+1)
	}
	return nil
}

// depthDelta is how each byte outside strings changes the bracket depth.
var depthDelta = [256]int8{'{': 1, '[': 1, '}': -1, ']': -1}

// splitPart reads open, then the members of part up to its closing '}',
// and returns the index after it.
func splitPart(b []byte, i int, open, part string, plain bool, fn func(string, []byte)) (int, error) {
	if !bytes.HasPrefix(b[i:], []byte(open)) {
		return 0, fmt.Errorf("malformed key set at byte %d: want %q", i, open)
	}
	i += len(open)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		start := i
		if i >= len(b) || b[i] != '"' {
			return 0, fmt.Errorf("malformed key set at byte %d: a %s member must start with '\"'", i, part)
		}
		// The member ends at the first ',' at depth 0, or at the '}'
		// that takes the depth below 0; a ']' that does is unbalanced.
		// (A table rather than a switch: fewer branches to mispredict.)
		depth := 0
		for i < len(b) {
			c := b[i]
			if c == '"' {
				j := -1
				if plain {
					if k := QuoteIndex(b[i+1:]); k >= 0 {
						j = i + 1 + k + 1
					}
				} else {
					j = skipString(b, i)
				}
				if j < 0 {
					return 0, fmt.Errorf("malformed key set at byte %d: unterminated string", i)
				}
				i = j
				continue
			}
			depth += int(depthDelta[c])
			if depth < 0 || depth == 0 && c == ',' {
				if c == ']' {
					return 0, fmt.Errorf("malformed key set at byte %d: unbalanced ']'", i)
				}
				break
			}
			i++
		}
		if i >= len(b) {
			return 0, fmt.Errorf("malformed key set: the %s member at byte %d does not end", part, start)
		}
		fn(part, b[start:i])
		if b[i] == '}' {
			return i + 1, nil
		}
		i++
	}
}

// QuoteIndex returns the index of the first '"' in b, -1 if none: the
// first eight bytes without a call (most of a key set's strings, its
// labels, versions and key ids, are short), then bytes.IndexByte. It is
// the string scan of Split, and of log/verify's key set parser, for input
// without escapes.
func QuoteIndex(b []byte) int {
	if len(b) < 8 {
		return bytes.IndexByte(b, '"')
	}
	// x has a zero byte where b has '"'; (x - 1) &^ x flags exactly the
	// lowest zero byte (a borrow can only add flags above it).
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	x := binary.LittleEndian.Uint64(b) ^ lo*'"'
	if m := (x - lo) &^ x & hi; m != 0 {
		return bits.TrailingZeros64(m) / 8
	}
	if n := bytes.IndexByte(b[8:], '"'); n >= 0 {
		return 8 + n
	}
	return -1
}

// skipString returns the index after the string starting at b[i] (a '"'),
// or -1 if it does not end.
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		k += j
		n := 0
		for p := k - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return k + 1
		}
		j = k + 1
	}
}

// Tree is the Merkle tree over a key set's leaves with every level kept.
// A Tree is immutable: Replace returns a new one, so a Tree may be shared
// and read concurrently.
type Tree struct {
	// levels[0] are the leaf hashes; levels[l+1][j] is the node over
	// levels[l][2j] and levels[l][2j+1], or levels[l][2j] itself when it
	// has no right sibling (which gives the RFC 6962 tree: its left
	// subtrees are complete). The last level has one hash, the root
	// (none for the empty tree).
	levels [][]Hash
}

// New returns the tree over the leaf hashes leaves, which it keeps (the
// caller must not change them). The levels above the leaves share one
// allocation.
func New(leaves []Hash) *Tree {
	nodes, depth := 0, 1
	for n := len(leaves); n > 1; n = (n + 1) / 2 {
		nodes += (n + 1) / 2
		depth++
	}
	t := &Tree{levels: make([][]Hash, 1, depth)}
	t.levels[0] = leaves
	free := make([]Hash, nodes)
	for l := leaves; len(l) > 1; {
		w := (len(l) + 1) / 2
		next := free[:w:w]
		free = free[w:]
		for j := range next {
			if 2*j+1 < len(l) {
				next[j] = nodeHash(&l[2*j], &l[2*j+1])
			} else {
				next[j] = l[2*j]
			}
		}
		t.levels = append(t.levels, next)
		l = next
	}
	return t
}

// Size returns the number of leaves.
func (t *Tree) Size() int { return len(t.levels[0]) }

// Leaves returns the leaf hashes, in order; the caller must not change
// them.
func (t *Tree) Leaves() []Hash { return t.levels[0] }

// Root returns the tree's root hash.
func (t *Tree) Root() Hash {
	top := t.levels[len(t.levels)-1]
	if len(top) == 0 {
		return emptyRoot
	}
	return top[0]
}

// Replace returns the tree with leaf index[i] replaced by hashes[i], for
// every i, recomputing only the nodes above them: O(k log n) node hashes
// for k replaced leaves (and a copy of t's levels, which t keeps). index
// must hold distinct leaf indexes of t.
func (t *Tree) Replace(index []int, hashes []Hash) (*Tree, error) {
	if len(index) != len(hashes) {
		return nil, errors.New("keysetroot: Replace needs one hash per index")
	}
	out := &Tree{levels: make([][]Hash, len(t.levels))}
	for l, hs := range t.levels {
		out.levels[l] = append([]Hash(nil), hs...)
	}
	dirty := make([]int, 0, len(index))
	for i, x := range index {
		if x < 0 || x >= t.Size() {
			return nil, fmt.Errorf("keysetroot: leaf index %d is not in a tree of %d leaves", x, t.Size())
		}
		out.levels[0][x] = hashes[i]
		dirty = append(dirty, x)
	}
	for l := 0; l+1 < len(out.levels); l++ {
		cur, up := out.levels[l], out.levels[l+1]
		next := dirty[:0]
		last := -1
		for _, x := range sortInts(dirty) {
			p := x / 2
			if p == last {
				continue
			}
			last = p
			if 2*p+1 < len(cur) {
				up[p] = nodeHash(&cur[2*p], &cur[2*p+1])
			} else {
				up[p] = cur[2*p]
			}
			next = append(next, p)
		}
		dirty = next
	}
	return out, nil
}

// sortInts sorts xs in place (insertion sort: xs is the few changed
// leaves, usually sorted already) and returns it; duplicates stay.
func sortInts(xs []int) []int {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
	return xs
}
