package sequencer

import (
	"bytes"
	"context"
	"testing"

	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// TestViewFollowsAndHandsOver: a View over the backend a sequencer
// writes answers Status once Advance has applied the new entries, and a
// sequencer started from the View (Config.View) reads no entry to load
// its state, which is the writer's, and goes on logging; both
// sequencers share one set of metrics (Config.Metrics), registered once.
func TestViewFollowsAndHandsOver(t *testing.T) {
	be := &countingMemory{Memory: storage.NewMemory()}
	cfg, clock := newConfig(t, be)
	reg := prometheus.NewRegistry()
	ms, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = ms
	if _, err := Init(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	seq, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{cfg: cfg, clock: clock, seq: seq}
	v, err := NewView(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	is := issuertest.Numbered(t, 1)
	submit(t, l, is, is.Register(t))
	if _, ok := v.Status(is.Origin); ok {
		t.Fatal("the view knows the issuer before Advance")
	}
	if err := v.Advance(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Status(is.Origin); !ok {
		t.Fatal("the view doesn't know the issuer after Advance")
	}
	// A second write, seen by the view only when it is handed over.
	is2 := issuertest.Numbered(t, 2)
	submit(t, l, is2, is2.Register(t))
	want, err := l.seq.st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	seq.Close()
	be.reset()
	cfg.View = v
	next, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	got, err := next.st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the sequencer started from the view has another policy state than the writer's")
	}
	for _, s := range be.reset() {
		if s < 2 {
			t.Fatalf("the handover read entries from %d (a replay); only the entries after the view's were to be read", s)
		}
	}
	if err := v.Advance(context.Background()); err == nil {
		t.Fatal("a view handed over still advances")
	}
	l.seq = next
	is3 := issuertest.Numbered(t, 3)
	submit(t, l, is3, is3.Register(t))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "keycommit_log_submissions_total" && mf.Metric[0].GetCounter().GetValue() != 3 {
			t.Fatalf("keycommit_log_submissions_total = %v across the handover, want 3", mf.Metric[0].GetCounter().GetValue())
		}
	}
}
