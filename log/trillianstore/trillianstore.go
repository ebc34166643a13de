// Package trillianstore is the log's scale-out backend: the leaves live in
// a Trillian PREORDERED_LOG tree (Trillian 1.8 on MySQL/MariaDB), and each
// keycommit frontend keeps a local cache of entries, tiles and the
// checkpoints it signed, derived from Trillian's leaves.
//
// Trillian does not sign anything here: its log roots are unsigned. A
// frontend signs a C2SP checkpoint over a Trillian root only after it has
// fetched every leaf up to that root, recomputed the root from them itself,
// checked Trillian's consistency proof from the last checkpoint it signed,
// and replayed the new entries through policy.Evaluate in log order.
//
// # Sequencing across frontends
//
// Several frontends, each running a sequencer over its own Store, append
// to one tree. Every write is a compare-and-swap on the leaf index:
// AddSequencedLeaves with an explicit LeafIndex fails for an index that is
// taken (Trillian's SequencedLeafData has a unique key on it), and a
// frontend writes leaf i only when it has seen every leaf before i (the
// tree is integrated up to i, or it wrote i-1 itself in the same batch). So
// every leaf was admitted by policy.Evaluate against exactly the entries
// that precede it in the log, whatever the rule: per issuer (prev, rotation
// rate, ids), across issuers (a key committed by two issuers at once) or
// log-wide (snapshots, policy parameters). Leaves are added one per RPC and
// a batch stops at its first refused leaf: a later leaf of the batch was
// admitted assuming the refused one precedes it.
//
// Each leaf also carries an identity hash that Trillian keeps unique:
// SHA-256 of the issuer and prev for issuer statements (see IdentityHash),
// so the same issuer history can never be extended twice even by a
// frontend with a broken policy.
//
// # Commit order of Append, and where a crash can land
//
//  1. Claim leaves b.Start, b.Start+1, ... one AddSequencedLeaves call
//     each. A crash (or a refused claim) after k claims leaves k valid
//     leaves in Trillian that no submitter was answered for; followers pick
//     them up like any other frontend's leaves. Append returns ErrConflict
//     (wrapped) after a refused claim.
//  2. Wait until Trillian's signer has integrated all claimed leaves, then
//     check Trillian's root (or its consistency proof from our size to its
//     newer size) against the root in b.Checkpoint. A signer crash only
//     delays this step: the claimed leaves are durable in MariaDB.
//  3. Store b in the local cache. A crash before this only loses cache
//     contents, rebuilt from Trillian by the next Sync.
package trillianstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
)

// Config configures a Store.
type Config struct {
	// Client talks to the Trillian log server. Required.
	Client trillian.TrillianLogClient
	// TreeID is the PREORDERED_LOG tree holding the log. Required.
	TreeID int64
	// Cache is the frontend's local store of entries, tiles and
	// checkpoints (a sqlitestore in production, storage.Memory in
	// tests). It must hold nothing, or a prefix of this tree. Required.
	Cache storage.Backend
	// Signer is the log key, used to sign checkpoints over leaves other
	// frontends appended (and, at Open, over leaves the cache lacks).
	// Without it the store only serves what this frontend appended and
	// refuses to follow.
	Signer c2sp.Signer
	// PollInterval is how often the store asks Trillian for its root while
	// it waits for leaves to be integrated (default 5ms).
	PollInterval time.Duration
	// FollowInterval is how often the background follower picks up
	// leaves appended by other frontends (default 200ms; negative: no
	// follower, call Sync yourself).
	FollowInterval time.Duration
	// FetchBatch bounds the leaves asked for in one GetLeavesByRange call
	// (default 1000).
	FetchBatch int
	// Logger receives operational logs (default: discard).
	Logger *slog.Logger
	// Registerer receives the store's metrics (default: none).
	Registerer prometheus.Registerer
}

// Store is a storage.Backend over a Trillian tree.
type Store struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	// mu serializes writers to the cache: Append and Sync. It guards st,
	// app and lastRoot.
	mu sync.Mutex
	// st is the policy state after the cache's entries, or nil when the
	// cache holds bytes that are not keycommit entries (the storage
	// contract lets a writer store any bytes; such a store cannot follow).
	st       *policy.State
	app      *tiles.Appender
	lastRoot tlog.Hash // root of the cache's tree (the last checkpoint signed or stored)

	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

var _ storage.Backend = (*Store)(nil)

type metrics struct {
	claims, conflicts, followed prometheus.Counter
	size                        prometheus.Gauge
	waits                       prometheus.Histogram
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		claims:    prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_leaves_claimed_total", Help: "Leaves this frontend added to the Trillian tree."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_claim_conflicts_total", Help: "Leaf claims refused because another frontend took the index (or the identity)."}),
		followed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "keycommit_trillian_leaves_followed_total", Help: "Leaves fetched from Trillian that other frontends appended."}),
		size:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "keycommit_trillian_cache_size", Help: "Tree size of this frontend's cache."}),
		waits: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keycommit_trillian_integration_wait_seconds", Help: "Time from the last claim of a batch to its integration by the Trillian signer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.claims, m.conflicts, m.followed, m.size, m.waits} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("couldn't register Trillian store metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Open returns a Store over cfg.TreeID. It checks that the cache is a
// prefix of the tree, brings it up to date with Trillian (see Sync), and
// starts the background follower.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Client == nil || cfg.TreeID == 0 || cfg.Cache == nil {
		return nil, errors.New("trillianstore config needs a Client, a TreeID and a Cache")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Millisecond
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
	s := &Store{cfg: cfg, log: cfg.Logger, m: m,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	if err := s.load(ctx); err != nil {
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

// load rebuilds the policy state and the tree edge from the cache. The
// cache is checked against Trillian by the Sync that follows.
func (s *Store) load(ctx context.Context) error {
	c := s.cfg.Cache
	size, _, err := c.Checkpoint(ctx)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		size = 0
	case err != nil:
		return fmt.Errorf("couldn't read the cached checkpoint: %w", err)
	}
	origin := "" // a store without the log key never follows (see Config.Signer)
	if s.cfg.Signer != nil {
		origin = s.cfg.Signer.Name()
	}
	st := policy.NewLogState(origin)
	const chunk = 1024
	for start := uint64(0); start < size && st != nil; start += chunk {
		end := min(start+chunk, size)
		es, err := c.Entries(ctx, start, end)
		if err != nil {
			return fmt.Errorf("couldn't read cached entries [%d, %d): %w", start, end, err)
		}
		for i, data := range es {
			if err := applyEntry(st, data, start+uint64(i)); err != nil {
				s.log.Warn("the cache holds an entry the policy can't replay; this store can't follow other frontends", "err", err)
				st = nil
				break
			}
		}
	}
	app, err := tiles.NewAppender(int64(size), func(t tlog.Tile) ([]byte, error) { return c.Tile(ctx, t.L, t.N) })
	if err != nil {
		return fmt.Errorf("couldn't load the edge of the cached tree: %w", err)
	}
	root, err := app.Root()
	if err != nil {
		return fmt.Errorf("couldn't compute the root of the cached tree: %w", err)
	}
	s.mu.Lock()
	s.st, s.app, s.lastRoot = st, app, root
	s.mu.Unlock()
	s.m.size.Set(float64(size))
	return nil
}

func applyEntry(st *policy.State, data []byte, idx uint64) error {
	var e schema.Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return fmt.Errorf("couldn't parse entry %d: %w", idx, err)
	}
	if err := st.Apply(&e, idx, tiles.LeafHash(data)); err != nil {
		return fmt.Errorf("couldn't apply entry %d: %w", idx, err)
	}
	return nil
}

// Close stops the follower and closes the cache.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.stopped
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
			s.log.Warn("couldn't follow the Trillian tree", "tree", s.cfg.TreeID, "err", err)
		}
		cancel()
	}
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

// Sync brings the cache up to Trillian's latest root: it fetches the new
// leaves, checks their hashes, replays them through the policy in log
// order, recomputes the tiles and the root, checks the root against
// Trillian's (and Trillian's consistency proof from the last checkpoint),
// and only then signs and stores a checkpoint of the new size.
func (s *Store) Sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked(ctx)
}

func (s *Store) syncLocked(ctx context.Context) error {
	r, err := s.LatestRoot(ctx)
	if err != nil {
		return err
	}
	size := uint64(s.app.Size())
	if r.Size < size {
		return fmt.Errorf("the Trillian tree %d has %d leaves, fewer than the %d this frontend has seen", s.cfg.TreeID, r.Size, size)
	}
	if r.Size == size {
		if r.Hash != s.lastRoot {
			return fmt.Errorf("the Trillian log's root at size %d is %x, ours is %x", size, r.Hash[:], s.lastRoot[:])
		}
		return nil
	}
	if err := s.checkConsistent(ctx, size, s.lastRoot, r); err != nil {
		return err
	}
	if s.cfg.Signer == nil {
		return fmt.Errorf("the Trillian tree %d has %d leaves beyond this frontend's %d, and it has no log key to sign them", s.cfg.TreeID, r.Size-size, size)
	}
	if s.st == nil {
		return fmt.Errorf("can't follow Trillian tree %d: the cache holds bytes that are not keycommit entries", s.cfg.TreeID)
	}
	for size < r.Size {
		n := min(r.Size-size, uint64(s.cfg.FetchBatch))
		resp, err := s.cfg.Client.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{LogId: s.cfg.TreeID, StartIndex: int64(size), Count: int64(n)})
		if err != nil {
			return fmt.Errorf("couldn't get leaves [%d, %d) from Trillian: %w", size, size+n, err)
		}
		if len(resp.Leaves) == 0 {
			return fmt.Errorf("the Trillian log server returned no leaves from %d in a tree of %d", size, r.Size)
		}
		// Trillian may cap the count; take what it gave.
		entries := make([]storage.Entry, 0, len(resp.Leaves))
		scratch := s.st // Evaluate/Apply in order; on error the state is rebuilt by load
		var keySet *storage.KeySet
		for i, l := range resp.Leaves {
			idx := size + uint64(i)
			if uint64(l.LeafIndex) != idx {
				return fmt.Errorf("the Trillian log server returned leaf %d where %d was asked for", l.LeafIndex, idx)
			}
			leaf := tiles.LeafHash(l.LeafValue)
			if !bytes.Equal(l.MerkleLeafHash, leaf[:]) {
				return fmt.Errorf("the Trillian log's leaf hash for entry %d is %x, the entry hashes to %x", idx, l.MerkleLeafHash, leaf[:])
			}
			e, err := schema.ParseEntry(l.LeafValue)
			if err != nil {
				return fmt.Errorf("leaf %d of Trillian tree %d is not a keycommit entry: %w", idx, s.cfg.TreeID, err)
			}
			// A frontend never signs a checkpoint over an entry that the
			// policy refuses at its position: monitors would alert, and
			// rightly.
			if d := policy.Evaluate(scratch, e, idx); !d.Accept {
				s.reload(ctx)
				return fmt.Errorf("leaf %d of Trillian tree %d fails policy replay (refusing to sign): %w", idx, s.cfg.TreeID, d.Err())
			}
			if e.Kind == schema.KindSnapshot {
				ksData, err := scratch.KeySet(e.Time).Marshal()
				if err != nil {
					s.reload(ctx)
					return fmt.Errorf("couldn't encode the key set at %d: %w", idx, err)
				}
				keySet = &storage.KeySet{Index: idx, Data: ksData}
			}
			if err := scratch.Apply(e, idx, leaf); err != nil {
				s.reload(ctx)
				return fmt.Errorf("couldn't apply leaf %d: %w", idx, err)
			}
			entries = append(entries, storage.Entry{Data: l.LeafValue, LeafHash: leaf, Issuer: e.Issuer})
		}
		u, err := s.extend(size, entries)
		if err != nil {
			s.reload(ctx)
			return err
		}
		signed, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: s.cfg.Signer.Name(), Size: uint64(u.Size), Hash: u.Root}, s.cfg.Signer)
		if err == nil {
			err = s.store(ctx, &storage.Batch{Start: size, Entries: entries, Tiles: u.Tiles, Checkpoint: signed, KeySet: keySet}, u)
		}
		if err != nil {
			s.reload(ctx)
			return err
		}
		s.m.followed.Add(float64(len(entries)))
		size += uint64(len(entries))
	}
	if s.lastRoot != r.Hash {
		return fmt.Errorf("leaves [0, %d) of Trillian tree %d give root %x, Trillian says %x", r.Size, s.cfg.TreeID, s.lastRoot[:], r.Hash[:])
	}
	return nil
}

// reload rebuilds the in-memory state from the cache after a failure left
// it ahead of the cache.
func (s *Store) reload(ctx context.Context) {
	s.mu.Unlock()
	defer s.mu.Lock()
	if err := s.load(ctx); err != nil {
		s.log.Error("couldn't reload state from the cache", "err", err)
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
	if err := s.cfg.Cache.Append(ctx, b); err != nil {
		return fmt.Errorf("couldn't store entries [%d, %d) in the cache: %w", b.Start, b.Size(), err)
	}
	s.lastRoot = u.Root
	s.m.size.Set(float64(u.Size))
	return nil
}

// Append implements storage.Writer; see the package doc for its commit
// order. It returns ErrConflict (wrapped) when b.Start is not the size of
// the tree, or when another frontend took one of b's indexes first: then
// the leaves before that index (possibly none) are in the log and the rest
// are not, and the cache is brought up to date before Append returns so
// the sequencer can rebuild its state from it.
func (s *Store) Append(ctx context.Context, b *storage.Batch) error {
	if len(b.Entries) == 0 {
		return errors.New("empty batch")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	size := uint64(s.app.Size())
	if b.Start > size {
		if err := s.syncLocked(ctx); err != nil {
			return err
		}
		size = uint64(s.app.Size())
	}
	if b.Start != size {
		return fmt.Errorf("%w: batch starts at %d, the tree has %d entries", storage.ErrConflict, b.Start, size)
	}
	parsed := make([]*schema.Entry, len(b.Entries))
	for i, e := range b.Entries {
		if tiles.LeafHash(e.Data) != e.LeafHash {
			return fmt.Errorf("entry %d of the batch has a wrong leaf hash", b.Start+uint64(i))
		}
		// Not an entry (the storage contract allows any bytes): stored
		// with an index identity, and this store stops following.
		parsed[i], _ = schema.ParseEntry(e.Data)
	}

	// Step 1: claim the indexes one by one.
	for i, e := range b.Entries {
		idx := b.Start + uint64(i)
		ok, indexTaken, err := s.claim(ctx, idx, e.Data, IdentityHash(parsed[i], idx))
		if err != nil {
			// The claim may or may not have been stored: Sync tells.
			return fmt.Errorf("couldn't add entry %d to Trillian (it may be logged; the tree tells): %w", idx, err)
		}
		if !ok {
			s.m.conflicts.Inc()
			// Wait for the leaf that took the index (or for our own leaves
			// before it, when only the identity was taken), so that the
			// state rebuilt from the cache includes it.
			wait := idx
			if indexTaken {
				wait = idx + 1
			}
			serr := s.waitIntegrated(ctx, wait)
			if serr == nil {
				serr = s.waitSettled(ctx)
			}
			if serr == nil {
				serr = s.syncLocked(ctx)
			}
			if serr != nil {
				s.log.Warn("couldn't catch up after a claim conflict", "err", serr)
			}
			return fmt.Errorf("%w: another frontend took index %d (entries [%d, %d) of the batch are logged)", storage.ErrConflict, idx, b.Start, idx)
		}
		s.m.claims.Inc()
	}

	// Step 2: wait for integration and check Trillian's root against the
	// root of our tree with the batch (and the batch's tiles against ours).
	t0 := time.Now()
	if err := s.waitIntegrated(ctx, b.Size()); err != nil {
		return err
	}
	s.m.waits.Observe(time.Since(t0).Seconds())
	r, err := s.LatestRoot(ctx)
	if err != nil {
		return err
	}
	u, err := s.extend(b.Start, b.Entries)
	if err != nil {
		s.reload(ctx)
		return err
	}
	if err := checkTiles(b.Tiles, u.Tiles); err != nil {
		s.reload(ctx)
		return err
	}
	if err := s.checkConsistent(ctx, b.Size(), u.Root, r); err != nil {
		s.reload(ctx)
		return fmt.Errorf("the Trillian log server disagrees with the batch: %w", err)
	}

	// Step 3: the cache.
	if err := s.store(ctx, b, u); err != nil {
		s.reload(ctx)
		return err
	}
	if s.st != nil {
		for i, e := range b.Entries {
			if parsed[i] == nil {
				s.st = nil
				break
			}
			if err := s.st.Apply(parsed[i], b.Start+uint64(i), e.LeafHash); err != nil {
				s.log.Warn("couldn't apply an appended entry; this store can't follow other frontends", "index", b.Start+uint64(i), "err", err)
				s.st = nil
				break
			}
		}
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

// claim adds one leaf at idx. It returns false when Trillian refuses it
// because the index or the identity hash is taken, and indexTaken when
// it was the index.
func (s *Store) claim(ctx context.Context, idx uint64, data, identity []byte) (ok, indexTaken bool, err error) {
	leaf := tiles.LeafHash(data)
	resp, err := s.cfg.Client.AddSequencedLeaves(ctx, &trillian.AddSequencedLeavesRequest{
		LogId: s.cfg.TreeID,
		Leaves: []*trillian.LogLeaf{{
			LeafIndex: int64(idx), LeafValue: data, LeafIdentityHash: identity, MerkleLeafHash: leaf[:],
		}},
	})
	if err != nil {
		return false, false, err
	}
	if len(resp.Results) != 1 {
		return false, false, fmt.Errorf("the Trillian log server answered %d results for one leaf", len(resp.Results))
	}
	st := resp.Results[0].GetStatus()
	switch {
	case st == nil || st.Code == int32(codes.OK):
		return true, false, nil
	case st.Code == int32(codes.FailedPrecondition) || st.Code == int32(codes.AlreadyExists):
		s.log.Debug("leaf claim refused", "index", idx, "reason", st.Message)
		return false, strings.Contains(st.Message, "LeafIndex"), nil
	default:
		return false, false, fmt.Errorf("the Trillian log server refused leaf %d: %s (code %d)", idx, st.Message, st.Code)
	}
}

// waitSettled waits, after a conflict, until Trillian's tree stops
// growing for a moment (with jitter), so that the retry does not run into
// the middle of the winning frontend's batch, whose leaves it cannot see
// before they are integrated.
func (s *Store) waitSettled(ctx context.Context) error {
	last, err := s.LatestRoot(ctx)
	if err != nil {
		return err
	}
	for {
		d := 4*s.cfg.PollInterval + time.Duration(rand.Int64N(int64(4*s.cfg.PollInterval)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		r, err := s.LatestRoot(ctx)
		if err != nil {
			return err
		}
		if r.Size == last.Size {
			return nil
		}
		last = r
	}
}

// waitIntegrated waits until Trillian's tree has at least size leaves.
func (s *Store) waitIntegrated(ctx context.Context, size uint64) error {
	for {
		r, err := s.LatestRoot(ctx)
		if err == nil && r.Size >= size {
			return nil
		}
		if err != nil {
			s.log.Debug("couldn't read Trillian's root while waiting for integration", "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for Trillian to integrate up to size %d: %w", size, ctx.Err())
		case <-time.After(s.cfg.PollInterval):
		}
	}
}

// SetCosigned implements storage.Writer (in this frontend's cache).
func (s *Store) SetCosigned(ctx context.Context, size uint64, note []byte) error {
	return s.cfg.Cache.SetCosigned(ctx, size, note)
}

// Checkpoint implements storage.Reader: the latest checkpoint this
// frontend signed or stored.
func (s *Store) Checkpoint(ctx context.Context) (uint64, []byte, error) {
	return s.cfg.Cache.Checkpoint(ctx)
}

// Cosigned implements storage.Reader.
func (s *Store) Cosigned(ctx context.Context) (uint64, []byte, error) {
	return s.cfg.Cache.Cosigned(ctx)
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

// KeySet implements storage.Reader.
func (s *Store) KeySet(ctx context.Context) (*storage.KeySet, error) {
	return s.cfg.Cache.KeySet(ctx)
}
