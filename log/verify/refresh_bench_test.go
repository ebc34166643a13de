package verify_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
)

// BenchmarkRefresh: a user agent holding the bundle of a 1,000-issuer,
// 6-key log (about 10,000 entries) refreshes after 0, 1 or 10 issuers
// changed (their commitments replaced), or 1 added, and 10 more entries
// were logged. It reports the bytes of the full bundle (plain and gzipped)
// and of the delta, and times the delta refresh (VerifyDelta and the key
// set read) against the full refresh (Verify against the held bundle and
// the key set read) in the same run: delta_µs, full_µs and their ratio
// x_full. The held bundle's keys are read once, as a user agent holds
// them.
func BenchmarkRefresh(b *testing.B) {
	f, base, v, held := heldLog(b, 1000, "refresh", 9000, 1000)
	for _, tc := range []struct {
		changed int
		added   bool
	}{{0, false}, {1, false}, {10, false}, {1, true}} {
		changed := tc.changed
		ks := copyKeySet(b, base)
		for i := 0; i < changed; i++ {
			if tc.added {
				ks.PST[fmt.Sprintf("https://added-%d.example", i)] = base.PST[fmt.Sprintf("https://issuer-%d.example", 500+i)]
				continue
			}
			ks.PST[fmt.Sprintf("https://issuer-%d.example", i)] = base.PST[fmt.Sprintf("https://issuer-%d.example", 500+i)]
		}
		if changed > 0 {
			f.snapshot(b, ks)
		}
		name := fmt.Sprintf("issuers=1000/changed=%d", changed)
		if tc.added {
			name = fmt.Sprintf("issuers=1000/added=%d", changed)
		}
		f.grow(10)
		f.publish(b, t0, f.ws[0], f.ws[1])
		full := f.bundle(b, held.Checkpoint.Size)
		delta := makeDelta(b, f, held)
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(full)
		zw.Close()
		b.Run(name, func(b *testing.B) {
			// The full refresh, timed in the same run.
			const fullRuns = 20
			start := time.Now()
			for i := 0; i < fullRuns; i++ {
				if _, err := verifyAll(v, full, held); err != nil {
					b.Fatal(err)
				}
			}
			fullNs := float64(time.Since(start).Nanoseconds()) / fullRuns
			b.ResetTimer()
			var elapsed time.Duration
			for b.Loop() {
				t := time.Now()
				got, err := v.VerifyDelta(delta, held)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := got.KeySet(); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(t)
			}
			deltaNs := float64(elapsed.Nanoseconds()) / float64(b.N)
			b.ReportMetric(float64(len(full)), "full_bytes")
			b.ReportMetric(float64(gz.Len()), "full_gzip_bytes")
			b.ReportMetric(float64(len(delta)), "delta_bytes")
			b.ReportMetric(100*float64(len(delta))/float64(len(full)), "delta_%_of_full")
			b.ReportMetric(fullNs/1e3, "full_µs")
			b.ReportMetric(deltaNs/1e3, "delta_µs")
			b.ReportMetric(deltaNs/fullNs, "x_full")
		})
	}
}

// heldLog returns a log whose snapshot of issuers issuers with 6 PST keys
// each (its key set base) follows before filler entries and precedes
// after, cosigned, and a user agent's verifier and held bundle of it
// (its keys read).
func heldLog(tb testing.TB, issuers int, seed string, before, after int) (*fixture, *schema.KeySet, *verify.Verifier, *verify.Verified) {
	f := newFixture(tb)
	base := keySet(tb, issuers, 6, seed)
	f.grow(before)
	f.snapshot(tb, base)
	f.grow(after)
	f.publish(tb, t0, f.ws[0], f.ws[1])
	v := f.verifier(tb, nil)
	held, err := verifyAll(v, f.bundle(tb, 0), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return f, base, v, held
}
