package verify_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// TestMirrorsSchema: the verifier's copies of the key set and entry types
// encode exactly as package schema's.
func TestMirrorsSchema(t *testing.T) {
	nb := int64(1700000000)
	ks := keySet(t, 3, 6, "mirror")
	ks.PST["https://issuer-1.example"][schema.PSTV1PMB] = schema.PSTVersionCommitment{ProtocolVersion: schema.PSTV1PMB, ID: 4, BatchSize: 1,
		Keys: map[string]schema.PSTKey{"12": {Y: "AAAA", Expiry: "5"}}}
	ks.PrivacyPass = map[string]schema.IssuerDirectory{
		"https://pp.example": {IssuerRequestURI: "https://pp.example/t?a=<b>&c", TokenKeys: []schema.TokenKey{
			{TokenType: 1, TokenKey: "A-_x", NotBefore: &nb}, {TokenType: 2, TokenKey: "QUJD"}}},
		"https://issuer-1.example": {IssuerRequestURI: "https://issuer-1.example/", TokenKeys: []schema.TokenKey{{TokenType: 1, TokenKey: "QQ"}}},
	}
	want, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := verify.ParseKeySet(want)
	if err != nil {
		t.Fatal(err)
	}
	re, _ := got.Marshal()
	if !bytes.Equal(re, want) {
		t.Errorf("verify.KeySet re-encodes differently:\n%s\nwant\n%s", re, want)
	}
	if back, err := schema.ParseKeySet(re); err != nil {
		t.Errorf("schema refuses the verifier's encoding: %v", err)
	} else if b2, _ := back.Marshal(); !bytes.Equal(b2, want) {
		t.Errorf("schema round trip differs")
	}
	if n := len(got.Issuers()); n != 4 {
		t.Errorf("%d issuers, want 4", n)
	}
	empty, _ := (&schema.KeySet{}).Marshal()
	if e, err := verify.ParseKeySet(empty); err != nil {
		t.Errorf("empty key set: %v", err)
	} else if b, _ := e.Marshal(); !bytes.Equal(b, empty) {
		t.Errorf("empty key set re-encodes as %s, want %s", b, empty)
	}
	for _, bad := range []string{
		strings.Replace(string(want), `"pst":{`, `"pst": {`, 1),
		strings.Replace(string(want), `"batchsize":10`, `"batchsize":10.0`, 1),
		strings.Replace(string(want), `"Y"`, `"y"`, 1),
		string(want) + "\n",
		`{"pst":null,"privacy_pass":{}}`,
		`{"privacy_pass":{},"pst":{}}`,
		`{"pst":{},"privacy_pass":{},"extra":1}`,
	} {
		if _, err := verify.ParseKeySet([]byte(bad)); err == nil {
			t.Errorf("ParseKeySet accepted %.80q", bad)
		}
	}

	// A snapshot entry written by schema parses, in both forms, and the
	// parser agrees with schema's on its fields.
	var leaf []byte
	for _, body := range []schema.Snapshot{{Issuers: 4, Root: bytes.Repeat([]byte{7}, 32)}, {Issuers: 4, Digest: bytes.Repeat([]byte{7}, 32)}} {
		e, err := schema.NewLogEntry(schema.KindSnapshot, 1234, body)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ = e.Marshal()
		s, err := verify.ParseSnapshotEntry(leaf)
		if err != nil {
			t.Fatal(err)
		}
		if s.Issuers != 4 || !s.Time.Equal(time.UnixMilli(1234)) || !bytes.Equal(s.Root, body.Root) || !bytes.Equal(s.Digest, body.Digest) {
			t.Errorf("parsed snapshot %+v", s)
		}
	}
	var generic map[string]any
	if err := json.Unmarshal(leaf, &generic); err != nil || len(generic) != 7 {
		t.Errorf("schema entry has %d members, the verifier's mirror has 7", len(generic))
	}
}

// TestInterop: our checkpoints and cosignatures open with sumdb/note and
// formats/note, and cosignatures made by formats/note verify here.
func TestInterop(t *testing.T) {
	f := newFixture(t)
	f.grow(2)
	f.snapshot(t, keySet(t, 1, 1, "interop"))
	cp, err := f.log.Publish(t0, f.ws[0], f.ws[1])
	if err != nil {
		t.Fatal(err)
	}
	logV, err := note.NewVerifier(f.log.VKey)
	if err != nil {
		t.Fatal(err)
	}
	w1, err := fnote.NewVerifierForCosignatureV1(f.ws[0].VKey)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := fnote.NewVerifierForCosignatureV1(f.ws[1].VKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(cp, note.VerifierList(logV, w1, w2))
	if err != nil {
		t.Fatalf("sumdb/note refuses our checkpoint: %v", err)
	}
	if len(n.Sigs) != 3 {
		t.Errorf("sumdb/note verified %d signatures, want 3", len(n.Sigs))
	}
	if _, _, _, err := flog.ParseCheckpoint(cp, origin, logV); err != nil {
		t.Errorf("formats/log refuses our checkpoint: %v", err)
	}

	// Cosignatures from formats/note's signer (timestamped now).
	signed, err := f.log.Sign()
	if err != nil {
		t.Fatal(err)
	}
	var out []byte = signed
	for _, w := range f.ws[1:] {
		s, err := fnote.NewSignerForCosignatureV1(w.SKey())
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(signed, note.VerifierList(logV))
		if err != nil {
			t.Fatal(err)
		}
		cs, err := note.Sign(&note.Note{Text: n.Text}, s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cs[bytes.LastIndex(cs, []byte("\n\n"))+2:]...)
	}
	f.log.SetCheckpoint(out)
	f.now = time.Now()
	got, err := f.verifier(t, nil).Verify(f.bundle(t, 0), nil)
	if err != nil {
		t.Fatalf("formats/note cosignatures refused: %v", err)
	}
	if len(got.Checkpoint.Cosignatures) != 2 || got.Checkpoint.Cosignatures[0].Witness != "w2" {
		t.Errorf("cosignatures %+v, want w2 and w3", got.Checkpoint.Cosignatures)
	}
}

func TestBundleRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.grow(40)
	f.snapshot(t, keySet(t, 2, 2, "rt"))
	f.publish(t, t0, f.ws...)
	first := f.bundle(t, 0)
	f.grow(13)
	f.publish(t, t0, f.ws...)
	for _, raw := range [][]byte{first, f.bundle(t, 0), f.bundle(t, 41)} {
		b, err := verify.ParseBundle(raw)
		if err != nil {
			t.Fatal(err)
		}
		re, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(re, raw) {
			t.Errorf("bundle does not round-trip")
		}
	}
	b, _ := verify.ParseBundle(first)
	b.Entry = append(b.Entry, '\n')
	if _, err := b.Marshal(); err == nil {
		t.Errorf("Marshal encoded an entry with a newline")
	}
}

func FuzzParseBundle(f *testing.F) {
	fx, raw := small(f)
	_ = fx
	f.Add(raw)
	f.Add([]byte(verify.BundleHeader + "\nkeyset {}\nentry {}\nconsistency 1\nindex 0\n\nx\n\n— a AAAAAAA=\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := verify.ParseBundle(in)
		if err != nil {
			if verify.CheckOf(err) != verify.CheckFormat {
				t.Fatalf("parse error %v is not a format error", err)
			}
			return
		}
		re, err := b.Marshal()
		if err != nil {
			t.Fatalf("parsed bundle does not re-encode: %v", err)
		}
		if !bytes.Equal(re, in) {
			t.Fatalf("bundle has a second encoding")
		}
	})
}
