// Package storage defines what the log's sequencer writes and what its
// HTTP server reads, and provides an in-memory backend for tests.
//
// A backend has two parts, each a set of small interfaces:
//
//   - The transparency-log core, which every backend stores: entries
//     (EntryReader), hash tiles (TileReader), the signed checkpoint
//     (CheckpointReader), all appended together by an Appender, and the
//     latest witness-cosigned checkpoint (CosignedWriter). This is the
//     log as C2SP tlog-tiles serves it; a copy of it (log migrate) needs
//     nothing else.
//   - keycommit's indexes, derived from the entries: the leaf-hash lookup
//     (LeafIndexReader), issuer histories (IssuerReader), the latest key
//     set (KeySetReader) and, optionally, a serialised policy state
//     (PolicyStateReader). Each is a function of the entries: a leaf hash
//     is tiles.LeafHash of an entry's bytes, an issuer history is the
//     indexes of the entries whose schema.Entry.Issuer is the origin, and
//     the key set and a policy state are what policy replay of the entries
//     gives (the key set at the last snapshot entry, whose digest it
//     matches; the state after the entries before its size). The sequencer hands
//     them to Append with the entries (Entry.LeafHash, Entry.Issuer,
//     Batch.KeySet, Batch.PolicyState) so that a backend stores them in
//     the same atomic step and never needs to parse an entry; a backend
//     that loses them can rebuild them by reading its entries back.
//
// The sequencer is the only writer: it computes entries, tiles and the
// signed checkpoint itself and hands each batch to an Appender, which
// makes it durable in one atomic step. No backend signs. The embedded
// backends (Memory, log/sqlitestore) store bytes and compute no hashes.
// The Trillian backend (log/trillianstore) hashes: shared by several
// frontends, it recomputes the leaf hashes, tiles and root of the leaves
// another frontend (the log's writer) appended and checks them against
// the checkpoint that writer signed before it serves them, and checks
// Trillian's roots against its own tree (see its package doc). Every
// backend runs the suite in package storagetest.
//
// Contracts common to every interface here: methods are safe for
// concurrent use; a read sees every Append and SetCosigned that has
// returned nil (read-after-write), and never part of a batch; a returned
// error wraps ErrNotFound when what was asked for is not stored.
package storage

import (
	"context"
	"errors"
	"slices"

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

// Appender is the sequencer's side of the log core. There is one
// appender per log.
type Appender interface {
	// Append stores b. When it returns nil, all of b is durable: it
	// survives a crash of the process or the machine, and every reader
	// sees it, core and indexes alike. When it returns an error, either
	// all of b was stored or none of it (a CheckpointReader tells which);
	// never part of it. Append returns ErrConflict if b.Start is not the
	// stored size.
	Append(ctx context.Context, b *Batch) error
}

// CosignedWriter stores what the witnesses cosigned.
type CosignedWriter interface {
	// SetCosigned stores a witness-cosigned checkpoint of the given size
	// by the rule of MergeCosigned: a larger size replaces the stored one,
	// a smaller one is ignored, and one of the stored size with the same
	// checkpoint body is merged into it per signing key, the newer
	// cosignature of each witness winning (so re-cosigning makes the
	// stored note fresher and never older); one of the stored size with a
	// different body is refused with ErrCosignedConflict. When it returns
	// nil the result is durable and Cosigned returns it (or a larger or
	// fresher one). Concurrent calls are serialised: none is lost.
	SetCosigned(ctx context.Context, size uint64, note []byte) error
}

// CheckpointReader reads the log's checkpoints.
type CheckpointReader interface {
	// Checkpoint returns the latest signed checkpoint and its size, or
	// ErrNotFound for a log that has none. Every entry and tile of that
	// size is readable once Checkpoint returns it.
	Checkpoint(ctx context.Context) (size uint64, note []byte, err error)
	// Cosigned returns the latest cosigned checkpoint and its size, or
	// ErrNotFound. Its size may be below Checkpoint's (witnesses lag).
	Cosigned(ctx context.Context) (size uint64, note []byte, err error)
}

// TileReader reads hash tiles, like tlog.TileReader but for one tile.
type TileReader interface {
	// Tile returns the widest stored data of hash tile n at level l, or
	// ErrNotFound. The caller uses a prefix of it.
	Tile(ctx context.Context, l int, n int64) ([]byte, error)
}

// EntryReader reads entries.
type EntryReader interface {
	// Entries returns the entries with indexes start ≤ i < end, all of
	// them, or ErrNotFound if end is beyond the tree.
	Entries(ctx context.Context, start, end uint64) ([][]byte, error)
}

// LogReader reads the whole log core: what tlog-tiles serves, and what a
// copy of the log needs.
type LogReader interface {
	CheckpointReader
	TileReader
	EntryReader
}

// LeafIndexReader is the index from leaf hash to entry index.
type LeafIndexReader interface {
	// LeafIndex returns the (smallest) index of the entry with the given
	// leaf hash, or ErrNotFound.
	LeafIndex(ctx context.Context, leafHash tlog.Hash) (uint64, error)
}

// IssuerReader is the index of issuer histories.
type IssuerReader interface {
	// IssuerEntries returns the indexes of every entry of the issuer
	// origin, in increasing order (empty for an unknown origin).
	IssuerEntries(ctx context.Context, origin string) ([]uint64, error)
}

// KeySetReader reads the latest key set.
type KeySetReader interface {
	// KeySet returns the latest stored key set, or ErrNotFound.
	KeySet(ctx context.Context) (*KeySet, error)
}

// KeySetHistory is how many of the latest stored key sets (the latest
// included) a backend that implements KeySetHistoryReader keeps: the keys
// bundle handler builds deltas from them (docs/bundle.md), so a user agent
// holding the bundle of any of the last KeySetHistory snapshots gets a
// delta, across restarts of the log.
const KeySetHistory = 24

// KeySetHistoryReader is implemented by a backend that keeps the key sets
// of its last KeySetHistory snapshots, each stored with the batch that
// recorded it.
type KeySetHistoryReader interface {
	// KeySetBefore returns the key set of the latest snapshot entry with
	// Index < treeSize among the last KeySetHistory stored, or
	// ErrNotFound (no snapshot below treeSize, or it is older than those
	// kept).
	KeySetBefore(ctx context.Context, treeSize uint64) (*KeySet, error)
}

// IssuerTailReader is implemented by a backend that reads the end of an
// issuer history without reading all of it.
type IssuerTailReader interface {
	// IssuerEntriesBefore returns the indexes, in order, of at most the
	// last n entries of the issuer with index < before, and how many of
	// the issuer's entries have index < before.
	IssuerEntriesBefore(ctx context.Context, origin string, before uint64, n int) (idx []uint64, total int, err error)
}

// IssuerEntriesBefore reads the end of an issuer history from r: through
// IssuerTailReader if r implements it (reading at most n indexes),
// otherwise by reading the whole history and keeping its end.
func IssuerEntriesBefore(ctx context.Context, r IssuerReader, origin string, before uint64, n int) ([]uint64, int, error) {
	if t, ok := r.(IssuerTailReader); ok {
		return t.IssuerEntriesBefore(ctx, origin, before, n)
	}
	idx, err := r.IssuerEntries(ctx, origin)
	if err != nil {
		return nil, 0, err
	}
	return tailBefore(idx, before, n)
}

// tailBefore returns the last n of the sorted idx below before, and how
// many are below before.
func tailBefore(idx []uint64, before uint64, n int) ([]uint64, int, error) {
	total, _ := slices.BinarySearch(idx, before)
	idx = idx[:total]
	return slices.Clone(idx[max(0, total-max(n, 0)):]), total, nil
}

// Writer is everything the sequencer writes.
type Writer interface {
	Appender
	CosignedWriter
}

// Reader is everything the HTTP server reads: the log core and the
// keycommit indexes (PolicyStateReader aside, which only the sequencer
// reads, and only if the backend has it).
type Reader interface {
	LogReader
	LeafIndexReader
	IssuerReader
	KeySetReader
}

// Backend is a complete log store.
type Backend interface {
	Reader
	Writer
	// Close releases the backend's resources.
	Close() error
}
