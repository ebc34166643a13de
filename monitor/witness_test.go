package monitor

import (
	"crypto/rand"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/keycommit/keycommit/witness"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// fakeWitness serves, at the C2SP monitoring path, the checkpoint it was
// given, cosigned (tlog-cosignature) with its own key.
type fakeWitness struct {
	t      *testing.T
	signer note.Signer
	vkey   string // Ed25519 vkey of the witness key
	mu     sync.Mutex
	notes  map[string][]byte // origin id -> cosigned note
}

func newFakeWitness(t *testing.T) *fakeWitness {
	skey, vkey, err := note.GenerateKey(rand.Reader, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeWitness{t: t, signer: s, vkey: vkey, notes: map[string][]byte{}}
}

func (w *fakeWitness) cosign(signed []byte, vkey string) {
	n, err := note.Open(signed, note.VerifierList(mustVerifier(w.t, vkey)))
	if err != nil {
		w.t.Fatal(err)
	}
	b, err := note.Sign(n, w.signer)
	if err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.notes[originID(originOf(signed))] = b
	w.mu.Unlock()
}

func (w *fakeWitness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	id, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	w.mu.Lock()
	b, ok := w.notes[id]
	w.mu.Unlock()
	if rest != "checkpoint" || !ok {
		http.NotFound(rw, r)
		return
	}
	rw.Write(b)
}

// TestWitnessPull: the monitor pulls cosigned checkpoints from a witness;
// a consistent one adds its cosignature to the checkpoint the monitor
// serves, and one from another view of the log is a split view.
func TestWitnessPull(t *testing.T) {
	la, lb, vkey := splitLog(t, 12, 12)
	ta := &testLog{Log: la, vkey: vkey, url: serveView(t, la)}
	w := newFakeWitness(t)
	wurl := httptestServer(t, w)
	m := newTestMonitor(t, "", func(c *Config) { c.Witnesses = []string{wurl} }, ta)
	w.cosign(must[[]byte](t)(la.Checkpoint()), vkey)
	if rep := m.once(t); !rep.OK() {
		t.Fatalf("consistent witness checkpoint: %+v %+v", rep, m.out.alerts(t))
	}
	served := m.Status()[0].Checkpoint
	if !strings.Contains(served, "— witness.example/w1 ") {
		t.Fatalf("served checkpoint lacks the witness cosignature:\n%s", served)
	}
	// The cosignature still verifies in what the monitor serves.
	cvkey, err := fnote.VKeyToCosignatureV1(w.vkey)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := fnote.NewVerifierForCosignatureV1(cvkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open([]byte(served), note.VerifierList(wv)); err != nil {
		t.Errorf("witness cosignature in the served checkpoint does not verify: %v", err)
	}
	// The witness has been shown the other view.
	w.cosign(must[[]byte](t)(lb.Checkpoint()), vkey)
	rep := m.once(t)
	if rep.OK() || rep.Evidence != 1 {
		t.Fatalf("split view through a witness: %+v", rep)
	}
	as := alertsOfKind(m.out.alerts(t), KindSplitView)
	if len(as) != 1 {
		t.Fatalf("want one split-view alert, got %+v", m.out.alerts(t))
	}
	if _, err := VerifyEvidence(must[[]byte](t)(m.EvidenceBundle(t.Context(), as[0].Evidence)), vkey); err != nil {
		t.Errorf("evidence does not verify: %v", err)
	}
}

// TestRealWitness: the project's witness cosigns the log's checkpoint; the
// monitor pulls it from the witness's monitoring path and serves the
// checkpoint with the witness's cosignature, which still verifies.
func TestRealWitness(t *testing.T) {
	l := newTestLog(t, "example.com/witnessed")
	populate(t, l.gen, 3)
	ctx := t.Context()
	dir := t.TempDir()
	if _, err := witness.InitDir(ctx, dir, "witness.test/w1"); err != nil {
		t.Fatal(err)
	}
	d, err := witness.OpenDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Store.AddLog(ctx, l.Origin(), l.vkey); err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(witness.Config{Store: d.Store, Signer: d.Signer, VKey: d.VKey})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	wurl := httptestServer(t, w.Handler())
	cp := must[[]byte](t)(l.Checkpoint())
	if _, err := w.AddCheckpoint(ctx, append([]byte("old 0\n\n"), cp...)); err != nil {
		t.Fatal(err)
	}
	m := newTestMonitor(t, "", func(c *Config) { c.Witnesses = []string{wurl} }, l)
	if rep := m.once(t); !rep.OK() {
		t.Fatalf("report: %+v %+v", rep, m.out.alerts(t))
	}
	served := httpGetBody(t, httptestServer(t, m.Handler())+"/"+originID(l.Origin())+"/checkpoint")
	wv, err := fnote.NewVerifierForCosignatureV1(d.VKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(served, note.VerifierList(wv, mustVerifier(t, l.vkey)))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("served checkpoint should carry the log's signature and the witness's cosignature: %v\n%s", err, served)
	}
}
