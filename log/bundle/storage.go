package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrSnapshotPending is returned (wrapped) by LatestSnapshot when the
// latest snapshot is not yet in the checkpoint asked about (typically: it
// is in the latest signed checkpoint, whose cosignatures are still being
// collected) and the key set of the snapshot before it is no longer
// stored (storage.KeySetHistoryReader keeps the last few). The Handler then keeps serving the bundle it built last.
var ErrSnapshotPending = errors.New("the latest snapshot is not in that checkpoint yet")

// StorageReader is what a StorageSource reads: the log core and two of
// the indexes (issuer histories and the key set; not the leaf lookup).
type StorageReader interface {
	storage.LogReader
	storage.IssuerReader
	storage.KeySetReader
}

var _ StorageReader = storage.Reader(nil)

// StorageSource is a Source over a log's storage: the cosigned
// checkpoint (the log-signed one while none is stored), the stored key set,
// entries, and proofs computed from the stored tiles.
type StorageSource struct {
	r StorageReader
}

// NewStorageSource returns a Source reading r.
func NewStorageSource(r StorageReader) *StorageSource { return &StorageSource{r: r} }

var _ Source = (*StorageSource)(nil)

// Checkpoint implements Source: the latest cosigned checkpoint, or the
// latest signed one if there is no cosigned one (a verifier then refuses
// the bundle for want of cosignatures, naming the quorum check).
func (s *StorageSource) Checkpoint(ctx context.Context) ([]byte, error) {
	_, note, err := s.r.Cosigned(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		_, note, err = s.r.Checkpoint(ctx)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("the log has no checkpoint: %w", ErrNotLogged)
	}
	return note, err
}

// LatestSnapshot implements Source with the stored key set, or, for a tree
// size the latest snapshot is not in, with the key set kept for an earlier
// snapshot if the storage implements storage.KeySetHistoryReader (the
// last storage.KeySetHistory snapshots).
func (s *StorageSource) LatestSnapshot(ctx context.Context, treeSize uint64) (uint64, []byte, []byte, error) {
	ks, err := s.r.KeySet(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil, nil, fmt.Errorf("no snapshot logged yet: %w", ErrNotLogged)
	}
	if err != nil {
		return 0, nil, nil, err
	}
	if ks.Index >= treeSize {
		h, ok := s.r.(storage.KeySetHistoryReader)
		if !ok {
			return 0, nil, nil, fmt.Errorf("snapshot at index %d, tree size %d: %w", ks.Index, treeSize, ErrSnapshotPending)
		}
		latest := ks.Index
		if ks, err = h.KeySetBefore(ctx, treeSize); errors.Is(err, storage.ErrNotFound) {
			return 0, nil, nil, fmt.Errorf("snapshot at index %d, tree size %d, and no earlier key set kept below it: %w", latest, treeSize, ErrSnapshotPending)
		}
		if err != nil {
			return 0, nil, nil, err
		}
	}
	es, err := s.r.Entries(ctx, ks.Index, ks.Index+1)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("couldn't read snapshot entry %d: %w", ks.Index, err)
	}
	return ks.Index, es[0], ks.Data, nil
}

// LatestCommitment implements Source: the issuer's latest key_commitment
// entry below treeSize.
func (s *StorageSource) LatestCommitment(ctx context.Context, issuer string, treeSize uint64) (uint64, []byte, error) {
	idx, err := s.r.IssuerEntries(ctx, issuer)
	if err != nil {
		return 0, nil, err
	}
	for i := len(idx) - 1; i >= 0; i-- {
		if idx[i] >= treeSize {
			continue
		}
		es, err := s.r.Entries(ctx, idx[i], idx[i]+1)
		if err != nil {
			return 0, nil, fmt.Errorf("couldn't read entry %d: %w", idx[i], err)
		}
		var e struct {
			Kind string `json:"kind"`
		}
		if err := json.NewDecoder(bytes.NewReader(es[0])).Decode(&e); err != nil {
			return 0, nil, fmt.Errorf("couldn't read the kind of entry %d: %w", idx[i], err)
		}
		if e.Kind == "key_commitment" {
			return idx[i], es[0], nil
		}
	}
	return 0, nil, fmt.Errorf("no key commitment of %q below size %d: %w", issuer, treeSize, ErrNotLogged)
}

// hashReader reads the hashes of the tree of the given size from stored
// tiles, each read at its width in that tree.
func (s *StorageSource) hashReader(ctx context.Context, size uint64) tlog.HashReader {
	return tiles.HashReader(func(t tlog.Tile) ([]byte, error) {
		if w, ok := tiles.TileAt(t.L, t.N, int64(size)); ok && w.W >= t.W {
			t = w
		}
		d, err := s.r.Tile(ctx, t.L, t.N)
		if err != nil {
			return nil, err
		}
		if len(d) < t.W*tlog.HashSize {
			return nil, fmt.Errorf("tile %s is short: %w", tiles.Path(t), storage.ErrNotFound)
		}
		return d[:t.W*tlog.HashSize], nil
	})
}

// InclusionProof implements Source.
func (s *StorageSource) InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error) {
	return ProveInclusion(s.hashReader(ctx, treeSize), index, treeSize)
}

// ConsistencyProof implements Source.
func (s *StorageSource) ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
	return ProveConsistency(s.hashReader(ctx, newSize), oldSize, newSize)
}

// ProveInclusion proves entry index in the tree of treeSize whose hashes
// hr reads, as Source.InclusionProof returns it: every Source over a
// hash reader (StorageSource, bundletest's log) proves this way.
func ProveInclusion(hr tlog.HashReader, index, treeSize uint64) ([][]byte, error) {
	p, err := tlog.ProveRecord(int64(treeSize), int64(index), hr)
	if err != nil {
		return nil, err
	}
	return hashesOf(p), nil
}

// ProveConsistency proves the tree of oldSize a prefix of the tree of
// newSize whose hashes hr reads, as Source.ConsistencyProof returns it.
func ProveConsistency(hr tlog.HashReader, oldSize, newSize uint64) ([][]byte, error) {
	p, err := tlog.ProveTree(int64(newSize), int64(oldSize), hr)
	if err != nil {
		return nil, err
	}
	return hashesOf(p), nil
}

func hashesOf(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = append([]byte(nil), p[i][:]...)
	}
	return out
}
