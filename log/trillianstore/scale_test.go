package trillianstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/trillianstore"
	"github.com/keycommit/keycommit/policy"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"
)

// eventually polls cond until it holds, failing after a minute (no timed
// assertion: the follow interval bounds how soon, not the test).
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWriteVisibleThroughEveryFrontend: with two and with three
// frontends, a write through any frontend (the writer, or one that
// forwards to it) becomes visible through every frontend: the issuer's
// state, the checkpoint, the cosigned checkpoint and the keys bundle
// (byte for byte the same on every frontend). Mutation (named, not
// tried): serve Cosigned from the frontend's own cache only, not the
// shared store, and the frontends that did not cosign never show it.
func TestWriteVisibleThroughEveryFrontend(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("frontends=%d", n), func(t *testing.T) {
			env, tree, k := newLog(t)
			var fs []*frontend
			for range n {
				fs = append(fs, newFrontend(t, env, tree, k, withCosigner))
			}
			for i, via := range fs {
				is := issuertest.Numbered(t, i)
				res := submit(t, via, is.Register(t))
				checkResult(t, k, res)
				is.Logged(res.LeafHash)
				// A key commitment (a snapshot follows it), through the next
				// frontend.
				res = submit(t, fs[(i+1)%n], is.Commit(t, 1, time.Now()))
				checkResult(t, k, res)
				is.Logged(res.LeafHash)
				for j, f := range fs {
					eventually(t, fmt.Sprintf("write %d through frontend %d, seen through frontend %d", i, i, j), func() error {
						if st, ok := f.fe.Status(is.Origin); !ok || st == nil {
							return fmt.Errorf("issuer %s not registered", is.Origin)
						}
						if n, _, err := f.store.Checkpoint(context.Background()); err != nil || n < res.Size {
							return fmt.Errorf("checkpoint of size %d (%v), want ≥ %d", n, err, res.Size)
						}
						if n, _, err := f.store.Cosigned(context.Background()); err != nil || n < res.Size {
							return fmt.Errorf("cosigned checkpoint of size %d (%v), want ≥ %d", n, err, res.Size)
						}
						return nil
					})
				}
				// The same bundle everywhere once they agree on the cosigned
				// checkpoint.
				eventually(t, "the same keys bundle through every frontend", func() error {
					var first []byte
					for j, f := range fs {
						b, err := get(f.url + "/v1/keys.bundle")
						if err != nil {
							return fmt.Errorf("frontend %d: %w", j, err)
						}
						if j == 0 {
							first = b
						} else if string(b) != string(first) {
							return fmt.Errorf("frontend %d serves another bundle than frontend 0", j)
						}
					}
					return nil
				})
			}
		})
	}
}

func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b, err
}

// TestWriterKilledTenTimes kills the writer (as kill -9 leaves it: the
// lease stays until it expires) ten times during a stream of
// submissions spread over three frontends, replacing each killed one
// with a new frontend. Every acknowledged entry is in the final log at
// its index, the log goes on through the others, and every checkpoint any
// client was answered with is consistent with the final one. It logs the
// failover times (kill to the next acknowledged submission). The clients
// start together (start barrier). Mutation (named, not tried): answer a
// submission when its batch is staged rather than when its transaction
// committed, and an acknowledged entry of a killed writer is missing.
func TestWriterKilledTenTimes(t *testing.T) {
	env, tree, k := newLog(t)
	var mu sync.Mutex
	fs := []*frontend{newFrontend(t, env, tree, k), newFrontend(t, env, tree, k), newFrontend(t, env, tree, k)}
	pick := func() *frontend {
		mu.Lock()
		defer mu.Unlock()
		return fs[rand.IntN(len(fs))]
	}
	type ack struct {
		idx  uint64
		leaf tlog.Hash
		cp   []byte
		at   time.Time
	}
	var acks []ack
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := make(chan struct{})
	const clients = 6
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			is := issuertest.Numbered(t, c)
			for {
				select {
				case <-stop:
					return
				default:
				}
				sub := is.Register(t)
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					res, err := pick().fe.Submit(ctx, sub)
					cancel()
					var re *policy.RejectError
					if errors.As(err, &re) {
						t.Errorf("client %d: refused: %v", c, err)
						return
					}
					if err != nil {
						continue // that frontend died: another one, as a load balancer does
					}
					is.Logged(res.LeafHash)
					mu.Lock()
					acks = append(acks, ack{res.Index, res.LeafHash, res.Checkpoint, time.Now()})
					mu.Unlock()
					break
				}
			}
		}()
	}
	close(start)
	writer := func() (int, *frontend) {
		for {
			mu.Lock()
			for i, f := range fs {
				if f.fe.Writer() {
					mu.Unlock()
					return i, f
				}
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}
	var failovers []time.Duration
	for round := range 10 {
		// Let some submissions through first.
		mu.Lock()
		before := len(acks)
		mu.Unlock()
		eventually(t, fmt.Sprintf("round %d: submissions acknowledged", round), func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(acks) < before+clients {
				return fmt.Errorf("%d acknowledgements", len(acks)-before)
			}
			return nil
		})
		i, w := writer()
		killedAt := time.Now()
		w.crash()
		// What the dead writer committed; the next write is the others'.
		committed, err := fs[(i+1)%len(fs)].store.SharedSize(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		fs[i] = newFrontend(t, env, tree, k)
		mu.Unlock()
		eventually(t, fmt.Sprintf("round %d: a submission written by the next writer acknowledged", round), func() error {
			mu.Lock()
			defer mu.Unlock()
			for _, a := range acks[before:] {
				if a.idx >= committed {
					failovers = append(failovers, a.at.Sub(killedAt))
					return nil
				}
			}
			return errors.New("none yet")
		})
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("failover times (kill to the next acknowledged submission): %v", failovers)
	_, final := writer()
	ctx := context.Background()
	if err := final.store.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	size, cp, err := final.store.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fc, _, err := checkpoint.Open(cp, k.verifier)
	if err != nil {
		t.Fatal(err)
	}
	hr := tiles.HashReader(func(tl tlog.Tile) ([]byte, error) { return final.store.Tile(ctx, tl.L, tl.N) })
	for _, a := range acks {
		if a.idx >= size {
			t.Fatalf("acknowledged entry %d beyond the final size %d", a.idx, size)
		}
		es, err := final.store.Entries(ctx, a.idx, a.idx+1)
		if err != nil || tiles.LeafHash(es[0]) != a.leaf {
			t.Fatalf("acknowledged entry %d is not in the final log (%v)", a.idx, err)
		}
		c, _, err := checkpoint.Open(a.cp, k.verifier)
		if err != nil {
			t.Fatal(err)
		}
		p, err := tlog.ProveTree(int64(fc.Size), int64(c.Size), hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(p, int64(fc.Size), fc.Hash, int64(c.Size), c.Hash); err != nil {
			t.Fatalf("checkpoint of size %d a client saw is not consistent with the final one of size %d: %v", c.Size, fc.Size, err)
		}
	}
	t.Logf("%d acknowledged entries, final size %d", len(acks), size)
	replayAll(t, env, tree, k)
}

// metricValue returns the value of the unlabelled counter or gauge name
// in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.Metric) == 0 {
			continue
		}
		m := mf.Metric[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestMetricsLiveAcrossTakeovers: a frontend that loses the writer's
// lease (another holder fenced it) and takes it again runs a new
// sequencer, whose metrics are the same registered ones: the sequencer's
// counters go on counting and its gauges follow the new sequencer.
// Mutation (named, not tried): each sequencer registering its
// own metrics makes the takeover fail (duplicate registration) or, with
// registration skipped, freezes keycommit_log_* at the first sequencer's.
func TestMetricsLiveAcrossTakeovers(t *testing.T) {
	env, tree, k := newLog(t)
	f := newFrontend(t, env, tree, k)
	is := issuertest.Numbered(t, 1)
	is.Logged(submit(t, f, is.Register(t)).LeafHash)
	if got := metricValue(t, f.reg, "keycommit_log_submissions_total"); got != 1 {
		t.Fatalf("keycommit_log_submissions_total = %v after one submission", got)
	}
	// Another holder takes the lease (and lets it lapse at once).
	db := openDB(t, env)
	if _, err := db.Exec("UPDATE KeycommitLog SET LeaseToken=LeaseToken+1, LeaseHolder='someone else', LeaseExpiresMillis=0 WHERE TreeId=?", tree); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the frontend steps down and takes the lease again", func() error {
		if got := metricValue(t, f.reg, "keycommit_trillian_takeovers_total"); got < 2 || !f.fe.Writer() {
			return fmt.Errorf("%v takeovers, writer %v", got, f.fe.Writer())
		}
		return nil
	})
	res := submit(t, f, is.Register(t))
	if got := metricValue(t, f.reg, "keycommit_log_submissions_total"); got != 2 {
		t.Fatalf("keycommit_log_submissions_total = %v after a takeover and a second submission, want 2", got)
	}
	if got := metricValue(t, f.reg, "keycommit_log_tree_size"); got != float64(res.Size) {
		t.Fatalf("keycommit_log_tree_size = %v, want %d", got, res.Size)
	}
}

// TestAdoptTreeWithoutSharedState: a tree written before keycommit kept
// a shared state (its KeycommitLog row is empty) is adopted by a
// frontend whose cache holds the whole tree, checked against Trillian's
// root; another frontend, with an empty cache, then follows it.
func TestAdoptTreeWithoutSharedState(t *testing.T) {
	env, tree, k := newLog(t)
	ctx := context.Background()
	cachePath := filepath.Join(t.TempDir(), "cache.db")
	cache, err := sqlitestore.Create(ctx, cachePath)
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, env)
	open := func(c storage.Backend) (*trillianstore.Store, error) {
		return trillianstore.Open(ctx, trillianstore.Config{Client: env.Log, DB: db, TreeID: tree, Cache: c, Verifier: k.verifier, FollowInterval: -1})
	}
	st, err := open(cache)
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()
	st.Close()
	waitIntegrated(t, env, tree, size)
	if _, err := db.Exec("UPDATE KeycommitLog SET Size=0, Checkpoint=NULL, KeySetIndex=NULL, KeySet=NULL, CosignedSize=NULL, Cosigned=NULL WHERE TreeId=?", tree); err != nil {
		t.Fatal(err)
	}
	// A frontend with an empty cache can't adopt it.
	if _, err := open(storage.NewMemory()); err == nil {
		t.Fatal("a frontend with an empty cache opened a tree without shared state")
	}
	if cache, err = sqlitestore.Open(ctx, cachePath); err != nil {
		t.Fatal(err)
	}
	st, err = open(cache)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.SharedSize(ctx); err != nil || n != size {
		t.Fatalf("shared size %d, %v after adoption; want %d", n, err, size)
	}
	other, err := open(storage.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.Size() != size {
		t.Fatalf("a new frontend follows %d entries, want %d", other.Size(), size)
	}
}
