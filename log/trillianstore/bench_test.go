package trillianstore_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/trillianstore"
	"github.com/keycommit/keycommit/log/trillianstore/trilliantest"
	"github.com/keycommit/keycommit/schema"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/types/known/durationpb"
)

type submitter interface {
	Submit(ctx context.Context, sub *schema.Submission) (*sequencer.Result, error)
}

// runSubmissions submits subs from 64 concurrent clients, spread
// round-robin over the given submitters, and reports entries/s and the
// CPU time per entry (see cpuMeter).
func runSubmissions(b *testing.B, env *trilliantest.Env, subs []*schema.Submission, to []submitter) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	m := startCPU(b, env)
	start := time.Now()
	// The clients, and the goroutines they start (forwarding), carry the
	// pprof label clients=<benchmark> (see newFrontendConfig).
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("clients", b.Name())))
	defer pprof.SetGoroutineLabels(context.Background())
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
	m.report(len(subs))
}

// cpuMeter measures the CPU time spent over a benchmark's timed part: by
// this process (every frontend runs in it, with the load generator's
// clients), as cpu-us/entry, and by the Trillian log server and signer
// (env; nil for none), as trillian-cpu-us/entry. On a machine whose
// cores every process shares, entries/s is about the cores available
// divided by the CPU time per entry, so these tell what a configuration
// costs whatever else runs beside it. MariaDB's CPU time is not counted
// (it is not the benchmark's process, and other users may share it).
type cpuMeter struct {
	b              *testing.B
	env            *trilliantest.Env
	self, trillian time.Duration
}

func startCPU(b *testing.B, env *trilliantest.Env) *cpuMeter {
	m := &cpuMeter{b: b, env: env, self: selfCPU(b)}
	if env != nil {
		var err error
		if m.trillian, err = env.CPU(); err != nil {
			b.Logf("not reporting Trillian's CPU time: %v", err)
			m.env = nil
		}
	}
	return m
}

func (m *cpuMeter) report(n int) {
	perEntry := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	m.b.ReportMetric(perEntry(selfCPU(m.b)-m.self), "cpu-us/entry")
	if m.env != nil {
		if t, err := m.env.CPU(); err == nil {
			m.b.ReportMetric(perEntry(t-m.trillian), "trillian-cpu-us/entry")
		}
	}
}

// selfCPU is this process's CPU time, user and system.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func registrations(b *testing.B, n int) []*schema.Submission {
	subs := make([]*schema.Submission, n)
	for i := range subs {
		subs[i] = issuertest.Numbered(b, i).Register(b)
	}
	return subs
}

// BenchmarkSubmit compares sustained submissions (64 concurrent clients)
// through the sequencer on the SQLite backend, and through 1, 2 and 3
// Trillian frontends over one tree (spread round-robin: the writer
// sequences, the others forward to it), with plain Trillian QueueLeaf of
// the same bytes into a LOG tree (the baseline: "queueleaf"), in the same
// run. Frontends run as production does: SQLite caches, HTTP between
// them. Every Trillian configuration gets a Trillian of its own (log
// server, signer, database) so that no tree of an earlier one loads the
// signer or MariaDB during a later one.
//
// backend=trillian/frontends=3/submit=writer sends every submission to
// the writer while the other two frontends only follow it: against
// frontends=1 and frontends=3 it tells what following costs and what
// forwarding costs.
func BenchmarkSubmit(b *testing.B) {
	b.Run("backend=sqlite", func(b *testing.B) {
		k := newKey(b)
		_, seq := sqliteSequencer(b, k)
		runSubmissions(b, nil, registrations(b, b.N), []submitter{seq})
	})
	b.Run("trillian=queueleaf", func(b *testing.B) {
		env := trilliantest.Start(b, trilliantest.Options{})
		ctx := context.Background()
		tree, err := env.Admin.CreateTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
			TreeState: trillian.TreeState_ACTIVE, TreeType: trillian.TreeType_LOG, DisplayName: "queueleaf", MaxRootDuration: durationpb.New(0)}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := env.Log.InitLog(ctx, &trillian.InitLogRequest{LogId: tree.TreeId}); err != nil {
			b.Fatal(err)
		}
		subs := registrations(b, b.N)
		values := make([][]byte, len(subs))
		for i, sub := range subs {
			if values[i], err = json.Marshal(sub); err != nil {
				b.Fatal(err)
			}
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		m := startCPU(b, env)
		start := time.Now()
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(values) {
						return
					}
					if _, err := env.Log.QueueLeaf(ctx, &trillian.QueueLeafRequest{LogId: tree.TreeId, Leaf: &trillian.LogLeaf{LeafValue: values[i]}}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(len(values))/time.Since(start).Seconds(), "entries/s")
		m.report(len(values))
	})
	frontends := func(n int, writerOnly bool) func(b *testing.B) {
		return func(b *testing.B) {
			env := trilliantest.Start(b, trilliantest.Options{})
			tree, k := newTree(b, env)
			var to []submitter
			for range n {
				to = append(to, newFrontendConfig(b, env, tree, k, productionFrontend).fe)
			}
			if writerOnly {
				// The first frontend took the lease when it started.
				if !to[0].(*trillianstore.Frontend).Writer() {
					b.Fatal("the first frontend is not the writer")
				}
				to = to[:1]
			}
			runSubmissions(b, env, registrations(b, b.N), to)
		}
	}
	for _, n := range []int{1, 2, 3} {
		b.Run("backend=trillian/frontends="+strconv.Itoa(n), frontends(n, false))
	}
	b.Run("backend=trillian/frontends=3/submit=writer", frontends(3, true))
}

// productionFrontend is log serve's configuration: the default lease
// and follow interval.
var productionFrontend = frontendOpts{lease: trillianstore.DefaultLease, follow: 200 * time.Millisecond}

// newTree creates a tree in env and initializes a log in it.
func newTree(b *testing.B, env *trilliantest.Env) (int64, logKey) {
	b.Helper()
	tree, err := env.CreateTree(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	k := newKey(b)
	initLog(b, env, tree, k)
	return tree, k
}

// BenchmarkReads measures reads over HTTP on loopback, 16 parallel
// clients per core: inclusion proofs and the keys bundle, served by the
// SQLite backend (the baseline) and by 1, 2 and 3 Trillian frontends
// (requests spread round-robin; each serves from its own cache), over
// 4096 entries, in the same run.
func BenchmarkReads(b *testing.B) {
	const size = 4096
	env := trilliantest.Start(b, trilliantest.Options{})
	k := newKey(b)
	src, seq := sqliteSequencer(b, k)
	fill(b, seq, size)
	sh, err := server.New(server.Config{Reader: src, Log: seq})
	if err != nil {
		b.Fatal(err)
	}
	sqliteSrv := httptest.NewServer(sh)
	b.Cleanup(sqliteSrv.Close)
	tree, tk := newTree(b, env)
	var fs []*frontend
	for range 3 {
		fs = append(fs, newFrontendConfig(b, env, tree, tk, productionFrontend))
	}
	fill(b, fs[0].fe, size)
	for _, f := range fs {
		for f.store.Size() < size {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, path := range []string{"inclusion", "bundle"} {
		read := func(b *testing.B, urls []string) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					u := urls[int(i)%len(urls)] + "/v1/keys.bundle"
					if path == "inclusion" {
						u = urls[int(i)%len(urls)] + api.PathInclusionProof + "?index=" + strconv.FormatInt(i%size, 10)
					}
					resp, err := client.Get(u)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("GET %s: status %d", u, resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
		}
		b.Run("read="+path+"/backend=sqlite", func(b *testing.B) { read(b, []string{sqliteSrv.URL}) })
		for n := 1; n <= 3; n++ {
			b.Run("read="+path+"/backend=trillian/frontends="+strconv.Itoa(n), func(b *testing.B) {
				var urls []string
				for _, f := range fs[:n] {
					urls = append(urls, f.url)
				}
				read(b, urls)
			})
		}
	}
}

// fill submits registrations and one key commitment (so that there is a
// snapshot and a keys bundle), n entries in all with entry 0.
func fill(b *testing.B, to submitter, n int) {
	b.Helper()
	subs := registrations(b, n-4)
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < len(subs); i += 32 {
				if _, err := to.Submit(context.Background(), subs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	is := issuertest.Numbered(b, n)
	res, err := to.Submit(context.Background(), is.Register(b))
	if err != nil {
		b.Fatal(err)
	}
	is.Logged(res.LeafHash)
	if _, err := to.Submit(context.Background(), is.Commit(b, 1, time.Now())); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFailover measures the time from a crash of the writer (as
// kill -9 leaves it: its lease stays until it expires) to the next
// acknowledged submission, sent through another frontend, with three
// frontends and the production lease (DefaultLease). Each iteration
// crashes the writer and starts a replacement frontend.
func BenchmarkFailover(b *testing.B) {
	env := trilliantest.Start(b, trilliantest.Options{})
	tree, k := newTree(b, env)
	var fs []*frontend
	for range 3 {
		fs = append(fs, newFrontendConfig(b, env, tree, k, productionFrontend))
	}
	var total time.Duration
	for it := 0; it < b.N; it++ {
		w := -1
		for w < 0 {
			for i, f := range fs {
				if f.fe.Writer() {
					w = i
				}
			}
			time.Sleep(time.Millisecond)
		}
		is := issuertest.Numbered(b, it)
		sub := is.Register(b)
		via := fs[(w+1)%len(fs)]
		t0 := time.Now()
		fs[w].crash()
		if _, err := via.fe.Submit(context.Background(), sub); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		fs[w] = newFrontendConfig(b, env, tree, k, productionFrontend)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/failover")
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
