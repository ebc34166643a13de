package server

import (
	"context"
	"fmt"

	"github.com/keycommit/keycommit/log/tiles"
	"golang.org/x/mod/sumdb/tlog"
)

// tileTree is a hash tile with the hashes of every complete subtree of
// its hashes: levels[0] is the tile's t.W hashes, levels[j] the hashes of
// the complete subtrees of 2^j of them. A proof needs stored hashes at
// every level of a tile; tlog computes those above the tile's bottom from
// up to 128 bottom hashes each time, so the server keeps them computed.
type tileTree struct {
	levels [][]tlog.Hash
}

func newTileTree(t tlog.Tile, data []byte) *tileTree {
	bottom := make([]tlog.Hash, t.W)
	for i := range bottom {
		copy(bottom[i][:], data[i*tlog.HashSize:])
	}
	tt := &tileTree{levels: [][]tlog.Hash{bottom}}
	for j := 1; j < t.H && len(tt.levels[j-1]) >= 2; j++ {
		below := tt.levels[j-1]
		up := make([]tlog.Hash, len(below)/2)
		for i := range up {
			up[i] = tlog.NodeHash(below[2*i], below[2*i+1])
		}
		tt.levels = append(tt.levels, up)
	}
	return tt
}

// readTree returns the tree of hash tile t (exactly t.W wide), through
// the tree cache.
func (s *Server) readTree(ctx context.Context, t tlog.Tile) (*tileTree, error) {
	t.H = tiles.Height
	if tt, ok := s.trees.Get(t); ok {
		return tt, nil
	}
	d, err := s.readTile(ctx, t)
	if err != nil {
		return nil, err
	}
	tt := newTileTree(t, d)
	s.trees.Add(t, tt)
	return tt, nil
}

// treeHashReader reads stored hashes of the tree of the given size from
// tile trees, each read at its width in that tree (full, except on the
// right edge), so that the caches hold one version of each tile.
type treeHashReader struct {
	s    *Server
	ctx  context.Context
	size int64
}

// ReadHashes implements tlog.HashReader.
func (r treeHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var last tlog.Tile
	var tt *tileTree
	for i, x := range indexes {
		t := tlog.TileForIndex(tiles.Height, x)
		if w, ok := tiles.TileAt(t.L, t.N, r.size); ok && w.W >= t.W {
			t = w
		}
		if tt == nil || t != last {
			var err error
			if tt, err = r.s.readTree(r.ctx, t); err != nil {
				return nil, fmt.Errorf("couldn't read tile %s for hash %d: %w", tiles.Path(t), x, err)
			}
			last = t
		}
		level, n := tlog.SplitStoredHashIndex(x)
		j := level - t.L*t.H
		k := n - (t.N << uint(t.H) >> uint(j))
		if j < 0 || j >= len(tt.levels) || k < 0 || k >= int64(len(tt.levels[j])) {
			return nil, fmt.Errorf("hash %d (level %d, n %d) is not in tile %s", x, level, n, tiles.Path(t))
		}
		out[i] = tt.levels[j][k]
	}
	return out, nil
}
