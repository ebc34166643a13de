// Package bundle builds what the log serves to user agents and issuers:
// the keys bundle (GET /v1/keys.bundle, format in docs/bundle.md) and a
// single issuer's latest key commitment entry as a C2SP tlog-proof
// (GET /v1/issuer-proof), from a narrow Source the log's storage provides.
// Package verify parses and verifies both.
package bundle

import (
	"context"
	"errors"
	"fmt"

	"github.com/keycommit/keycommit/log/verify"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ErrNotLogged is returned (wrapped) by a Source when the log has not
// logged what was asked for in the tree of the given size (no checkpoint
// yet, no snapshot, no key commitment of that issuer). The Handler
// answers it with 404; a storage.ErrNotFound from the storage the Source
// reads is not this (the Handler answers that with a server error).
var ErrNotLogged = errors.New("not logged")

// Source is what building bundles and issuer proofs needs from the log.
// Every method reads a consistent view of the log; treeSize is the size of
// a checkpoint Checkpoint returned, so answers never refer to entries
// beyond it.
type Source interface {
	// Checkpoint returns the latest published checkpoint: the signed note
	// with the witness cosignatures collected for it.
	Checkpoint(ctx context.Context) ([]byte, error)
	// LatestSnapshot returns the index and exact leaf bytes of the latest
	// snapshot entry with index < treeSize, and the canonical key set
	// (schema.KeySet.Marshal) whose digest it records. ErrNotLogged if
	// there is none.
	LatestSnapshot(ctx context.Context, treeSize uint64) (index uint64, entry, keySet []byte, err error)
	// LatestCommitment returns the index and exact leaf bytes of the
	// issuer's latest key commitment entry with index < treeSize.
	// ErrNotLogged if there is none.
	LatestCommitment(ctx context.Context, issuer string, treeSize uint64) (index uint64, entry []byte, err error)
	// InclusionProof returns the RFC 6962 inclusion proof of the leaf at
	// index in the tree of size treeSize.
	InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error)
	// ConsistencyProof returns the RFC 6962 consistency proof from the tree
	// of size oldSize to the tree of size newSize (0 < oldSize < newSize).
	ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error)
}

// Build builds the keys bundle for the latest checkpoint of src. If
// 0 < oldSize < the checkpoint's size, the bundle carries the consistency
// proof from oldSize (a user agent asks with the size of the bundle it
// verified last); otherwise it carries none. Build checks what it is
// handed: the key set is the one the snapshot commits to and the inclusion
// proof leads to the checkpoint's root.
func Build(ctx context.Context, src Source, oldSize uint64) ([]byte, error) {
	note, err := src.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the checkpoint: %w", err)
	}
	return BuildFor(ctx, src, note, oldSize)
}

// BuildFor is Build for a given checkpoint note.
func BuildFor(ctx context.Context, src Source, note []byte, oldSize uint64) ([]byte, error) {
	cp, err := verify.ParseCheckpoint(note)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the checkpoint: %w", err)
	}
	index, entry, keySet, err := src.LatestSnapshot(ctx, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the latest snapshot in the tree of size %d: %w", cp.Size, err)
	}
	snap, err := verify.ParseSnapshotEntry(entry)
	if err != nil {
		return nil, fmt.Errorf("snapshot entry at index %d: %w", index, err)
	}
	if ok, got := snap.CommitsTo(keySet); !ok {
		return nil, fmt.Errorf("key set stored for the snapshot at index %d has commitment %x, the snapshot records %x", index, got, snap.Commitment())
	}
	incl, err := inclusion(ctx, src, index, entry, cp)
	if err != nil {
		return nil, err
	}
	b := &verify.Bundle{KeySet: keySet, Entry: entry, Index: index, Inclusion: incl, Checkpoint: note}
	if oldSize > 0 && oldSize < cp.Size {
		hashes, err := src.ConsistencyProof(ctx, oldSize, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("couldn't get the consistency proof from size %d to %d: %w", oldSize, cp.Size, err)
		}
		b.Consistency = &verify.ConsistencyProof{OldSize: oldSize, Hashes: hashes}
	}
	return b.Marshal()
}

// BuildIssuerProof builds a C2SP tlog-proof of the issuer's latest key
// commitment entry in the latest checkpoint of src, with the entry (exact
// leaf bytes) as the proof's extra data.
func BuildIssuerProof(ctx context.Context, src Source, issuer string) ([]byte, error) {
	note, err := src.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the checkpoint: %w", err)
	}
	cp, err := verify.ParseCheckpoint(note)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the checkpoint: %w", err)
	}
	index, entry, err := src.LatestCommitment(ctx, issuer, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the latest key commitment of %q: %w", issuer, err)
	}
	incl, err := inclusion(ctx, src, index, entry, cp)
	if err != nil {
		return nil, err
	}
	p := &verify.TLogProof{Extra: entry, Index: index, Inclusion: incl, Checkpoint: note}
	return p.Marshal()
}

func inclusion(ctx context.Context, src Source, index uint64, entry []byte, cp *verify.Checkpoint) ([][]byte, error) {
	hashes, err := src.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("couldn't get the inclusion proof of index %d in the tree of size %d: %w", index, cp.Size, err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, rfc6962.DefaultHasher.HashLeaf(entry), hashes, cp.Hash[:]); err != nil {
		err = verify.ProofError(err)
		return nil, fmt.Errorf("inclusion proof of index %d in the tree of size %d does not verify: %w", index, cp.Size, err)
	}
	return hashes, nil
}
