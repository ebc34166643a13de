package tiles

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestSubtrees checks every hash a tile's subtrees hold against the
// stored hash tlog computes, for full and partial tiles at levels 0 and 1.
func TestSubtrees(t *testing.T) {
	const n = 1<<Height + 300 // a full level-0 tile, a partial one, a partial level-1 tile
	var stored []tlog.Hash
	for i := int64(0); i < n; i++ {
		hs, err := tlog.StoredHashes(i, []byte(fmt.Sprint(i)), tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(ix))
			for j, x := range ix {
				out[j] = stored[x]
			}
			return out, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	hr := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ix))
		for j, x := range ix {
			out[j] = stored[x]
		}
		return out, nil
	})
	for _, tile := range tlog.NewTiles(Height, 0, n) {
		data, err := tlog.ReadTileData(tile, hr)
		if err != nil {
			t.Fatal(err)
		}
		st, err := NewSubtrees(tile, data)
		if err != nil {
			t.Fatal(err)
		}
		if st.Width() != tile.W {
			t.Fatalf("tile %s: width %d, want %d", Path(tile), st.Width(), tile.W)
		}
		checked := 0
		for x := range stored {
			level, k := tlog.SplitStoredHashIndex(int64(x))
			j := level - tile.L*tile.H
			if j < 0 || j >= tile.H || k>>uint(tile.H-j) != tile.N || k-(tile.N<<uint(tile.H)>>uint(j)) >= int64(tile.W>>uint(j)) {
				continue
			}
			var h tlog.Hash
			if err := st.Hash(tile, int64(x), &h); err != nil {
				t.Fatalf("tile %s, hash %d: %v", Path(tile), x, err)
			}
			if h != stored[x] {
				t.Fatalf("tile %s, hash %d: %x, want %x", Path(tile), x, h, stored[x])
			}
			checked++
		}
		if checked < tile.W {
			t.Fatalf("tile %s: checked %d hashes, want at least its %d", Path(tile), checked, tile.W)
		}
	}
}

func TestSubtreesBadInput(t *testing.T) {
	tile := tlog.Tile{H: Height, L: 0, N: 0, W: 4}
	if _, err := NewSubtrees(tile, make([]byte, 3*tlog.HashSize)); err == nil || !strings.Contains(err.Error(), "has 96 bytes, want 128") {
		t.Fatalf("NewSubtrees of a short tile: %v", err)
	}
	st, err := NewSubtrees(tile, make([]byte, 4*tlog.HashSize))
	if err != nil {
		t.Fatal(err)
	}
	var h tlog.Hash
	if err := st.Hash(tile, tlog.StoredHashIndex(0, 4), &h); err == nil || !strings.Contains(err.Error(), "is not in tile") {
		t.Fatalf("Hash beyond the tile: %v", err)
	}
	if err := st.Hash(tile, tlog.StoredHashIndex(Height, 0), &h); err == nil {
		t.Fatal("Hash above the tile: no error")
	}
}
