package witnessing_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/log/witnessing"
	"github.com/keycommit/keycommit/schema"
	"github.com/keycommit/keycommit/witness"
	"github.com/keycommit/keycommit/witness/quorum"
	"github.com/prometheus/client_golang/prometheus"
)

// startClockWitness serves one of the project's witnesses on loopback,
// trusting the log key vkey for origin, cosigning with timestamps from
// now.
func startClockWitness(t testing.TB, bw *bundletest.Witness, origin, vkey string, now func() time.Time) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := witness.InitDir(ctx, dir, bw.Name); err != nil {
		t.Fatal(err)
	}
	d, err := witness.OpenDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Store.AddLog(ctx, origin, vkey); err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(witness.Config{Store: d.Store, Signer: bw.Signer(now)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(func() { srv.Close(); w.Close(); d.Close() })
	return srv.URL
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s %v", url, resp.StatusCode, b, err)
	}
	return b
}

func counterSum(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestIdleLogStaysVerifiable: a log with one issuer and three of the
// project's witnesses (2 of 3), on a fake clock, receives no submission
// for 100 days. Every simulated day the keys bundle, the issuer proof and
// /checkpoint verify with log/verify's default maximum age (24h), and
// the witness requests stay within one round per interval. Mutations
// caught: no re-cosigning when idle (the bundle is refused after a day),
// re-cosigned notes not stored or not served (same-size SetCosigned
// refused), rounds more often than the interval.
func TestIdleLogStaysVerifiable(t *testing.T) {
	const (
		days     = 100
		interval = time.Hour
	)
	mem := storage.NewMemory()
	l := logtest.Start(t, mem, nil)
	ctx := context.Background()
	is := issuertest.Numbered(t, 1)
	for _, sub := range []func() *schema.Submission{func() *schema.Submission { return is.Register(t) }, func() *schema.Submission { return is.Commit(t, 3, l.Clock.Now()) }} {
		res, err := l.Client.Submit(ctx, sub())
		if err != nil {
			t.Fatal(err)
		}
		is.Logged(tiles.LeafHash(res.Entry))
	}

	// Restart with the witnesses, the fake timer and the interval: the
	// witness loop starts with a round for the current checkpoint.
	ws := []*bundletest.Witness{bundletest.NewWitness("w1.example"), bundletest.NewWitness("w2.example"), bundletest.NewWitness("w3.example")}
	var pol strings.Builder
	for i, bw := range ws {
		fmt.Fprintf(&pol, "witness w%d %s %s\n", i+1, bw.VKey, startClockWitness(t, bw, logtest.Origin, l.VKey, l.Clock.Now))
	}
	pol.WriteString("group all 2 w1 w2 w3\nquorum all\n")
	reg := prometheus.NewRegistry()
	c, err := witnessing.New(witnessing.Config{Policy: []byte(pol.String()), Prove: server.StoreProver(mem), Metrics: reg, Clock: l.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	timer := logtest.NewTimer(l.Clock)
	l.Config.Witnesses, l.Config.After, l.Config.CosignInterval = c, timer.After, interval
	l.Config.Jitter = func() float64 { return 0 }
	l.Restart(t, mem)

	qp, err := quorum.Parse([]byte(pol.String()))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{LogKey: l.VKey, Policy: qp, Now: l.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	check := func(day int) {
		t.Helper()
		if _, err := v.Verify(get(t, l.URL+"/v1/keys.bundle"), nil); err != nil {
			t.Fatalf("day %d: keys bundle refused: %v", day, err)
		}
		if _, err := v.VerifyIssuerProof(get(t, l.URL+"/v1/issuer-proof?issuer="+url.QueryEscape(is.Origin)), is.Origin); err != nil {
			t.Fatalf("day %d: issuer proof refused: %v", day, err)
		}
		if _, err := v.VerifyCheckpoint(get(t, l.URL+"/checkpoint")); err != nil {
			t.Fatalf("day %d: /checkpoint refused: %v", day, err)
		}
	}
	timer.Wait(t)
	check(0)
	start := l.Clock.Now()
	for day := 1; day <= days; day++ {
		for l.Clock.Now().Before(start.Add(time.Duration(day) * 24 * time.Hour)) {
			if d := timer.Fire(t); d != interval {
				t.Fatalf("day %d: the loop waited %v, want the interval (a witness failed?)", day, d)
			}
		}
		timer.Wait(t) // the round of the last interval is stored
		check(day)
	}
	reqs := counterSum(t, reg, "log_witness_requests_total")
	if max := float64(len(ws)) * (days*24*float64(time.Hour)/float64(interval) + 2); reqs > max {
		t.Fatalf("%v witness requests in %d days, want at most %v", reqs, days, max)
	}
	t.Logf("%v witness requests in %d simulated days (%.1f per witness per hour)", reqs, days, reqs/float64(len(ws))/(days*24))
}
