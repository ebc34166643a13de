package witness_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/witness"
)

// BenchmarkAddCheckpoint measures add-checkpoint over loopback HTTP against
// a witness with its real SQLite state (WAL, synchronous=FULL) in a temporary
// directory, and reports requests/s, cosignatures/s and p99 latency, beside
// the floor measured in the same run: one Ed25519 verify (the log signature)
// plus one cosignature sign, the witness's irreducible CPU per request, run
// on all cores. "x-floor" is requests/s divided by floor operations/s: 1.0
// would mean the witness costs nothing beyond its two signature operations.
func BenchmarkAddCheckpoint(b *testing.B) {
	b.Run("floor", func(b *testing.B) {
		l := newTestLog(b, "bench.example/floor", 100)
		cp := l.checkpoint(b, 100)
		v, _ := note.NewVerifier(l.vkey)
		_, signer := benchSigner(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			floorOp(b, cp, v, signer)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s-1core")
	})
	b.Run("logs=1/clients=1", func(b *testing.B) { benchGrowth(b, 1) })
	b.Run("logs=1/clients=32/same-size", func(b *testing.B) { benchSameSize(b, 32) })
	b.Run("logs=1/clients=32/interleaved", func(b *testing.B) { benchContended(b, 32) })
	b.Run("logs=100/clients=100", func(b *testing.B) { benchGrowth(b, 100) })
}

func benchSigner(b *testing.B) (string, note.Signer) {
	skey, vkey, err := witness.GenerateKey("bench.example/witness")
	if err != nil {
		b.Fatal(err)
	}
	s, _, err := witness.NewSigner(skey)
	if err != nil {
		b.Fatal(err)
	}
	return vkey, s
}

func floorOp(b *testing.B, cp []byte, v note.Verifier, s note.Signer) {
	n, err := note.Open(cp, note.VerifierList(v))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := note.Sign(&note.Note{Text: n.Text}, s); err != nil {
		b.Fatal(err)
	}
}

// measureFloor runs floor operations on all cores (GOMAXPROCS goroutines)
// for 300ms and returns operations per second: the machine's capacity for
// the witness's irreducible work at this moment. Each sub-benchmark measures
// it right before and right after its timed part, because the machine is
// shared and its speed drifts.
func measureFloor(b *testing.B) float64 {
	l := newTestLog(b, "bench.example/floor", 100)
	cp := l.checkpoint(b, 100)
	v, _ := note.NewVerifier(l.vkey)
	_, s := benchSigner(b)
	var n atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < runtime.GOMAXPROCS(0); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < 300*time.Millisecond {
				floorOp(b, cp, v, s)
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

type benchClient struct {
	client *http.Client
	url    string
}

func newBenchClient(tw *testWitness, conns int) *benchClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	return &benchClient{client: &http.Client{Transport: tr}, url: tw.srv.URL + "/add-checkpoint"}
}

func (c *benchClient) post(b *testing.B, body []byte) (int, []byte, time.Duration) {
	start := time.Now()
	resp, err := c.client.Post(c.url, "text/plain", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return 0, nil, 0
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, rb, time.Since(start)
}

// reportCommits adds the mean SQLite batch size and commit time.
func reportCommits(b *testing.B, reg *prometheus.Registry) {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		h := mf.GetMetric()[0].GetHistogram()
		if h == nil || h.GetSampleCount() == 0 {
			continue
		}
		switch mf.GetName() {
		case "witness_state_commit_batch_ops":
			b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount()), "ops/commit")
		case "witness_state_commit_duration_seconds":
			b.ReportMetric(1000*h.GetSampleSum()/float64(h.GetSampleCount()), "ms/commit")
		}
	}
}

func report(b *testing.B, requests, cosigs int, lat []time.Duration, floor float64) {
	el := b.Elapsed().Seconds()
	slices.Sort(lat)
	p99 := time.Duration(0)
	if len(lat) > 0 {
		p99 = lat[(len(lat)*99)/100]
	}
	b.ReportMetric(float64(requests)/el, "req/s")
	b.ReportMetric(float64(cosigs)/el, "cosig/s")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(floor, "floor-ops/s")
	b.ReportMetric(float64(requests)/el/floor, "x-floor")
}

// benchGrowth: `logs` logs, one client each, every request grows its log
// by one entry from the size of its previous request (the common case of
// a log with one witness connection). b.N requests in total.
func benchGrowth(b *testing.B, logs int) {
	perLog := b.N/logs + 1
	ls := make([]*testLog, logs)
	for i := range ls {
		ls[i] = newTestLog(b, fmt.Sprintf("bench.example/log-%d", i), perLog)
	}
	reg := prometheus.NewRegistry()
	tw := newTestWitnessMetrics(b, reg, ls...)
	bodies := make([][][]byte, logs)
	for i, l := range ls {
		for s := uint64(1); s <= uint64(perLog); s++ {
			bodies[i] = append(bodies[i], requestBody(s-1, l.proof(b, s-1, s), l.checkpoint(b, s)))
		}
	}
	c := newBenchClient(tw, logs)
	lats := make([][]time.Duration, logs)
	var done atomic.Int64
	floorBefore := measureFloor(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, body := range bodies[i] {
				if done.Add(1) > int64(b.N) {
					return
				}
				st, rb, d := c.post(b, body)
				if st != 200 {
					b.Errorf("status %d: %s", st, rb)
					return
				}
				lats[i] = append(lats[i], d)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	floor := (floorBefore + measureFloor(b)) / 2
	all := slices.Concat(lats...)
	report(b, len(all), len(all), all, floor)
	reportCommits(b, reg)
}

// benchSameSize: one log, `clients` concurrent clients each re-submitting
// the witness's current checkpoint (old = size, as logs do when they
// re-cosign an unchanged checkpoint): every request is verified, signed
// and checked under the per-log lock, and gets 200 without a write (the
// one commit reported is the initial cosignature's).
func benchSameSize(b *testing.B, clients int) {
	l := newTestLog(b, "bench.example/same-size", 1000)
	reg := prometheus.NewRegistry()
	tw := newTestWitnessMetrics(b, reg, l)
	if r := tw.add(b, l, 0, 1000); r.status != 200 {
		b.Fatalf("initial cosignature: %d %s", r.status, r.body)
	}
	body := requestBody(1000, nil, l.checkpoint(b, 1000))
	c := newBenchClient(tw, clients)
	lats := make([][]time.Duration, clients)
	var done atomic.Int64
	floorBefore := measureFloor(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Add(1) <= int64(b.N) {
				st, rb, d := c.post(b, body)
				if st != 200 {
					b.Errorf("status %d: %s", st, rb)
					return
				}
				lats[w] = append(lats[w], d)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	floor := (floorBefore + measureFloor(b)) / 2
	all := slices.Concat(lats...)
	report(b, len(all), len(all), all, floor)
	reportCommits(b, reg)
}

// benchContended: one log, `clients` concurrent clients submitting
// interleaved sizes 1..b.N, each following 409 answers until cosigned or
// overtaken.
func benchContended(b *testing.B, clients int) {
	l := newTestLog(b, "bench.example/contended", b.N+1)
	reg := prometheus.NewRegistry()
	tw := newTestWitnessMetrics(b, reg, l)
	cps := make([][]byte, b.N+1)
	for s := 1; s <= b.N; s++ {
		cps[s] = l.checkpoint(b, uint64(s))
	}
	c := newBenchClient(tw, clients)
	var next, known atomic.Uint64
	var requests, cosigs atomic.Int64
	lats := make([][]time.Duration, clients)
	floorBefore := measureFloor(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				target := next.Add(1)
				if target > uint64(b.N) {
					return
				}
				old := known.Load()
				for old < target || old == 0 {
					if old > target {
						break
					}
					st, rb, d := c.post(b, requestBody(old, l.proof(b, old, target), cps[target]))
					requests.Add(1)
					lats[w] = append(lats[w], d)
					if st == 200 {
						cosigs.Add(1)
						for cur := known.Load(); cur < target && !known.CompareAndSwap(cur, target); cur = known.Load() {
						}
						break
					}
					if st != 409 {
						b.Errorf("status %d: %s", st, rb)
						return
					}
					n, _ := strconv.ParseUint(string(bytes.TrimSpace(rb)), 10, 64)
					if n >= target {
						break // overtaken
					}
					old = n
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	floor := (floorBefore + measureFloor(b)) / 2
	report(b, int(requests.Load()), int(cosigs.Load()), slices.Concat(lats...), floor)
	reportCommits(b, reg)
}
