package tiles

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Tile is a hash tile and its data (t.W hashes of 32 bytes).
type Tile struct {
	tlog.Tile
	Data []byte
}

// Update is the result of appending leaves: the new size and root, and
// the data of every hash tile that changed, at its width in the new tree.
type Update struct {
	OldSize, Size int64
	Root          tlog.Hash
	Tiles         []Tile
}

// Appender grows a tree in memory, keeping only the tiles on its right
// edge (at most one per level). It is not safe for concurrent use.
type Appender struct {
	size int64
	edge map[tileKey][]byte
}

type tileKey struct {
	L int
	N int64
}

// NewAppender returns an appender for a tree of the given size whose edge
// tiles (see EdgeTiles) read returns.
func NewAppender(size int64, read TileFunc) (*Appender, error) {
	a := &Appender{size: size, edge: map[tileKey][]byte{}}
	for _, t := range EdgeTiles(size) {
		d, err := read(t)
		if err != nil {
			return nil, fmt.Errorf("couldn't read edge tile %s: %w", Path(t), err)
		}
		if len(d) < t.W*tlog.HashSize {
			return nil, fmt.Errorf("edge tile %s has %d bytes, want %d", Path(t), len(d), t.W*tlog.HashSize)
		}
		a.edge[tileKey{t.L, t.N}] = append([]byte(nil), d[:t.W*tlog.HashSize]...)
	}
	return a, nil
}

// Size returns the size of the tree.
func (a *Appender) Size() int64 { return a.size }

// Root returns the root hash of the tree.
func (a *Appender) Root() (tlog.Hash, error) {
	return tlog.TreeHash(a.size, a.reader(nil))
}

// EdgeTile returns the data of tile (l, n) if it is on the edge of the
// tree, with its current width.
func (a *Appender) EdgeTile(l int, n int64) ([]byte, bool) {
	d, ok := a.edge[tileKey{l, n}]
	return d, ok
}

func (a *Appender) reader(fresh map[int64]tlog.Hash) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if h, ok := fresh[x]; ok {
				out[i] = h
				continue
			}
			t := tlog.TileForIndex(Height, x)
			d, ok := a.edge[tileKey{t.L, t.N}]
			if !ok || len(d) < t.W*tlog.HashSize {
				return nil, fmt.Errorf("hash %d (tile %s) is not on the edge of a tree of size %d", x, Path(t), a.size)
			}
			h, err := tlog.HashFromTile(t, d[:t.W*tlog.HashSize], x)
			if err != nil {
				return nil, err
			}
			out[i] = h
		}
		return out, nil
	})
}

// Append adds leaves (leaf hashes, see LeafHash) to the tree and returns
// the changed tiles and the new root. On error the appender is unchanged.
func (a *Appender) Append(leaves []tlog.Hash) (*Update, error) {
	old := a.size
	fresh := make(map[int64]tlog.Hash, 2*len(leaves))
	r := a.reader(fresh)
	for i, h := range leaves {
		n := old + int64(i)
		hs, err := tlog.StoredHashesForRecordHash(n, h, r)
		if err != nil {
			return nil, fmt.Errorf("couldn't compute stored hashes for leaf %d: %w", n, err)
		}
		base := tlog.StoredHashIndex(0, n)
		for j, sh := range hs {
			fresh[base+int64(j)] = sh
		}
	}
	newSize := old + int64(len(leaves))
	u := &Update{OldSize: old, Size: newSize}
	for _, t := range NewTiles(old, newSize) {
		d, err := tlog.ReadTileData(t, r)
		if err != nil {
			return nil, fmt.Errorf("couldn't compute tile %s: %w", Path(t), err)
		}
		u.Tiles = append(u.Tiles, Tile{Tile: t, Data: d})
	}
	// Commit: the new edge is the last tile of every level.
	edge := make(map[tileKey][]byte, len(a.edge)+1)
	for k, d := range a.edge {
		edge[k] = d
	}
	for _, t := range u.Tiles {
		edge[tileKey{t.L, t.N}] = t.Data
	}
	keep := map[tileKey]bool{}
	for _, t := range EdgeTiles(newSize) {
		keep[tileKey{t.L, t.N}] = true
	}
	for k := range edge {
		if !keep[k] {
			delete(edge, k)
		}
	}
	prevEdge, prevSize := a.edge, a.size
	a.edge, a.size = edge, newSize
	root, err := tlog.TreeHash(newSize, a.reader(nil))
	if err != nil {
		a.edge, a.size = prevEdge, prevSize
		return nil, fmt.Errorf("couldn't compute the root of a tree of size %d: %w", newSize, err)
	}
	u.Root = root
	return u, nil
}
