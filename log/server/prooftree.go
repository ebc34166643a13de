package server

import (
	"context"
	"fmt"

	"github.com/keycommit/keycommit/log/tiles"
	"golang.org/x/mod/sumdb/tlog"
)

// tileTree is a tile's subtree hashes, kept in the server's tree cache so
// that proofs cost lookups rather than hashing.
type tileTree = tiles.Subtrees

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
	tt, err := tiles.NewSubtrees(t, d)
	if err != nil {
		return nil, err
	}
	s.trees.Add(t, &tt)
	return &tt, nil
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
		if err := tt.Hash(t, x, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
