package witness_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/keycommit/keycommit/log/httpguard"
	"net/http"
	"strconv"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/witness"
)

// TestResponseCodes walks one log through every add-checkpoint answer over
// real HTTP. Steps run in order: each depends on the witness state the
// previous ones left.
func TestResponseCodes(t *testing.T) {
	l := newTestLog(t, "example.com/log", 40)
	other := newTestLog(t, "example.com/other", 5) // configured nowhere
	tw := newTestWitness(t, l)

	// A second key with the log's name, not configured at the witness.
	impostor := newTestLog(t, l.origin, 0)
	impostor.tree = l.tree
	// A note signed by an unknown key name only.
	stranger := newTestLog(t, "stranger.example/key", 0)
	stranger.origin, stranger.tree = l.origin, l.tree

	badSig := l.checkpoint(t, 8)
	{ // flip a bit inside the signature's Ed25519 part
		i := bytes.LastIndexByte(badSig[:len(badSig)-1], ' ') + 1
		sig, _ := base64.StdEncoding.DecodeString(string(badSig[i : len(badSig)-1]))
		sig[10] ^= 1
		badSig = append(badSig[:i:i], base64.StdEncoding.EncodeToString(sig)+"\n"...)
	}
	flipped := l.proof(t, 5, 8)
	flipped[0] = bytes.Clone(flipped[0])
	flipped[0][0] ^= 1
	forked := l.fork(3, 8)

	type step struct {
		name       string
		body       []byte
		wantStatus int
		wantBody   string // for 409: the size line
		cosigned   *testLog
	}
	steps := []step{
		{name: "unknown origin", body: requestBody(0, nil, other.checkpoint(t, 5)), wantStatus: 404},
		{name: "signed by an untrusted key with the log's name", body: requestBody(0, nil, impostor.checkpoint(t, 5)), wantStatus: 403},
		{name: "signed by an unknown key only", body: requestBody(0, nil, stranger.checkpoint(t, 5)), wantStatus: 403},
		{name: "invalid log signature", body: requestBody(0, nil, badSig), wantStatus: 403},
		{name: "old larger than size", body: requestBody(6, nil, l.checkpoint(t, 5)), wantStatus: 400},
		{name: "old not the witness size (never cosigned)", body: requestBody(3, l.proof(t, 3, 5), l.checkpoint(t, 5)), wantStatus: 409, wantBody: "0\n"},
		{name: "first cosignature", body: requestBody(0, nil, l.checkpoint(t, 5)), wantStatus: 200, cosigned: l},
		{name: "same checkpoint again", body: requestBody(5, nil, l.checkpoint(t, 5)), wantStatus: 200, cosigned: l},
		{name: "stale old size", body: requestBody(0, nil, l.checkpoint(t, 8)), wantStatus: 409, wantBody: "5\n"},
		{name: "old ahead of the witness", body: requestBody(7, l.proof(t, 7, 8), l.checkpoint(t, 8)), wantStatus: 409, wantBody: "5\n"},
		{name: "bad consistency proof", body: requestBody(5, flipped, l.checkpoint(t, 8)), wantStatus: 422},
		{name: "truncated consistency proof", body: requestBody(5, l.proof(t, 5, 8)[1:], l.checkpoint(t, 8)), wantStatus: 422},
		{name: "missing consistency proof", body: requestBody(5, nil, l.checkpoint(t, 8)), wantStatus: 422},
		{name: "same size, different root", body: requestBody(5, nil, forked.checkpoint(t, 5)), wantStatus: 422},
		{name: "non-empty proof between equal sizes", body: requestBody(5, l.proof(t, 4, 5), l.checkpoint(t, 5)), wantStatus: 422},
		{name: "consistent growth", body: requestBody(5, l.proof(t, 5, 8), l.checkpoint(t, 8)), wantStatus: 200, cosigned: l},
		{name: "older checkpoint after growth", body: requestBody(5, l.proof(t, 5, 6), l.checkpoint(t, 6)), wantStatus: 409, wantBody: "8\n"},
		{name: "growth to a power of two", body: requestBody(8, l.proof(t, 8, 16), l.checkpoint(t, 16)), wantStatus: 200, cosigned: l},
		{name: "growth from a power of two", body: requestBody(16, l.proof(t, 16, 37), l.checkpoint(t, 37)), wantStatus: 200, cosigned: l},
		// Malformed requests.
		{name: "empty body", body: nil, wantStatus: 400},
		{name: "no old line", body: []byte("\n" + string(l.checkpoint(t, 37))), wantStatus: 400},
		{name: "old with leading zero", body: []byte("old 037\n\n" + string(l.checkpoint(t, 37))), wantStatus: 400},
		{name: "old negative", body: []byte("old -1\n\n" + string(l.checkpoint(t, 37))), wantStatus: 400},
		{name: "old overflows", body: []byte("old 18446744073709551616\n\n" + string(l.checkpoint(t, 37))), wantStatus: 400},
		{name: "proof line not base64", body: []byte("old 37\n!!!!\n\n" + string(l.checkpoint(t, 37))), wantStatus: 400},
		{name: "proof hash too short", body: []byte("old 37\nAAAA\n\n" + string(l.checkpoint(t, 37))), wantStatus: 400},
		{name: "64 proof lines", body: requestBody(37, make([][]byte, 64), l.checkpoint(t, 37)), wantStatus: 400},
		{name: "no blank line", body: []byte("old 37\n"), wantStatus: 400},
		{name: "not a signed note", body: []byte("old 37\n\n" + l.text(37)), wantStatus: 400},
		{name: "checkpoint without size", body: requestBody(37, nil, mustSign(t, l, l.origin+"\n")), wantStatus: 400},
		{name: "checkpoint with short root", body: requestBody(37, nil, mustSign(t, l, l.origin+"\n37\nAAAA\n")), wantStatus: 400},
		{name: "checkpoint size with leading zero", body: requestBody(37, nil, mustSign(t, l, strings.Replace(l.text(37), "\n37\n", "\n037\n", 1))), wantStatus: 400},
		{name: "checkpoint root not canonical base64", body: requestBody(37, nil, mustSign(t, l, nonCanonicalRoot(l.text(37)))), wantStatus: 400},
	}
	for _, s := range steps {
		r := tw.post(t, s.body)
		if r.status != s.wantStatus {
			t.Fatalf("%s: status %d (%s), want %d", s.name, r.status, bytes.TrimSpace(r.body), s.wantStatus)
		}
		switch r.status {
		case 409:
			if r.ctype != "text/x.tlog.size" || string(r.body) != s.wantBody {
				t.Fatalf("%s: 409 with Content-Type %q body %q, want text/x.tlog.size %q", s.name, r.ctype, r.body, s.wantBody)
			}
		case 200:
			_, _, cpBytes := splitRequest(t, s.body)
			verifyCosigned(t, tw.vkey, s.cosigned, cpBytes, r.body)
		default:
			if len(bytes.TrimSpace(r.body)) == 0 {
				t.Fatalf("%s: %d without a message", s.name, r.status)
			}
		}
	}

	// Oversized body and wrong method.
	if r := tw.post(t, bytes.Repeat([]byte("a"), witness.MaxBodySize+1)); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", r.status)
	}
	if r := tw.get(t, "/add-checkpoint"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET add-checkpoint: status %d, want 405", r.status)
	}

	// Monitoring read: the latest cosigned checkpoint, both signatures valid.
	r := tw.get(t, originPath(l.origin))
	if r.status != 200 {
		t.Fatalf("monitoring read: status %d: %s", r.status, r.body)
	}
	wv, _ := fnote.NewVerifierForCosignatureV1(tw.vkey)
	lv, _ := note.NewVerifier(l.vkey)
	n, err := note.Open(r.body, note.VerifierList(wv, lv))
	if err != nil || len(n.Sigs) != 2 || n.Text != l.text(37) {
		t.Fatalf("monitoring read returned %q (err %v)", r.body, err)
	}
	if r := tw.get(t, originPath(other.origin)); r.status != 404 {
		t.Errorf("monitoring read of unknown log: status %d, want 404", r.status)
	}
	if r := tw.get(t, "/"+strings.Repeat("x", 64)+"/checkpoint"); r.status != 404 {
		t.Errorf("monitoring read of bad id: status %d, want 404", r.status)
	}
}

// nonCanonicalRoot sets the unused low bits of the root's last base64
// character, which a lenient decoder ignores.
func nonCanonicalRoot(text string) string {
	lines := strings.SplitN(text, "\n", 4)
	r := []byte(lines[2])
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, r[len(r)-2])
	r[len(r)-2] = alphabet[i|1]
	if i|1 == i {
		r[len(r)-2] = alphabet[i&^1]
	}
	lines[2] = string(r)
	return strings.Join(lines, "\n")
}

func mustSign(t *testing.T, l *testLog, text string) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitRequest undoes requestBody.
func splitRequest(t testing.TB, body []byte) (uint64, [][]byte, []byte) {
	t.Helper()
	head, cp, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		t.Fatalf("bad request body %q", body)
	}
	lines := strings.Split(string(head), "\n")
	old, err := strconv.ParseUint(strings.TrimPrefix(lines[0], "old "), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var pf [][]byte
	for _, l := range lines[1:] {
		h, _ := base64.StdEncoding.DecodeString(l)
		pf = append(pf, h)
	}
	return old, pf, cp
}

// TestEmptyTree: a size-0 checkpoint must carry the empty tree's root.
func TestEmptyTree(t *testing.T) {
	l := newTestLog(t, "example.com/empty", 3)
	tw := newTestWitness(t, l)
	bad := mustSign(t, l, l.origin+"\n0\n"+base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n")
	if r := tw.post(t, requestBody(0, nil, bad)); r.status != 422 {
		t.Fatalf("size 0 with a wrong root: %d %s, want 422", r.status, r.body)
	}
	if r := tw.add(t, l, 0, 0); r.status != 200 {
		t.Fatalf("size 0 with the empty root: %d %s", r.status, r.body)
	}
	if r := tw.post(t, requestBody(0, l.proof(t, 1, 3), l.checkpoint(t, 3))); r.status != 422 {
		t.Fatalf("non-empty proof from size 0: %d %s, want 422", r.status, r.body)
	}
	if r := tw.add(t, l, 0, 3); r.status != 200 {
		t.Fatalf("growth from the empty tree: %d %s", r.status, r.body)
	}
}

// TestUnconfiguredOriginAddedWhileServing checks that a log added to the
// store after the server started is served without a restart.
func TestUnconfiguredOriginAddedWhileServing(t *testing.T) {
	l := newTestLog(t, "example.com/late", 3)
	tw := newTestWitness(t)
	if r := tw.add(t, l, 0, 3); r.status != 404 {
		t.Fatalf("before add-log: status %d, want 404", r.status)
	}
	if err := tw.store.AddLog(context.Background(), l.origin, l.vkey); err != nil {
		t.Fatal(err)
	}
	if r := tw.add(t, l, 0, 3); r.status != 200 {
		t.Fatalf("after add-log: status %d (%s), want 200", r.status, r.body)
	}
}

// TestForkEvidence: after the witness cosigns size 10, a log signing a fork
// is refused with 422 and the evidence is stored, served and checkable.
func TestForkEvidence(t *testing.T) {
	l := newTestLog(t, "example.com/forking", 20)
	tw := newTestWitness(t, l)
	if r := tw.add(t, l, 0, 10); r.status != 200 {
		t.Fatalf("cosign 10: %d %s", r.status, r.body)
	}
	fork := l.fork(6, 12) // same key; leaves 6.. differ

	// Fork at size 12 with a real consistency proof from the fork's tree.
	r := tw.add(t, fork, 10, 12)
	if r.status != 422 {
		t.Fatalf("fork at 12: status %d (%s), want 422", r.status, r.body)
	}
	// Same-size fork.
	if r := tw.add(t, fork, 10, 10); r.status != 422 {
		t.Fatalf("fork at 10: status %d (%s), want 422", r.status, r.body)
	}
	// A garbage proof for a checkpoint of the fork: refused, kept unproven.
	junk := make([][]byte, len(fork.proof(t, 10, 11)))
	for i := range junk {
		junk[i] = bytes.Repeat([]byte{byte(i + 1)}, 32)
	}
	if r := tw.post(t, requestBody(10, junk, fork.checkpoint(t, 11))); r.status != 422 {
		t.Fatalf("junk proof: status %d, want 422", r.status)
	}
	// Repeating a request does not duplicate evidence.
	if r := tw.add(t, fork, 10, 12); r.status != 422 {
		t.Fatalf("fork at 12 again: status %d, want 422", r.status)
	}
	// The honest log still gets cosigned afterwards.
	if r := tw.add(t, l, 10, 14); r.status != 200 {
		t.Fatalf("honest growth after fork attempt: %d %s", r.status, r.body)
	}

	resp := tw.get(t, "/evidence?origin="+l.origin)
	if resp.status != 200 || resp.ctype != "application/json" {
		t.Fatalf("GET /evidence: %d %q", resp.status, resp.ctype)
	}
	var evs []witness.Evidence
	if err := json.Unmarshal(resp.body, &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("got %d evidence records, want 3:\n%s", len(evs), resp.body)
	}
	lv, _ := note.NewVerifier(l.vkey)
	kinds := map[string]witness.Evidence{}
	for _, e := range evs {
		kinds[e.Kind] = e
		// Both checkpoints carry a valid log signature.
		for _, cp := range []string{e.CosignedCheckpoint, e.ConflictingCheckpoint} {
			if _, err := note.Open([]byte(cp), note.VerifierList(lv)); err != nil {
				t.Errorf("%s: stored checkpoint does not verify: %v", e.Kind, err)
			}
		}
		if e.CosignedSize != 10 || !strings.Contains(e.CosignedCheckpoint, l.text(10)) {
			t.Errorf("%s: cosigned side is size %d %q, want the cosigned size-10 checkpoint", e.Kind, e.CosignedSize, e.CosignedCheckpoint)
		}
	}
	inc, ok := kinds[witness.EvidenceInconsistent]
	if !ok || !inc.Proven || inc.ConflictingSize != 12 {
		t.Fatalf("want proven %s evidence for size 12, got %+v", witness.EvidenceInconsistent, inc)
	}
	// Anyone can re-check it: the proof binds the signed size-12 root to
	// a size-10 root that is not the one the witness cosigned.
	if bytes.Equal(inc.ImpliedOldRoot, l.tree.HashAt(10)) || !bytes.Equal(inc.ImpliedOldRoot, fork.tree.HashAt(10)) {
		t.Errorf("implied old root %x is not the fork's size-10 root", inc.ImpliedOldRoot)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, 10, 12, inc.Proof, inc.ImpliedOldRoot, fork.tree.HashAt(12)); err != nil {
		t.Errorf("stored proof does not verify against the implied root: %v", err)
	}
	same, ok := kinds[witness.EvidenceSameSize]
	if !ok || !same.Proven || same.ConflictingSize != 10 || !strings.Contains(same.ConflictingCheckpoint, fork.text(10)) {
		t.Errorf("want proven %s evidence at size 10, got %+v", witness.EvidenceSameSize, same)
	}
	bad, ok := kinds[witness.EvidenceBadProof]
	if !ok || bad.Proven {
		t.Errorf("want unproven %s evidence, got %+v", witness.EvidenceBadProof, bad)
	}
	// The fork never became the witness's state.
	r = tw.get(t, originPath(l.origin))
	if !bytes.HasPrefix(r.body, []byte(l.text(14))) {
		t.Errorf("monitoring read after fork attempts: %q, want the honest size-14 checkpoint", r.body)
	}
	// Evidence for all origins, and for an origin without any.
	if r := tw.get(t, "/evidence"); !bytes.Contains(r.body, []byte(witness.EvidenceInconsistent)) {
		t.Errorf("GET /evidence without origin misses records: %s", r.body)
	}
	if r := tw.get(t, "/evidence?origin=nobody"); strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("GET /evidence?origin=nobody: %s, want []", r.body)
	}
}

// TestRestartKeepsState reopens the directory and checks the witness
// remembers its size, key and evidence.
func TestRestartKeepsState(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, "example.com/restart", 30)
	dir := t.TempDir()
	vkey, err := witness.InitDir(ctx, dir, "witness.test/restart")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := witness.InitDir(ctx, dir, "witness.test/restart"); err == nil {
		t.Fatal("second InitDir over an existing witness succeeded")
	}
	open := func() (*witness.Dir, *witness.Witness) {
		d, err := witness.OpenDir(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if d.VKey != vkey {
			t.Fatalf("reopened vkey %s, want %s", d.VKey, vkey)
		}
		w, err := witness.New(witness.Config{Store: d.Store, Signer: d.Signer})
		if err != nil {
			t.Fatal(err)
		}
		return d, w
	}
	d, w := open()
	if err := d.Store.AddLog(ctx, l.origin, l.vkey); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddCheckpoint(ctx, requestBody(0, nil, l.checkpoint(t, 20))); err != nil {
		t.Fatal(err)
	}
	w.Close()
	d.Close()

	d, w = open()
	defer d.Close()
	defer w.Close()
	_, err = w.AddCheckpoint(ctx, requestBody(0, nil, l.checkpoint(t, 25)))
	var we *witness.Error
	if !asError(err, &we) || we.Status != 409 || we.Size != 20 {
		t.Fatalf("after restart: %v, want 409 with size 20", err)
	}
	if _, err := w.AddCheckpoint(ctx, requestBody(20, l.proof(t, 20, 25), l.checkpoint(t, 25))); err != nil {
		t.Fatalf("after restart, growth from 20: %v", err)
	}
	logs, err := d.Store.Logs(ctx)
	if err != nil || len(logs) != 1 || logs[0].Size != 25 || logs[0].Origin != l.origin {
		t.Fatalf("Logs() = %+v, %v", logs, err)
	}
}

func asError(err error, target **witness.Error) bool {
	e, ok := err.(*witness.Error)
	if ok {
		*target = e
	}
	return ok
}

// TestStoreRefusesMissingDatabase: serving needs an explicit init.
func TestStoreRefusesMissingDatabase(t *testing.T) {
	_, err := witness.OpenDir(context.Background(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "init") {
		t.Fatalf("OpenDir on an empty directory: %v, want an error pointing at init", err)
	}
}

// TestAddLogValidation rejects bad origins and keys, and duplicates.
func TestAddLogValidation(t *testing.T) {
	ctx := context.Background()
	tw := newTestWitness(t)
	l := newTestLog(t, "example.com/v", 0)
	_, cosigVKey, err := witness.GenerateKey("cosigner.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ origin, vkey string }{
		{"", l.vkey},
		{"bad\norigin", l.vkey},
		{l.origin, "not a vkey"},
		{l.origin, cosigVKey},
		{l.origin, l.vkey[:len(l.vkey)-4]},
	} {
		if err := tw.store.AddLog(ctx, tc.origin, tc.vkey); err == nil {
			t.Errorf("AddLog(%q, %q) succeeded", tc.origin, tc.vkey)
		}
	}
	if err := tw.store.AddLog(ctx, l.origin, l.vkey); err != nil {
		t.Fatal(err)
	}
	if err := tw.store.AddLog(ctx, l.origin, l.vkey); err == nil {
		t.Error("adding the same key twice succeeded")
	}
	// A second key for the same origin (rotation) is accepted and used.
	l2 := newTestLog(t, "example.com/v", 4)
	if err := tw.store.AddLog(ctx, l.origin, l2.vkey); err != nil {
		t.Fatal(err)
	}
	if r := tw.add(t, l2, 0, 4); r.status != 200 {
		t.Errorf("checkpoint signed by the second key: %d %s", r.status, r.body)
	}
}

// TestKeyFormats checks the private and verifier key encodings against
// formats/note and the C2SP key ID rule.
func TestKeyFormats(t *testing.T) {
	skey, vkey, err := witness.GenerateKey("witness.example/k")
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyHash() != v.KeyHash() || s.Name() != v.Name() {
		t.Fatalf("signer %s/%08x and verifier %s/%08x disagree", s.Name(), s.KeyHash(), v.Name(), v.KeyHash())
	}
	parts := strings.SplitN(vkey, "+", 3)
	raw, _ := base64.StdEncoding.DecodeString(parts[2])
	if len(parts) != 3 || parts[1] != fmt.Sprintf("%08x", v.KeyHash()) || len(raw) != 33 || raw[0] != 0x04 {
		t.Fatalf("vkey %q is not name+hex(keyID)+base64(0x04||key)", vkey)
	}
	for _, bad := range []string{"", "has space", "has+plus"} {
		if _, _, err := witness.GenerateKey(bad); err == nil {
			t.Errorf("GenerateKey(%q) succeeded", bad)
		}
	}
	// A key ID that does not match the key is refused.
	p := strings.SplitN(skey, "+", 5)
	p[3] = "00000000"
	if _, _, err := witness.NewSigner(strings.Join(p, "+")); err == nil {
		t.Error("NewSigner accepted a wrong key ID")
	}
}

// TestMangledRequests changes and truncates every byte of valid requests
// (growth with a proof, and a same-size resubmission) and checks that no
// variant is cosigned unless it means exactly the same thing: same old size,
// proof and checkpoint text, with a valid log signature.
func TestMangledRequests(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, "example.com/mangle", 8)
	lv, _ := note.NewVerifier(l.vkey)
	fresh := func() *witness.Witness {
		tw := newTestWitness(t, l)
		if _, err := tw.w.AddCheckpoint(ctx, requestBody(0, nil, l.checkpoint(t, 5))); err != nil {
			t.Fatal(err)
		}
		return tw.w
	}
	growth := requestBody(5, l.proof(t, 5, 8), l.checkpoint(t, 8))
	same := requestBody(5, nil, l.checkpoint(t, 5))
	equivalent := func(orig, m []byte) bool {
		o1, p1, c1 := splitRequestLenient(orig)
		o2, p2, c2 := splitRequestLenient(m)
		n1, err1 := note.Open(c1, note.VerifierList(lv))
		n2, err2 := note.Open(c2, note.VerifierList(lv))
		return err1 == nil && err2 == nil && o1 == o2 && p1 == p2 && n1.Text == n2.Text
	}
	w := fresh()
	for _, orig := range [][]byte{growth, same} {
		try := func(desc string, m []byte) {
			_, err := w.AddCheckpoint(ctx, m)
			if err != nil {
				return
			}
			if !equivalent(orig, m) {
				t.Errorf("%s: cosigned a different request:\n%q", desc, m)
			}
			w = fresh() // a cosigned growth request moved the state
		}
		for i := range orig {
			m := bytes.Clone(orig)
			m[i] ^= 0x01
			try(fmt.Sprintf("flip byte %d", i), m)
			m[i] ^= 0x21
			try(fmt.Sprintf("change byte %d", i), m)
			try(fmt.Sprintf("truncate at %d", i), orig[:i])
			try(fmt.Sprintf("delete byte %d", i), append(bytes.Clone(orig[:i]), orig[i+1:]...))
		}
		try("trailing garbage", append(bytes.Clone(orig), "x"...))
	}
}

// splitRequestLenient splits a request into old line, proof lines and note
// without validating anything.
func splitRequestLenient(b []byte) (string, string, []byte) {
	head, cp, _ := bytes.Cut(b, []byte("\n\n"))
	old, proof, _ := bytes.Cut(head, []byte("\n"))
	return string(old), string(proof), cp
}

// FuzzAddCheckpoint feeds arbitrary bodies to a witness at size 5: it must
// never panic, answer only with the protocol's codes, and never cosign a
// checkpoint other than the log's.
func FuzzAddCheckpoint(f *testing.F) {
	ctx := context.Background()
	l := newTestLog(f, "example.com/fuzz", 8)
	tw := newTestWitness(f, l)
	if _, err := tw.w.AddCheckpoint(ctx, requestBody(0, nil, l.checkpoint(f, 5))); err != nil {
		f.Fatal(err)
	}
	f.Add(requestBody(5, nil, l.checkpoint(f, 5)))
	f.Add(requestBody(5, l.proof(f, 5, 8), l.checkpoint(f, 8)))
	f.Add(requestBody(0, nil, l.checkpoint(f, 3)))
	lv, _ := note.NewVerifier(l.vkey)
	f.Fuzz(func(t *testing.T, body []byte) {
		cosig, err := tw.w.AddCheckpoint(ctx, body)
		if err != nil {
			var e *witness.Error
			if !asError(err, &e) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			switch e.Status {
			case 400, 403, 404, 409, 422:
			default:
				t.Fatalf("status %d: %v", e.Status, err)
			}
			return
		}
		_, _, cp := splitRequestLenient(body)
		n, err := note.Open(cp, note.VerifierList(lv))
		if err != nil || n.Text != l.text(5) && n.Text != l.text(8) {
			t.Fatalf("cosigned %q (%v)", cp, err)
		}
		if len(cosig) == 0 {
			t.Fatal("empty cosignature")
		}
	})
}

// TestEvidenceBoundAndPages: a stranger with genuine checkpoints newer
// than the witness's sends each with a garbage proof. Each is refused
// (422), but only the latest MaxUnprovenEvidence unproven records are
// kept; proven forks are all kept; GET /evidence pages through them with
// ?after and the Link header. (Remove the DELETE in Store.commit and 40
// unproven records are kept.)
func TestEvidenceBoundAndPages(t *testing.T) {
	l := newTestLog(t, "example.com/garbage", 60)
	tw := newTestWitness(t, l)
	if r := tw.add(t, l, 0, 10); r.status != 200 {
		t.Fatalf("cosign 10: %d %s", r.status, r.body)
	}
	junk := [][]byte{bytes.Repeat([]byte{7}, 32)}
	for size := uint64(11); size <= 50; size++ {
		if r := tw.post(t, requestBody(10, junk, l.checkpoint(t, size))); r.status != 422 {
			t.Fatalf("garbage proof for %d: %d", size, r.status)
		}
	}
	fork := l.fork(5, 10)
	if r := tw.add(t, fork, 10, 10); r.status != 422 {
		t.Fatalf("same-size fork: %d", r.status)
	}
	var all []witness.Evidence
	pages := 0
	for after := ""; ; pages++ {
		path := "/evidence?limit=5&origin=" + l.origin
		if after != "" {
			path += "&after=" + after
		}
		resp, err := http.Get(tw.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var page []witness.Evidence
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(page) > 5 {
			t.Fatalf("page of %d records with limit=5", len(page))
		}
		all = append(all, page...)
		if after = httpguard.NextPage(resp.Header); after == "" {
			break
		}
	}
	unproven, proven := 0, 0
	for i, e := range all {
		if i > 0 && e.ID <= all[i-1].ID {
			t.Errorf("ids not increasing across pages: %d after %d", e.ID, all[i-1].ID)
		}
		if e.Proven {
			proven++
		} else {
			unproven++
			if e.ConflictingSize <= 50-witness.MaxUnprovenEvidence {
				t.Errorf("kept an old unproven record (size %d) over a newer one", e.ConflictingSize)
			}
		}
	}
	if unproven != witness.MaxUnprovenEvidence || proven != 1 {
		t.Errorf("kept %d unproven and %d proven records, want %d and 1", unproven, proven, witness.MaxUnprovenEvidence)
	}
	if pages != (unproven+proven+4)/5-1 {
		t.Errorf("%d records came in %d pages", len(all), pages+1)
	}
	if r := tw.get(t, "/evidence?limit=101"); r.status != 400 {
		t.Errorf("limit over the maximum: %d, want 400", r.status)
	}
}

// TestReadInFlightLimit: GET /<id>/checkpoint and GET / share one
// in-flight limit (MaxInFlight): with its slots taken each answers 429
// with Retry-After, and once they are free 200 (or 404 for a log without
// a cosigned checkpoint). (Mount them without readLimit.Wrap and the first
// loop gets 200 and 404.)
func TestReadInFlightLimit(t *testing.T) {
	l := newTestLog(t, "example.com/reads", 5)
	tw := newTestWitness(t, l)
	if r := tw.add(t, l, 0, 5); r.status != 200 {
		t.Fatalf("cosign 5: %d %s", r.status, r.body)
	}
	paths := []string{"/" + fmt.Sprintf("%x", sha256.Sum256([]byte(l.origin))) + "/checkpoint", "/"}
	lim := tw.w.ReadLimit()
	var release []func()
	for range lim.Cap() {
		r, ok := lim.TryAcquire()
		if !ok {
			t.Fatal("a read slot is taken before the test")
		}
		release = append(release, r)
	}
	for _, p := range paths {
		resp, err := tw.srv.Client().Get(tw.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s with every read slot taken: %d, Retry-After %q; want 429", p, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	for _, r := range release {
		r()
	}
	for _, p := range paths {
		if r := tw.get(t, p); r.status != 200 {
			t.Errorf("GET %s with the slots free: %d %s", p, r.status, r.body)
		}
	}
}
