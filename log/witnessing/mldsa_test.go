package witnessing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/log/witnessing"
	"github.com/keycommit/keycommit/witness"
	"github.com/keycommit/keycommit/witness/quorum"
)

// startKeysWitness runs one of our witnesses with keys on loopback and
// counts the add-checkpoint calls it gets.
func startKeysWitness(t *testing.T, name string, keys witness.Keys, l *testLog) (url string, vkeys []string, calls *atomic.Int64) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := witness.InitDirKeys(ctx, dir, name, keys); err != nil {
		t.Fatal(err)
	}
	d, err := witness.OpenDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Store.AddLog(ctx, l.origin, l.vkey); err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(witness.Config{Store: d.Store, Signers: d.Signers, VKeys: d.VKeys})
	if err != nil {
		t.Fatal(err)
	}
	calls = new(atomic.Int64)
	h := w.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(func() { srv.Close(); w.Close(); d.Close() })
	return srv.URL, d.VKeys, calls
}

// TestMLDSACollection: the log collects ML-DSA-44 cosignatures beside
// Ed25519 ones. A witness with both keys, named on two policy lines at one
// URL, is asked once per checkpoint and both its lines are kept; an
// ML-DSA-only witness counts toward the quorum; formats/note verifies every
// collected line.
func TestMLDSACollection(t *testing.T) {
	l := newTestLog(t, "example.com/pq")
	dualURL, dual, dualCalls := startKeysWitness(t, "dual.example", witness.Keys{Ed25519: true, MLDSA44: true}, l)
	pqURL, pq, _ := startKeysWitness(t, "pq.example", witness.Keys{MLDSA44: true}, l)
	pol := []byte("log " + l.vkey + "\nwitness d-ed " + dual[0] + " " + dualURL +
		"\nwitness d-pq " + dual[1] + " " + dualURL + "\nwitness pq " + pq[0] + " " + pqURL +
		"\ngroup g 3 d-ed d-pq pq\nquorum g\n")
	c, err := witnessing.New(witnessing.Config{Policy: pol, Prove: l.prove})
	if err != nil {
		t.Fatal(err)
	}
	p, err := quorum.Parse(pol)
	if err != nil {
		t.Fatal(err)
	}
	var vs []note.Verifier
	for _, vk := range []string{dual[0], dual[1], pq[0]} {
		var v note.Verifier
		if strings.Contains(vk, "+Bg") { // base64 of 0x06 ‖ …
			v, err = fnote.NewMLDSAVerifier(vk)
		} else {
			v, err = fnote.NewVerifierForCosignatureV1(vk)
		}
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	lv, _ := note.NewVerifier(l.vkey)
	for round := 1; round <= 3; round++ {
		signed, _ := l.sequence(t, 5)
		res, err := c.Collect(context.Background(), signed)
		if err != nil {
			t.Fatal(err)
		}
		if !res.QuorumMet || len(res.Cosigned) != 3 {
			t.Fatalf("round %d: quorum met %v, cosigned %v, errors %v", round, res.QuorumMet, res.Cosigned, res.Errors)
		}
		if got := dualCalls.Load(); got != int64(round) {
			t.Fatalf("round %d: the dual-key witness got %d calls, want one per checkpoint", round, got)
		}
		if r, err := p.Verify(res.Checkpoint); err != nil || len(r.Cosignatures) != 3 {
			t.Fatalf("round %d: quorum.Verify: %v", round, err)
		}
		n, err := note.Open(res.Checkpoint, note.VerifierList(append(vs, lv)...))
		if err != nil || len(n.Sigs) != 4 {
			t.Fatalf("round %d: formats/note: %v", round, err)
		}
		if got := len(c.Cosignatures(res.Checkpoint)); got != 3 {
			t.Fatalf("round %d: Cosignatures found %d", round, got)
		}
	}
}
