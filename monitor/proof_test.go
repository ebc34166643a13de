package monitor

import (
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// memTree is a reference tree built with sumdb/tlog.
type memTree struct{ hashes []tlog.Hash }

func (m *memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memTree) add(n int) {
	for i := range n {
		hs, err := tlog.StoredHashes(int64(i), []byte(fmt.Sprint("leaf ", i)), m)
		if err != nil {
			panic(err)
		}
		m.hashes = append(m.hashes, hs...)
	}
}

// TestRootsFromProof checks full consistency proofs for every pair of
// sizes up to 70: the proofs tlog makes (with the seed added) verify with
// merkle/proof, give both roots, and any flipped bit changes the larger
// root.
func TestRootsFromProof(t *testing.T) {
	const max = 70
	tr := &memTree{}
	tr.add(max)
	roots := make([]tlog.Hash, max+1)
	for n := 1; n <= max; n++ {
		roots[n], _ = tlog.TreeHash(int64(n), tr)
	}
	for n := int64(2); n <= max; n++ {
		for m := int64(1); m < n; m++ {
			p, err := tlog.ProveTree(n, m, tr)
			if err != nil {
				t.Fatal(err)
			}
			var raw [][]byte
			for _, h := range p {
				raw = append(raw, h[:])
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(m), uint64(n), raw, roots[m][:], roots[n][:]); err != nil {
				t.Fatalf("%d -> %d: merkle/proof rejects tlog's proof: %v", m, n, err)
			}
			full, err := proveFromTiles(tr, m, n)
			if err != nil {
				t.Fatal(err)
			}
			oldRoot, newRoot, err := rootsFromProof(m, n, full)
			if err != nil || oldRoot != roots[m] || newRoot != roots[n] {
				t.Fatalf("%d -> %d: roots %v %v (%v), want %v %v", m, n, oldRoot, newRoot, err, roots[m], roots[n])
			}
			for i := range full {
				bad := append([]tlog.Hash(nil), full...)
				bad[i][5] ^= 1
				if _, nr, err := rootsFromProof(m, n, bad); err == nil && nr == roots[n] {
					t.Fatalf("%d -> %d: flipping hash %d still gives the new root", m, n, i)
				}
			}
			if _, _, err := rootsFromProof(m, n, full[:len(full)-1]); err == nil {
				t.Fatalf("%d -> %d: truncated proof accepted", m, n)
			}
			if _, _, err := rootsFromProof(m, n, append(full, tlog.Hash{})); err == nil {
				t.Fatalf("%d -> %d: proof with an extra hash accepted", m, n)
			}
		}
	}
}
