package sqlitestore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/storage/storagetest"
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
