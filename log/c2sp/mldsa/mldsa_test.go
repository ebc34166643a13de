package mldsa_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/c2sp/mldsa"
)

func checkpointText(origin string, size uint64, hash [32]byte, ext ...string) []byte {
	return c2sp.Checkpoint{Origin: origin, Size: size, Hash: hash, Extensions: ext}.Marshal()
}

// TestMessage pins the cosigned_message bytes of tlog-cosignature's
// ML-DSA-44 section, written out field by field from the spec's struct.
func TestMessage(t *testing.T) {
	var h [32]byte
	for i := range h {
		h[i] = byte(i)
	}
	got, err := mldsa.Message("w.example/1", 1679315147, "example.com/log", 0, 20852163, h)
	if err != nil {
		t.Fatal(err)
	}
	want := "subtree/v1\n\x00" + "\x0bw.example/1" + string([]byte{0, 0, 0, 0, 0x64, 0x18, 0x50, 0xcb}) +
		"\x0fexample.com/log" + string(make([]byte, 8)) + string([]byte{0, 0, 0, 0, 0x01, 0x3e, 0x2d, 0xc3}) + string(h[:])
	if string(got) != want {
		t.Errorf("Message =\n%x\nwant\n%x", got, want)
	}
	for _, tc := range []struct {
		name, origin string
		ts, start    uint64
		end          uint64
	}{
		{"", "o", 0, 0, 1},
		{strings.Repeat("n", 256), "o", 0, 0, 1},
		{"n", "", 0, 0, 1},
		{"n", strings.Repeat("o", 256), 0, 0, 1},
		{"n", "o", 1 << 63, 0, 1},
		{"n", "o", 5, 1, 2}, // timestamp with a non-zero start
		{"n", "o", 0, 3, 2},
	} {
		if _, err := mldsa.Message(tc.name, tc.ts, tc.origin, tc.start, tc.end, h); err == nil {
			t.Errorf("Message(%.10q, %d, %.10q, %d, %d) succeeded", tc.name, tc.ts, tc.origin, tc.start, tc.end)
		}
	}
}

// TestFormatsInterop: cosignatures made here verify with
// transparency-dev/formats/note (an independent implementation on
// filippo.io/mldsa) and the other way round, for checkpoints and
// subtrees; the key encodings are the same.
func TestFormatsInterop(t *testing.T) {
	fsk, fvk, err := fnote.GenerateMLDSAKey("formats.example/w")
	if err != nil {
		t.Fatal(err)
	}
	ours, vkey, err := mldsa.NewSigner(fsk, func() time.Time { return time.Unix(1700000000, 0) })
	if err != nil {
		t.Fatalf("NewSigner(formats key): %v", err)
	}
	if vkey != fvk {
		t.Fatalf("vkey of formats' private key = %s, formats says %s", vkey, fvk)
	}
	fs, err := fnote.NewMLDSASigner(fsk)
	if err != nil {
		t.Fatal(err)
	}
	fv, err := fnote.NewMLDSAVerifier(fvk)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := c2sp.ParseVKey(fvk)
	v, err := mldsa.NewVerifier(k.Name, k.Key)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyHash() != fv.KeyHash() || ours.KeyHash() != fs.KeyHash() {
		t.Fatalf("key IDs %08x/%08x, formats %08x/%08x", v.KeyHash(), ours.KeyHash(), fv.KeyHash(), fs.KeyHash())
	}
	h := sha256.Sum256([]byte("root"))
	text := checkpointText("example.com/log", 12345, h, "ext line")

	sig, err := ours.Sign(text)
	if err != nil {
		t.Fatal(err)
	}
	if !fv.Verify(text, sig) {
		t.Error("formats does not verify our checkpoint cosignature")
	}
	if ts, _ := c2sp.CosignatureTimestamp(sig); ts != 1700000000 {
		t.Errorf("timestamp %d, want 1700000000", ts)
	}
	fsig, err := fs.Sign(text)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Verify(text, fsig) {
		t.Error("we do not verify formats' checkpoint cosignature")
	}
	// Extension lines are not signed; the three checkpoint lines are.
	if !v.Verify(checkpointText("example.com/log", 12345, h), fsig) {
		t.Error("cosignature depends on extension lines")
	}
	if v.Verify(checkpointText("example.com/log", 12346, h), fsig) {
		t.Error("cosignature verified for another size")
	}

	ssig, err := ours.SignSubtree(0, "example.com/log", 256, 512, h)
	if err != nil {
		t.Fatal(err)
	}
	if !fv.VerifySubtree(0, "example.com/log", 256, 512, h[:], ssig) {
		t.Error("formats does not verify our subtree cosignature")
	}
	fssig, err := fs.SignSubtree(0, "example.com/log", 256, 512, h[:])
	if err != nil {
		t.Fatal(err)
	}
	if !v.VerifySubtree("example.com/log", 256, 512, h, fssig) {
		t.Error("we do not verify formats' subtree cosignature")
	}
	if v.VerifySubtree("example.com/log", 0, 512, h, fssig) {
		t.Error("subtree cosignature verified for another start")
	}

	// Keys generated here are read by formats.
	sk2, vk2, err := mldsa.GenerateKey(rand.Reader, "ours.example/w")
	if err != nil {
		t.Fatal(err)
	}
	fs2, err := fnote.NewMLDSASigner(sk2)
	if err != nil {
		t.Fatalf("formats can't read our private key: %v", err)
	}
	fv2, err := fnote.NewMLDSAVerifier(vk2)
	if err != nil {
		t.Fatalf("formats can't read our vkey: %v", err)
	}
	if fs2.KeyHash() != fv2.KeyHash() {
		t.Error("formats computes another key ID for our key")
	}
}

const vectorsFile = "testdata/formats-vectors.txt"

// TestGenerateVectors regenerates testdata/formats-vectors.txt with
// transparency-dev/formats/note when KEYCOMMIT_GEN_VECTORS=1; otherwise it
// is skipped. The file is committed; TestVectors reads it.
func TestGenerateVectors(t *testing.T) {
	if os.Getenv("KEYCOMMIT_GEN_VECTORS") != "1" {
		t.Skip("set KEYCOMMIT_GEN_VECTORS=1 to regenerate " + vectorsFile)
	}
	fsk, fvk, err := fnote.GenerateMLDSAKey("witness.example/mldsa")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fnote.NewMLDSASigner(fsk)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("vectors"))
	text := checkpointText("example.com/behind-the-sofa", 20852163, h)
	sig, err := fs.Sign(text)
	if err != nil {
		t.Fatal(err)
	}
	ssig, err := fs.SignSubtree(0, "example.com/behind-the-sofa", 1024, 2048, h[:])
	if err != nil {
		t.Fatal(err)
	}
	id := binary.BigEndian.AppendUint32(nil, fs.KeyHash())
	var b bytes.Buffer
	fmt.Fprintf(&b, "# ML-DSA-44 cosignatures made by github.com/transparency-dev/formats/note (filippo.io/mldsa)\n")
	fmt.Fprintf(&b, "vkey %s\n", fvk)
	fmt.Fprintf(&b, "checkpoint %s\n", base64.StdEncoding.EncodeToString(text))
	fmt.Fprintf(&b, "cosignature %s\n", base64.StdEncoding.EncodeToString(append(id, sig...)))
	fmt.Fprintf(&b, "subtree %s 1024 2048 %s\n", "example.com/behind-the-sofa", hex.EncodeToString(h[:]))
	fmt.Fprintf(&b, "subtree-cosignature %s\n", base64.StdEncoding.EncodeToString(ssig))
	if err := os.MkdirAll(filepath.Dir(vectorsFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vectorsFile, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

type vectors struct {
	vkey, origin     string
	text, cosig      []byte
	start, end       uint64
	hash             [32]byte
	subtreeSignature []byte
}

func readVectors(t *testing.T) vectors {
	t.Helper()
	f, err := os.Open(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var v vectors
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		kw, rest, _ := strings.Cut(sc.Text(), " ")
		var err error
		switch kw {
		case "vkey":
			v.vkey = rest
		case "checkpoint":
			v.text, err = base64.StdEncoding.DecodeString(rest)
		case "cosignature":
			v.cosig, err = base64.StdEncoding.DecodeString(rest)
		case "subtree":
			f := strings.Fields(rest)
			v.origin = f[0]
			v.start, _ = strconv.ParseUint(f[1], 10, 64)
			v.end, _ = strconv.ParseUint(f[2], 10, 64)
			var h []byte
			h, err = hex.DecodeString(f[3])
			copy(v.hash[:], h)
		case "subtree-cosignature":
			v.subtreeSignature, err = base64.StdEncoding.DecodeString(rest)
		}
		if err != nil {
			t.Fatalf("%s: %s: %v", vectorsFile, kw, err)
		}
	}
	if v.vkey == "" || v.cosig == nil || v.subtreeSignature == nil {
		t.Fatalf("%s is incomplete", vectorsFile)
	}
	return v
}

// TestVectors: the committed cosignatures made by formats/note verify as a
// signed note through log/c2sp with this package's verifier, and every
// single-byte change of a cosignature (key ID, timestamp or signature) is
// refused.
func TestVectors(t *testing.T) {
	vec := readVectors(t)
	k, err := c2sp.ParseVKey(vec.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if k.Type != c2sp.TypeCosignatureMLDSA44 || len(k.Key) != mldsa.PublicKeySize {
		t.Fatalf("vector vkey has type 0x%02x and %d bytes of key", k.Type, len(k.Key))
	}
	v, err := mldsa.NewVerifier(k.Name, k.Key)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyHash() != k.Hash {
		t.Fatalf("key ID %08x, vkey says %08x", v.KeyHash(), k.Hash)
	}
	line := func(sig []byte) []byte {
		return c2sp.Signature{Name: k.Name, Hash: binary.BigEndian.Uint32(sig), Sig: sig[4:]}.Line()
	}
	signed := append(append(append([]byte{}, vec.text...), '\n'), line(vec.cosig)...)
	if _, sigs, err := c2sp.Open(signed, v); err != nil || len(sigs) != 1 {
		t.Fatalf("c2sp.Open(vector note) = %d signatures, %v", len(sigs), err)
	}
	if !v.VerifySubtree(vec.origin, vec.start, vec.end, vec.hash, vec.subtreeSignature) {
		t.Fatal("vector subtree cosignature does not verify")
	}
	for i := range vec.cosig {
		bad := bytes.Clone(vec.cosig)
		bad[i] ^= 0x01
		msg := append(append(append([]byte{}, vec.text...), '\n'), line(bad)...)
		if _, sigs, err := c2sp.Open(msg, v); err == nil {
			t.Fatalf("cosignature with byte %d flipped accepted (%d signatures)", i, len(sigs))
		}
	}
	for i := range vec.subtreeSignature {
		bad := bytes.Clone(vec.subtreeSignature)
		bad[i] ^= 0x80
		if v.VerifySubtree(vec.origin, vec.start, vec.end, vec.hash, bad) {
			t.Fatalf("subtree cosignature with byte %d flipped accepted", i)
		}
	}
	for _, n := range []int{0, 8, mldsa.CosignatureSize - 1, mldsa.CosignatureSize + 1} {
		if v.Verify(vec.text, make([]byte, n)) {
			t.Errorf("%d-byte cosignature accepted", n)
		}
	}
}

// TestNewSignerRefuses: private keys of another type, with a wrong key ID,
// or of the wrong size are refused, and errors do not contain the key.
func TestNewSignerRefuses(t *testing.T) {
	sk, _, err := mldsa.GenerateKey(rand.Reader, "w")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(sk, "+")
	edSk, _, _ := c2sp.GenerateKey(rand.Reader, "w", c2sp.TypeCosignatureV1)
	for name, bad := range map[string]string{
		"ed25519":    edSk,
		"key id":     strings.Join([]string{parts[0], parts[1], parts[2], "00000000", parts[4]}, "+"),
		"short seed": strings.Join([]string{parts[0], parts[1], parts[2], parts[3], base64.StdEncoding.EncodeToString([]byte{6, 1, 2})}, "+"),
		"no prefix":  strings.Join(parts[2:], "+"),
	} {
		_, _, err := mldsa.NewSigner(bad, nil)
		if err == nil {
			t.Errorf("%s: NewSigner succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), parts[4]) {
			t.Errorf("%s: error contains the key: %v", name, err)
		}
	}
	if _, _, err := mldsa.NewSigner(sk, nil); err != nil {
		t.Errorf("NewSigner(good) = %v", err)
	}
	if !mldsa.IsPrivateKey(sk) || mldsa.IsPrivateKey(edSk) {
		t.Error("IsPrivateKey does not tell ML-DSA-44 keys from Ed25519 ones")
	}
	if _, err := mldsa.NewVerifier("w", make([]byte, 32)); err == nil {
		t.Error("NewVerifier accepted a 32-byte key")
	}
}
