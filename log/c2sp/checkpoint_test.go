package c2sp_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os/exec"
	"strings"
	"testing"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/log/c2sp"
)

func sample() c2sp.Checkpoint {
	var h [32]byte
	for i := range h {
		h[i] = byte(i * 7)
	}
	return c2sp.Checkpoint{Origin: origin, Size: 12345, Hash: h}
}

func signCheckpoint(t testing.TB, c c2sp.Checkpoint, s c2sp.Signer) []byte {
	t.Helper()
	return sign(t, string(c.Marshal()), s)
}

// TestCheckpointInterop: checkpoints we sign open with sumdb/note and
// parse with transparency-dev/formats/log, byte-identically; we open them.
func TestCheckpointInterop(t *testing.T) {
	s, v, vkey := newLogKey(t)
	nv, _ := note.NewVerifier(vkey)
	for _, c := range []c2sp.Checkpoint{sample(), {Origin: origin}, {Origin: origin, Size: 1, Hash: sample().Hash, Extensions: []string{"ext one", "ext two"}}} {
		signed := signCheckpoint(t, c, s)
		got, n, verified, err := c2sp.OpenCheckpoint(signed, origin, v)
		if err != nil {
			t.Fatalf("OpenCheckpoint: %v", err)
		}
		if got.Origin != c.Origin || got.Size != c.Size || got.Hash != c.Hash || strings.Join(got.Extensions, "|") != strings.Join(c.Extensions, "|") {
			t.Fatalf("OpenCheckpoint = %+v, want %+v", got, c)
		}
		if len(verified) != 1 || len(n.Sigs) != 1 {
			t.Fatalf("%d verified signatures of %d", len(verified), len(n.Sigs))
		}
		n2, err := note.Open(signed, note.VerifierList(nv))
		if err != nil || n2.Text != string(c.Marshal()) {
			t.Fatalf("note.Open: %v", err)
		}
		fc, _, _, err := flog.ParseCheckpoint(signed, origin, nv)
		if err != nil {
			t.Fatalf("formats/log.ParseCheckpoint: %v", err)
		}
		if fc.Origin != c.Origin || fc.Size != c.Size || !bytes.Equal(fc.Hash, c.Hash[:]) {
			t.Fatalf("formats/log parsed %+v", fc)
		}
		if fc.Size > 0 && len(c.Extensions) == 0 && !bytes.Equal(fc.Marshal(), c.Marshal()) {
			t.Fatalf("formats/log marshals %q, we %q", fc.Marshal(), c.Marshal())
		}
	}
}

// TestCheckpointMangled: every truncation and every single-byte change of
// a signed checkpoint is refused, with several keys so that some
// signature's last base64 character has padding bits a lax decoder would
// ignore.
func TestCheckpointMangled(t *testing.T) {
	for k := 0; k < 8; k++ {
		s, v, _ := newLogKey(t)
		c := sample()
		c.Extensions = []string{"x"}
		signed := signCheckpoint(t, c, s)
		for i := 0; i < len(signed); i++ {
			if _, _, _, err := c2sp.OpenCheckpoint(signed[:i], origin, v); err == nil {
				t.Errorf("truncation to %d bytes accepted", i)
			}
			for _, x := range []byte{0x01, 0x20, 0x80, 0xff} {
				m := bytes.Clone(signed)
				m[i] ^= x
				if _, _, _, err := c2sp.OpenCheckpoint(m, origin, v); err == nil {
					t.Errorf("byte %d ^ %#x accepted: %q", i, x, m)
				}
			}
		}
		if _, _, _, err := c2sp.OpenCheckpoint(append(bytes.Clone(signed), "junk"...), origin, v); err == nil {
			t.Error("trailing garbage accepted")
		}
	}
}

// TestCheckpointWrongKeyOrOrigin: another key with the same name, and a
// checkpoint for another origin, are refused.
func TestCheckpointWrongKeyOrOrigin(t *testing.T) {
	s, v, _ := newLogKey(t)
	_, v2, _ := newLogKey(t)
	signed := signCheckpoint(t, sample(), s)
	if _, _, _, err := c2sp.OpenCheckpoint(signed, origin, v2); !errors.Is(err, c2sp.ErrUnverified) {
		t.Fatalf("checkpoint verified under another key: %v", err)
	}
	if _, _, _, err := c2sp.OpenCheckpoint(signed, "other.example/log", v); err == nil || !strings.Contains(err.Error(), "origin") {
		t.Fatalf("checkpoint for another origin: %v", err)
	}
}

// TestParseCheckpointRejects names each malformed body.
func TestParseCheckpointRejects(t *testing.T) {
	good := sample().Marshal()
	if c, err := c2sp.ParseCheckpoint(good); err != nil || !bytes.Equal(c.Marshal(), good) {
		t.Fatal(err)
	}
	h := strings.Split(string(good), "\n")[2]
	for _, bad := range []string{
		"", "\n", origin + "\n", origin + "\n1\n", origin + "\n1\n" + h,
		"\n1\n" + h + "\n", origin + "\n01\n" + h + "\n", origin + "\n00\n" + h + "\n", origin + "\n-1\n" + h + "\n",
		origin + "\n+1\n" + h + "\n", origin + "\n1 \n" + h + "\n", origin + "\n 1\n" + h + "\n", origin + "\n0x1\n" + h + "\n",
		origin + "\n1\n" + h[:len(h)-4] + "\n", origin + "\n1\nAAAA\n", origin + "\n1\n" + h + "\n\n",
		origin + "\n1\n" + h + "\next\n\n",
		origin + "\n18446744073709551616\n" + h + "\n", // 2^64
		origin + "\n9223372036854775808\n" + h + "\n",  // 2^63
		origin + "\n1\n" + strings.Replace(h, "=", "", 1) + "\n",
		origin + "\n1\n" + h[:42] + "B=\n", // non-zero padding bits
		origin + "\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 33)) + "\n",
		origin + "\r\n1\n" + h + "\n", origin + "\n1\r\n" + h + "\n", "\xff\n1\n" + h + "\n",
		origin + "\n1\n" + h + "\n" + strings.Repeat("x", c2sp.MaxNoteSize) + "\n",
	} {
		if c, err := c2sp.ParseCheckpoint([]byte(bad)); err == nil {
			t.Errorf("ParseCheckpoint(%.80q) = %+v, want error", bad, c)
		}
	}
	for _, ok := range []string{
		origin + "\n0\n" + h + "\n", origin + "\n9223372036854775807\n" + h + "\n", "é x\n1\n" + h + "\nextension\n",
	} {
		if _, err := c2sp.ParseCheckpoint([]byte(ok)); err != nil {
			t.Errorf("ParseCheckpoint(%q): %v", ok, err)
		}
	}
}

// TestDependencies keeps the package embeddable by log/verify: it imports
// nothing outside the Go standard library.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/keycommit/keycommit/log/c2sp" {
			t.Errorf("log/c2sp depends on %s, outside the standard library", dep)
		}
	}
}

// FuzzParseCheckpoint: never panics; what it accepts has one encoding.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add(sample().Marshal())
	f.Add([]byte(origin + "\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := c2sp.ParseCheckpoint(in)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Marshal(), in) {
			t.Fatalf("checkpoint has a second encoding: %q", in)
		}
	})
}

// BenchmarkOpenCheckpoint opens a log-signed checkpoint with two
// cosignatures, with this package and with sumdb/note's Open (what
// log/checkpoint and the monitor used before; the baseline, in the same
// run).
func BenchmarkOpenCheckpoint(b *testing.B) {
	s, v, vkey := newLogKey(b)
	w1 := c2sp.NewCosignatureSigner("w1.example", seededKey("w1"), nil)
	w2 := c2sp.NewCosignatureSigner("w2.example", seededKey("w2"), nil)
	signed := sign(b, string(sample().Marshal()), s, w1, w2)
	nv, _ := note.NewVerifier(vkey)
	b.Run("c2sp", func(b *testing.B) {
		for b.Loop() {
			if _, _, _, err := c2sp.OpenCheckpoint(signed, origin, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sumdb-note", func(b *testing.B) {
		for b.Loop() {
			n, err := note.Open(signed, note.VerifierList(nv))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c2sp.ParseCheckpoint([]byte(n.Text)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCosign verifies a cosignature/v1, with this package and with
// transparency-dev/formats/note (the baseline, in the same run).
func BenchmarkCosign(b *testing.B) {
	priv := seededKey("w1")
	vkey := c2sp.FormatVKey("w1.example", c2sp.TypeCosignatureV1, pubOf(priv))
	s := c2sp.NewCosignatureSigner("w1.example", priv, nil)
	text := sample().Marshal()
	sig, _ := s.Sign(text)
	v, _ := c2sp.NewVerifier(vkey)
	fv, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("c2sp", func(b *testing.B) {
		for b.Loop() {
			if !v.Verify(text, sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("formats-note", func(b *testing.B) {
		for b.Loop() {
			if !fv.Verify(text, sig) {
				b.Fatal("refused")
			}
		}
	})
}
