// Package storage defines what the log's sequencer writes and what its
// HTTP server reads, and provides an in-memory backend for tests.
//
// The sequencer is the only writer: it computes entries, tiles and the
// signed checkpoint itself and hands each batch to a Writer, which makes it
// durable in one atomic step. Backends store bytes; they never compute
// hashes or sign. Every backend runs the suite in package storagetest.
package storage

import (
	"context"
	"errors"

	"github.com/keycommit/keycommit/log/tiles"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrNotFound is returned (wrapped) when what was asked for is not stored:
// an entry or tile beyond the tree, an unknown leaf hash, no key set yet.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned (wrapped) by Append when the batch does not start
// at the stored tree size: another writer appended, or a retry of a batch
// that was already stored.
var ErrConflict = errors.New("batch does not start at the stored tree size")

// Entry is one logged entry.
type Entry struct {
	// Data is the entry's canonical bytes, exactly as entry bundles serve
	// them.
	Data []byte
	// LeafHash is the RFC 6962 leaf hash of Data.
	LeafHash tlog.Hash
	// Issuer is the entry's issuer origin, "" for log-written entries.
	Issuer string
}

// KeySet is the key set recorded by the snapshot entry at Index: Data is
// its canonical encoding (schema.KeySet.Marshal), whose SHA-256 is the
// snapshot's digest.
type KeySet struct {
	Index uint64
	Data  []byte
}

// Batch is what the sequencer appends in one atomic step.
type Batch struct {
	// Start is the index of the first entry: the stored tree size.
	Start uint64
	// Entries are appended at Start, Start+1, ...
	Entries []Entry
	// Tiles are the hash tiles that changed, each at its width in the
	// new tree. A stored tile is replaced by a wider version of itself.
	Tiles []tiles.Tile
	// Checkpoint is the signed checkpoint of the new tree, of size
	// Start+len(Entries).
	Checkpoint []byte
	// KeySet, when not nil, replaces the stored key set.
	KeySet *KeySet
	// PolicyState, when not nil, is the sequencer's policy state after
	// this batch (PolicyState.Size == Size()); a backend that implements
	// PolicyStateReader stores it with the batch, replacing the one
	// stored before. Other backends ignore it.
	PolicyState *PolicyState
}

// Size returns the tree size after b.
func (b *Batch) Size() uint64 { return b.Start + uint64(len(b.Entries)) }

// Writer is the sequencer's side of a backend. There is one writer per
// log.
type Writer interface {
	// Append stores b. When it returns nil, all of b is durable: it
	// survives a crash of the process or the machine, and every Reader
	// method sees it. When it returns an error, either all of b was
	// stored or none of it (a Reader tells which); never part of it.
	// Append returns ErrConflict if b.Start is not the stored size.
	Append(ctx context.Context, b *Batch) error

	// SetCosigned stores a witness-cosigned checkpoint of the given size,
	// unless a cosigned checkpoint of a larger size is already stored.
	SetCosigned(ctx context.Context, size uint64, note []byte) error
}

// Reader is the HTTP server's side of a backend (and how the sequencer
// recovers at startup). Its methods are safe for concurrent use and see
// every Append that has returned.
type Reader interface {
	// Checkpoint returns the latest signed checkpoint and its size, or
	// ErrNotFound for a log that has none.
	Checkpoint(ctx context.Context) (size uint64, note []byte, err error)
	// Cosigned returns the latest cosigned checkpoint and its size, or
	// ErrNotFound.
	Cosigned(ctx context.Context) (size uint64, note []byte, err error)
	// Tile returns the widest stored data of hash tile n at level l, or
	// ErrNotFound. The caller uses a prefix of it.
	Tile(ctx context.Context, l int, n int64) ([]byte, error)
	// Entries returns the entries with indexes start ≤ i < end, all of
	// them, or ErrNotFound if end is beyond the tree.
	Entries(ctx context.Context, start, end uint64) ([][]byte, error)
	// LeafIndex returns the (smallest) index of the entry with the given
	// leaf hash, or ErrNotFound.
	LeafIndex(ctx context.Context, leafHash tlog.Hash) (uint64, error)
	// IssuerEntries returns the indexes of every entry of the issuer
	// origin, in increasing order (empty for an unknown origin).
	IssuerEntries(ctx context.Context, origin string) ([]uint64, error)
	// KeySet returns the latest stored key set, or ErrNotFound.
	KeySet(ctx context.Context) (*KeySet, error)
}

// Backend is a complete log store.
type Backend interface {
	Reader
	Writer
	// Close releases the backend's resources.
	Close() error
}
