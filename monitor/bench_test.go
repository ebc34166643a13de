package monitor

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// benchEntries is the size of the large log the catch-up benchmarks
// follow: KEYCOMMIT_MONITOR_BENCH_ENTRIES, default 200,000 (the issue's
// 1,000,000 scaled so that make bench stays within minutes; the monitor's
// memory does not depend on it).
func benchEntries() int {
	if n, err := strconv.Atoi(os.Getenv("KEYCOMMIT_MONITOR_BENCH_ENTRIES")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 20_000
	}
	return 200_000
}

var treeLogs sync.Map // n -> *testLog

// treeLog returns a log of n entries of 700 bytes (the size of a PST key
// commitment entry with two keys), each distinct.
func treeLog(b *testing.B, n int) *testLog {
	if v, ok := treeLogs.Load(n); ok {
		return v.(*testLog)
	}
	l := newTestLogUnclean(b, "example.com/bench-tree")
	e := make([]byte, 700)
	for i := range e {
		e[i] = byte('a' + i%26)
	}
	batch := make([][]byte, 0, 4096)
	for i := range n {
		x := append([]byte(nil), e...)
		binary.BigEndian.PutUint64(x, uint64(i))
		batch = append(batch, x)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := l.Append(batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	treeLogs.Store(n, l)
	return l
}

// leafHashRate hashes every entry of l once on one core and returns
// entries per second: the floor a monitor cannot beat.
func leafHashRate(l *testLog) float64 {
	n := l.Size()
	start := time.Now()
	var sink byte
	for i := int64(0); i < n; i++ {
		h := tlog.RecordHash(l.Entry(i))
		sink ^= h[0]
	}
	_ = sink
	return float64(n) / time.Since(start).Seconds()
}

// heapPeak samples the live heap (after a forced collection, so that
// garbage the in-process log double leaves does not count) every 10 ms
// until stop is called, and returns the peak above the level when it
// started, in MiB: the memory the catch-up holds. The forced collections
// slow down what runs beside them, so the benchmarks sample one extra
// run, outside the timed part (peakOf).
func heapPeak() (stop func() float64) {
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := live()
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if h := live(); h > base && h-base > peak.Load() {
					peak.Store(h - base)
				}
			}
		}
	}()
	return func() float64 {
		close(done)
		<-finished
		return float64(peak.Load()) / (1 << 20)
	}
}

// peakOf runs run once more, after the timed part, with the live heap
// sampled, and reports its peak.
func peakOf(b *testing.B, run func()) {
	b.StopTimer()
	stop := heapPeak()
	run()
	b.ReportMetric(stop(), "peak-live-heap-MiB")
}

// BenchmarkCatchUpTree measures catching up on a large log over loopback:
// fetching every entry bundle, hashing every entry and authenticating the
// tiles against the checkpoint (every entry's inclusion proven), without
// parsing or replay. Beside it, in the same run: leaf hashing alone on
// one core (the floor), and the heap peak at two log sizes (memory must
// not grow with the log).
func BenchmarkCatchUpTree(b *testing.B) {
	full := benchEntries()
	for _, n := range []int{full / 4, full} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			l := treeLog(b, n)
			floor := leafHashRate(l)
			m := newTestMonitor(b, "", nil, l)
			m.cfg.BatchBundles = 8
			f := m.followers[0]
			root, err := l.RootAt(l.Size())
			if err != nil {
				b.Fatal(err)
			}
			tree := tlog.Tree{N: l.Size(), Hash: root}
			run := func() {
				var seen int64
				f.client.dropCache()
				err := f.stream(context.Background(), tree, 0, nil, func(batch []*bundleData) error {
					for _, bd := range batch {
						seen += int64(len(bd.entries))
					}
					return nil
				})
				if err != nil || seen != l.Size() {
					b.Fatalf("verified %d of %d entries: %v", seen, l.Size(), err)
				}
			}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				run()
			}
			rate := float64(l.Size()) * float64(b.N) / time.Since(start).Seconds()
			b.ReportMetric(rate, "entries/s")
			b.ReportMetric(floor, "floor-entries/s")
			b.ReportMetric(rate/floor, "x-floor")
			peakOf(b, run)
		})
	}
}

// policyFloor parses, evaluates and applies every entry of l in order, in
// memory and on one core: what replay costs without the network, the tree
// or the database.
func policyFloor(b *testing.B, l *testLog) float64 {
	st := policy.NewState()
	n := l.Size()
	start := time.Now()
	for i := int64(0); i < n; i++ {
		raw := l.Entry(i)
		e, err := schema.ParseEntry(raw)
		if err != nil {
			b.Fatal(err)
		}
		policy.Evaluate(st, e, uint64(i))
		if err := st.Apply(e, uint64(i), tlog.RecordHash(raw)); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

var commitLogs sync.Map

// commitmentLog returns a log of n entries that are nearly all PST key
// commitments (200 issuers re-committing, a snapshot every 1,000).
func commitmentLog(b *testing.B, n int) *testLog {
	if v, ok := commitLogs.Load(n); ok {
		return v.(*testLog)
	}
	l := newTestLogUnclean(b, "example.com/bench-commitments")
	origins := populate(b, l.gen, 200)
	for i := 0; l.Size() < int64(n); i++ {
		l.gen.Advance(time.Second)
		var err error
		if i%1000 == 999 {
			_, err = l.gen.Snapshot()
		} else {
			_, err = l.gen.Commit(origins[i%len(origins)], 0, 3)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	commitLogs.Store(n, l)
	return l
}

var realLogs sync.Map

// realisticLog returns a log of n entries shaped like a production one:
// 500 issuers registered, then mostly key commitments (re-commitments:
// min_rotation_interval allows no rotation within this log's time),
// registration renewals, a snapshot every 100
// entries and a policy parameters entry every 5,000.
func realisticLog(b *testing.B, n int) *testLog {
	if v, ok := realLogs.Load(n); ok {
		return v.(*testLog)
	}
	l := newTestLogUnclean(b, "example.com/bench-realistic")
	origins := populate(b, l.gen, 500)
	p := policy.DefaultParams()
	for i := 0; l.Size() < int64(n); i++ {
		l.gen.Advance(30 * time.Second)
		o := origins[i%len(origins)]
		var err error
		switch {
		case i%5000 == 4999:
			_, err = l.gen.Params(p)
		case i%100 == 99:
			_, err = l.gen.Snapshot()
		case i%50 == 7:
			_, err = l.gen.Register(o)
		default:
			_, err = l.gen.Commit(o, 0, 3)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	realLogs.Store(n, l)
	return l
}

// BenchmarkCatchUpReplay measures a full catch-up (tree verification,
// parsing, policy replay, snapshots, SQLite saves) by a fresh monitor,
// beside the policy floor measured in the same run on the same entries.
// Three logs: the restart test's mix (mostly policy parameter and
// snapshot entries, a key commitment every 1,000), one of nearly only key
// commitments, whose replay is bound by the Ed25519 signature check of
// every entry (done on the fetch workers, in parallel), and a
// production-like one (see realisticLog).
func BenchmarkCatchUpReplay(b *testing.B) {
	n := benchEntries()
	for _, tc := range []struct {
		name string
		log  func() *testLog
	}{
		{fmt.Sprintf("mixed-%d", n), func() *testLog { l, _ := getBigLog(b, n); return l }},
		{fmt.Sprintf("commitments-%d", n/10), func() *testLog { return commitmentLog(b, n/10) }},
		{fmt.Sprintf("realistic-%d", n/10), func() *testLog { return realisticLog(b, n/10) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l := tc.log()
			floor := policyFloor(b, l)
			run := func() {
				m := newTestMonitor(b, "", nil, l)
				m.cfg.BatchBundles = 8
				rep, err := m.Once(context.Background())
				if err != nil || len(rep.Errors) != 0 || rep.Logs[0].VerifiedSize != l.Size() {
					b.Fatalf("catch-up failed: %v %+v", err, rep)
				}
				m.Close()
			}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				run()
			}
			rate := float64(l.Size()) * float64(b.N) / time.Since(start).Seconds()
			b.ReportMetric(rate, "entries/s")
			b.ReportMetric(floor, "policy-floor-entries/s")
			b.ReportMetric(rate/floor, "x-floor")
			peakOf(b, run)
		})
	}
}
