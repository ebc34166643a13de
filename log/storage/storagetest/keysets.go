package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"golang.org/x/mod/sumdb/tlog"
)

// testKeySetHistory checks the optional storage.KeySetHistoryReader: the
// key sets of the last storage.KeySetHistory snapshots are read back by
// tree size (across a reopen), older ones are gone, and KeySet still
// returns the latest.
func testKeySetHistory(t *testing.T, h Harness) {
	ctx := context.Background()
	b := newBackend(t, h)
	if _, ok := b.(storage.KeySetHistoryReader); !ok {
		t.Skipf("%T keeps only the latest key set (the bundle handler serves deltas from the snapshots it saw)", b)
	}
	if _, err := b.(storage.KeySetHistoryReader).KeySetBefore(ctx, 10); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("KeySetBefore of an empty store: %v, want ErrNotFound", err)
	}
	app, _ := tiles.NewAppender(0, nil)
	data := func(i uint64) []byte { return []byte(fmt.Sprintf(`{"pst":{"snapshot %d":{}},"privacy_pass":{}}`, i)) }
	// Batches of 3 entries, the last one a snapshot: snapshot k (k >= 0)
	// is at index 3k+2.
	const snapshots = storage.KeySetHistory + 5
	for k := uint64(0); k < snapshots; k++ {
		var es []storage.Entry
		for i := 3 * k; i < 3*k+3; i++ {
			d := []byte(fmt.Sprintf(`{"entry":%d}`, i))
			es = append(es, storage.Entry{Data: d, LeafHash: tiles.LeafHash(d)})
		}
		u, err := app.Append([]tlog.Hash{es[0].LeafHash, es[1].LeafHash, es[2].LeafHash})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(ctx, &storage.Batch{Start: 3 * k, Entries: es, Tiles: u.Tiles,
			Checkpoint: []byte(fmt.Sprintf("checkpoint %d", u.Size)), KeySet: &storage.KeySet{Index: 3*k + 2, Data: data(3*k + 2)}}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(b storage.Backend) {
		t.Helper()
		r := b.(storage.KeySetHistoryReader)
		first := uint64(snapshots - storage.KeySetHistory)
		for k := first; k < snapshots; k++ {
			idx := 3*k + 2
			for _, size := range []uint64{idx + 1, idx + 3} {
				ks, err := r.KeySetBefore(ctx, size)
				if err != nil || ks.Index != idx || string(ks.Data) != string(data(idx)) {
					t.Fatalf("KeySetBefore(%d) = %+v, %v; want the key set at %d", size, ks, err, idx)
				}
			}
		}
		for _, size := range []uint64{3*first + 2, 3, 1} {
			if ks, err := r.KeySetBefore(ctx, size); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("KeySetBefore(%d) = %+v, %v; want ErrNotFound (older than the %d kept)", size, ks, err, storage.KeySetHistory)
			}
		}
		if ks, err := b.KeySet(ctx); err != nil || ks.Index != 3*snapshots-1 {
			t.Fatalf("KeySet = %+v, %v", ks, err)
		}
	}
	check(b)
	if h.Reopen != nil {
		b = h.Reopen(t, b)
		t.Cleanup(func() { b.Close() })
		check(b)
	}
}
