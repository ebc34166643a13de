// Package trillianstore is the log's scale-out backend: the leaves live in
// a Trillian PREORDERED_LOG tree (Trillian 1.8 on MySQL/MariaDB), and any
// number of keycommit frontends serve the log in front of it, each from a
// local cache of entries, tiles and checkpoints (a sqlitestore).
//
// The store is a storage driver, not a second policy engine or signer:
// the one sequencer of the log (log/sequencer, run by the frontend that
// holds the writer's lease, see Frontend) evaluates, signs and asks
// witnesses, for this backend as for every other, and the store makes
// what it hands to Append durable and readable by every frontend.
//
// # What is shared, and where
//
// Everything lives in the MariaDB database of the Trillian log server:
// the leaves in Trillian's own tables (LeafData, SequencedLeafData, the
// rows AddSequencedLeaves writes, integrated into Trillian's Merkle tree
// by the Trillian signer), and, in keycommit's table KeycommitLog (one row
// per tree, see shared.go), the writer's lease and fencing token, the
// latest signed checkpoint, the latest key set, the latest serialised
// policy state, the latest cosigned checkpoint, and the key with which the
// frontends authenticate the batches they forward to the writer.
//
// # Commit order of Append, and where a crash can land
//
//  1. One MariaDB transaction: lock the tree's row, check that this store
//     still holds the lease (its fencing token is the row's; else
//     ErrNotWriter) and that the batch starts at the shared size (else
//     ErrConflict), insert every leaf of the batch into Trillian's tables
//     (multi-row inserts), and update the row (size, checkpoint, and the
//     batch's key set and policy state when it has them). A crash before
//     the commit leaves nothing; after it the batch is durable, and every
//     frontend picks it up (the writer's submitters were not answered;
//     they retry and are answered with the logged entry).
//  2. Store the batch in the local cache. A crash before this only loses
//     cache contents, fetched again from the shared store at the next
//     Sync.
//
// Append does not wait for the Trillian signer: the leaves are durable
// when step 1 commits. The follower checks, as Trillian integrates them,
// that Trillian's root at its size is the root of the same size of the
// cache's tree (keycommit_trillian_root_mismatches_total counts the
// failures; a mismatch is logged as an error).
//
// # Followers
//
// Sync (run every FollowInterval) reads the shared row, fetches the
// leaves the cache lacks from Trillian's tables, checks each leaf hash,
// recomputes the tiles and the root, checks the shared checkpoint's
// signature (Verifier) and that its root is the recomputed one, and only
// then stores them with that checkpoint and the shared key set; it then
// copies the shared cosigned checkpoint into the cache once the cache has
// its size. So a frontend serves only what it verified, and every
// frontend serves the same checkpoints, cosignatures, bundles and issuer
// histories, at most one follow interval behind the writer. Sync decodes
// each entry once as it reads it, and keeps the latest ones it stored
// decoded for the frontend's policy view (TakeDecoded), which then does
// not read them back from the cache.
package trillianstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// Config configures a Store.
type Config struct {
	// Client talks to the Trillian log server: its roots are checked
	// against the cache's tree. Required.
	Client trillian.TrillianLogClient
	// DB is the MariaDB database of the Trillian log server (OpenDB).
	// Required.
	DB *sql.DB
	// TreeID is the PREORDERED_LOG tree holding the log. Required.
	TreeID int64
	// Cache is the frontend's local store of entries, tiles and
	// checkpoints (a sqlitestore in production). It must hold nothing,
	// or a prefix of this tree. Required.
	Cache storage.Backend
	// Verifier is the log key: a checkpoint read from the shared store is
	// stored in the cache only if it verifies and its root is the one
	// recomputed from the leaves. Without it (storage contract tests,
	// whose entries and checkpoints are arbitrary bytes) the store never
	// follows: Sync fails when the shared store is ahead of the cache.
	Verifier c2sp.Verifier
	// FollowInterval is how often the background follower picks up what
	// the writer appended (default 200ms; negative: no follower, call
	// Sync yourself).
	FollowInterval time.Duration
	// FetchBatch bounds the leaves read in one query (default 1000).
	FetchBatch int
	// Logger receives operational logs (default: discard).
	Logger *slog.Logger
	// Registerer receives the store's metrics (default: none).
	Registerer prometheus.Registerer
}

// Store is a storage.Backend over a Trillian tree, shared by frontends.
type Store struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	// mu serializes writers to the cache: Append and Sync. It guards app,
	// lastRoot and token.
	mu       sync.Mutex
	app      *tiles.Appender
	lastRoot tlog.Hash // root of the cache's tree
	token    int64     // the fencing token of the lease held, 0 if none

	fwdKey []byte // the tree's forwarding key (forwardKey), read at Open

	// grown is closed and replaced when the cache grows.
	grownMu sync.Mutex
	grown   chan struct{}

	// decoded holds the entries the follower stored last, decoded, for
	// the policy view (TakeDecoded).
	decodedMu sync.Mutex
	decoded   decodedEntries

	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

var (
	_ storage.Backend           = (*Store)(nil)
	_ storage.PolicyStateReader = (*Store)(nil)
	_ sequencer.DecodedEntries  = (*Store)(nil)
)

// maxDecoded bounds the followed entries kept decoded for the policy
// view (the latest ones of a larger fetch).
const maxDecoded = 4096

// decodedEntries are entries [start, start+len(es)) of the cache,
// decoded, and their leaf hashes.
type decodedEntries struct {
	start  uint64
	es     []schema.Entry
	leaves []tlog.Hash
}

// TakeDecoded implements sequencer.DecodedEntries: entries [start, end)
// as the follower read, checked and stored them last, once.
func (s *Store) TakeDecoded(start, end uint64) ([]schema.Entry, []tlog.Hash, bool) {
	s.decodedMu.Lock()
	defer s.decodedMu.Unlock()
	d := &s.decoded
	if start < d.start || end > d.start+uint64(len(d.es)) || start >= end {
		return nil, nil, false
	}
	i, j := start-d.start, end-d.start
	es, leaves := d.es[i:j:j], d.leaves[i:j:j]
	// Forget them and everything before them.
	d.start, d.es, d.leaves = end, d.es[j:], d.leaves[j:]
	return es, leaves, true
}

// setDecoded adds es, entries [start, ...) just stored in the cache, to
// those kept for TakeDecoded (the latest maxDecoded of them); nil forgets
// them all.
func (s *Store) setDecoded(start uint64, es []schema.Entry, leaves []tlog.Hash) {
	s.decodedMu.Lock()
	defer s.decodedMu.Unlock()
	d := &s.decoded
	if es != nil && len(d.es) > 0 && d.start+uint64(len(d.es)) == start {
		start, es, leaves = d.start, append(d.es, es...), append(d.leaves, leaves...)
	}
	if n := len(es); n > maxDecoded {
		start, es, leaves = start+uint64(n-maxDecoded), es[n-maxDecoded:], leaves[n-maxDecoded:]
	}
	*d = decodedEntries{start: start, es: es, leaves: leaves}
}

type metrics struct {
	appended, followed, batches, fenced, mismatches prometheus.Counter
	size                                            prometheus.Gauge
	commit                                          prometheus.Histogram
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		appended:   prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_leaves_appended_total", Help: "Leaves this frontend wrote to the Trillian tree as the log's writer."}),
		batches:    prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_batches_total", Help: "Batches this frontend committed (one MariaDB transaction each)."}),
		fenced:     prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_fenced_writes_total", Help: "Writes refused because another frontend took the writer's lease."}),
		followed:   prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_leaves_followed_total", Help: "Leaves fetched from the shared store that another frontend appended."}),
		mismatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_root_mismatches_total", Help: "Trillian roots that differ from the root of the same size of this frontend's tree."}),
		size:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "keycommit_trillian_cache_size", Help: "Tree size of this frontend's cache."}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keycommit_trillian_commit_seconds", Help: "Time of one batch's MariaDB transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.appended, m.batches, m.fenced, m.followed, m.mismatches, m.size, m.commit} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("couldn't register Trillian store metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Open returns a Store over cfg.TreeID. It brings the cache up to date
// with the shared store (see Sync) and starts the background follower.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Client == nil || cfg.DB == nil || cfg.TreeID == 0 || cfg.Cache == nil {
		return nil, errors.New("trillianstore config needs a Client, a DB, a TreeID and a Cache")
	}
	if cfg.FollowInterval == 0 {
		cfg.FollowInterval = 200 * time.Millisecond
	}
	if cfg.FetchBatch <= 0 {
		cfg.FetchBatch = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	if err := ensureRow(ctx, cfg.DB, cfg.TreeID); err != nil {
		return nil, err
	}
	key, err := forwardKey(ctx, cfg.DB, cfg.TreeID)
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.Logger, m: m, grown: make(chan struct{}), fwdKey: key,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	if err := s.adopt(ctx); err != nil {
		return nil, err
	}
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	if cfg.FollowInterval > 0 {
		go s.follow()
	} else {
		close(s.stopped)
	}
	return s, nil
}

// load rebuilds the tree edge from the cache.
func (s *Store) load(ctx context.Context) error {
	c := s.cfg.Cache
	size, _, err := c.Checkpoint(ctx)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		size = 0
	case err != nil:
		return fmt.Errorf("couldn't read the cached checkpoint: %w", err)
	}
	app, err := tiles.NewAppender(int64(size), func(t tlog.Tile) ([]byte, error) { return c.Tile(ctx, t.L, t.N) })
	if err != nil {
		return fmt.Errorf("couldn't load the edge of the cached tree: %w", err)
	}
	root, err := app.Root()
	if err != nil {
		return fmt.Errorf("couldn't compute the root of the cached tree: %w", err)
	}
	s.app, s.lastRoot = app, root
	s.m.size.Set(float64(size))
	return nil
}

// adopt sets the shared state of a tree written before it had one (by
// keycommit before the writer's lease) from this frontend's cache, when
// the cache holds the whole tree: Trillian's root at its size is the
// cache's root. Otherwise such a tree is refused, with what to do.
func (s *Store) adopt(ctx context.Context) error {
	sh, err := readShared(ctx, s.cfg.DB, s.cfg.TreeID)
	if err != nil || sh.size != 0 {
		return err
	}
	size := uint64(s.app.Size())
	r, err := s.LatestRoot(ctx)
	if err != nil {
		return err
	}
	if r.Size == 0 {
		return nil // a new tree
	}
	if r.Size != size || r.Hash != s.lastRoot {
		return fmt.Errorf("tree %d of Trillian has no shared state (it was written before keycommit kept one) and this frontend's cache holds %d of its %d leaves: start the frontend whose cache holds them all first (or run log migrate again from the SQLite log)", s.cfg.TreeID, size, r.Size)
	}
	_, cp, err := s.cfg.Cache.Checkpoint(ctx)
	if err != nil {
		return err
	}
	q := "UPDATE KeycommitLog SET Size=?, Checkpoint=?"
	args := []any{size, cp}
	if ks, err := s.cfg.Cache.KeySet(ctx); err == nil {
		q += ", KeySetIndex=?, KeySet=?"
		args = append(args, ks.Index, ks.Data)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if n, cos, err := s.cfg.Cache.Cosigned(ctx); err == nil {
		q += ", CosignedSize=?, Cosigned=?"
		args = append(args, n, cos)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if _, err := s.cfg.DB.ExecContext(ctx, q+" WHERE TreeId=? AND Size=0", append(args, s.cfg.TreeID)...); err != nil {
		return fmt.Errorf("couldn't set the shared state of tree %d from the cache: %w", s.cfg.TreeID, err)
	}
	s.log.Info("set the tree's shared state from this frontend's cache", "tree", s.cfg.TreeID, "size", size)
	return nil
}

// Close stops the follower, gives up the lease if held, and closes the
// cache.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.stopped
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Release(ctx)
	return s.cfg.Cache.Close()
}

// Abandon stops the follower and closes the cache without giving up the
// lease, as a crash would leave it (tests of failover).
func (s *Store) Abandon() error {
	s.once.Do(func() { close(s.stop) })
	<-s.stopped
	s.mu.Lock()
	s.token = 0
	s.mu.Unlock()
	return s.cfg.Cache.Close()
}

func (s *Store) follow() {
	defer close(s.stopped)
	t := time.NewTicker(s.cfg.FollowInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := s.Sync(ctx); err != nil {
			s.log.Warn("couldn't follow the shared store", "tree", s.cfg.TreeID, "err", err)
		}
		s.checkTrillian(ctx)
		cancel()
	}
}

// Grown returns a channel closed when the cache grows next.
func (s *Store) Grown() <-chan struct{} {
	s.grownMu.Lock()
	defer s.grownMu.Unlock()
	return s.grown
}

func (s *Store) signalGrown() {
	s.grownMu.Lock()
	close(s.grown)
	s.grown = make(chan struct{})
	s.grownMu.Unlock()
}

// Size returns the size of the cache's tree.
func (s *Store) Size() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(s.app.Size())
}

// SharedSize returns the size of the log in the shared store.
func (s *Store) SharedSize(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.cfg.DB.QueryRowContext(ctx, "SELECT Size FROM KeycommitLog WHERE TreeId=?", s.cfg.TreeID).Scan(&n); err != nil {
		return 0, fmt.Errorf("couldn't read the shared size of tree %d: %w", s.cfg.TreeID, err)
	}
	return n, nil
}

// Sync brings the cache up to the shared store (see the package doc).
func (s *Store) Sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked(ctx)
}

func (s *Store) syncLocked(ctx context.Context) error {
	size := uint64(s.app.Size())
	sh, err := readShared(ctx, s.cfg.DB, s.cfg.TreeID)
	if err != nil {
		return err
	}
	if sh.size < size {
		return fmt.Errorf("the shared store of tree %d has %d entries, fewer than the %d this frontend's cache holds", s.cfg.TreeID, sh.size, size)
	}
	if sh.size > size {
		if err := s.fetch(ctx, size, sh); err != nil {
			if lerr := s.load(ctx); lerr != nil {
				s.log.Error("couldn't reload the tree edge from the cache", "err", lerr)
			}
			return err
		}
		s.signalGrown()
	}
	if sh.cosigned != nil && sh.cosignedSize <= uint64(s.app.Size()) {
		if err := s.cfg.Cache.SetCosigned(ctx, sh.cosignedSize, sh.cosigned); err != nil {
			return fmt.Errorf("couldn't copy the shared cosigned checkpoint of size %d into the cache: %w", sh.cosignedSize, err)
		}
	}
	return nil
}

// fetch reads the leaves [size, sh.size) from Trillian's tables, checks
// them against the shared checkpoint and stores them in the cache.
func (s *Store) fetch(ctx context.Context, size uint64, sh *shared) error {
	if s.cfg.Verifier == nil {
		return fmt.Errorf("the shared store of tree %d has %d entries beyond this frontend's %d, and it has no log key to check them with", s.cfg.TreeID, sh.size-size, size)
	}
	c, _, err := checkpoint.Open(sh.checkpoint, s.cfg.Verifier)
	if err != nil {
		return fmt.Errorf("the shared checkpoint of tree %d: %w", s.cfg.TreeID, err)
	}
	if c.Size != sh.size {
		return fmt.Errorf("the shared checkpoint of tree %d has size %d, the shared store says %d", s.cfg.TreeID, c.Size, sh.size)
	}
	entries := make([]storage.Entry, 0, sh.size-size)
	// Each entry decoded once, as the policy view decodes it (see
	// TakeDecoded); its issuer comes from that too. Bytes that do not
	// decode so are stored as parseHead reads them, and the view reads
	// and decodes them itself.
	decoded := make([]schema.Entry, 0, sh.size-size)
	leaves := make([]tlog.Hash, 0, sh.size-size)
	for next := size; next < sh.size; {
		n := min(sh.size-next, uint64(s.cfg.FetchBatch))
		before := next
		rows, err := s.cfg.DB.QueryContext(ctx, `SELECT s.SequenceNumber, s.MerkleLeafHash, l.LeafValue
			FROM SequencedLeafData s JOIN LeafData l ON (l.TreeId = s.TreeId AND l.LeafIdentityHash = s.LeafIdentityHash)
			WHERE s.TreeId = ? AND s.SequenceNumber >= ? AND s.SequenceNumber < ? ORDER BY s.SequenceNumber`,
			s.cfg.TreeID, next, next+n)
		if err != nil {
			return fmt.Errorf("couldn't read leaves [%d, %d) of tree %d: %w", next, next+n, s.cfg.TreeID, err)
		}
		for rows.Next() {
			var idx uint64
			var mlh, value []byte
			if err := rows.Scan(&idx, &mlh, &value); err != nil {
				rows.Close()
				return fmt.Errorf("couldn't read leaf %d of tree %d: %w", next, s.cfg.TreeID, err)
			}
			if idx != next {
				rows.Close()
				return fmt.Errorf("tree %d has leaf %d where %d was expected", s.cfg.TreeID, idx, next)
			}
			leaf := tiles.LeafHash(value)
			if !bytes.Equal(mlh, leaf[:]) {
				rows.Close()
				return fmt.Errorf("leaf %d of tree %d is stored with leaf hash %x, it hashes to %x", idx, s.cfg.TreeID, mlh, leaf[:])
			}
			e := storage.Entry{Data: value, LeafHash: leaf}
			if decoded != nil {
				decoded = append(decoded, schema.Entry{})
				if d := &decoded[len(decoded)-1]; json.Unmarshal(value, d) == nil {
					if d.Kind.Known() {
						e.Issuer = d.Issuer
					}
				} else {
					decoded = nil
				}
				leaves = append(leaves, leaf)
			}
			if decoded == nil {
				if h, ok := parseHead(value); ok {
					e.Issuer = h.Issuer
				}
			}
			entries = append(entries, e)
			next++
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("couldn't read leaves of tree %d: %w", s.cfg.TreeID, err)
		}
		if next < sh.size && next == before {
			return fmt.Errorf("tree %d lacks leaf %d below the shared size %d", s.cfg.TreeID, next, sh.size)
		}
	}
	u, err := s.extend(size, entries)
	if err != nil {
		return err
	}
	if u.Root != c.Hash {
		return fmt.Errorf("leaves [0, %d) of tree %d give root %x, the shared checkpoint says %x", sh.size, s.cfg.TreeID, u.Root[:], c.Hash[:])
	}
	b := &storage.Batch{Start: size, Entries: entries, Tiles: u.Tiles, Checkpoint: sh.checkpoint}
	if ks := sh.keySet; ks != nil && ks.Index >= size && ks.Index < sh.size {
		// Read now, and used only if it still is the one of that index
		// (else a newer one comes with the next Sync).
		if err := s.cfg.DB.QueryRowContext(ctx, "SELECT KeySet FROM KeycommitLog WHERE TreeId=? AND KeySetIndex=?", s.cfg.TreeID, ks.Index).Scan(&ks.Data); errors.Is(err, sql.ErrNoRows) {
			ks = nil
		} else if err != nil {
			return fmt.Errorf("couldn't read the shared key set of tree %d: %w", s.cfg.TreeID, err)
		}
	}
	if ks := sh.keySet; ks != nil && ks.Data != nil && ks.Index >= size && ks.Index < sh.size {
		if !snapshotCommitsTo(entries[ks.Index-size].Data, ks.Data) {
			return fmt.Errorf("the shared key set of tree %d is not the one snapshot entry %d commits to", s.cfg.TreeID, ks.Index)
		}
		b.KeySet = ks
	}
	if err := s.store(ctx, b, u); err != nil {
		return err
	}
	if decoded != nil {
		s.setDecoded(size, decoded, leaves)
	} else {
		s.setDecoded(0, nil, nil)
	}
	s.m.followed.Add(float64(len(entries)))
	return nil
}

// head is what the store reads of an entry: its kind, issuer and prev
// (the leaf identity, the issuer index).
type head struct {
	Kind   schema.Kind `json:"kind"`
	Issuer string      `json:"issuer"`
	Prev   []byte      `json:"prev"`
}

// parseHead decodes the head of an entry the sequencer wrote (canonical
// when written, so not checked again, as sequencer recovery does), or
// reports false for bytes that are not an entry of a known kind.
func parseHead(data []byte) (head, bool) {
	var h head
	if err := json.Unmarshal(data, &h); err != nil || !h.Kind.Known() {
		return head{}, false
	}
	return h, true
}

// snapshotCommitsTo reports whether data is a snapshot entry that commits
// to keySet.
func snapshotCommitsTo(data, keySet []byte) bool {
	e, err := schema.ParseEntry(data)
	if err != nil || e.Kind != schema.KindSnapshot {
		return false
	}
	body, err := e.ParsedBody()
	sn, ok := body.(*schema.Snapshot)
	if err != nil || !ok {
		return false
	}
	commits, _ := sn.CommitsTo(keySet)
	return commits
}

// checkTrillian compares Trillian's latest root with the root of the
// same size of the cache's tree.
func (s *Store) checkTrillian(ctx context.Context) {
	r, err := s.LatestRoot(ctx)
	if err != nil {
		s.log.Warn("couldn't read Trillian's root", "tree", s.cfg.TreeID, "err", err)
		return
	}
	if r.Size == 0 {
		return
	}
	s.mu.Lock()
	size := uint64(s.app.Size())
	s.mu.Unlock()
	if r.Size > size {
		return // checked once the cache has it
	}
	hr := tiles.HashReader(func(t tlog.Tile) ([]byte, error) { return s.cfg.Cache.Tile(ctx, t.L, t.N) })
	root, err := tlog.TreeHash(int64(r.Size), hr)
	if err != nil {
		s.log.Warn("couldn't compute the cache's root", "size", r.Size, "err", err)
		return
	}
	if root != r.Hash {
		s.m.mismatches.Inc()
		s.log.Error("Trillian's root differs from this frontend's tree at the same size", "tree", s.cfg.TreeID, "size", r.Size, "trillian", fmt.Sprintf("%x", r.Hash[:]), "ours", fmt.Sprintf("%x", root[:]))
	}
}

// extend appends entries to the tree edge (start must be its size).
func (s *Store) extend(start uint64, entries []storage.Entry) (*tiles.Update, error) {
	hashes := make([]tlog.Hash, len(entries))
	for i, e := range entries {
		hashes[i] = e.LeafHash
	}
	u, err := s.app.Append(hashes)
	if err != nil {
		return nil, fmt.Errorf("couldn't compute tiles for [%d, %d): %w", start, start+uint64(len(entries)), err)
	}
	return u, nil
}

// store writes b, whose tree edge is already extended to u, to the cache.
func (s *Store) store(ctx context.Context, b *storage.Batch, u *tiles.Update) error {
	c := *b
	c.PolicyState = nil // the shared store keeps it
	if err := s.cfg.Cache.Append(ctx, &c); err != nil {
		return fmt.Errorf("couldn't store entries [%d, %d) in the cache: %w", b.Start, b.Size(), err)
	}
	s.lastRoot = u.Root
	s.m.size.Set(float64(u.Size))
	return nil
}

// Acquire takes the writer's lease for d if nobody holds it, it expired,
// or holder holds it; addr is where the other frontends forward
// submissions. It reports whether this store now holds it. The fencing
// token grows with every new holder.
func (s *Store) Acquire(ctx context.Context, holder, addr string, d time.Duration) (bool, error) {
	if holder == "" {
		return false, errors.New("a lease holder needs a name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.cfg.DB.ExecContext(ctx, "UPDATE KeycommitLog SET LeaseToken=LeaseToken+1, LeaseHolder=?, LeaseAddr=?, LeaseExpiresMillis="+nowMillis+"+? WHERE TreeId=? AND (LeaseHolder='' OR LeaseExpiresMillis<"+nowMillis+" OR LeaseHolder=?)",
		holder, addr, d.Milliseconds(), s.cfg.TreeID, holder)
	if err != nil {
		return false, fmt.Errorf("couldn't take the writer's lease of tree %d: %w", s.cfg.TreeID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return false, err
	}
	l, err := readLease(ctx, s.cfg.DB, s.cfg.TreeID)
	if err != nil {
		return false, err
	}
	if l.Holder != holder {
		return false, nil
	}
	s.token = l.Token
	return true, nil
}

// Renew extends the lease this store holds by d from now (the database's
// clock). It returns ErrNotWriter if the lease was taken over.
func (s *Store) Renew(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	token := s.token
	s.mu.Unlock()
	if token == 0 {
		return ErrNotWriter
	}
	res, err := s.cfg.DB.ExecContext(ctx, "UPDATE KeycommitLog SET LeaseExpiresMillis="+nowMillis+"+? WHERE TreeId=? AND LeaseToken=?", d.Milliseconds(), s.cfg.TreeID, token)
	if err != nil {
		return fmt.Errorf("couldn't renew the writer's lease of tree %d: %w", s.cfg.TreeID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		s.mu.Lock()
		if s.token == token {
			s.token = 0
		}
		s.mu.Unlock()
		return fmt.Errorf("%w: the lease of tree %d was taken over", ErrNotWriter, s.cfg.TreeID)
	}
	return nil
}

// Release gives up the lease if this store holds it, so that another
// frontend takes over at once.
func (s *Store) Release(ctx context.Context) error {
	s.mu.Lock()
	token := s.token
	s.token = 0
	s.mu.Unlock()
	if token == 0 {
		return nil
	}
	_, err := s.cfg.DB.ExecContext(ctx, "UPDATE KeycommitLog SET LeaseHolder='', LeaseAddr='', LeaseExpiresMillis=0 WHERE TreeId=? AND LeaseToken=?", s.cfg.TreeID, token)
	if err != nil {
		return fmt.Errorf("couldn't release the writer's lease of tree %d: %w", s.cfg.TreeID, err)
	}
	return nil
}

// Lease reads the writer's lease.
func (s *Store) Lease(ctx context.Context) (Lease, error) {
	return readLease(ctx, s.cfg.DB, s.cfg.TreeID)
}

// Writer reports whether this store holds the lease (as far as it
// knows: a write may still be fenced).
func (s *Store) Writer() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token != 0
}

// Append implements storage.Writer; see the package doc for its commit
// order. It returns ErrNotWriter (wrapped) without the lease, and
// ErrConflict (wrapped) when b.Start is not the shared size; then the
// cache is brought up to date before Append returns, so the sequencer
// can rebuild its state from it.
func (s *Store) Append(ctx context.Context, b *storage.Batch) error {
	if len(b.Entries) == 0 {
		return errors.New("empty batch")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	size := uint64(s.app.Size())
	if b.Start != size {
		if err := s.syncLocked(ctx); err != nil {
			return err
		}
		return fmt.Errorf("%w: batch starts at %d, the tree has %d entries", storage.ErrConflict, b.Start, s.app.Size())
	}
	for i, e := range b.Entries {
		if tiles.LeafHash(e.Data) != e.LeafHash {
			return fmt.Errorf("entry %d of the batch has a wrong leaf hash", b.Start+uint64(i))
		}
	}
	if ps := b.PolicyState; ps != nil && ps.Size != b.Size() {
		return fmt.Errorf("the batch ends at %d, its policy state covers %d entries", b.Size(), ps.Size)
	}
	u, err := s.extend(b.Start, b.Entries)
	if err != nil {
		return err
	}
	if err := checkTiles(b.Tiles, u.Tiles); err != nil {
		s.reloadLocked(ctx)
		return err
	}
	t0 := time.Now()
	if err := s.commit(ctx, b); err != nil {
		s.reloadLocked(ctx)
		if errors.Is(err, storage.ErrConflict) {
			if serr := s.syncLocked(ctx); serr != nil {
				s.log.Warn("couldn't catch up after a conflict", "err", serr)
			}
		}
		return err
	}
	s.m.commit.Observe(time.Since(t0).Seconds())
	s.m.batches.Inc()
	s.m.appended.Add(float64(len(b.Entries)))
	if err := s.store(ctx, b, u); err != nil {
		s.reloadLocked(ctx)
		return err
	}
	s.signalGrown()
	return nil
}

func (s *Store) reloadLocked(ctx context.Context) {
	if err := s.load(ctx); err != nil {
		s.log.Error("couldn't reload the tree edge from the cache", "err", err)
	}
}

// maxRowsPerInsert bounds the rows of one INSERT statement.
const maxRowsPerInsert = 256

// commit is step 1 of Append: one transaction.
func (s *Store) commit(ctx context.Context, b *storage.Batch) (err error) {
	tx, err := s.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't begin a MariaDB transaction: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var shared uint64
	var token int64
	if err := tx.QueryRowContext(ctx, "SELECT Size, LeaseToken FROM KeycommitLog WHERE TreeId=? FOR UPDATE", s.cfg.TreeID).Scan(&shared, &token); err != nil {
		return fmt.Errorf("couldn't lock the shared state of tree %d: %w", s.cfg.TreeID, err)
	}
	if s.token == 0 || token != s.token {
		s.m.fenced.Inc()
		mine := s.token
		s.token = 0
		return fmt.Errorf("%w: the lease of tree %d has fencing token %d, this frontend's write carries %d", ErrNotWriter, s.cfg.TreeID, token, mine)
	}
	if shared != b.Start {
		return fmt.Errorf("%w: batch starts at %d, the shared store has %d entries", storage.ErrConflict, b.Start, shared)
	}
	now := time.Now().UnixNano()
	for i := 0; i < len(b.Entries); i += maxRowsPerInsert {
		es := b.Entries[i:min(i+maxRowsPerInsert, len(b.Entries))]
		leafArgs := make([]any, 0, 5*len(es))
		seqArgs := make([]any, 0, 5*len(es))
		for j, e := range es {
			idx := b.Start + uint64(i+j)
			var parsed *schema.Entry
			if h, ok := parseHead(e.Data); ok {
				parsed = &schema.Entry{Kind: h.Kind, Issuer: h.Issuer, Prev: h.Prev}
			}
			id := IdentityHash(parsed, idx)
			leafArgs = append(leafArgs, s.cfg.TreeID, id, e.Data, nil, now)
			seqArgs = append(seqArgs, s.cfg.TreeID, idx, id, e.LeafHash[:], 0)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO LeafData(TreeId,LeafIdentityHash,LeafValue,ExtraData,QueueTimestampNanos) VALUES"+placeholders(len(es), 5), leafArgs...); err != nil {
			if isDuplicate(err) {
				return fmt.Errorf("couldn't add entries [%d, %d) to tree %d: a leaf identity is taken (a statement extending the same issuer history, or a log entry at the same index, is in the tree): %w", b.Start, b.Size(), s.cfg.TreeID, err)
			}
			return fmt.Errorf("couldn't add entries [%d, %d) to tree %d: %w", b.Start, b.Size(), s.cfg.TreeID, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO SequencedLeafData(TreeId,SequenceNumber,LeafIdentityHash,MerkleLeafHash,IntegrateTimestampNanos) VALUES"+placeholders(len(es), 5), seqArgs...); err != nil {
			if isDuplicate(err) {
				return fmt.Errorf("%w: an index of [%d, %d) is taken in tree %d: %v", storage.ErrConflict, b.Start, b.Size(), s.cfg.TreeID, err)
			}
			return fmt.Errorf("couldn't sequence entries [%d, %d) in tree %d: %w", b.Start, b.Size(), s.cfg.TreeID, err)
		}
	}
	q := "UPDATE KeycommitLog SET Size=?, Checkpoint=?"
	args := []any{b.Size(), b.Checkpoint}
	if ks := b.KeySet; ks != nil {
		q += ", KeySetIndex=?, KeySet=?"
		args = append(args, ks.Index, ks.Data)
	}
	if ps := b.PolicyState; ps != nil {
		q += ", PolicySize=?, PolicyState=?"
		args = append(args, ps.Size, ps.Data)
	}
	args = append(args, s.cfg.TreeID)
	if _, err := tx.ExecContext(ctx, q+" WHERE TreeId=?", args...); err != nil {
		return fmt.Errorf("couldn't update the shared state of tree %d: %w", s.cfg.TreeID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("couldn't commit entries [%d, %d) to tree %d (they may be logged; the shared store tells): %w", b.Start, b.Size(), s.cfg.TreeID, err)
	}
	return nil
}

// SetCosigned implements storage.CosignedWriter: in the shared store, by
// MergeCosigned under the row's lock, then in the cache.
func (s *Store) SetCosigned(ctx context.Context, size uint64, note []byte) (err error) {
	tx, err := s.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("couldn't begin a MariaDB transaction: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var storedSize sql.NullInt64
	var stored []byte
	if err := tx.QueryRowContext(ctx, "SELECT CosignedSize, Cosigned FROM KeycommitLog WHERE TreeId=? FOR UPDATE", s.cfg.TreeID).Scan(&storedSize, &stored); err != nil {
		return fmt.Errorf("couldn't lock the shared state of tree %d: %w", s.cfg.TreeID, err)
	}
	merged, err := storage.MergeCosigned(uint64(storedSize.Int64), stored, size, note)
	if err != nil {
		return err
	}
	if merged != nil {
		if _, err := tx.ExecContext(ctx, "UPDATE KeycommitLog SET CosignedSize=?, Cosigned=? WHERE TreeId=?", size, merged, s.cfg.TreeID); err != nil {
			return fmt.Errorf("couldn't store the cosigned checkpoint of size %d: %w", size, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("couldn't store the cosigned checkpoint of size %d: %w", size, err)
	}
	return s.cfg.Cache.SetCosigned(ctx, size, note)
}

// PolicyState implements storage.PolicyStateReader, from the shared
// store.
func (s *Store) PolicyState(ctx context.Context) (*storage.PolicyState, error) {
	var size sql.NullInt64
	var data []byte
	err := s.cfg.DB.QueryRowContext(ctx, "SELECT PolicySize, PolicyState FROM KeycommitLog WHERE TreeId=?", s.cfg.TreeID).Scan(&size, &data)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !size.Valid {
		return nil, fmt.Errorf("no policy state stored for tree %d: %w", s.cfg.TreeID, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read the policy state of tree %d: %w", s.cfg.TreeID, err)
	}
	return &storage.PolicyState{Size: uint64(size.Int64), Data: data}, nil
}

// Checkpoint implements storage.Reader: the latest checkpoint in the
// cache.
func (s *Store) Checkpoint(ctx context.Context) (uint64, []byte, error) {
	return s.cfg.Cache.Checkpoint(ctx)
}

// Cosigned implements storage.Reader: the latest cosigned checkpoint in
// the cache.
func (s *Store) Cosigned(ctx context.Context) (uint64, []byte, error) {
	return s.cfg.Cache.Cosigned(ctx)
}

// IdentityHash returns the Trillian leaf identity hash of an entry at
// index idx: for an issuer statement SHA-256 of a label, the issuer and
// prev, so that two statements extending the same issuer history collide;
// for a log-written entry (or e == nil, bytes that are not an entry)
// SHA-256 of a label and the index.
func IdentityHash(e *schema.Entry, idx uint64) []byte {
	h := sha256.New()
	if e != nil && e.Kind.IssuerSigned() {
		h.Write([]byte("keycommit/leaf-identity/v1/statement\n"))
		h.Write([]byte(e.Issuer))
		h.Write([]byte{0})
		h.Write(e.Prev)
	} else {
		h.Write([]byte("keycommit/leaf-identity/v1/log\n"))
		binary.Write(h, binary.BigEndian, idx)
	}
	return h.Sum(nil)
}

// Root is a Trillian log root: unsigned, as Trillian 1.8 returns it.
type Root struct {
	Size uint64
	Hash tlog.Hash
}

// LatestRoot returns Trillian's latest log root for the tree.
func (s *Store) LatestRoot(ctx context.Context) (Root, error) {
	return LatestRoot(ctx, s.cfg.Client, s.cfg.TreeID)
}

// LatestRoot returns Trillian's latest log root for tree id.
func LatestRoot(ctx context.Context, c trillian.TrillianLogClient, id int64) (Root, error) {
	r, err := c.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: id})
	if err != nil {
		return Root{}, fmt.Errorf("couldn't get the latest root of Trillian tree %d: %w", id, err)
	}
	var lr types.LogRootV1
	if err := lr.UnmarshalBinary(r.GetSignedLogRoot().GetLogRoot()); err != nil {
		return Root{}, fmt.Errorf("couldn't parse the root of Trillian tree %d: %w", id, err)
	}
	if len(lr.RootHash) != tlog.HashSize {
		return Root{}, fmt.Errorf("root of Trillian tree %d has a %d-byte hash", id, len(lr.RootHash))
	}
	return Root{Size: lr.TreeSize, Hash: tlog.Hash(lr.RootHash)}, nil
}

// checkConsistent verifies Trillian's consistency proof from (size1,
// root1) to r.
func (s *Store) checkConsistent(ctx context.Context, size1 uint64, root1 tlog.Hash, r Root) error {
	if size1 == r.Size {
		if root1 != r.Hash {
			return fmt.Errorf("the Trillian log's root at size %d is %x, we have %x", size1, r.Hash[:], root1[:])
		}
		return nil
	}
	if size1 == 0 {
		return nil
	}
	resp, err := s.cfg.Client.GetConsistencyProof(ctx, &trillian.GetConsistencyProofRequest{
		LogId: s.cfg.TreeID, FirstTreeSize: int64(size1), SecondTreeSize: int64(r.Size)})
	if err != nil {
		return fmt.Errorf("couldn't get Trillian's consistency proof %d→%d: %w", size1, r.Size, err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, r.Size, resp.GetProof().GetHashes(), root1[:], r.Hash[:]); err != nil {
		err = verify.ProofError(err)
		return fmt.Errorf("the Trillian log's tree of size %d is not consistent with ours of size %d: %w", r.Size, size1, err)
	}
	return nil
}

// checkTiles checks that the tiles a batch carries are the ones computed
// from its entries.
func checkTiles(given []tiles.Tile, computed []tiles.Tile) error {
	if len(given) == 0 {
		return nil
	}
	want := map[[2]int64][]byte{}
	for _, t := range computed {
		want[[2]int64{int64(t.L), t.N}] = t.Data
	}
	for _, t := range given {
		if w, ok := want[[2]int64{int64(t.L), t.N}]; !ok || !bytes.Equal(w, t.Data) {
			return fmt.Errorf("the batch's tile %s differs from the one computed from its entries", tiles.Path(t.Tile))
		}
	}
	return nil
}

// Tile implements storage.Reader.
func (s *Store) Tile(ctx context.Context, l int, n int64) ([]byte, error) {
	return s.cfg.Cache.Tile(ctx, l, n)
}

// Entries implements storage.Reader.
func (s *Store) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	return s.cfg.Cache.Entries(ctx, start, end)
}

// LeafIndex implements storage.Reader.
func (s *Store) LeafIndex(ctx context.Context, h tlog.Hash) (uint64, error) {
	return s.cfg.Cache.LeafIndex(ctx, h)
}

// IssuerEntries implements storage.Reader.
func (s *Store) IssuerEntries(ctx context.Context, origin string) ([]uint64, error) {
	return s.cfg.Cache.IssuerEntries(ctx, origin)
}

// IssuerEntriesBefore implements storage.IssuerTailReader.
func (s *Store) IssuerEntriesBefore(ctx context.Context, origin string, before uint64, n int) ([]uint64, int, error) {
	return storage.IssuerEntriesBefore(ctx, s.cfg.Cache, origin, before, n)
}

// KeySet implements storage.Reader.
func (s *Store) KeySet(ctx context.Context) (*storage.KeySet, error) {
	return s.cfg.Cache.KeySet(ctx)
}
