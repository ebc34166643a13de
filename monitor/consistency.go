package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/keycommit/keycommit/log/storage"
	"golang.org/x/mod/sumdb/tlog"
)

// Step 1 of following a log (see follow.go): a checkpoint whose log
// signature verified is checked for consistency with the monitor's
// anchor, becomes the new anchor, is merged into it (cosignatures), is
// kept for later (gossip the monitor cannot settle yet) or is recorded as
// split-view evidence.

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

// mergeNotes merges the signature lines of b into a, both notes of the
// same checkpoint, by the rule the log's storage uses
// (storage.MergeCosigned): per signing key the cosignature with the newer
// timestamp is kept, so a log re-cosigning an unchanged checkpoint every
// interval makes the anchor fresher without making it longer.
func mergeNotes(a, b []byte) ([]byte, bool) {
	const size = 0 // same checkpoint: the merge compares the bodies
	merged, err := storage.MergeCosigned(size, a, size, b)
	if err != nil || merged == nil {
		return a, false
	}
	return merged, true
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
