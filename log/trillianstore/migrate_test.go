package trillianstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/trillianstore"
	"github.com/keycommit/keycommit/log/trillianstore/trilliantest"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// buildSQLiteLog makes a SQLite log of n issuer registrations (plus entry
// 0) through the real sequencer and returns it with every checkpoint it
// published.
func buildSQLiteLog(t testing.TB, k logKey, n int) (*sqlitestore.Store, [][]byte) {
	t.Helper()
	ctx := context.Background()
	src, err := sqlitestore.Create(ctx, filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	cfg := sequencer.Config{Backend: src, Signer: k.signer, Verifier: k.verifier, OriginControl: issuertest.AssumeControl}
	first, err := sequencer.Init(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := sequencer.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	published := map[uint64][]byte{first.Size: first.Checkpoint}
	var mu sync.Mutex
	var wg sync.WaitGroup
	const workers = 50
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				res, err := seq.Submit(ctx, issuertest.Numbered(t, i).Register(t))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				published[res.Size] = res.Checkpoint
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var cps [][]byte
	for _, cp := range published {
		cps = append(cps, cp)
	}
	return src, cps
}

// TestMigrate copies a 10,000-entry SQLite log into Trillian: identical
// roots at every size, every published checkpoint verifies against the
// new tree's consistency proofs, and a frontend over the new tree signs
// the very checkpoint the SQLite log last signed.
func TestMigrate(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.Options{})
	db := openDB(t, env)
	k := newKey(t)
	src, published := buildSQLiteLog(t, k, 10000)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tree, err := env.CreateTree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := trillianstore.Migrate(ctx, trillianstore.MigrateConfig{DB: db,
		Source: src, Verifier: k.verifier, Client: env.Log, TreeID: tree, Checkpoints: published,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, env.Logs())
	}
	n, latest, _ := src.Checkpoint(ctx)
	if res.Size != n || n != 10001 || res.SizesChecked != n || res.Copied != n {
		t.Fatalf("migrated %+v, source size %d", res, n)
	}
	if res.CheckpointsProved != len(published)+1 || len(published) < 2 {
		t.Fatalf("proved %d checkpoints, %d published", res.CheckpointsProved, len(published))
	}
	// Independently of Migrate: every published checkpoint verifies
	// against Trillian's consistency proof to the new root.
	r, err := trillianstore.LatestRoot(ctx, env.Log, tree)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range published {
		c, _, err := checkpoint.Open(cp, k.verifier)
		if err != nil {
			t.Fatal(err)
		}
		if c.Size == r.Size {
			if c.Hash != r.Hash {
				t.Fatalf("root at %d differs", c.Size)
			}
			continue
		}
		p, err := env.Log.GetConsistencyProof(ctx, &trillian.GetConsistencyProofRequest{LogId: tree, FirstTreeSize: int64(c.Size), SecondTreeSize: int64(r.Size)})
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, c.Size, r.Size, p.Proof.Hashes, c.Hash[:], r.Hash[:]); err != nil {
			t.Fatalf("checkpoint of size %d: %v", c.Size, err)
		}
	}
	// Running it again is a no-op that proves the same.
	again, err := trillianstore.Migrate(ctx, trillianstore.MigrateConfig{Source: src, Verifier: k.verifier, Client: env.Log, DB: db, TreeID: tree})
	if err != nil || again.Copied != 0 || again.Root != res.Root {
		t.Fatalf("second migration: %+v, %v", again, err)
	}
	// A frontend over the new tree continues the log with the same key.
	st, err := trillianstore.Open(ctx, trillianstore.Config{Client: env.Log, DB: db, TreeID: tree, Cache: storage.NewMemory(), Verifier: k.verifier, FollowInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if m, cp, err := st.Checkpoint(ctx); err != nil || m != n || string(cp) != string(latest) {
		t.Fatalf("frontend over the migrated tree: size %d, checkpoint %q, %v; want %q", m, cp, err, latest)
	}
}
