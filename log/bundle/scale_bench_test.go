package bundle_test

import (
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/verify"
)

// Read-path model assumptions (docs/scale.md).
const (
	scaleIssuers      = 1000
	scaleRefresh      = time.Hour   // T: every user agent refreshes hourly
	scaleRotationsDay = 1000.0 / 60 // R: every issuer rotates every 60 days
	scaleHitRatio     = 0.99        // h: CDN hit ratio on bundles and deltas
)

// BenchmarkReadPath measures the real handler serving the gzipped full
// bundle and an unchanged delta (both cached, as the CDN's origin) for a
// 1,000-issuer log, and extrapolates the read path for N = 10^6..10^9
// user agents with the assumptions above: bytes per user agent per day,
// origin requests and bytes per second, origin CPU cores.
func BenchmarkReadPath(b *testing.B) {
	l := bundletest.NewLog("keycommit.example/log/scale")
	ws := []*bundletest.Witness{bundletest.NewWitness("w1.example"), bundletest.NewWitness("w2.example")}
	ks, err := bundletest.KeySet(scaleIssuers, 6, t0.Add(240*time.Hour), "scale")
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 9000; i++ {
		l.Append([]byte(fmt.Sprint("filler ", i)))
	}
	l.AppendSnapshot(ks, t0)
	l.Publish(t0, ws...)
	h, err := bundle.NewHandler(bundle.Config{Source: l})
	if err != nil {
		b.Fatal(err)
	}
	// The mux is built once: what is timed is serving a request.
	mux := http.NewServeMux()
	h.Register(mux)
	get := func(path string, gz bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		return w
	}
	full := get(bundle.BundlePath, false).Body.Bytes()
	held, err := verify.ParseBundle(full)
	if err != nil {
		b.Fatal(err)
	}
	cp, _ := verify.ParseCheckpoint(held.Checkpoint)
	snap, err := verify.ParseSnapshotEntry(held.Entry)
	if err != nil {
		b.Fatal(err)
	}
	deltaPath := fmt.Sprintf("%s?old=%d&base=%s", bundle.DeltaPath, cp.Size, hex.EncodeToString(snap.Commitment()))
	l.Append([]byte("one more"))
	l.Publish(t0.Add(time.Minute), ws...)
	var fullGz, delta int
	var fullNs, deltaNs float64
	b.Run("full-gzip", func(b *testing.B) {
		for b.Loop() {
			fullGz = get(bundle.BundlePath, true).Body.Len()
		}
		fullNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(fullGz), "bytes")
	})
	b.Run("delta-unchanged", func(b *testing.B) {
		for b.Loop() {
			delta = get(deltaPath, false).Body.Len()
		}
		deltaNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(delta), "bytes")
	})
	if fullNs == 0 || deltaNs == 0 {
		return
	}
	// Bytes per changed issuer in a delta: one PST member of 6 keys.
	perIssuer := float64(len(full)-len(`{"pst":{},"privacy_pass":{}}`)) / scaleIssuers
	refreshesDay := float64(24 * time.Hour / scaleRefresh)
	changedPerRefresh := scaleRotationsDay / refreshesDay
	deltaBytes := float64(delta) + changedPerRefresh*perIssuer
	b.Logf("assumptions: %d issuers, refresh every %v, %.1f rotations/day (%.2f issuers changed per refresh), CDN hit ratio %.2f",
		scaleIssuers, scaleRefresh, scaleRotationsDay, changedPerRefresh, scaleHitRatio)
	b.Logf("measured: full gzip %d B at %.0f µs/request at the origin; unchanged delta %d B at %.0f µs; mean delta %.0f B", fullGz, fullNs/1e3, delta, deltaNs/1e3, deltaBytes)
	for e := 6; e <= 9; e++ {
		n := math.Pow(10, float64(e))
		reqS := n / scaleRefresh.Seconds()
		originS := reqS * (1 - scaleHitRatio)
		b.Logf("N=1e%d: %.0f req/s at the CDN; per UA per day full %.1f MB, delta %.1f KB; origin %.0f req/s, full %.2f Gbit/s (%.1f cores), delta %.3f Gbit/s (%.2f cores)",
			e, reqS, refreshesDay*float64(fullGz)/1e6, refreshesDay*deltaBytes/1e3, originS,
			originS*float64(fullGz)*8/1e9, originS*fullNs/1e9, originS*deltaBytes*8/1e9, originS*deltaNs/1e9)
	}
}
