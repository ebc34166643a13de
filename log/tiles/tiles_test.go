package tiles

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

func TestPathRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		tile tlog.Tile
		path string
	}{
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, "tile/0/000"},
		{tlog.Tile{H: 8, L: 0, N: 5, W: 17}, "tile/0/005.p/17"},
		{tlog.Tile{H: 8, L: 1, N: 1234067, W: 256}, "tile/1/x001/x234/067"},
		{tlog.Tile{H: 8, L: 2, N: 1000, W: 1}, "tile/2/x001/000.p/1"},
		{tlog.Tile{H: 8, L: EntriesLevel, N: 999, W: 256}, "tile/entries/999"},
		{tlog.Tile{H: 8, L: EntriesLevel, N: 1000, W: 255}, "tile/entries/x001/000.p/255"},
		{tlog.Tile{H: 8, L: 63, N: 0, W: 256}, "tile/63/000"},
	} {
		if got := Path(tc.tile); got != tc.path {
			t.Errorf("Path(%+v) = %q, want %q", tc.tile, got, tc.path)
		}
		got, err := ParsePath(tc.path)
		if err != nil || got != tc.tile {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tc.path, got, err, tc.tile)
		}
		if got, err := ParsePath("/" + tc.path); err != nil || got != tc.tile {
			t.Errorf("ParsePath(/%q) = %+v, %v", tc.path, got, err)
		}
	}
	for n := int64(0); n < 3000; n += 7 {
		for _, w := range []int{1, 100, 255, 256} {
			tl := tlog.Tile{H: 8, L: int(n % 3), N: n * 997, W: w}
			if got, err := ParsePath(Path(tl)); err != nil || got != tl {
				t.Fatalf("ParsePath(Path(%+v)) = %+v, %v", tl, got, err)
			}
		}
	}
}

func TestParsePathRejects(t *testing.T) {
	for _, p := range []string{
		"", "tile", "tile/", "tile/0", "tile/0/", "tiles/0/000", "tile/x/000",
		"tile/-1/000", "tile/01/000", "tile/64/000", "tile/0/0", "tile/0/0000", "tile/0/00a",
		"tile/0/001/234", "tile/0/x001", "tile/0/x000/001", "tile/0/001.p", "tile/0/001.p/",
		"tile/0/001.p/0", "tile/0/001.p/256", "tile/0/001.p/01", "tile/0/001.p/abc",
		"tile/0/001.p/5/6", "tile/0/001/", "tile/0//001", "tile/entries/", "tile/entries/001.p/-1",
		"tile/0/x001.p/234", "tile/0/x001/x002/x003/x004/x005/x006/x007/008", "tile/0/x001/02",
		"tile/0/X001/002", "tile/0/x001/x002",
	} {
		if tl, err := ParsePath(p); err == nil {
			t.Errorf("ParsePath(%q) = %+v, want error", p, tl)
		}
	}
}

func leaf(i int) []byte {
	b := make([]byte, 8+i%50)
	binary.BigEndian.PutUint64(b, uint64(i))
	return b
}

// refTree keeps every stored hash, the simple reference for Appender.
type refTree struct{ stored []tlog.Hash }

func (r *refTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(r.stored)) {
			return nil, fmt.Errorf("no hash %d", x)
		}
		out[i] = r.stored[x]
	}
	return out, nil
}

func (r *refTree) add(t *testing.T, data []byte) {
	hs, err := tlog.StoredHashes(int64(r.size()), data, r)
	if err != nil {
		t.Fatal(err)
	}
	r.stored = append(r.stored, hs...)
}

func (r *refTree) size() int {
	// The number of leaves whose stored hashes are all present.
	n := 0
	for tlog.StoredHashCount(int64(n+1)) <= int64(len(r.stored)) {
		n++
	}
	return n
}

// store holds tile data as a backend would: the widest version of each.
type store map[tileKey][]byte

func (s store) put(ts []Tile) {
	for _, t := range ts {
		s[tileKey{t.L, t.N}] = t.Data
	}
}

func (s store) read(t tlog.Tile) ([]byte, error) {
	d, ok := s[tileKey{t.L, t.N}]
	if !ok || len(d) < t.W*32 {
		return nil, fmt.Errorf("no tile %s", Path(t))
	}
	return d, nil
}

func rootOf(leaves [][]byte) []byte {
	// Reference RFC 6962 MTH, recursively.
	h := rfc6962.DefaultHasher
	if len(leaves) == 0 {
		return h.EmptyRoot()
	}
	if len(leaves) == 1 {
		return h.HashLeaf(leaves[0])
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return h.HashChildren(rootOf(leaves[:k]), rootOf(leaves[k:]))
}

// TestEverySmallTree appends leaves one batch at a time for every tree
// size 0..300 (and batches that cross tile boundaries) and checks the
// tiles, roots and proofs against independent references.
func TestEverySmallTree(t *testing.T) {
	const max = 300
	var data [][]byte
	for i := 0; i < max; i++ {
		data = append(data, leaf(i))
	}
	ref := &refTree{}
	for i := 0; i < max; i++ {
		ref.add(t, data[i])
	}
	for _, batch := range []int{1, 3, 255, 256, 257, 300} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			st := store{}
			a, err := NewAppender(0, st.read)
			if err != nil {
				t.Fatal(err)
			}
			var roots []tlog.Hash
			r0, err := a.Root()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r0[:], rfc6962.DefaultHasher.EmptyRoot()) {
				t.Fatalf("empty root %x", r0)
			}
			roots = append(roots, r0)
			for size := 0; size < max; {
				end := min(size+batch, max)
				var hs []tlog.Hash
				for i := size; i < end; i++ {
					hs = append(hs, LeafHash(data[i]))
				}
				// Alternate: reuse the appender, or rebuild it from storage.
				if size%2 == 1 {
					if a, err = NewAppender(int64(size), st.read); err != nil {
						t.Fatalf("reopen at %d: %v", size, err)
					}
				}
				u, err := a.Append(hs)
				if err != nil {
					t.Fatal(err)
				}
				st.put(u.Tiles)
				// Tiles must equal the reference's.
				wantTiles := tlog.NewTiles(Height, int64(size), int64(end))
				if len(u.Tiles) != len(wantTiles) {
					t.Fatalf("%d->%d: %d tiles, want %d", size, end, len(u.Tiles), len(wantTiles))
				}
				for i, tl := range u.Tiles {
					want, err := tlog.ReadTileData(wantTiles[i], ref)
					if err != nil {
						t.Fatal(err)
					}
					if tl.Tile != wantTiles[i] || !bytes.Equal(tl.Data, want) {
						t.Fatalf("%d->%d: tile %s differs from reference", size, end, Path(tl.Tile))
					}
				}
				for s := size + 1; s <= end; s++ {
					if s < end {
						// Intermediate roots from the reference.
						h, _ := tlog.TreeHash(int64(s), ref)
						roots = append(roots, h)
					}
				}
				roots = append(roots, u.Root)
				if !bytes.Equal(u.Root[:], rootOf(data[:end])) {
					t.Fatalf("root at %d differs from RFC 6962 reference", end)
				}
				size = end
			}
			// Every proof in every tree size, from our tiles only (once:
			// the tiles are identical for every batching).
			if batch != 3 {
				return
			}
			hr := HashReader(st.read)
			for n := int64(1); n <= max; n++ {
				if !bytes.Equal(roots[n][:], rootOf(data[:n])) {
					t.Fatalf("root %d wrong", n)
				}
				for i := int64(0); i < n; i++ {
					p, err := tlog.ProveRecord(n, i, hr)
					if err != nil {
						t.Fatalf("ProveRecord(%d, %d): %v", n, i, err)
					}
					lh := LeafHash(data[i])
					if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(n), lh[:], hashesToBytes(p), roots[n][:]); err != nil {
						t.Fatalf("inclusion %d in %d: %v", i, n, err)
					}
				}
				for m := int64(1); m <= n; m++ {
					p, err := tlog.ProveTree(n, m, hr)
					if err != nil {
						t.Fatalf("ProveTree(%d, %d): %v", n, m, err)
					}
					if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(m), uint64(n), hashesToBytes(p), roots[m][:], roots[n][:]); err != nil {
						t.Fatalf("consistency %d -> %d: %v", m, n, err)
					}
				}
			}
		})
	}
}

func hashesToBytes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// TestLargeTree crosses the first level-1 tile boundary (65,536 leaves),
// where a level-2 tile first appears.
func TestLargeTree(t *testing.T) {
	if testing.Short() {
		t.Skip("large tree")
	}
	st := store{}
	a, _ := NewAppender(0, st.read)
	var hs []tlog.Hash
	total := 65536 + 300
	for i := 0; i < total; i++ {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		hs = append(hs, LeafHash(b[:]))
	}
	for size := 0; size < total; {
		end := min(size+4000, total)
		if size > 60000 {
			end = min(size+1+size%13, total)
		}
		u, err := a.Append(hs[size:end])
		if err != nil {
			t.Fatal(err)
		}
		st.put(u.Tiles)
		if end%2 == 0 {
			if a, err = NewAppender(int64(end), st.read); err != nil {
				t.Fatal(err)
			}
		}
		size = end
	}
	// Compare the root with a simple compact-range computation.
	var stack [][]byte
	var sizes []int
	for i := 0; i < total; i++ {
		stack = append(stack, hs[i][:])
		sizes = append(sizes, 1)
		for len(stack) >= 2 && sizes[len(sizes)-1] == sizes[len(sizes)-2] {
			h := rfc6962.DefaultHasher.HashChildren(stack[len(stack)-2], stack[len(stack)-1])
			stack = append(stack[:len(stack)-2], h)
			sizes = append(sizes[:len(sizes)-2], 2*sizes[len(sizes)-2])
		}
	}
	root := stack[len(stack)-1]
	for i := len(stack) - 2; i >= 0; i-- {
		root = rfc6962.DefaultHasher.HashChildren(stack[i], root)
	}
	got, err := a.Root()
	if err != nil || !bytes.Equal(got[:], root) {
		t.Fatalf("root %x, %v; want %x", got, err, root)
	}
	hr := HashReader(st.read)
	for _, i := range []int64{0, 255, 256, 65535, 65536, int64(total) - 1} {
		p, err := tlog.ProveRecord(int64(total), i, hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(total), hs[i][:], hashesToBytes(p), root); err != nil {
			t.Fatalf("inclusion of %d: %v", i, err)
		}
	}
}

func TestInTree(t *testing.T) {
	for _, tc := range []struct {
		tile tlog.Tile
		size int64
		want bool
	}{
		{tlog.Tile{L: 0, N: 0, W: 1}, 0, false},
		{tlog.Tile{L: 0, N: 0, W: 1}, 1, true},
		{tlog.Tile{L: 0, N: 0, W: 2}, 1, false},
		{tlog.Tile{L: 0, N: 0, W: 256}, 256, true},
		{tlog.Tile{L: 0, N: 1, W: 1}, 256, false},
		{tlog.Tile{L: 1, N: 0, W: 1}, 255, false},
		{tlog.Tile{L: 1, N: 0, W: 1}, 256, true},
		{tlog.Tile{L: EntriesLevel, N: 0, W: 7}, 7, true},
		{tlog.Tile{L: EntriesLevel, N: 0, W: 8}, 7, false},
		{tlog.Tile{L: 0, N: -1, W: 1}, 7, false},
	} {
		if got := InTree(tc.tile, tc.size); got != tc.want {
			t.Errorf("InTree(%+v, %d) = %v", tc.tile, tc.size, got)
		}
	}
}

func TestLeafHash(t *testing.T) {
	e := []byte(`{"v":1}`)
	want := sha256.Sum256(append([]byte{0}, e...))
	if got := LeafHash(e); got != want {
		t.Fatalf("LeafHash = %x, want %x", got, want)
	}
}
