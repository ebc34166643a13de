package witnessing_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/c2sp/mldsa"
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
)

// startMLDSAWitness serves one of the project's witnesses with only an
// ML-DSA-44 key named name on loopback, trusting the log key vkey for
// origin and cosigning with timestamps from now. It returns its URL and
// vkey.
func startMLDSAWitness(t testing.TB, name, origin, vkey string, now func() time.Time) (string, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := witness.InitDirKeys(ctx, dir, name, witness.Keys{MLDSA44: true}); err != nil {
		t.Fatal(err)
	}
	d, err := witness.OpenDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Store.AddLog(ctx, origin, vkey); err != nil {
		t.Fatal(err)
	}
	skey, wvkey, err := mldsa.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := mldsa.NewSigner(skey, now) // the fake clock's timestamps
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(witness.Config{Store: d.Store, Signer: s, VKey: wvkey})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(func() { srv.Close(); w.Close(); d.Close() })
	return srv.URL, wvkey
}

// TestMLDSABundle: our log with a 2-of-3 policy whose Ed25519 witness is
// down and whose two other witnesses have ML-DSA-44 keys only collects
// their cosignatures and serves a keys bundle that log/verify accepts;
// with one ML-DSA-44 cosignature removed it is refused for the quorum.
func TestMLDSABundle(t *testing.T) {
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

	deadURL, deadVKey := deadWitness(t, "w1.example") // Ed25519, down
	u2, k2 := startMLDSAWitness(t, "w2.example", logtest.Origin, l.VKey, l.Clock.Now)
	u3, k3 := startMLDSAWitness(t, "w3.example", logtest.Origin, l.VKey, l.Clock.Now)
	pol := fmt.Sprintf("witness w1 %s %s\nwitness w2 %s %s\nwitness w3 %s %s\ngroup all 2 w1 w2 w3\nquorum all\n", deadVKey, deadURL, k2, u2, k3, u3)
	c, err := witnessing.New(witnessing.Config{Policy: []byte(pol), Prove: server.StoreProver(mem), Clock: l.Clock.Now, Grace: -1})
	if err != nil {
		t.Fatal(err)
	}
	timer := logtest.NewTimer(l.Clock)
	l.Config.Witnesses, l.Config.After, l.Config.CosignInterval = c, timer.After, time.Hour
	l.Config.Jitter = func() float64 { return 0 }
	l.Restart(t, mem)
	timer.Wait(t)

	qp, err := quorum.Parse([]byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{LogKey: l.VKey, Policy: qp, Now: l.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	raw := get(t, l.URL+"/v1/keys.bundle")
	got, err := v.Verify(raw, nil)
	if err != nil {
		t.Fatalf("keys bundle with two ML-DSA-44 cosignatures refused: %v", err)
	}
	var names []string
	for _, cs := range got.Checkpoint.Cosignatures {
		names = append(names, cs.Witness)
	}
	if strings.Join(names, " ") != "w2 w3" {
		t.Fatalf("verified cosignatures from %v, want w2 w3", names)
	}
	if _, err := v.VerifyCheckpoint(get(t, l.URL+"/checkpoint")); err != nil {
		t.Fatalf("/checkpoint refused: %v", err)
	}
	// Remove w3's line: one ML-DSA-44 cosignature is not a quorum.
	var cut []byte
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("\u2014 w3.example ")) {
			cut = append(cut, line...)
		}
	}
	if len(cut) == len(raw) {
		t.Fatal("bundle has no line from w3")
	}
	if _, err := v.Verify(cut, nil); verify.CheckOf(err) != verify.CheckQuorum {
		t.Fatalf("bundle with one ML-DSA-44 cosignature: %v, want a quorum failure", err)
	}
}
