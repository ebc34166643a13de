package monitor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"
)

// Step 2 of following a log (see follow.go): the entry bundles up to the
// anchor are fetched, their leaf hashes are authenticated against the
// anchor's tree through the log's tiles, and entries are parsed and their
// signatures checked speculatively (see preverify) in parallel.

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
