package witness_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/witness"
)

// testLog is a log test double: a reference Merkle tree and an Ed25519
// checkpoint key. Forks share the key and diverge in their leaves.
type testLog struct {
	origin string
	signer note.Signer
	vkey   string
	tree   *testonly.Tree
}

func newTestLog(t testing.TB, origin string, size int) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(nil, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{origin: origin, signer: s, vkey: vkey, tree: testonly.New(rfc6962.DefaultHasher)}
	l.grow(size)
	return l
}

func (l *testLog) grow(n int) {
	for i := 0; i < n; i++ {
		l.tree.AppendData([]byte(fmt.Sprintf("%s leaf %d", l.origin, l.tree.Size())))
	}
}

// fork returns a log with the same key whose first `common` leaves are this
// log's and whose later leaves differ.
func (l *testLog) fork(common, size int) *testLog {
	f := &testLog{origin: l.origin, signer: l.signer, vkey: l.vkey, tree: testonly.New(rfc6962.DefaultHasher)}
	for i := 0; i < common; i++ {
		f.tree.Append(l.tree.LeafHash(uint64(i)))
	}
	for f.tree.Size() < uint64(size) {
		f.tree.AppendData([]byte(fmt.Sprintf("%s FORKED leaf %d", l.origin, f.tree.Size())))
	}
	return f
}

func (l *testLog) text(size uint64) string {
	return fmt.Sprintf("%s\n%d\n%s\n", l.origin, size, base64.StdEncoding.EncodeToString(l.tree.HashAt(size)))
}

func (l *testLog) checkpoint(t testing.TB, size uint64) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: l.text(size)}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (l *testLog) proof(t testing.TB, old, size uint64) [][]byte {
	t.Helper()
	if old == 0 || old == size {
		return nil
	}
	p, err := l.tree.ConsistencyProof(old, size)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func requestBody(old uint64, proof [][]byte, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

// testWitness is a witness served over real HTTP on loopback.
type testWitness struct {
	w     *witness.Witness
	store *witness.Store
	srv   *httptest.Server
	vkey  string
	dir   string
}

func newTestWitness(t testing.TB, logs ...*testLog) *testWitness {
	t.Helper()
	return newTestWitnessMetrics(t, nil, logs...)
}

func newTestWitnessMetrics(t testing.TB, reg prometheus.Registerer, logs ...*testLog) *testWitness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := witness.InitDir(ctx, dir, "witness.test/w1"); err != nil {
		t.Fatal(err)
	}
	d, err := witness.OpenDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		if err := d.Store.AddLog(ctx, l.origin, l.vkey); err != nil {
			t.Fatal(err)
		}
	}
	w, err := witness.New(witness.Config{Store: d.Store, Signer: d.Signer, VKey: d.VKey, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(func() {
		srv.Close()
		w.Close()
		d.Close()
	})
	return &testWitness{w: w, store: d.Store, srv: srv, vkey: d.VKey, dir: dir}
}

type response struct {
	status int
	ctype  string
	body   []byte
}

func (tw *testWitness) post(t testing.TB, body []byte) response {
	t.Helper()
	resp, err := tw.srv.Client().Post(tw.srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

func (tw *testWitness) add(t testing.TB, l *testLog, old, size uint64) response {
	t.Helper()
	return tw.post(t, requestBody(old, l.proof(t, old, size), l.checkpoint(t, size)))
}

func (tw *testWitness) get(t testing.TB, path string) response {
	t.Helper()
	resp, err := tw.srv.Client().Get(tw.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

// verifyCosigned checks, with formats/note's cosignature verifier, that
// body is a valid cosignature line by the witness over cp's text, and that
// the log signature still verifies.
func verifyCosigned(t testing.TB, wvkey string, l *testLog, cp, body []byte) {
	t.Helper()
	wv, err := fnote.NewVerifierForCosignatureV1(wvkey)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := note.NewVerifier(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(body, []byte("\u2014 ")) || !bytes.HasSuffix(body, []byte("\n")) {
		t.Fatalf("cosignature response %q is not a signature line", body)
	}
	n, err := note.Open(append(append([]byte(nil), cp...), body...), note.VerifierList(wv, lv))
	if err != nil {
		t.Fatalf("cosigned checkpoint does not verify: %v\n%s%s", err, cp, body)
	}
	if len(n.Sigs) != 2 {
		t.Fatalf("want log signature and cosignature verified, got %d", len(n.Sigs))
	}
	if _, err := fnote.CoSigV1Timestamp(n.Sigs[1]); err != nil {
		t.Fatalf("cosignature has no timestamp: %v", err)
	}
}

func originPath(origin string) string {
	return "/" + witness.OriginID(origin) + "/checkpoint"
}
