package sequencer

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/schema"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"
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

// decodingMemory hands View.Advance the entries of one range, decoded
// (DecodedEntries), and counts the entries read.
type decodingMemory struct {
	*countingMemory
	start, end uint64
	taken      int
}

func (d *decodingMemory) TakeDecoded(start, end uint64) ([]schema.Entry, []tlog.Hash, bool) {
	if start != d.start || end != d.end {
		return nil, nil, false
	}
	data, err := d.Memory.Entries(context.Background(), start, end)
	if err != nil {
		return nil, nil, false
	}
	es := make([]schema.Entry, len(data))
	leaves := make([]tlog.Hash, len(data))
	for i, b := range data {
		if err := json.Unmarshal(b, &es[i]); err != nil {
			return nil, nil, false
		}
		leaves[i] = tiles.LeafHash(b)
	}
	d.taken++
	return es, leaves, true
}

// TestViewTakesDecodedEntries: over a backend that holds the new entries
// decoded (DecodedEntries), Advance applies them without reading any
// from the backend; entries it does not hold are read as before.
func TestViewTakesDecodedEntries(t *testing.T) {
	be := &decodingMemory{countingMemory: &countingMemory{Memory: storage.NewMemory()}}
	cfg, clock := newConfig(t, be)
	if _, err := Init(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	seq, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	l := &testLog{cfg: cfg, clock: clock, seq: seq}
	v, err := NewView(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, decoded := range []bool{true, false} {
		is := issuertest.Numbered(t, i)
		submit(t, l, is, is.Register(t))
		size, _, err := be.Checkpoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		be.start, be.end = v.Size(), size
		if !decoded {
			be.end = 0
		}
		be.reset()
		if err := v.Advance(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, ok := v.Status(is.Origin); !ok {
			t.Fatalf("the view doesn't know issuer %d after Advance", i)
		}
		if read := be.reset(); decoded != (len(read) == 0) {
			t.Errorf("entries decoded by the backend: %v; Advance read from %v", decoded, read)
		}
	}
	if be.taken != 1 {
		t.Errorf("TakeDecoded handed entries %d times, want 1", be.taken)
	}
}
