package sequencer

import (
	"fmt"

	"github.com/keycommit/keycommit/log/tiles"
	"golang.org/x/mod/sumdb/tlog"
)

// prover reads the stored hashes that inclusion proofs of a batch's
// entries need, out of the batch's tiles and the tiles of the tree's
// right edge after it (falling back to the backend for anything else).
// Within a tile, a stored hash above the tile's bottom level is the root
// of a subtree of the tile's hashes; prover computes every such subtree
// hash of a tile once, the first time the tile is used, so that a batch's
// proofs cost lookups rather than hashing.
type prover struct {
	known map[[2]int64][]byte // tile (level, n) -> data, widest known
	read  tiles.TileFunc
	trees map[[2]int64][][]tlog.Hash
}

func newProver(u *tiles.Update, edge map[[2]int64][]byte, read tiles.TileFunc) *prover {
	known := make(map[[2]int64][]byte, len(u.Tiles)+len(edge))
	for k, d := range edge {
		known[k] = d
	}
	for _, t := range u.Tiles {
		k := [2]int64{int64(t.L), t.N}
		if len(t.Data) > len(known[k]) {
			known[k] = t.Data
		}
	}
	return &prover{known: known, read: read, trees: map[[2]int64][][]tlog.Hash{}}
}

// tree returns the levels of tile t, as wide as known (at least t.W):
// level 0 holds its hashes, level j the hashes of the complete subtrees
// of 2^j of them.
func (p *prover) tree(t tlog.Tile) ([][]tlog.Hash, error) {
	k := [2]int64{int64(t.L), t.N}
	if lv, ok := p.trees[k]; ok && len(lv[0]) >= t.W {
		return lv, nil
	}
	d, ok := p.known[k]
	if !ok || len(d) < t.W*tlog.HashSize {
		var err error
		if d, err = p.read(t); err != nil {
			return nil, err
		}
		if len(d) < t.W*tlog.HashSize {
			return nil, fmt.Errorf("tile %s has %d bytes, want %d", tiles.Path(t), len(d), t.W*tlog.HashSize)
		}
	}
	bottom := make([]tlog.Hash, min(len(d)/tlog.HashSize, 1<<uint(t.H)))
	for i := range bottom {
		copy(bottom[i][:], d[i*tlog.HashSize:])
	}
	lv := [][]tlog.Hash{bottom}
	for j := 1; j < t.H && len(lv[j-1]) >= 2; j++ {
		below := lv[j-1]
		up := make([]tlog.Hash, len(below)/2)
		for i := range up {
			up[i] = tlog.NodeHash(below[2*i], below[2*i+1])
		}
		lv = append(lv, up)
	}
	p.trees[k] = lv
	return lv, nil
}

// ReadHashes implements tlog.HashReader.
func (p *prover) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		t := tlog.TileForIndex(tiles.Height, x)
		lv, err := p.tree(t)
		if err != nil {
			return nil, fmt.Errorf("couldn't read tile %s for hash %d: %w", tiles.Path(t), x, err)
		}
		level, n := tlog.SplitStoredHashIndex(x)
		j := level - t.L*t.H                   // level within the tile
		k := n - (t.N << uint(t.H) >> uint(j)) // index within that level of the tile
		if j < 0 || j >= len(lv) || k < 0 || k >= int64(len(lv[j])) {
			return nil, fmt.Errorf("hash %d (level %d, n %d) is not in tile %s", x, level, n, tiles.Path(t))
		}
		out[i] = lv[j][k]
	}
	return out, nil
}
