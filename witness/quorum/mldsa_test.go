package quorum_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/witness/quorum"
)

// TestMLDSAWitnesses: ML-DSA-44 witness keys (type 0x06) are accepted,
// their cosignatures (made by transparency-dev/formats/note, an
// independent implementation) count toward the quorum, a group mixes them
// with Ed25519 witnesses, and a damaged ML-DSA cosignature is an error.
func TestMLDSAWitnesses(t *testing.T) {
	f := newFixture(t)
	var vkeys [2]string
	for i, name := range []string{"m1.example", "m2.example"} {
		sk, vk, err := fnote.GenerateMLDSAKey(name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := fnote.NewMLDSASigner(sk)
		if err != nil {
			t.Fatal(err)
		}
		full, err := note.Sign(&note.Note{Text: f.text}, s)
		if err != nil {
			t.Fatal(err)
		}
		f.cosigs[[]string{"m1", "m2"}[i]] = full[len(f.text)+1:]
		vkeys[i] = vk
	}
	p, err := quorum.Parse([]byte(expand("log $LOG\nwitness a $W1\nwitness m1 " + vkeys[0] + "\nwitness m2 " + vkeys[1] + "\ngroup g 2 a m1 m2\nquorum g\n")))
	if err != nil {
		t.Fatalf("Parse(policy with ML-DSA-44 witnesses): %v", err)
	}
	ws := p.Witnesses()
	if ws[1].Type != c2sp.TypeCosignatureMLDSA44 || len(ws[1].PublicKey) != 1312 || ws[0].Type != c2sp.TypeCosignatureV1 {
		t.Fatalf("witness types %#x %#x, ML-DSA key %d bytes", ws[0].Type, ws[1].Type, len(ws[1].PublicKey))
	}
	for _, tc := range []struct {
		witnesses []string
		met       bool
	}{
		{[]string{"m1", "m2"}, true},
		{[]string{"a", "m2"}, true},
		{[]string{"m2"}, false},
		{[]string{"a"}, false},
		{nil, false},
	} {
		res, err := p.Verify(f.note(tc.witnesses...))
		if tc.met != (err == nil) || (!tc.met && !errors.Is(err, quorum.ErrQuorumNotMet)) {
			t.Errorf("%v: Verify = %v, want met=%v", tc.witnesses, err, tc.met)
			continue
		}
		if len(res.Cosignatures) != len(tc.witnesses) {
			t.Errorf("%v: %d cosignatures counted", tc.witnesses, len(res.Cosignatures))
		}
		for _, c := range res.Cosignatures {
			if c.Timestamp == 0 {
				t.Errorf("%v: cosignature of %s has no timestamp", tc.witnesses, c.Witness)
			}
		}
	}
	// A flipped byte in the signature proper of an ML-DSA cosignature line.
	line := f.cosigs["m1"]
	name, b64, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(string(line), "— "), "\n"), " ")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	for _, i := range []int{4, 11, 12, 500, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x40
		badLine := "— " + name + " " + base64.StdEncoding.EncodeToString(bad) + "\n"
		if _, err := p.Check(append(f.note("m2"), badLine...)); err == nil || !strings.Contains(err.Error(), `"m1"`) {
			t.Errorf("byte %d flipped: Check = %v, want an error naming m1", i, err)
		}
	}
}

// TestUnknownWitnessKeyType: a witness vkey of a type that is neither
// cosignature type is refused with the line and the type.
func TestUnknownWitnessKeyType(t *testing.T) {
	key := append([]byte{0x07}, make([]byte, 32)...)
	_, _ = rand.Read(key[1:])
	vk := c2sp.VKey{Name: "w9.example", Hash: c2sp.KeyHash("w9.example", 0x07, key[1:]), Type: 0x07, Key: key[1:]}.String()
	_, err := quorum.Parse([]byte(expand("witness a $W1\nwitness b " + vk + "\nquorum a\n")))
	if err == nil || !strings.Contains(err.Error(), "policy line 2") || !strings.Contains(err.Error(), "0x07") {
		t.Fatalf("Parse = %v, want an error naming line 2 and type 0x07", err)
	}
	// An ML-DSA-44 vkey whose key is not 1,312 bytes.
	short := c2sp.FormatVKey("w9.example", c2sp.TypeCosignatureMLDSA44, make([]byte, 32))
	if _, err := quorum.Parse([]byte("witness b " + short + "\nquorum b\n")); err == nil || !strings.Contains(err.Error(), "policy line 1") {
		t.Fatalf("Parse(short ML-DSA key) = %v", err)
	}
}
