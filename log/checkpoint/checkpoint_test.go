package checkpoint

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/c2sp"
)

const origin = "keycommit.example/log/test"

func sample() Checkpoint {
	var h [32]byte
	for i := range h {
		h[i] = byte(i * 7)
	}
	return Checkpoint{Origin: origin, Size: 12345, Hash: h}
}

// The format tests (interop with sumdb/note and formats/log, mangling,
// body parsing) are log/c2sp's; these are the key files' and the
// origin-is-the-key-name convention's.

func TestWrongKeyRejected(t *testing.T) {
	skey, _, _ := GenerateKey(origin)
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	_, vkey2, _ := GenerateKey(origin) // same name, different key
	v2, _ := NewVerifier(vkey2)
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
	// A checkpoint whose origin is not the key's name is refused.
	_, vother, _ := GenerateKey("other.example/log")
	vo, _ := NewVerifier(vother)
	if _, _, err := Open(signed, vo); err == nil {
		t.Fatal("opened a checkpoint with a key named for another origin")
	}
	// Keys of other signature types are not log keys.
	wskey, wvkey, err := c2sp.GenerateKey(rand.Reader, "w.example", c2sp.TypeCosignatureV1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier(wvkey); err == nil {
		t.Error("NewVerifier accepted a cosignature vkey")
	}
	if _, err := NewSigner(wskey); err == nil || strings.Contains(err.Error(), wskey) {
		t.Errorf("NewSigner of a cosignature key: %v", err)
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
