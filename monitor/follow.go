package monitor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"
)

// follower follows one log.
type follower struct {
	m        *Monitor
	origin   string
	vkey     string
	url      string
	verifier note.Verifier
	client   *tileClient

	mu       sync.Mutex // guards the fields below, read by gossip
	anchor   *Checkpoint
	verified *Checkpoint
	position int64
	stuck    string // why following stopped (a split view), or ""

	obsMu     sync.Mutex // one observe at a time: the anchor only moves forward, along one history
	runMu     sync.Mutex // one round (and one policy state user) at a time
	st        *policy.State
	keys      *accountKeys // the account keys in st, for the fetch workers
	savedPos  int64
	savedTime time.Time
}

func newFollower(ctx context.Context, m *Monitor, lc LogConfig) (*follower, error) {
	v, err := note.NewVerifier(lc.VKey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse log verifier key %q: %w", lc.VKey, err)
	}
	origin := lc.Origin
	if origin == "" {
		origin = v.Name()
	}
	f := &follower{m: m, origin: origin, vkey: lc.VKey, url: lc.URL, verifier: v,
		client: newTileClient(lc.URL, m.hc), st: policy.NewState()}
	row, ok, err := m.store.loadLog(ctx, origin)
	if err != nil {
		return nil, err
	}
	if ok {
		if row.vkey != lc.VKey {
			return nil, fmt.Errorf("the monitor database follows log %s with key %s, not %s; use another --data directory", origin, row.vkey, lc.VKey)
		}
		if row.anchor != nil {
			if f.anchor, err = openCheckpoint(row.anchor, v, origin); err != nil {
				return nil, fmt.Errorf("stored checkpoint of log %s: %w", origin, err)
			}
		}
		if row.verified != nil {
			if f.verified, err = openCheckpoint(row.verified, v, origin); err != nil {
				return nil, fmt.Errorf("stored verified checkpoint of log %s: %w", origin, err)
			}
		}
		if row.state != nil {
			if f.st, err = policy.UnmarshalState(row.state); err != nil {
				return nil, fmt.Errorf("stored policy state of log %s: %w", origin, err)
			}
		}
		if int64(f.st.Size()) != row.position {
			return nil, fmt.Errorf("stored policy state of log %s has %d entries but the replay position is %d", origin, f.st.Size(), row.position)
		}
		f.position = row.position
	}
	if err := m.store.initLog(ctx, origin, lc.VKey, lc.URL); err != nil {
		return nil, err
	}
	f.savedPos, f.savedTime = f.position, time.Now()
	return f, nil
}

// status returns a snapshot of the follower's progress.
func (f *follower) status() LogStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := LogStatus{Origin: f.origin, URL: f.url, Position: f.position, Stuck: f.stuck}
	if f.verified != nil {
		s.VerifiedSize = f.verified.Size
		s.VerifiedRoot = f.verified.Root.String()
		s.Checkpoint = string(f.verified.Note)
	}
	if f.anchor != nil {
		s.AnchorSize = f.anchor.Size
	}
	return s
}

func (f *follower) getAnchor() *Checkpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.anchor
}

// round fetches the log's checkpoint, checks it against what the monitor
// verified before, and replays every entry up to it.
func (f *follower) round(ctx context.Context) error {
	f.runMu.Lock()
	defer f.runMu.Unlock()
	raw, err := f.client.get(ctx, "checkpoint", maxNoteSize)
	if err != nil {
		return fmt.Errorf("couldn't fetch the checkpoint of %s: %w", f.origin, err)
	}
	cp, err := openCheckpoint(raw, f.verifier, f.origin)
	if err != nil {
		f.m.raise(ctx, Alert{Log: f.origin, Kind: KindCheckpoint, Rule: RuleSignature,
			Message: fmt.Sprintf("the log served a checkpoint that does not verify: %v", err)})
		return fmt.Errorf("checkpoint of %s: %w", f.origin, err)
	}
	res, _, err := f.observe(ctx, cp, "log "+f.url)
	if err != nil {
		return err
	}
	if res == resultSplit {
		return fmt.Errorf("the checkpoint %s served by the log is inconsistent with the monitor's verified history; see the split-view evidence", cp)
	}
	if err := f.catchUp(ctx); err != nil {
		return err
	}
	return f.recheckPending(ctx)
}

type observeResult int

const (
	resultConsistent observeResult = iota
	resultPending
	resultSplit
)

func (r observeResult) String() string {
	return [...]string{"consistent", "pending", "split-view"}[r]
}

// observe checks a checkpoint whose log signature verified against the
// monitor's anchor. A consistent larger checkpoint becomes the anchor; an
// inconsistent one is stored as split-view evidence; one whose
// consistency cannot be established yet is kept for later.
func (f *follower) observe(ctx context.Context, cp *Checkpoint, source string) (observeResult, string, error) {
	f.obsMu.Lock()
	defer f.obsMu.Unlock()
	fromLog := strings.HasPrefix(source, "log ")
	anchor := f.getAnchor()
	if anchor == nil {
		if !fromLog {
			// Nothing verified yet to compare with: keep it until the
			// monitor has followed the log.
			return resultPending, "", f.m.store.addPending(ctx, cp, source)
		}
		return resultConsistent, "", f.setAnchor(ctx, cp)
	}
	ok, proof, err := f.compare(ctx, anchor, cp)
	if err != nil {
		if fromLog {
			return resultPending, "", fmt.Errorf("couldn't check the log's checkpoint %s against %s: %w", cp, anchor, err)
		}
		f.m.log.Info("can't check a gossiped checkpoint yet; keeping it", "log", f.origin, "size", cp.Size, "source", source, "reason", err)
		return resultPending, "", f.m.store.addPending(ctx, cp, source)
	}
	if !ok {
		reason := fmt.Sprintf("checkpoints of sizes %d and %d have different roots", anchor.Size, cp.Size)
		if anchor.Size != cp.Size {
			reason = fmt.Sprintf("a consistency proof reproducing the root of size %d gives a different root for size %d", max(anchor.Size, cp.Size), min(anchor.Size, cp.Size))
		}
		ev := newEvidence(f.vkey, anchor, cp, "verified by this monitor", source, proof, reason, f.m.now())
		if err := f.m.recordEvidence(ctx, ev); err != nil {
			return resultSplit, "", err
		}
		if fromLog {
			f.mu.Lock()
			f.stuck = "split view: evidence " + ev.ID()
			f.mu.Unlock()
		}
		return resultSplit, ev.ID(), nil
	}
	switch {
	case cp.Size > anchor.Size:
		return resultConsistent, "", f.setAnchor(ctx, cp)
	case cp.Size == anchor.Size:
		f.mergeCosignatures(ctx, cp)
	}
	return resultConsistent, "", nil
}

func (f *follower) setAnchor(ctx context.Context, cp *Checkpoint) error {
	if err := f.m.store.saveAnchor(ctx, f.origin, cp.Note); err != nil {
		return err
	}
	f.mu.Lock()
	f.anchor = cp
	f.mu.Unlock()
	return f.m.startWatches(ctx, f.origin, cp.Size)
}

// mergeCosignatures adds the signature lines of cp (a checkpoint with the
// same body as the anchor, say cosigned by a witness) to the anchor and
// verified notes that lack them, so that the monitor serves the
// checkpoint with every cosignature it has seen.
func (f *follower) mergeCosignatures(ctx context.Context, cp *Checkpoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	merged, changed := mergeNotes(f.anchor.Note, cp.Note)
	if !changed {
		return
	}
	if _, err := openCheckpoint(merged, f.verifier, f.origin); err != nil {
		return
	}
	f.anchor = &Checkpoint{Origin: f.anchor.Origin, Size: f.anchor.Size, Root: f.anchor.Root, Note: merged}
	if f.verified != nil && f.verified.Size == f.anchor.Size {
		f.verified = f.anchor
	}
	if err := f.m.store.saveAnchor(ctx, f.origin, merged); err != nil {
		f.m.log.Warn("couldn't save merged cosignatures", "log", f.origin, "err", err)
	}
}

// mergeNotes returns a with the signature lines of b it lacks; both must
// have the same text.
func mergeNotes(a, b []byte) ([]byte, bool) {
	ia, ib := bytes.Index(a, []byte("\n\n")), bytes.Index(b, []byte("\n\n"))
	if ia < 0 || ib < 0 || !bytes.Equal(a[:ia], b[:ib]) {
		return a, false
	}
	have := map[string]bool{}
	for _, l := range strings.SplitAfter(string(a[ia+2:]), "\n") {
		have[l] = true
	}
	out := append([]byte(nil), a...)
	changed := false
	for _, l := range strings.SplitAfter(string(b[ib+2:]), "\n") {
		if l != "" && strings.HasSuffix(l, "\n") && !have[l] {
			out = append(out, l...)
			have[l] = true
			changed = true
		}
	}
	return out, changed
}

// compare reports whether a and b (both signed by the log) are consistent.
// When they are not, proof (nil for equal sizes) shows it. An error means
// consistency could not be established either way.
func (f *follower) compare(ctx context.Context, a, b *Checkpoint) (ok bool, proof []tlog.Hash, err error) {
	if a.Size == b.Size {
		return a.Root == b.Root, nil, nil
	}
	small, big := a, b
	if small.Size > big.Size {
		small, big = big, small
	}
	if small.Size == 0 {
		return true, nil, nil
	}
	p, err := f.proveWithTiles(ctx, small.Size, big)
	if err != nil {
		f.client.dropCache()
		p, err = f.proveWithTiles(ctx, small.Size, big)
	}
	if err == nil {
		oldRoot, newRoot, err := rootsFromProof(small.Size, big.Size, p)
		if err != nil || newRoot != big.Root {
			return false, nil, fmt.Errorf("proof from authenticated tiles does not reproduce %s (%v)", big, err)
		}
		return oldRoot == small.Root, p, nil
	}
	tileErr := err
	// The log's tiles do not authenticate against big: it may be showing
	// this monitor another view. Its consistency proof endpoint may still
	// settle it: a proof is checked, not trusted.
	ok, p, err = f.proveWithEndpoint(ctx, small, big)
	if err != nil {
		return false, nil, fmt.Errorf("tiles: %v; proof endpoint: %w", tileErr, err)
	}
	return ok, p, nil
}

func (f *follower) proveWithTiles(ctx context.Context, m int64, big *Checkpoint) ([]tlog.Hash, error) {
	thr := tlog.TileHashReader(big.tree(), &tileReader{ctx: ctx, c: f.client})
	return proveFromTiles(thr, m, big.Size)
}

func (f *follower) proveWithEndpoint(ctx context.Context, small, big *Checkpoint) (bool, []tlog.Hash, error) {
	u := f.client.base + "/v1/proof/consistency?old=" + strconv.FormatInt(small.Size, 10) + "&new=" + strconv.FormatInt(big.Size, 10)
	b, err := httpGet(ctx, f.m.hc, u, 64*1024)
	if err != nil {
		return false, nil, err
	}
	var resp struct {
		Proof [][]byte `json:"proof"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return false, nil, fmt.Errorf("malformed consistency proof from %s: %w", u, err)
	}
	p := make([]tlog.Hash, len(resp.Proof))
	for i, h := range resp.Proof {
		if len(h) != tlog.HashSize {
			return false, nil, fmt.Errorf("consistency proof hash %d is %d bytes", i, len(h))
		}
		copy(p[i][:], h)
	}
	full := fullProof(small.Size, p, small.Root)
	oldRoot, newRoot, err := rootsFromProof(small.Size, big.Size, full)
	if err != nil {
		return false, nil, err
	}
	switch {
	case newRoot != big.Root:
		return false, nil, fmt.Errorf("the log's consistency proof %d -> %d does not reproduce the root of %s", small.Size, big.Size, big)
	case oldRoot == small.Root:
		return true, nil, nil
	}
	return false, full, nil
}

// recheckPending checks kept gossip checkpoints again now that the anchor
// may have moved.
func (f *follower) recheckPending(ctx context.Context) error {
	ps, err := f.m.store.pendingFor(ctx, f.origin)
	if err != nil {
		return err
	}
	for _, p := range ps {
		cp, err := openCheckpoint(p.note, f.verifier, f.origin)
		if err != nil {
			continue
		}
		res, _, err := f.observe(ctx, cp, p.source)
		if err != nil {
			return err
		}
		if res != resultPending {
			if err := f.m.store.dropPending(ctx, cp); err != nil {
				return err
			}
		}
	}
	return nil
}

// bundleData is one verified entry bundle.
type bundleData struct {
	n       int64
	entries [][]byte
	leaves  []tlog.Hash
	parsed  []*schema.Entry
	perrs   []error
	// verified[j] is the key entry j's signature verified under (see
	// preverify), or nil.
	verified []ed25519.PublicKey
}

// fetchError marks failures to read from the log, as opposed to data
// that does not verify.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// stream fetches the entry bundles that cover [from, tree.N), proves every
// entry's inclusion in tree, and calls fn with each verified batch of
// bundles, in order. With keys, entries are also parsed and their
// signatures checked speculatively against keys (see preverify), in
// parallel. At most two batches are in memory besides the one fn holds.
func (f *follower) stream(ctx context.Context, tree tlog.Tree, from int64, keys *accountKeys, fn func([]*bundleData) error) error {
	if from >= tree.N {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	per := f.m.cfg.BatchBundles
	first, last := from/tileWidth, (tree.N-1)/tileWidth
	type result struct {
		batch []*bundleData
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		defer close(ch)
		for b0 := first; b0 <= last; b0 += int64(per) {
			b1 := min(b0+int64(per)-1, last)
			batch, err := f.fetchBatch(ctx, tree, b0, b1, keys)
			select {
			case ch <- result{batch, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for r := range ch {
		if r.err != nil {
			return r.err
		}
		if err := fn(r.batch); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (f *follower) fetchBatch(ctx context.Context, tree tlog.Tree, b0, b1 int64, keys *accountKeys) ([]*bundleData, error) {
	batch := make([]*bundleData, b1-b0+1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.m.cfg.FetchWorkers)
	for i := range batch {
		n := b0 + int64(i)
		w := int(min(tileWidth, tree.N-n*tileWidth))
		g.Go(func() error {
			entries, err := f.client.bundle(gctx, n, w)
			if err != nil {
				return &fetchError{err}
			}
			bd := &bundleData{n: n, entries: entries, leaves: make([]tlog.Hash, w)}
			for j, e := range entries {
				bd.leaves[j] = tlog.RecordHash(e)
			}
			if keys != nil {
				bd.parsed, bd.perrs = make([]*schema.Entry, w), make([]error, w)
				bd.verified = make([]ed25519.PublicKey, w)
				for j, e := range entries {
					bd.parsed[j], bd.perrs[j] = schema.ParseEntry(e)
					if bd.perrs[j] == nil {
						bd.verified[j] = preverify(keys, bd.parsed[j])
					}
				}
			}
			batch[i] = bd
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	err := f.verifyBatch(ctx, tree, batch)
	if err != nil {
		var fe *fetchError
		if errors.As(err, &fe) {
			return nil, err
		}
		// Authenticated tiles from an earlier tree cannot be wrong unless
		// the log forked; retry with fresh ones before blaming entries.
		f.client.dropCache()
		err = f.verifyBatch(ctx, tree, batch)
	}
	if err != nil {
		var fe *fetchError
		if errors.As(err, &fe) {
			return nil, err
		}
		return nil, f.inclusionFailure(ctx, tree, batch, err)
	}
	return batch, nil
}

// verifyBatch authenticates the leaf hashes computed from the batch's
// bundles against tree.
func (f *follower) verifyBatch(ctx context.Context, tree tlog.Tree, batch []*bundleData) error {
	own := make(map[tlog.Tile][]byte, len(batch))
	idx := make([]int64, len(batch))
	for i, bd := range batch {
		data := make([]byte, 0, len(bd.leaves)*tlog.HashSize)
		for _, h := range bd.leaves {
			data = append(data, h[:]...)
		}
		own[tlog.Tile{H: tileHeight, L: 0, N: bd.n, W: len(bd.leaves)}] = data
		idx[i] = tlog.StoredHashIndex(0, bd.n*tileWidth)
	}
	r := &tileReader{ctx: ctx, c: f.client, own: own}
	thr := tlog.TileHashReader(tree, fetchErrorReader{r})
	_, err := thr.ReadHashes(idx)
	return err
}

// fetchErrorReader marks tile read failures as fetch errors.
type fetchErrorReader struct{ *tileReader }

func (r fetchErrorReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	d, err := r.tileReader.ReadTiles(tiles)
	if err != nil {
		return nil, &fetchError{err}
	}
	return d, nil
}

// inclusionFailure raises an alert for a batch whose entries do not hash
// to tree, naming the first bundle whose leaf hashes differ from the
// log's own level-0 tile when it can tell.
func (f *follower) inclusionFailure(ctx context.Context, tree tlog.Tree, batch []*bundleData, cause error) error {
	first := batch[0].n * tileWidth
	msg := fmt.Sprintf("entries %d to %d served by the log do not hash to the tree of its checkpoint of size %d: %v",
		first, batch[len(batch)-1].n*tileWidth+int64(len(batch[len(batch)-1].leaves))-1, tree.N, cause)
	for _, bd := range batch {
		t := tlog.Tile{H: tileHeight, L: 0, N: bd.n, W: len(bd.leaves)}
		served, err := f.client.hashTile(ctx, t)
		if err != nil {
			break
		}
		for j, h := range bd.leaves {
			if !bytes.Equal(served[j*tlog.HashSize:(j+1)*tlog.HashSize], h[:]) {
				first = bd.n*tileWidth + int64(j)
				msg = fmt.Sprintf("entry %d served in bundle %d does not hash to the leaf hash in the log's tile; the tree of the checkpoint of size %d does not contain it", first, bd.n, tree.N)
				break
			}
		}
		if first != batch[0].n*tileWidth {
			break
		}
	}
	f.m.raise(ctx, Alert{Log: f.origin, Kind: KindInclusion, Index: index(first), Rule: RuleInclusion, Message: msg})
	return errors.New(msg)
}

// catchUp replays every entry up to the anchor.
func (f *follower) catchUp(ctx context.Context) error {
	anchor := f.getAnchor()
	if anchor == nil {
		return nil
	}
	f.mu.Lock()
	pos := f.position
	f.mu.Unlock()
	if pos >= anchor.Size {
		f.mu.Lock()
		stale := f.verified == nil || !bytes.Equal(f.verified.Note, anchor.Note)
		f.mu.Unlock()
		if stale && pos == anchor.Size {
			return f.save(ctx, nil, true)
		}
		return nil
	}
	if f.keys == nil {
		f.keys = newAccountKeys(f.st)
	}
	r := &replayer{origin: f.origin, st: f.st, now: f.m.now, keys: f.keys,
		watched: func(issuer string, idx int64) bool { return f.m.watched(f.origin, issuer, idx) }}
	start, startTime := pos, time.Now()
	lastLog := startTime
	err := f.stream(ctx, anchor.tree(), pos, f.keys, func(batch []*bundleData) error {
		before := pos
		for _, bd := range batch {
			for j := range bd.entries {
				idx := bd.n*tileWidth + int64(j)
				if idx < pos {
					continue
				}
				if err := r.entry(idx, bd.leaves[j], bd.parsed[j], bd.perrs[j], bd.verified[j]); err != nil {
					return err
				}
				pos = idx + 1
			}
		}
		f.mu.Lock()
		f.position = pos
		f.mu.Unlock()
		f.m.metrics.position.WithLabelValues(f.origin).Set(float64(pos))
		f.m.metrics.entries.WithLabelValues(f.origin).Add(float64(pos - before))
		alerts := r.takeAlerts()
		if len(alerts) > 0 || pos-f.savedPos >= f.m.cfg.SaveEvery || time.Since(f.savedTime) >= f.m.cfg.SaveInterval || pos == anchor.Size {
			if err := f.save(ctx, alerts, pos == anchor.Size); err != nil {
				return err
			}
		}
		if now := time.Now(); now.Sub(lastLog) >= f.m.cfg.ProgressInterval && pos < anchor.Size {
			lastLog = now
			rate := float64(pos-start) / now.Sub(startTime).Seconds()
			f.m.log.Info("catching up", "log", f.origin, "position", pos, "target", anchor.Size,
				"entries_per_second", int64(rate), "eta", time.Duration(float64(anchor.Size-pos)/rate*float64(time.Second)).Round(time.Second).String())
		}
		return nil
	})
	if err != nil {
		return err
	}
	if d := time.Since(startTime); pos > start {
		f.m.log.Info("caught up", "log", f.origin, "size", pos, "entries", pos-start,
			"seconds", d.Seconds(), "entries_per_second", int64(float64(pos-start)/d.Seconds()))
	}
	return nil
}

// save commits the replay position, the policy state and the alerts;
// with done, the anchor becomes the verified checkpoint.
func (f *follower) save(ctx context.Context, alerts []Alert, done bool) error {
	state, err := f.st.MarshalBinary()
	if err != nil {
		return err
	}
	f.mu.Lock()
	pos := f.position
	anchor := f.anchor
	f.mu.Unlock()
	var verified []byte
	if done && anchor != nil && pos == anchor.Size {
		verified = anchor.Note
	}
	if err := f.m.store.saveProgress(ctx, f.origin, verified, pos, state, alerts); err != nil {
		return err
	}
	f.savedPos, f.savedTime = pos, time.Now()
	if verified != nil {
		f.mu.Lock()
		f.verified = anchor
		f.mu.Unlock()
		f.m.metrics.verifiedSize.WithLabelValues(f.origin).Set(float64(anchor.Size))
	}
	if len(alerts) > 0 {
		return f.m.deliver(ctx)
	}
	return nil
}
