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

// testPolicyState checks the optional storage.PolicyStateReader: a
// policy state stored with a batch is read back (across a reopen), a
// batch without one keeps the previous one, a failed batch stores none,
// and a state whose size is not the batch's end is refused.
func testPolicyState(t *testing.T, h Harness) {
	ctx := context.Background()
	b := newBackend(t, h)
	if _, ok := b.(storage.PolicyStateReader); !ok {
		t.Skipf("%T does not store policy states (the sequencer replays every entry at startup)", b)
	}
	app, _ := tiles.NewAppender(0, nil)
	var size uint64
	appendBatch := func(b storage.Backend, n int, ps *storage.PolicyState) error {
		var es []storage.Entry
		var hs []tlog.Hash
		for i := 0; i < n; i++ {
			d := []byte(fmt.Sprintf(`{"entry":%d}`, size+uint64(i)))
			e := storage.Entry{Data: d, LeafHash: tiles.LeafHash(d)}
			es, hs = append(es, e), append(hs, e.LeafHash)
		}
		u, err := app.Append(hs)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Append(ctx, &storage.Batch{Start: size, Entries: es, Tiles: u.Tiles,
			Checkpoint: []byte(fmt.Sprintf("checkpoint %d", u.Size)), PolicyState: ps})
		if err == nil {
			size = uint64(u.Size)
			return nil
		}
		// The appender moved on; start again from what is stored.
		var rerr error
		if app, rerr = tiles.NewAppender(int64(size), func(t tlog.Tile) ([]byte, error) { return b.Tile(ctx, t.L, t.N) }); rerr != nil {
			t.Fatal(rerr)
		}
		return err
	}
	get := func(b storage.Backend) *storage.PolicyState {
		ps, err := b.(storage.PolicyStateReader).PolicyState(ctx)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			t.Fatalf("PolicyState: %v", err)
		}
		return ps
	}
	if ps := get(b); ps != nil {
		t.Fatalf("policy state of an empty store: %+v", ps)
	}
	if err := appendBatch(b, 3, nil); err != nil {
		t.Fatal(err)
	}
	if ps := get(b); ps != nil {
		t.Fatalf("policy state stored without one: %+v", ps)
	}
	if err := appendBatch(b, 5, &storage.PolicyState{Size: 8, Data: []byte("state at 8")}); err != nil {
		t.Fatal(err)
	}
	if err := appendBatch(b, 2, nil); err != nil {
		t.Fatal(err)
	}
	if ps := get(b); ps == nil || ps.Size != 8 || string(ps.Data) != "state at 8" {
		t.Fatalf("policy state = %+v, want size 8", ps)
	}
	// A state that does not end where the batch ends is refused, with
	// the whole batch.
	if err := appendBatch(b, 2, &storage.PolicyState{Size: 11, Data: []byte("state at 11")}); err == nil {
		t.Fatal("Append stored a policy state of size 11 with a batch ending at 12")
	}
	if n, _, err := b.Checkpoint(ctx); err != nil || n != 10 {
		t.Fatalf("after a refused batch: size %d, %v; want 10", n, err)
	}
	if err := appendBatch(b, 2, &storage.PolicyState{Size: 12, Data: []byte("state at 12")}); err != nil {
		t.Fatal(err)
	}
	if h.Reopen != nil {
		b = h.Reopen(t, b)
		t.Cleanup(func() { b.Close() })
	}
	if ps := get(b); ps == nil || ps.Size != 12 || string(ps.Data) != "state at 12" {
		t.Fatalf("policy state after reopening = %+v, want size 12", ps)
	}
}
