package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func newSQLite(b *testing.B) *sqlitestore.Store {
	s, err := sqlitestore.Create(context.Background(), filepath.Join(b.TempDir(), "log.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkHTTPSubmit measures submissions through HTTP on loopback into
// a durable SQLite log: JSON parsing, signature check, policy, fsync,
// proof and response, with 256 concurrent clients. It reports the 429s
// the log answered per submission (each costs its client a Retry-After
// wait): honest concurrency within the log's limits is never refused.
func BenchmarkHTTPSubmit(b *testing.B) {
	l := logtest.Start(b, newSQLite(b), nil)
	subs := make([]*schema.Submission, b.N)
	for i := range subs {
		subs[i] = issuertest.Numbered(b, i).Register(b)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	c, _ := client.New(l.URL, l.VKey, &http.Client{Transport: tr})
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < 256; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if _, err := c.Submit(context.Background(), subs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(answered(b, l.Registry, "submit", http.StatusTooManyRequests)/float64(b.N), "429s/op")
}

// answered is how many requests the handler answered with code, from the
// log's keycommit_http_requests_total.
func answered(b *testing.B, g prometheus.Gatherer, handler string, code int) float64 {
	mfs, err := g.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "keycommit_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["handler"] == handler && labels["code"] == strconv.Itoa(code) {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// BenchmarkHTTPInclusionProof measures GET /v1/proof/inclusion on
// loopback against a 100,000-entry SQLite log, random indexes, 32
// concurrent clients, reporting req/s and p99 latency.
func BenchmarkHTTPInclusionProof(b *testing.B) {
	benchProofs(b, func(url string, i, size uint64) string {
		return fmt.Sprintf("%s/v1/proof/inclusion?index=%d&size=%d", url, i, size)
	})
}

// BenchmarkHTTPTileBaseline is the baseline for the proof benchmark: the
// same clients fetching a full level-0 tile (one cached read, 8 KiB).
func BenchmarkHTTPTileBaseline(b *testing.B) {
	benchProofs(b, func(url string, i, size uint64) string {
		return fmt.Sprintf("%s/%s", url, tiles.Path(tlog.Tile{H: 8, L: 0, N: int64(i>>8) % int64(size>>8), W: 256}))
	})
}

var (
	proofLogOnce sync.Once
	proofLogURL  string
	proofLogSize uint64
)

func benchProofs(b *testing.B, url func(base string, i, size uint64) string) {
	proofLogOnce.Do(func() { proofLogURL, proofLogSize = buildProofLog(b, 100_000) })
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	hc := &http.Client{Transport: tr}
	const workers = 32
	var next atomic.Int64
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1) - 1
				if n >= int64(b.N) {
					return
				}
				i := uint64(n*7919) % proofLogSize
				start := time.Now()
				resp, err := hc.Get(url(proofLogURL, i, proofLogSize))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// buildProofLog writes n entries straight into a SQLite store with real
// tiles and a signed checkpoint and serves it read-only.
func buildProofLog(b *testing.B, n int) (string, uint64) {
	ctx := context.Background()
	// The log outlives this benchmark run (it is shared by every b.N and
	// both proof benchmarks); TestMain removes it.
	dir, err := os.MkdirTemp("", "keycommit-bench-")
	if err != nil {
		b.Fatal(err)
	}
	benchDirs = append(benchDirs, dir)
	s, err := sqlitestore.Create(ctx, filepath.Join(dir, "proofs.db"))
	if err != nil {
		b.Fatal(err)
	}
	skey, _, _ := checkpoint.GenerateKey(logtest.Origin)
	signer, _ := note.NewSigner(skey)
	app, _ := tiles.NewAppender(0, nil)
	for start := 0; start < n; start += 10000 {
		var es []storage.Entry
		var hs []tlog.Hash
		for i := start; i < start+10000; i++ {
			d := []byte(fmt.Sprintf(`{"entry":%d,"pad":"%0300d"}`, i, i))
			h := tiles.LeafHash(d)
			es = append(es, storage.Entry{Data: d, LeafHash: h})
			hs = append(hs, h)
		}
		u, err := app.Append(hs)
		if err != nil {
			b.Fatal(err)
		}
		cp, _ := checkpoint.Sign(checkpoint.Checkpoint{Origin: logtest.Origin, Size: uint64(u.Size), Hash: u.Root}, signer)
		if err := s.Append(ctx, &storage.Batch{Start: uint64(start), Entries: es, Tiles: u.Tiles, Checkpoint: cp}); err != nil {
			b.Fatal(err)
		}
	}
	h, err := server.New(server.Config{Reader: s})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(h)
	return hs.URL, uint64(n)
}

var benchDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}
