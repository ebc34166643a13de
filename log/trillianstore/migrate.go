package trillianstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/trillian"
	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
)

// MigrateConfig configures Migrate.
type MigrateConfig struct {
	// Source is the log to copy (a sqlitestore). No sequencer may write to
	// it during the migration. Only its log core is read: the target's
	// indexes are rebuilt from the entries. Required.
	Source storage.LogReader
	// Verifier is the log key: every checkpoint proved is verified with
	// it. Required.
	Verifier c2sp.Verifier
	// Client and TreeID name the target PREORDERED_LOG tree, which must be
	// empty or hold a prefix of Source (an interrupted migration resumes).
	// No frontend may write to it during the migration. Required.
	Client trillian.TrillianLogClient
	TreeID int64
	// DB is the MariaDB database of the Trillian log server (OpenDB):
	// once the copy is proved, the tree's shared state (see Store) is set
	// to the source's latest checkpoint, key set, policy state and
	// cosigned checkpoint, so that the first frontend serves the log at
	// once. Required.
	DB *sql.DB
	// Checkpoints are further signed checkpoints the source log published
	// (for example, collected by a monitor) to prove against the new tree.
	// The source's latest and cosigned checkpoints are always proved.
	Checkpoints [][]byte
	// BatchSize is the leaves added per AddSequencedLeaves call (default
	// 500).
	BatchSize int
	// Logger receives progress (default: discard).
	Logger *slog.Logger
	// Progress, if set, is called as the migration goes: step "copy"
	// after each batch of leaves added, step "prove" as the leaves are
	// read back and the roots compared, with the entries done of total.
	Progress func(step string, done, total uint64)
}

// MigrateResult is what Migrate proved.
type MigrateResult struct {
	// Size and Root are the migrated tree's.
	Size uint64
	Root tlog.Hash
	// Copied is how many leaves this run added (less than Size when a
	// previous run was interrupted).
	Copied uint64
	// SizesChecked is the number of tree sizes 1..Size at which the root
	// computed from Trillian's leaves was compared with the root computed
	// from the source's tiles (every size).
	SizesChecked uint64
	// CheckpointsProved is the number of signed source checkpoints whose
	// root was proved consistent with the new tree by a consistency proof
	// from Trillian.
	CheckpointsProved int
}

// Migrate copies the source log into a Trillian tree and proves the
// result: Trillian's leaves are byte for byte the source's entries, the
// tree has the same root as the source at every size, and every signed
// checkpoint the source published (its latest, its cosigned one, and
// cfg.Checkpoints) verifies against Trillian's consistency proof to the
// new tree's root. The same log key then goes on signing checkpoints over
// the Trillian tree, and witnesses see a seamless, consistent log.
func Migrate(ctx context.Context, cfg MigrateConfig) (*MigrateResult, error) {
	if cfg.Source == nil || cfg.Verifier == nil || cfg.Client == nil || cfg.DB == nil || cfg.TreeID == 0 {
		return nil, errors.New("migrate config needs a Source, a Verifier, a Client, a DB and a TreeID")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src := cfg.Source
	n, latest, err := src.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the source's checkpoint: %w", err)
	}
	cps := [][]byte{latest}
	if _, cos, err := src.Cosigned(ctx); err == nil {
		cps = append(cps, cos)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("couldn't read the source's cosigned checkpoint: %w", err)
	}
	cps = append(cps, cfg.Checkpoints...)
	srcHR := memoHashReader(func(t tlog.Tile) ([]byte, error) { return src.Tile(ctx, t.L, t.N) })
	var proveList []checkpoint.Checkpoint
	for _, cp := range cps {
		c, _, err := checkpoint.Open(cp, cfg.Verifier)
		if err != nil {
			return nil, fmt.Errorf("source checkpoint: %w", err)
		}
		if c.Size > n {
			return nil, fmt.Errorf("a source checkpoint has size %d, beyond the source's %d", c.Size, n)
		}
		if c.Size == 0 {
			continue
		}
		root, err := tlog.TreeHash(int64(c.Size), srcHR)
		if err != nil {
			return nil, fmt.Errorf("couldn't compute the source's root at %d: %w", c.Size, err)
		}
		if root != c.Hash {
			return nil, fmt.Errorf("the source's tiles give root %x at size %d; its checkpoint says %x", root[:], c.Size, c.Hash[:])
		}
		proveList = append(proveList, c)
	}

	// Where to start: an empty tree, or a prefix of the source.
	r, err := LatestRoot(ctx, cfg.Client, cfg.TreeID)
	if err != nil {
		return nil, err
	}
	if r.Size > n {
		return nil, fmt.Errorf("the Trillian tree %d has %d leaves, more than the source's %d", cfg.TreeID, r.Size, n)
	}
	if r.Size > 0 {
		root, err := tlog.TreeHash(int64(r.Size), srcHR)
		if err != nil {
			return nil, err
		}
		if root != r.Hash {
			return nil, fmt.Errorf("the Trillian tree %d (size %d) is not a prefix of the source log", cfg.TreeID, r.Size)
		}
		log.Info("resuming migration", "tree", cfg.TreeID, "from", r.Size, "to", n)
	}
	res := &MigrateResult{Size: n}

	// Copy. This is the only writer: every leaf must be accepted.
	for start := r.Size; start < n; start += uint64(cfg.BatchSize) {
		end := min(start+uint64(cfg.BatchSize), n)
		es, err := src.Entries(ctx, start, end)
		if err != nil {
			return nil, fmt.Errorf("couldn't read source entries [%d, %d): %w", start, end, err)
		}
		leaves := make([]*trillian.LogLeaf, len(es))
		for i, data := range es {
			idx := start + uint64(i)
			e, err := schema.ParseEntry(data)
			if err != nil {
				return nil, fmt.Errorf("source entry %d: %w", idx, err)
			}
			h := tiles.LeafHash(data)
			leaves[i] = &trillian.LogLeaf{LeafIndex: int64(idx), LeafValue: data, LeafIdentityHash: IdentityHash(e, idx), MerkleLeafHash: h[:]}
		}
		resp, err := cfg.Client.AddSequencedLeaves(ctx, &trillian.AddSequencedLeavesRequest{LogId: cfg.TreeID, Leaves: leaves})
		if err != nil {
			return nil, fmt.Errorf("couldn't add leaves [%d, %d) to Trillian: %w", start, end, err)
		}
		for i, q := range resp.Results {
			if st := q.GetStatus(); st != nil && st.Code != int32(codes.OK) {
				return nil, fmt.Errorf("the Trillian log server refused leaf %d: %s (is something else writing to tree %d?)", start+uint64(i), st.Message, cfg.TreeID)
			}
		}
		res.Copied += end - start
		log.Debug("copied", "to", end, "of", n)
		if cfg.Progress != nil {
			cfg.Progress("copy", end, n)
		}
	}
	for {
		r, err = LatestRoot(ctx, cfg.Client, cfg.TreeID)
		if err != nil {
			return nil, err
		}
		if r.Size >= n {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for Trillian to integrate the copied leaves (at %d of %d): %w", r.Size, n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if r.Size != n {
		return nil, fmt.Errorf("the Trillian tree %d grew to %d during the migration of %d entries", cfg.TreeID, r.Size, n)
	}
	res.Root = r.Hash

	// Prove: Trillian's leaves are the source's, and the roots agree at
	// every size.
	app, err := tiles.NewAppender(0, nil)
	if err != nil {
		return nil, err
	}
	for start := uint64(0); start < n; {
		resp, err := cfg.Client.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{LogId: cfg.TreeID, StartIndex: int64(start), Count: int64(min(n-start, 1000))})
		if err != nil {
			return nil, fmt.Errorf("couldn't read back leaves from %d: %w", start, err)
		}
		if len(resp.Leaves) == 0 {
			return nil, fmt.Errorf("the Trillian log server returned no leaves from %d", start)
		}
		es, err := src.Entries(ctx, start, start+uint64(len(resp.Leaves)))
		if err != nil {
			return nil, err
		}
		for i, l := range resp.Leaves {
			idx := start + uint64(i)
			if uint64(l.LeafIndex) != idx || !bytes.Equal(l.LeafValue, es[i]) {
				return nil, fmt.Errorf("the Trillian log's leaf %d differs from the source's entry", idx)
			}
			u, err := app.Append([]tlog.Hash{tiles.LeafHash(l.LeafValue)})
			if err != nil {
				return nil, err
			}
			want, err := tlog.TreeHash(int64(idx+1), srcHR)
			if err != nil {
				return nil, fmt.Errorf("couldn't compute the source's root at %d: %w", idx+1, err)
			}
			if u.Root != want {
				return nil, fmt.Errorf("roots differ at size %d: Trillian's leaves give %x, the source %x", idx+1, u.Root[:], want[:])
			}
			res.SizesChecked++
		}
		start += uint64(len(resp.Leaves))
		if cfg.Progress != nil {
			cfg.Progress("prove", start, n)
		}
	}
	if got, _ := app.Root(); got != r.Hash {
		return nil, fmt.Errorf("the Trillian log's root %x at %d is not the root %x of its leaves", r.Hash[:], n, got[:])
	}

	// Prove every published checkpoint with Trillian's consistency proofs.
	s := &Store{cfg: Config{Client: cfg.Client, TreeID: cfg.TreeID}}
	for _, c := range proveList {
		if err := s.checkConsistent(ctx, c.Size, c.Hash, r); err != nil {
			return nil, fmt.Errorf("source checkpoint of size %d: %w", c.Size, err)
		}
		res.CheckpointsProved++
	}
	if err := publishMigrated(ctx, cfg, n, latest); err != nil {
		return nil, err
	}
	log.Info("migration proved", "tree", cfg.TreeID, "size", n, "checkpoints", res.CheckpointsProved)
	return res, nil
}

// publishMigrated sets the tree's shared state to the source's, unless a
// frontend already serves the tree (its shared size is not 0: a rerun of
// a migration that completed).
func publishMigrated(ctx context.Context, cfg MigrateConfig, n uint64, latest []byte) error {
	if err := ensureRow(ctx, cfg.DB, cfg.TreeID); err != nil {
		return err
	}
	q := "UPDATE KeycommitLog SET Size=?, Checkpoint=?"
	args := []any{n, latest}
	if ksr, ok := cfg.Source.(storage.KeySetReader); ok {
		ks, err := ksr.KeySet(ctx)
		switch {
		case err == nil:
			q += ", KeySetIndex=?, KeySet=?"
			args = append(args, ks.Index, ks.Data)
		case !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("couldn't read the source's key set: %w", err)
		}
	}
	if psr, ok := cfg.Source.(storage.PolicyStateReader); ok {
		ps, err := psr.PolicyState(ctx)
		switch {
		case err == nil:
			q += ", PolicySize=?, PolicyState=?"
			args = append(args, ps.Size, ps.Data)
		case !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("couldn't read the source's policy state: %w", err)
		}
	}
	if size, cos, err := cfg.Source.Cosigned(ctx); err == nil {
		q += ", CosignedSize=?, Cosigned=?"
		args = append(args, size, cos)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("couldn't read the source's cosigned checkpoint: %w", err)
	}
	args = append(args, cfg.TreeID)
	if _, err := cfg.DB.ExecContext(ctx, q+" WHERE TreeId=? AND (Size=0 OR Size=?)", append(args, n)...); err != nil {
		return fmt.Errorf("couldn't set the shared state of tree %d: %w", cfg.TreeID, err)
	}
	return nil
}

// memoHashReader reads hashes from tiles, keeping every tile it read.
func memoHashReader(read tiles.TileFunc) tlog.HashReader {
	var mu sync.Mutex
	memo := map[[2]int64][]byte{}
	return tiles.HashReader(func(t tlog.Tile) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		k := [2]int64{int64(t.L), t.N}
		if d, ok := memo[k]; ok && len(d) >= t.W*tlog.HashSize {
			return d, nil
		}
		d, err := read(t)
		if err != nil {
			return nil, err
		}
		memo[k] = d
		return d, nil
	})
}
