//go:build unix

package verify_test

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
)

// BenchmarkVerifyMultiLog verifies 3 logs that each carry the same 100
// issuers (6 keys each) and merges them (VerifyLogs, k=2), and, in the
// same run, the baseline a single-log user agent pays three times:
// Verifier.Verify and Verified.KeySet on each of the same three bundles.
// x_baseline is the ratio (goal: at most 1.2); x_verify the ratio to three
// Verify alone (without reading the keys). Both run on one CPU
// (GOMAXPROCS 1), so that the ratio is the work done, not VerifyLogs'
// concurrency. In keysets=identical the three key sets are byte-identical
// (VerifyLogs reads such key sets once); in keysets=distinct each log
// also carries an issuer of its own, so every key set is read.
func BenchmarkVerifyMultiLog(b *testing.B) {
	for _, distinct := range []bool{false, true} {
		name := "keysets=identical"
		if distinct {
			name = "keysets=distinct"
		}
		b.Run(name, func(b *testing.B) { benchMultiLog(b, distinct) })
	}
}

func benchMultiLog(b *testing.B, distinct bool) {
	n := newMLNet(b, 3)
	ks, err := bundletest.KeySet(100, 6, t0.Add(90*24*time.Hour), "multilog")
	if err != nil {
		b.Fatal(err)
	}
	bundles := map[string][]byte{}
	verifiers := make([]*verify.Verifier, len(n.logs))
	tr := n.trust(b, "min-logs 2")
	for i, lg := range n.logs {
		lg.ks = ks
		if distinct {
			own, err := bundletest.KeySet(1, 6, t0.Add(90*24*time.Hour), fmt.Sprint("own-", i))
			if err != nil {
				b.Fatal(err)
			}
			lg.ks = &schema.KeySet{PST: maps.Clone(ks.PST)}
			lg.ks.PST[fmt.Sprintf("https://only-%d.example", i)] = own.PST["https://issuer-0.example"]
		}
		for j := 0; j < 1000; j++ {
			lg.l.Append([]byte(fmt.Sprint("bench filler ", j)))
		}
		n.publish(b, i, t0)
		raw, err := lg.l.Bundle(0)
		if err != nil {
			b.Fatal(err)
		}
		bundles[tr.Logs[i].Bundle] = raw
		if verifiers[i], err = verify.New(tr.Logs[i].Config(func() time.Time { return t0 })); err != nil {
			b.Fatal(err)
		}
	}
	fetch := func(_ context.Context, loc string) ([]byte, error) {
		if raw, ok := bundles[loc]; ok {
			return raw, nil
		}
		return nil, fmt.Errorf("GET %s: 404", loc)
	}
	single := func(keySet bool) {
		for i, v := range verifiers {
			got, err := v.Verify(bundles[tr.Logs[i].Bundle], nil)
			if err != nil {
				b.Fatal(err)
			}
			if keySet {
				if _, err := got.KeySet(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	lonely := []int{}
	if distinct {
		lonely = []int{0}
	}
	multi := func() {
		m, err := verify.VerifyLogs(context.Background(), verify.MultiLog{Trust: tr, Fetch: fetch, Now: func() time.Time { return t0 }})
		if err != nil {
			b.Fatal(err)
		}
		if m.Available() != 3 || m.KeySet.NumPST() != 100 || len(m.Issuers) != len(ks.PST)+3*len(lonely) {
			b.Fatalf("multi-log verification: %d issuers merged, %d decided, %d logs ok", m.KeySet.NumPST(), len(m.Issuers), m.Available())
		}
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			single(true)
		}
	})
	// The ratios come from blocks of runs interleaved with the timed
	// ones, so that both see the same load on a shared machine; a block
	// of blockRuns runs pays mostly for its own garbage.
	// x_baseline_cpu and x_verify_cpu are the same ratios of the CPU time
	// the process used (getrusage), which a loaded machine's scheduling
	// delays do not inflate.
	b.Run("multilog", func(b *testing.B) {
		const blockRuns = 10
		var base, ver, mul, baseCPU, verCPU, mulCPU time.Duration
		block := func(f func(), wall, cpu *time.Duration) {
			start, startCPU := time.Now(), cpuTime(b)
			for j := 0; j < blockRuns; j++ {
				f()
			}
			*cpu += cpuTime(b) - startCPU
			*wall += time.Since(start)
		}
		for i := 0; i < b.N; i += blockRuns {
			b.StopTimer()
			block(func() { single(true) }, &base, &baseCPU)
			block(func() { single(false) }, &ver, &verCPU)
			b.StartTimer()
			block(multi, &mul, &mulCPU)
		}
		runs := float64((b.N + blockRuns - 1) / blockRuns * blockRuns)
		b.ReportMetric(float64(base.Microseconds())/runs, "baseline_µs")
		b.ReportMetric(float64(mul)/float64(base), "x_baseline")
		b.ReportMetric(float64(mul)/float64(ver), "x_verify")
		b.ReportMetric(float64(mulCPU)/float64(baseCPU), "x_baseline_cpu")
		b.ReportMetric(float64(mulCPU)/float64(verCPU), "x_verify_cpu")
	})
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
