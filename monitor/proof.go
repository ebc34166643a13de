package monitor

import (
	"errors"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// A full consistency proof from size m to size n (0 < m < n) is an RFC
// 9162 consistency proof with its seed always present: the hash of the
// largest perfect subtree that ends at m (RFC 9162 leaves it out when m is
// a power of two, where it is the old root itself). From a full proof both
// roots can be computed, so a proof that reproduces the larger tree's root
// and not the smaller's shows, by itself, that the two trees are not
// prefixes of each other.

// rootsFromProof computes the roots of the trees of size m and n from a
// full consistency proof.
func rootsFromProof(m, n int64, p []tlog.Hash) (oldRoot, newRoot tlog.Hash, err error) {
	if m <= 0 || m >= n {
		return tlog.Hash{}, tlog.Hash{}, fmt.Errorf("consistency proof sizes %d -> %d: want 0 < old < new", m, n)
	}
	if len(p) == 0 {
		return tlog.Hash{}, tlog.Hash{}, errors.New("empty consistency proof")
	}
	inner := bits.Len64(uint64(m-1) ^ uint64(n-1))
	border := bits.OnesCount64(uint64(m-1) >> uint(inner))
	shift := bits.TrailingZeros64(uint64(m))
	inner -= shift
	seed, rest := p[0], p[1:]
	if len(rest) != inner+border {
		return tlog.Hash{}, tlog.Hash{}, fmt.Errorf("consistency proof %d -> %d has %d hashes, want %d", m, n, len(p), 1+inner+border)
	}
	mask := uint64(m-1) >> uint(shift)
	oldRoot, newRoot = seed, seed
	for i, h := range rest[:inner] {
		if (mask>>uint(i))&1 == 1 {
			oldRoot = tlog.NodeHash(h, oldRoot)
			newRoot = tlog.NodeHash(h, newRoot)
		} else {
			newRoot = tlog.NodeHash(newRoot, h)
		}
	}
	for _, h := range rest[inner:] {
		oldRoot = tlog.NodeHash(h, oldRoot)
		newRoot = tlog.NodeHash(h, newRoot)
	}
	return oldRoot, newRoot, nil
}

// fullProof turns an RFC 9162 consistency proof from m to n into a full
// proof, given the seed when RFC 9162 leaves it out (m a power of two).
func fullProof(m int64, p []tlog.Hash, seed tlog.Hash) []tlog.Hash {
	if m&(m-1) == 0 {
		return append([]tlog.Hash{seed}, p...)
	}
	return p
}

// proveFromTiles returns a full consistency proof from size m to the tree
// that r's hashes are authenticated against (r must be a
// tlog.TileHashReader for a tree of size n).
func proveFromTiles(r tlog.HashReader, m, n int64) ([]tlog.Hash, error) {
	p, err := tlog.ProveTree(n, m, r)
	if err != nil {
		return nil, err
	}
	var seed tlog.Hash
	if m&(m-1) == 0 {
		level := bits.TrailingZeros64(uint64(m))
		hs, err := r.ReadHashes([]int64{tlog.StoredHashIndex(level, 0)})
		if err != nil {
			return nil, err
		}
		seed = hs[0]
	}
	return fullProof(m, p, seed), nil
}
