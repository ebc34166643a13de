package witness_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/witness"
)

// TestRecosignWritesNothing: a log asking again and again for the
// checkpoint the witness holds gets 200 with a new, verified cosignature
// each time, and the witness writes nothing: no commit, the database and
// its WAL keep their sizes, no row is added. Mutations caught: the same
// size going through the durable update (commits, WAL growth), a row per
// request, a cached cosignature (timestamps not increasing).
func TestRecosignWritesNothing(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, "example.com/recosign", 10)
	dir := t.TempDir()
	if _, err := witness.InitDir(ctx, dir, "witness.test/w1"); err != nil {
		t.Fatal(err)
	}
	d, err := witness.OpenDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Store.AddLog(ctx, l.origin, l.vkey); err != nil {
		t.Fatal(err)
	}
	bw := bundletest.NewWitness("witness.test/clock")
	var ts atomic.Int64
	ts.Store(1_800_000_000)
	signer := bw.Signer(func() time.Time { return time.Unix(ts.Load(), 0) })
	reg := prometheus.NewRegistry()
	w, err := witness.New(witness.Config{Store: d.Store, Signer: signer, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	defer func() { srv.Close(); w.Close() }()
	tw := &testWitness{w: w, store: d.Store, srv: srv, vkey: bw.VKey, dir: dir}

	if r := tw.add(t, l, 0, 10); r.status != 200 {
		t.Fatalf("first cosignature: %d %s", r.status, r.body)
	}
	db := filepath.Join(dir, witness.DBFile)
	sizes := func() [2]int64 {
		var out [2]int64
		for i, p := range []string{db, db + "-wal"} {
			if fi, err := os.Stat(p); err == nil {
				out[i] = fi.Size()
			}
		}
		return out
	}
	ro, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rows := func() string {
		var logs, keys, ev int
		var updated sql.NullInt64
		if err := ro.QueryRow(`SELECT (SELECT COUNT(*) FROM logs), (SELECT COUNT(*) FROM log_keys),
			(SELECT COUNT(*) FROM evidence), (SELECT updated_at FROM logs)`).Scan(&logs, &keys, &ev, &updated); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(logs, keys, ev, updated.Int64)
	}
	commits := func() uint64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "witness_state_commit_batch_ops" {
				return mf.GetMetric()[0].GetHistogram().GetSampleCount()
			}
		}
		return 0
	}
	sizes0, rows0, commits0 := sizes(), rows(), commits()
	wv, err := fnote.NewVerifierForCosignatureV1(bw.VKey)
	if err != nil {
		t.Fatal(err)
	}
	cp := l.checkpoint(t, 10)
	last := uint64(0)
	for i := range 100 {
		ts.Add(60)
		r := tw.add(t, l, 10, 10)
		if r.status != 200 {
			t.Fatalf("re-cosign %d: %d %s", i, r.status, r.body)
		}
		verifyCosigned(t, bw.VKey, l, cp, r.body)
		n, err := note.Open(append(append([]byte(nil), cp...), r.body...), note.VerifierList(wv))
		if err != nil {
			t.Fatal(err)
		}
		ts, _ := fnote.CoSigV1Timestamp(n.Sigs[0])
		if uint64(ts.Unix()) <= last {
			t.Fatalf("re-cosign %d: timestamp %d, not after %d", i, ts.Unix(), last)
		}
		last = uint64(ts.Unix())
	}
	if got := commits(); got != commits0 {
		t.Fatalf("re-cosigning committed %d transactions", got-commits0)
	}
	if got := sizes(); got != sizes0 {
		t.Fatalf("database and WAL sizes %v, were %v", got, sizes0)
	}
	if got := rows(); got != rows0 {
		t.Fatalf("rows (logs, keys, evidence, updated_at) %s, were %s", got, rows0)
	}
	// The state still advances, and a different root at the held size is
	// still refused.
	l.grow(5)
	if r := tw.add(t, l, 10, 15); r.status != 200 {
		t.Fatalf("growing after re-cosigning: %d %s", r.status, r.body)
	}
	if got := commits(); got != commits0+1 {
		t.Fatalf("growing committed %d transactions, want 1", got-commits0)
	}
	fork := l.fork(14, 15)
	if r := tw.add(t, fork, 15, 15); r.status != 422 {
		t.Fatalf("same size, different root: %d %s", r.status, r.body)
	}
}
