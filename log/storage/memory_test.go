package storage_test

import (
	"testing"

	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/storage/storagetest"
)

func TestMemory(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Backend { return storage.NewMemory() },
		// Reopening keeps the same in-memory store.
		Reopen: func(t *testing.T, b storage.Backend) storage.Backend { return b },
	})
}
