package trillianstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/storage/storagetest"
	"github.com/keycommit/keycommit/log/trillianstore"
	"github.com/keycommit/keycommit/log/trillianstore/trilliantest"
)

// TestSuite runs the shared backend suite against real Trillian on real
// MariaDB: a fresh tree per backend, a SQLite cache file per frontend.
func TestSuite(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.Options{})
	db := openDB(t, env)
	type opened struct {
		tree  int64
		cache string
	}
	stores := map[storage.Backend]opened{}
	open := func(t *testing.T, o opened, create bool) storage.Backend {
		ctx := context.Background()
		var cache *sqlitestore.Store
		var err error
		if create {
			cache, err = sqlitestore.Create(ctx, o.cache)
		} else {
			cache, err = sqlitestore.Open(ctx, o.cache)
		}
		if err != nil {
			t.Fatal(err)
		}
		st, err := trillianstore.Open(ctx, trillianstore.Config{Client: env.Log, DB: db, TreeID: o.tree, Cache: cache, FollowInterval: -1})
		if err != nil {
			t.Fatalf("%v\n%s", err, env.Logs())
		}
		if ok, err := st.Acquire(ctx, "suite", "", time.Minute); err != nil || !ok {
			t.Fatalf("couldn't take the writer's lease: %v, %v", ok, err)
		}
		stores[st] = o
		return st
	}
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Backend {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tree, err := env.CreateTree(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return open(t, opened{tree, filepath.Join(t.TempDir(), "cache.db")}, true)
		},
		Reopen: func(t *testing.T, b storage.Backend) storage.Backend {
			o := stores[b]
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, o, false)
		},
	})
}
