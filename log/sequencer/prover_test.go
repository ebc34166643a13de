package sequencer

import (
	"fmt"
	"testing"

	"github.com/keycommit/keycommit/log/tiles"
	"golang.org/x/mod/sumdb/tlog"
)

// TestProver checks the batch prover against tlog.ProveRecord over every
// stored tile, for batches of many sizes crossing tile boundaries, with
// the prover knowing only the batch's tiles and the tree's edge (older
// tiles come through the fallback).
func TestProver(t *testing.T) {
	all := map[[2]int64][]byte{}
	read := func(tl tlog.Tile) ([]byte, error) {
		d, ok := all[[2]int64{int64(tl.L), tl.N}]
		if !ok {
			return nil, fmt.Errorf("no tile %s", tiles.Path(tl))
		}
		return d, nil
	}
	app, _ := tiles.NewAppender(0, nil)
	leaf := 0
	for _, n := range []int{1, 2, 3, 250, 7, 1, 300, 256, 1024, 65, 3000, 512, 1} {
		hs := make([]tlog.Hash, n)
		for i := range hs {
			hs[i] = tiles.LeafHash([]byte(fmt.Sprint(leaf)))
			leaf++
		}
		u, err := app.Append(hs)
		if err != nil {
			t.Fatal(err)
		}
		edge := map[[2]int64][]byte{}
		for _, tl := range tiles.EdgeTiles(u.Size) {
			d, _ := app.EdgeTile(tl.L, tl.N)
			edge[[2]int64{int64(tl.L), tl.N}] = d
		}
		reads := 0
		p := newProver(u, edge, func(tl tlog.Tile) ([]byte, error) { reads++; return read(tl) })
		for _, tl := range u.Tiles {
			all[[2]int64{int64(tl.L), tl.N}] = tl.Data
		}
		ref := tiles.HashReader(read)
		for i := u.OldSize; i < u.Size; i++ {
			got, err := tlog.ProveRecord(u.Size, i, p)
			if err != nil {
				t.Fatalf("size %d, index %d: %v", u.Size, i, err)
			}
			want, err := tlog.ProveRecord(u.Size, i, ref)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("size %d, index %d: proof differs from tlog's", u.Size, i)
			}
			if err := tlog.CheckRecord(got, u.Size, u.Root, i, hs[i-u.OldSize]); err != nil {
				t.Fatalf("size %d, index %d: %v", u.Size, i, err)
			}
		}
		if reads != 0 {
			t.Errorf("size %d: the prover read %d tiles beyond the batch and the edge", u.Size, reads)
		}
	}
}

// BenchmarkProver measures the inclusion proofs of one 4096-entry batch
// on top of 100,000 entries, with the prover knowing the batch's tiles and
// the edge: the answering goroutine's work per batch, without storage.
func BenchmarkProver(b *testing.B) {
	app, _ := tiles.NewAppender(0, nil)
	mk := func(n, from int) []tlog.Hash {
		hs := make([]tlog.Hash, n)
		for i := range hs {
			hs[i] = tiles.LeafHash([]byte(fmt.Sprint(from + i)))
		}
		return hs
	}
	if _, err := app.Append(mk(100000, 0)); err != nil {
		b.Fatal(err)
	}
	u, err := app.Append(mk(4096, 100000))
	if err != nil {
		b.Fatal(err)
	}
	edge := map[[2]int64][]byte{}
	for _, tl := range tiles.EdgeTiles(u.Size) {
		d, _ := app.EdgeTile(tl.L, tl.N)
		edge[[2]int64{int64(tl.L), tl.N}] = d
	}
	noRead := func(tl tlog.Tile) ([]byte, error) { return nil, fmt.Errorf("no tile %s", tiles.Path(tl)) }
	b.ResetTimer()
	for b.Loop() {
		p := newProver(u, edge, noRead)
		for i := u.OldSize; i < u.Size; i++ {
			if _, err := tlog.ProveRecord(u.Size, i, p); err != nil {
				b.Fatal(err)
			}
		}
	}
}
