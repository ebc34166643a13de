package trillianstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/trillianstore/trilliantest"
	"github.com/keycommit/keycommit/schema"
	"github.com/transparency-dev/merkle/rfc6962"
)

type submitter interface {
	Submit(ctx context.Context, sub *schema.Submission) (*sequencer.Result, error)
}

// runSubmissions submits b.N registrations from 64 concurrent clients,
// spread round-robin over the given submitters, and reports entries/s.
func runSubmissions(b *testing.B, subs []*schema.Submission, to []submitter) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(subs) {
					return
				}
				if _, err := to[(c+i)%len(to)].Submit(context.Background(), subs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(len(subs))/time.Since(start).Seconds(), "entries/s")
}

func registrations(b *testing.B, n int) []*schema.Submission {
	subs := make([]*schema.Submission, n)
	for i := range subs {
		subs[i] = issuertest.Numbered(b, i).Register(b)
	}
	return subs
}

// BenchmarkSubmit compares sustained submissions through the sequencer on
// the SQLite backend (the baseline) with one and two Trillian frontends
// over one tree on MariaDB, in the same run.
func BenchmarkSubmit(b *testing.B) {
	b.Run("backend=sqlite", func(b *testing.B) {
		k := newKey(b)
		_, seq := sqliteSequencer(b, k)
		runSubmissions(b, registrations(b, b.N), []submitter{seq})
	})
	for _, n := range []int{1, 2} {
		b.Run("backend=trillian/frontends="+strconv.Itoa(n), func(b *testing.B) {
			env, tree, k := newLog(b)
			var to []submitter
			for range n {
				to = append(to, newFrontend(b, env, tree, k).fe)
			}
			runSubmissions(b, registrations(b, b.N), to)
		})
	}
}

// BenchmarkInclusionProof measures inclusion proofs served over HTTP on
// loopback by a Trillian frontend (from its local cache, never asking
// Trillian) and by the SQLite backend, over 4096 entries.
func BenchmarkInclusionProof(b *testing.B) {
	const size = 4096
	env := trilliantest.Start(b, trilliantest.Options{})
	for _, backend := range []string{"sqlite", "trillian"} {
		b.Run("backend="+backend, func(b *testing.B) {
			k := newKey(b)
			var h http.Handler
			var submit submitter
			switch backend {
			case "sqlite":
				src, seq := sqliteSequencer(b, k)
				var err error
				if h, err = server.New(server.Config{Reader: src, Log: seq}); err != nil {
					b.Fatal(err)
				}
				submit = seq
			case "trillian":
				ctx := context.Background()
				tree, err := env.CreateTree(ctx)
				if err != nil {
					b.Fatal(err)
				}
				initLog(b, env, tree, k)
				f := newFrontend(b, env, tree, k)
				if h, err = server.New(server.Config{Reader: f.store, Log: f.fe}); err != nil {
					b.Fatal(err)
				}
				submit = f.fe
			}
			subs := registrations(b, size-1)
			var wg sync.WaitGroup
			for c := range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := c; i < len(subs); i += 32 {
						if _, err := submit.Submit(context.Background(), subs[i]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			srv := httptest.NewServer(h)
			defer srv.Close()
			client := srv.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) % size
					resp, err := client.Get(srv.URL + api.PathInclusionProof + "?index=" + strconv.FormatInt(i, 10))
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "proofs/s")
		})
	}
}

// BenchmarkClaim measures the primitive the Trillian backend's write path
// is made of: one AddSequencedLeaves call for one leaf (one MariaDB
// transaction), issued back to back, as a frontend claims a batch; and,
// for comparison, the same leaves added 100 per call (what Migrate does).
func BenchmarkClaim(b *testing.B) {
	env := trilliantest.Start(b, trilliantest.Options{})
	for _, per := range []int{1, 100} {
		b.Run("leaves_per_call="+strconv.Itoa(per), func(b *testing.B) {
			ctx := context.Background()
			tree, err := env.CreateTree(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i += per {
				var leaves []*trillian.LogLeaf
				for j := i; j < min(i+per, b.N); j++ {
					v := []byte("leaf " + strconv.Itoa(j))
					h := rfc6962.DefaultHasher.HashLeaf(v)
					leaves = append(leaves, &trillian.LogLeaf{LeafIndex: int64(j), LeafValue: v, LeafIdentityHash: h, MerkleLeafHash: h})
				}
				if _, err := env.Log.AddSequencedLeaves(ctx, &trillian.AddSequencedLeavesRequest{LogId: tree, Leaves: leaves}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "leaves/s")
		})
	}
}

// sqliteSequencer initializes a SQLite log in a temporary directory and
// starts its sequencer; both are closed when the benchmark ends.
func sqliteSequencer(b *testing.B, k logKey) (*sqlitestore.Store, *sequencer.Sequencer) {
	b.Helper()
	src, err := sqlitestore.Create(context.Background(), filepath.Join(b.TempDir(), "log.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	cfg := sequencer.Config{Backend: src, Signer: k.signer, Verifier: k.verifier, OriginControl: issuertest.AssumeControl}
	if _, err := sequencer.Init(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	seq, err := sequencer.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { seq.Close() })
	return src, seq
}
