package tiles

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Subtrees is a hash tile with the hashes of every complete subtree of
// its hashes: Levels[0] holds the tile's hashes, Levels[j] the hashes of
// the complete subtrees of 2^j of them. An inclusion or consistency proof
// needs stored hashes at every level of a tile; tlog computes those above
// the tile's bottom from up to 2^Height bottom hashes each time, so a
// prover computes them once per tile and looks them up (Hash).
type Subtrees struct {
	Levels [][]tlog.Hash
}

// NewSubtrees computes the subtrees of tile t (of height t.H) from data,
// which holds at least t.W hashes. It uses every hash in data, up to a
// full tile, so the result may be wider than t.W.
func NewSubtrees(t tlog.Tile, data []byte) (Subtrees, error) {
	if len(data) < t.W*tlog.HashSize {
		return Subtrees{}, fmt.Errorf("tile %s has %d bytes, want %d", Path(t), len(data), t.W*tlog.HashSize)
	}
	bottom := make([]tlog.Hash, min(len(data)/tlog.HashSize, 1<<uint(t.H)))
	for i := range bottom {
		copy(bottom[i][:], data[i*tlog.HashSize:])
	}
	st := Subtrees{Levels: [][]tlog.Hash{bottom}}
	for j := 1; j < t.H && len(st.Levels[j-1]) >= 2; j++ {
		below := st.Levels[j-1]
		up := make([]tlog.Hash, len(below)/2)
		for i := range up {
			up[i] = tlog.NodeHash(below[2*i], below[2*i+1])
		}
		st.Levels = append(st.Levels, up)
	}
	return st, nil
}

// Width returns the number of bottom hashes st was computed from.
func (st Subtrees) Width() int { return len(st.Levels[0]) }

// Hash sets *h to the stored hash with index x (tlog.StoredHashIndex) out
// of st, the subtrees of tile t, or returns an error if x is not in it.
func (st Subtrees) Hash(t tlog.Tile, x int64, h *tlog.Hash) error {
	level, n := tlog.SplitStoredHashIndex(x)
	j := level - t.L*t.H                   // level within the tile
	k := n - (t.N << uint(t.H) >> uint(j)) // index within that level of the tile
	if j < 0 || j >= len(st.Levels) || k < 0 || k >= int64(len(st.Levels[j])) {
		return notInTile(t, x, level, n)
	}
	*h = st.Levels[j][k]
	return nil
}

func notInTile(t tlog.Tile, x int64, level int, n int64) error {
	return fmt.Errorf("hash %d (level %d, n %d) is not in tile %s", x, level, n, Path(t))
}
