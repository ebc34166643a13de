package sequencer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeWitnesses are k-of-n witnesses answering at once with real
// cosignature lines dated by the log's clock; some may be down.
type fakeWitnesses struct {
	clock *logtest.Clock
	ws    []*bundletest.Witness
	k     int

	mu    sync.Mutex
	down  map[string]bool
	asked [][]string // names asked per call (nil: all)
	reqs  int
}

func newFakeWitnesses(k int, names ...string) *fakeWitnesses {
	f := &fakeWitnesses{k: k, down: map[string]bool{}}
	for _, n := range names {
		f.ws = append(f.ws, bundletest.NewWitness(n))
	}
	return f
}

func (f *fakeWitnesses) setDown(name string, down bool) {
	f.mu.Lock()
	f.down[name] = down
	f.mu.Unlock()
}

func (f *fakeWitnesses) Cosign(ctx context.Context, signed []byte, names []string) ([]sequencer.Cosignature, map[string]error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, names)
	text := signed[:bytes.LastIndex(signed, []byte("\n\n"))+1]
	var got []sequencer.Cosignature
	failed := map[string]error{}
	for _, w := range f.ws {
		if names != nil && !slices.Contains(names, w.Name) {
			continue
		}
		f.reqs++
		if f.down[w.Name] {
			failed[w.Name] = errors.New("connection refused")
			continue
		}
		now := f.clock.Now()
		got = append(got, sequencer.Cosignature{Witness: w.Name, Time: time.Unix(now.Unix(), 0),
			Line: []byte(w.CosignatureLine(text, uint64(now.Unix()))), Received: now})
	}
	return got, failed
}

func (f *fakeWitnesses) Cosignatures(note []byte) []sequencer.Cosignature {
	var out []sequencer.Cosignature
	for _, l := range strings.SplitAfter(string(note), "\n") {
		for _, w := range f.ws {
			if b64, ok := strings.CutPrefix(l, "\u2014 "+w.Name+" "); ok {
				sig, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
				out = append(out, sequencer.Cosignature{Witness: w.Name, Time: time.Unix(int64(binary.BigEndian.Uint64(sig[4:12])), 0), Line: []byte(l)})
			}
		}
	}
	return out
}

func (f *fakeWitnesses) Satisfied(names map[string]bool) bool {
	n := 0
	for _, w := range f.ws {
		if names[w.Name] {
			n++
		}
	}
	return n >= f.k
}

func (f *fakeWitnesses) Names() []string {
	var out []string
	for _, w := range f.ws {
		out = append(out, w.Name)
	}
	return out
}

func (f *fakeWitnesses) lastAsked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[len(f.asked)-1]
}

// cosignedBy returns the witnesses with a line in the stored cosigned
// checkpoint and their timestamps.
func cosignedBy(t *testing.T, f *fakeWitnesses, b storage.Backend) (uint64, map[string]time.Time) {
	t.Helper()
	n, note, err := b.Cosigned(context.Background())
	if err != nil {
		t.Fatalf("no cosigned checkpoint: %v", err)
	}
	out := map[string]time.Time{}
	for _, c := range f.Cosignatures(note) {
		out[c.Witness] = c.Time
	}
	return n, out
}

func gauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestWitnessLoop: a round that misses the quorum retries only the
// missing witnesses with capped exponential backoff, stores the quorum
// once met, reports each fresh cosignature to OnCosignature with the
// log's clock, re-cosigns the unchanged checkpoint every interval with
// fresher timestamps, and the quorum-age gauge follows the clock.
// Mutations caught: no retry or retrying every witness; no cap; no
// re-cosign when idle; a same-size note not stored; OnCosignature not
// called or with the wrong times; the gauge not computed from the clock.
func TestWitnessLoop(t *testing.T) {
	fw := newFakeWitnesses(2, "a.example", "b.example", "c.example")
	fw.setDown("b.example", true)
	fw.setDown("c.example", true)
	timer := logtest.NewTimer(nil)
	type call struct {
		name        string
		cosig, here time.Time
	}
	var mu sync.Mutex
	var calls []call
	b := storage.NewMemory()
	l := logtest.Start(t, b, &logtest.Options{
		Witnesses:      func(c *logtest.Clock, _ storage.Backend, _ string) sequencer.Witnesses { fw.clock = c; return fw },
		Timer:          timer,
		CosignInterval: time.Hour, CosignRetryMin: time.Second, CosignRetryMax: time.Minute,
		OnCosignature: func(name string, cosig, here time.Time) {
			mu.Lock()
			calls = append(calls, call{name, cosig, here})
			mu.Unlock()
		},
	})
	// The start round: only a cosigns; the retries ask b and c only, the
	// waits double (jitter 0 halves them) up to the cap.
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if i == 0 {
			if got := timer.Wait(t); got != w {
				t.Fatalf("first retry after %v, want %v", got, w)
			}
			if _, _, err := b.Cosigned(context.Background()); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("a checkpoint without quorum was stored: %v", err)
			}
			continue
		}
		timer.Fire(t)
		if got := timer.Wait(t); got != w {
			t.Fatalf("retry %d after %v, want %v", i, got, w)
		}
		if got := fw.lastAsked(); !slices.Equal(got, []string{"b.example", "c.example"}) {
			t.Fatalf("retry %d asked %v, want the missing witnesses only", i, got)
		}
	}
	fw.setDown("c.example", false)
	timer.Fire(t)
	if got := timer.Wait(t); got != time.Hour {
		t.Fatalf("after the quorum is met the loop waits %v, want the interval", got)
	}
	size, by := cosignedBy(t, fw, b)
	if size != 1 || len(by) != 2 || !by["a.example"].Equal(logtest.T0) || !by["c.example"].Equal(l.Clock.Now().Truncate(time.Second)) {
		t.Fatalf("stored cosigned checkpoint: size %d, %v", size, by)
	}
	mu.Lock()
	if len(calls) != 2 || calls[0].name != "a.example" || !calls[0].here.Equal(logtest.T0) ||
		calls[1].name != "c.example" || !calls[1].here.Equal(l.Clock.Now()) || !calls[1].cosig.Equal(l.Clock.Now().Truncate(time.Second)) {
		t.Fatalf("OnCosignature calls: %+v", calls)
	}
	mu.Unlock()
	l.Clock.Advance(10 * time.Minute)
	if age, want := gauge(t, l.Registry, "keycommit_log_cosigned_quorum_age_seconds"), l.Clock.Now().Sub(logtest.T0).Seconds(); math.Abs(age-want) > 1e-6 {
		t.Fatalf("quorum age %v, want %v (a's cosignature, the older of the quorum)", age, want)
	}
	l.Clock.Advance(-10 * time.Minute)
	// An idle hour later every witness is asked again and the stored
	// note (same size) carries the new timestamps.
	fw.setDown("b.example", false)
	timer.Fire(t)
	if got := timer.Wait(t); got != time.Hour {
		t.Fatalf("after a re-cosign round the loop waits %v", got)
	}
	if got := fw.lastAsked(); got != nil {
		t.Fatalf("interval round asked %v, want every witness", got)
	}
	size, by = cosignedBy(t, fw, b)
	now := l.Clock.Now().Truncate(time.Second)
	if size != 1 || len(by) != 3 || !by["a.example"].Equal(now) || !by["b.example"].Equal(now) || !by["c.example"].Equal(now) {
		t.Fatalf("re-cosigned checkpoint: size %d, %v (now %v)", size, by, now)
	}
	if age := gauge(t, l.Registry, "keycommit_log_cosigned_quorum_age_seconds"); age != float64(l.Clock.Now().Sub(now))/1e9 {
		t.Fatalf("quorum age after re-cosigning %v", age)
	}
	// A witness that fails during an interval round keeps its older
	// cosignature in the note; the quorum is met by the other two, so no
	// retry.
	fw.setDown("a.example", true)
	old := by["a.example"]
	timer.Fire(t)
	if got := timer.Wait(t); got != time.Hour {
		t.Fatalf("2 of 3 fresh: the loop waits %v, want the interval", got)
	}
	_, by = cosignedBy(t, fw, b)
	if !by["a.example"].Equal(old) || !by["b.example"].After(old) {
		t.Fatalf("after a round without a: %v", by)
	}
}
