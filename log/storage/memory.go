package storage

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// Memory is an in-memory Backend for tests. It is durable only for the
// life of the process.
type Memory struct {
	mu       sync.RWMutex
	entries  [][]byte
	leaves   map[tlog.Hash]uint64
	issuers  map[string][]uint64
	tiles    map[[2]int64][]byte
	cpSize   uint64
	cp       []byte
	cosSize  uint64
	cosigned []byte
	keySet   *KeySet
	history  []*KeySet // the last KeySetHistory key sets, oldest first
	policy   *PolicyState
}

var (
	_ Backend             = (*Memory)(nil)
	_ PolicyStateReader   = (*Memory)(nil)
	_ KeySetHistoryReader = (*Memory)(nil)
	_ IssuerTailReader    = (*Memory)(nil)
)

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	return &Memory{leaves: map[tlog.Hash]uint64{}, issuers: map[string][]uint64{}, tiles: map[[2]int64][]byte{}}
}

// Append implements Writer.
func (m *Memory) Append(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if b.Start != uint64(len(m.entries)) {
		return fmt.Errorf("couldn't append at %d to a log of %d entries: %w", b.Start, len(m.entries), ErrConflict)
	}
	if ps := b.PolicyState; ps != nil && ps.Size != b.Size() {
		return fmt.Errorf("couldn't append: policy state of size %d stored with a batch ending at %d", ps.Size, b.Size())
	}
	for i, e := range b.Entries {
		idx := b.Start + uint64(i)
		m.entries = append(m.entries, bytes.Clone(e.Data))
		if _, ok := m.leaves[e.LeafHash]; !ok {
			m.leaves[e.LeafHash] = idx
		}
		if e.Issuer != "" {
			m.issuers[e.Issuer] = append(m.issuers[e.Issuer], idx)
		}
	}
	for _, t := range b.Tiles {
		k := [2]int64{int64(t.L), t.N}
		if len(t.Data) >= len(m.tiles[k]) {
			m.tiles[k] = bytes.Clone(t.Data)
		}
	}
	m.cpSize, m.cp = b.Size(), bytes.Clone(b.Checkpoint)
	if b.KeySet != nil {
		m.keySet = &KeySet{Index: b.KeySet.Index, Data: bytes.Clone(b.KeySet.Data)}
		m.history = append(m.history, m.keySet)
		if len(m.history) > KeySetHistory {
			m.history = append([]*KeySet(nil), m.history[len(m.history)-KeySetHistory:]...)
		}
	}
	if b.PolicyState != nil {
		m.policy = &PolicyState{Size: b.PolicyState.Size, Data: bytes.Clone(b.PolicyState.Data)}
	}
	return nil
}

// PolicyState implements PolicyStateReader.
func (m *Memory) PolicyState(ctx context.Context) (*PolicyState, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.policy == nil {
		return nil, fmt.Errorf("no policy state: %w", ErrNotFound)
	}
	return m.policy, nil
}

// SetCosigned implements Writer.
func (m *Memory) SetCosigned(ctx context.Context, size uint64, note []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	merged, err := MergeCosigned(m.cosSize, m.cosigned, size, note)
	if err != nil {
		return err
	}
	if merged != nil {
		m.cosSize, m.cosigned = size, bytes.Clone(merged)
	}
	return nil
}

// Checkpoint implements Reader.
func (m *Memory) Checkpoint(ctx context.Context) (uint64, []byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.cp == nil {
		return 0, nil, fmt.Errorf("no checkpoint: %w", ErrNotFound)
	}
	return m.cpSize, m.cp, nil
}

// Cosigned implements Reader.
func (m *Memory) Cosigned(ctx context.Context) (uint64, []byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.cosigned == nil {
		return 0, nil, fmt.Errorf("no cosigned checkpoint: %w", ErrNotFound)
	}
	return m.cosSize, m.cosigned, nil
}

// Tile implements Reader.
func (m *Memory) Tile(ctx context.Context, l int, n int64) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	d, ok := m.tiles[[2]int64{int64(l), n}]
	if !ok {
		return nil, fmt.Errorf("no tile %d/%d: %w", l, n, ErrNotFound)
	}
	return d, nil
}

// Entries implements Reader.
func (m *Memory) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if start > end || end > uint64(len(m.entries)) {
		return nil, fmt.Errorf("no entries [%d, %d) in a log of %d: %w", start, end, len(m.entries), ErrNotFound)
	}
	return append([][]byte(nil), m.entries[start:end]...), nil
}

// LeafIndex implements Reader.
func (m *Memory) LeafIndex(ctx context.Context, h tlog.Hash) (uint64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, ok := m.leaves[h]
	if !ok {
		return 0, fmt.Errorf("no entry with leaf hash %x: %w", h[:], ErrNotFound)
	}
	return i, nil
}

// IssuerEntries implements Reader.
func (m *Memory) IssuerEntries(ctx context.Context, origin string) ([]uint64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]uint64(nil), m.issuers[origin]...), nil
}

// IssuerEntriesBefore implements IssuerTailReader.
func (m *Memory) IssuerEntriesBefore(ctx context.Context, origin string, before uint64, n int) ([]uint64, int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return tailBefore(m.issuers[origin], before, n)
}

// KeySet implements Reader.
func (m *Memory) KeySet(ctx context.Context) (*KeySet, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.keySet == nil {
		return nil, fmt.Errorf("no key set: %w", ErrNotFound)
	}
	return m.keySet, nil
}

// KeySetBefore implements KeySetHistoryReader.
func (m *Memory) KeySetBefore(ctx context.Context, treeSize uint64) (*KeySet, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for i := len(m.history) - 1; i >= 0; i-- {
		if m.history[i].Index < treeSize {
			return m.history[i], nil
		}
	}
	return nil, fmt.Errorf("no key set kept below tree size %d: %w", treeSize, ErrNotFound)
}

// Close implements Backend.
func (m *Memory) Close() error { return nil }
