package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

// TestSnapshotForms checks that a snapshot body has exactly one of root
// and digest.
func TestSnapshotForms(t *testing.T) {
	h := `AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=`
	for _, c := range []struct{ body, err string }{
		{`{"issuers":1,"root":"` + h + `"}`, ""},
		{`{"issuers":1,"digest":"` + h + `"}`, ""},
		{`{"issuers":1,"digest":"` + h + `","root":"` + h + `"}`, "both a root and a digest"},
		{`{"issuers":1}`, "neither a root nor a digest"},
		{`{"issuers":1,"root":"AAEC"}`, "root is 3 bytes, want 32"},
		{`{"issuers":1,"digest":"AAEC"}`, "digest is 3 bytes, want 32"},
		{`{"issuers":1,"root":null}`, "not in canonical encoding"},
	} {
		_, err := ParseBody(KindSnapshot, []byte(c.body))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.body, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one containing %q", c.body, err, c.err)
		}
	}
}

// TestKeySetRoot checks KeySet.Root against the tree hash over each
// member encoded on its own (the leaves docs/entries.md defines), and
// CommitsTo in both forms.
func TestKeySetRoot(t *testing.T) {
	ks := &KeySet{
		PST:         map[string]PSTCommitment{"https://b.example": testPST(), "https://a.example": testPST(), "https://c.example": nil},
		PrivacyPass: map[string]IssuerDirectory{"https://d.example": *testDirectory()},
	}
	var leaves [][]byte
	member := func(part, origin string, v any) {
		o, _ := json.Marshal(origin)
		b, err := canonicalJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, append(append([]byte(part+"\x00"), o...), append([]byte(":"), b...)...))
	}
	for _, o := range []string{"https://a.example", "https://b.example", "https://c.example"} {
		member("pst", o, ks.PST[o])
	}
	member("privacy_pass", "https://d.example", ks.PrivacyPass["https://d.example"])
	h := rfc6962.DefaultHasher
	l := func(i int) []byte { return h.HashLeaf(leaves[i]) }
	want := h.HashChildren(h.HashChildren(l(0), l(1)), h.HashChildren(l(2), l(3)))
	got, err := ks.Root()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Root = %x, %v; want %x", got, err, want)
	}
	s, err := NewSnapshot(ks)
	if err != nil || s.Issuers != 4 || !bytes.Equal(s.Root, want) || s.Digest != nil {
		t.Fatalf("NewSnapshot = %+v, %v", s, err)
	}
	kb, _ := ks.Marshal()
	if ok, c := s.CommitsTo(kb); !ok || !bytes.Equal(c, want) {
		t.Errorf("root-form CommitsTo = %v, %x", ok, c)
	}
	d := sha256.Sum256(kb)
	legacy := &Snapshot{Issuers: 4, Digest: d[:]}
	if ok, c := legacy.CommitsTo(kb); !ok || !bytes.Equal(c, d[:]) {
		t.Errorf("digest-form CommitsTo = %v, %x", ok, c)
	}
	if c, _ := legacy.KeySetCommitment(ks); !bytes.Equal(c, d[:]) {
		t.Errorf("digest-form KeySetCommitment = %x", c)
	}
	other := append(bytes.Clone(kb[:len(kb)-2]), []byte(`,"https://e.example":{"issuer-request-uri":"x","token-keys":null}}}`)...)
	if ok, _ := s.CommitsTo(other); ok {
		t.Error("root-form CommitsTo accepts another key set")
	}
	if ok, _ := legacy.CommitsTo(other); ok {
		t.Error("digest-form CommitsTo accepts another key set")
	}
	empty, _ := (&KeySet{}).Root()
	if e := sha256.Sum256(nil); !bytes.Equal(empty, e[:]) {
		t.Errorf("empty key set root %x, want SHA-256 of the empty string", empty)
	}
}
