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
	trees map[[2]int64]tiles.Subtrees
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
	return &prover{known: known, read: read, trees: map[[2]int64]tiles.Subtrees{}}
}

// tree returns the subtrees of tile t, as wide as known (at least t.W).
func (p *prover) tree(t tlog.Tile) (tiles.Subtrees, error) {
	k := [2]int64{int64(t.L), t.N}
	if st, ok := p.trees[k]; ok && st.Width() >= t.W {
		return st, nil
	}
	d, ok := p.known[k]
	if !ok || len(d) < t.W*tlog.HashSize {
		var err error
		if d, err = p.read(t); err != nil {
			return tiles.Subtrees{}, err
		}
	}
	st, err := tiles.NewSubtrees(t, d)
	if err != nil {
		return tiles.Subtrees{}, err
	}
	p.trees[k] = st
	return st, nil
}

// ReadHashes implements tlog.HashReader.
func (p *prover) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		t := tlog.TileForIndex(tiles.Height, x)
		st, err := p.tree(t)
		if err != nil {
			return nil, fmt.Errorf("couldn't read tile %s for hash %d: %w", tiles.Path(t), x, err)
		}
		if err := st.Hash(t, x, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
