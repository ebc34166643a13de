package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/storage/storagetest"
	"github.com/keycommit/keycommit/log/tiles"
	"golang.org/x/mod/sumdb/tlog"
)

func TestSuite(t *testing.T) {
	paths := map[storage.Backend]string{}
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Backend {
			p := filepath.Join(t.TempDir(), "log.db")
			s, err := Create(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			paths[s] = p
			return s
		},
		Reopen: func(t *testing.T, b storage.Backend) storage.Backend {
			p := paths[b]
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			s, err := Open(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			paths[s] = p
			return s
		},
	})
}

func TestCreateOpenRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "log.db")
	if _, err := Open(ctx, p); err == nil {
		t.Fatal("opened a missing database")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("Open created a database file")
	}
	s, err := Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Create(ctx, p); err == nil {
		t.Fatal("created a database over an existing one")
	}
	s, err = Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	other := filepath.Join(dir, "other.db")
	if err := os.WriteFile(other, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, other); err == nil {
		t.Fatal("opened a file that is not a log database")
	}
}

// TestOpenAddsPolicyStateTable opens a database made before the
// policy_state and key_sets tables existed: Open adds them, and the store
// works.
func TestOpenAddsPolicyStateTable(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "log.db")
	s, err := Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `DROP TABLE policy_state; DROP TABLE key_sets`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.PolicyState(ctx); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("PolicyState of an upgraded database: %v, want ErrNotFound", err)
	}
	d := []byte(`{"entry":0}`)
	b := &storage.Batch{Entries: []storage.Entry{{Data: d, LeafHash: tiles.LeafHash(d)}}, Checkpoint: []byte("checkpoint 1"),
		PolicyState: &storage.PolicyState{Size: 1, Data: []byte("state")}, KeySet: &storage.KeySet{Index: 0, Data: []byte("key set")}}
	if err := s.Append(ctx, b); err != nil {
		t.Fatal(err)
	}
	if ks, err := s.KeySetBefore(ctx, 1); err != nil || string(ks.Data) != "key set" {
		t.Fatalf("KeySetBefore = %+v, %v", ks, err)
	}
	if ps, err := s.PolicyState(ctx); err != nil || ps.Size != 1 || string(ps.Data) != "state" {
		t.Fatalf("PolicyState = %+v, %v", ps, err)
	}
}

// TestCheckpointSeenAcrossStores: a checkpoint appended through one Store
// is seen at once by that Store, and by another Store open on the same
// file (as by another process) once it checks data_version.
func TestCheckpointSeenAcrossStores(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "log.db")
	w, err := Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// r checks data_version on every read (by default at most every
	// recheckAfter); w sees its own appends through its cache.
	r.cps.exact = true
	if _, _, err := r.Checkpoint(ctx); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Checkpoint of an empty log: %v", err)
	}
	app, _ := tiles.NewAppender(0, nil)
	for i := 0; i < 5; i++ {
		d := []byte(fmt.Sprintf(`{"entry":%d}`, i))
		u, _ := app.Append([]tlog.Hash{tiles.LeafHash(d)})
		cp := []byte(fmt.Sprintf("checkpoint %d", i+1))
		if err := w.Append(ctx, &storage.Batch{Start: uint64(i), Entries: []storage.Entry{{Data: d, LeafHash: tiles.LeafHash(d)}}, Tiles: u.Tiles, Checkpoint: cp}); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*Store{r, w} {
			if n, got, err := s.Checkpoint(ctx); err != nil || n != uint64(i+1) || string(got) != string(cp) {
				t.Fatalf("after append %d: Checkpoint = %d, %q, %v", i, n, got, err)
			}
		}
		const cosigned3 = "cosigned 3\n\n\u2014 w AAAAAAA=\n" // key ID and a 1-byte signature
		if i == 2 {
			if err := w.SetCosigned(ctx, 3, []byte(cosigned3)); err != nil {
				t.Fatal(err)
			}
		}
		if i >= 2 {
			if n, got, err := r.Cosigned(ctx); err != nil || n != 3 || string(got) != cosigned3 {
				t.Fatalf("Cosigned = %d, %q, %v", n, got, err)
			}
		}
	}
}
