package witnessing_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/witnessing"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkRecosign: a log with three of the project's witnesses (2 of 3,
// on loopback, SQLite state with synchronous=FULL). Each iteration
// publishes a new checkpoint (untimed), then times one first-cosign round
// (every witness verifies, signs and commits its new state durably) and
// one re-cosign round of the same checkpoint (old = size: no write). It
// reports both, their ratio, and the witness requests per hour per log at
// the default interval, counted over a simulated day of the real witness
// loop on a fake clock.
func BenchmarkRecosign(b *testing.B) {
	mem := storage.NewMemory()
	l := logtest.Start(b, mem, nil)
	ws := []*bundletest.Witness{bundletest.NewWitness("w1.example"), bundletest.NewWitness("w2.example"), bundletest.NewWitness("w3.example")}
	var pol strings.Builder
	for i, bw := range ws {
		fmt.Fprintf(&pol, "witness w%d %s %s\n", i+1, bw.VKey, startClockWitness(b, bw, logtest.Origin, l.VKey, l.Clock.Now))
	}
	pol.WriteString("group all 2 w1 w2 w3\nquorum all\n")
	reg := prometheus.NewRegistry()
	c, err := witnessing.New(witnessing.Config{Policy: []byte(pol.String()), Prove: server.StoreProver(mem), Metrics: reg})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	round := func(signed []byte) time.Duration {
		start := time.Now()
		got, failed := c.Cosign(ctx, signed, nil)
		d := time.Since(start)
		if len(got) != len(ws) {
			b.Fatalf("round: %d cosignatures, failures %v", len(got), failed)
		}
		return d
	}
	var first, again time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if _, err := l.Client.Submit(ctx, issuertest.Numbered(b, i).Register(b)); err != nil {
			b.Fatal(err)
		}
		l.Clock.Advance(time.Second)
		_, signed := l.Seq.Checkpoint()
		b.StartTimer()
		first += round(signed)
		l.Clock.Advance(time.Second)
		again += round(signed)
	}
	b.StopTimer()
	b.ReportMetric(float64(first.Nanoseconds())/float64(b.N), "first-ns/round")
	b.ReportMetric(float64(again.Nanoseconds())/float64(b.N), "recosign-ns/round")
	b.ReportMetric(float64(again)/float64(first), "recosign/first")
	b.ReportMetric(requestsPerHour(b, ws), "requests/h/log")
}

// requestsPerHour runs an idle log's witness loop at the default interval
// for a simulated day and returns the add-checkpoint requests it sent per
// hour (to all its witnesses).
func requestsPerHour(b *testing.B, ws []*bundletest.Witness) float64 {
	mem := storage.NewMemory()
	timer := logtest.NewTimer(nil)
	reg := prometheus.NewRegistry()
	l := logtest.Start(b, mem, &logtest.Options{Timer: timer,
		Witnesses: func(clock *logtest.Clock, _ storage.Backend, vkey string) sequencer.Witnesses {
			var pol strings.Builder
			for i, bw := range ws {
				fmt.Fprintf(&pol, "witness w%d %s %s\n", i+1, bw.VKey, startClockWitness(b, bw, logtest.Origin, vkey, clock.Now))
			}
			pol.WriteString("group all 2 w1 w2 w3\nquorum all\n")
			c, err := witnessing.New(witnessing.Config{Policy: []byte(pol.String()), Prove: server.StoreProver(mem), Metrics: reg, Clock: clock.Now})
			if err != nil {
				b.Fatal(err)
			}
			return c
		}})
	timer.Wait(b)
	start := l.Clock.Now()
	before := counterSum(b, reg, "log_witness_requests_total")
	for l.Clock.Now().Sub(start) < 24*time.Hour {
		timer.Fire(b)
	}
	timer.Wait(b)
	return (counterSum(b, reg, "log_witness_requests_total") - before) / l.Clock.Now().Sub(start).Hours()
}
