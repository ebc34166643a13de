package checkpoint

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const origin = "keycommit.example/log/test"

func newKey(t *testing.T) (note.Signer, note.Verifier, string) {
	t.Helper()
	skey, vkey, err := GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v, vkey
}

func sample() Checkpoint {
	var h tlog.Hash
	for i := range h {
		h[i] = byte(i * 7)
	}
	return Checkpoint{Origin: origin, Size: 12345, Hash: h}
}

func TestSignOpenInterop(t *testing.T) {
	s, v, _ := newKey(t)
	for _, c := range []Checkpoint{sample(), {Origin: origin, Size: 0, Hash: tlog.Hash{}}, {Origin: origin, Size: 1, Hash: sample().Hash, Extensions: []string{"ext one", "ext two"}}} {
		signed, err := Sign(c, s)
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := Open(signed, v)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got.Origin != c.Origin || got.Size != c.Size || got.Hash != c.Hash || strings.Join(got.Extensions, "|") != strings.Join(c.Extensions, "|") {
			t.Fatalf("Open = %+v, want %+v", got, c)
		}
		if len(n.Sigs) != 1 {
			t.Fatalf("%d verified signatures", len(n.Sigs))
		}
		// golang.org/x/mod/sumdb/note opens it.
		n2, err := note.Open(signed, note.VerifierList(v))
		if err != nil || n2.Text != string(c.Marshal()) {
			t.Fatalf("note.Open: %v", err)
		}
		// github.com/transparency-dev/formats/log parses it.
		fc, _, _, err := flog.ParseCheckpoint(signed, origin, v)
		if err != nil {
			t.Fatalf("formats/log.ParseCheckpoint: %v", err)
		}
		if fc.Origin != c.Origin || fc.Size != c.Size || !bytes.Equal(fc.Hash, c.Hash[:]) {
			t.Fatalf("formats/log parsed %+v", fc)
		}
		if fc.Size > 0 && len(c.Extensions) == 0 {
			// And its marshalling is byte-identical to ours.
			if !bytes.Equal(fc.Marshal(), c.Marshal()) {
				t.Fatalf("formats/log marshals %q, we %q", fc.Marshal(), c.Marshal())
			}
		}
	}
}

func TestMangledRejected(t *testing.T) {
	// Several keys, so that some signature's last base64 character has
	// padding bits that a lax decoder would ignore.
	for k := 0; k < 8; k++ {
		testMangled(t)
	}
}

func testMangled(t *testing.T) {
	s, v, _ := newKey(t)
	c := sample()
	c.Extensions = []string{"x"}
	signed, err := Sign(c, s)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(signed); i++ {
		if _, _, err := Open(signed[:i], v); err == nil {
			t.Errorf("truncation to %d bytes accepted", i)
		}
		for _, x := range []byte{0x01, 0x20, 0x80, 0xff} {
			m := bytes.Clone(signed)
			m[i] ^= x
			if _, _, err := Open(m, v); err == nil {
				t.Errorf("byte %d ^ %#x accepted: %q", i, x, m)
			}
		}
	}
	if _, _, err := Open(append(bytes.Clone(signed), "junk"...), v); err == nil {
		t.Error("trailing garbage accepted")
	}
}

func TestWrongKeyRejected(t *testing.T) {
	s, _, _ := newKey(t)
	_, v2, _ := newKey(t) // same name, different key
	signed, _ := Sign(sample(), s)
	if _, _, err := Open(signed, v2); err == nil {
		t.Fatal("checkpoint verified under another key")
	}
	// A signer whose name differs from the origin is refused.
	c := sample()
	c.Origin = "other.example/log"
	if _, err := Sign(c, s); err == nil {
		t.Fatal("signed a checkpoint for another origin")
	}
}

func TestParseBodyRejects(t *testing.T) {
	good := sample().Marshal()
	if _, err := ParseBody(good); err != nil {
		t.Fatal(err)
	}
	h := strings.Split(string(good), "\n")[2]
	for _, bad := range []string{
		"", "\n", origin + "\n", origin + "\n1\n", origin + "\n1\n" + h,
		"\n1\n" + h + "\n", origin + "\n01\n" + h + "\n", origin + "\n-1\n" + h + "\n",
		origin + "\n1 \n" + h + "\n", origin + "\n1\n" + h[:len(h)-4] + "\n",
		origin + "\n1\nAAAA\n", origin + "\n1\n" + h + "\n\n", origin + "\n18446744073709551616\n" + h + "\n",
		origin + "\n1\n" + strings.Replace(h, "=", "", 1) + "\n",
	} {
		if c, err := ParseBody([]byte(bad)); err == nil {
			t.Errorf("ParseBody(%q) = %+v, want error", bad, c)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, err := GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFiles(dir, skey, vkey); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, PrivateKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, %v", fi.Mode().Perm(), err)
	}
	if err := WriteKeyFiles(dir, skey, vkey); err == nil {
		t.Fatal("overwrote existing key files")
	}
	s, err := LoadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadVerifierKey(dir)
	if err != nil || got != vkey {
		t.Fatalf("LoadVerifierKey = %q, %v", got, err)
	}
	v, _ := NewVerifier(vkey)
	signed, err := Sign(sample(), s)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(signed, v); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, PrivateKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(dir); err == nil || strings.Contains(err.Error(), "PRIVATE+KEY") {
		t.Fatalf("LoadSigner on a 0644 key: %v", err)
	}
	for _, o := range []string{"", "a b", "a+b", "é"} {
		if _, _, err := GenerateKey(o); err == nil {
			t.Errorf("GenerateKey(%q) succeeded", o)
		}
	}
}
