package schema

import (
	"bytes"
	"fmt"
	"sort"
	"testing"
)

// mangle calls f with every truncation of b and every single-byte change
// of it: every other byte value at every position if all is set (and not
// in -short mode), every single-bit flip otherwise.
func mangle(t *testing.T, b []byte, all bool, f func(what string, m []byte)) {
	for n := 0; n < len(b); n++ {
		f(fmt.Sprintf("truncated to %d bytes", n), b[:n])
	}
	m := append([]byte(nil), b...)
	for i := range b {
		for v := 0; v < 256; v++ {
			if byte(v) == b[i] {
				continue
			}
			if (!all || testing.Short()) && bits(byte(v)^b[i]) != 1 {
				continue
			}
			m[i] = byte(v)
			f(fmt.Sprintf("byte %d changed from %q to %q", i, b[i], byte(v)), m)
		}
		m[i] = b[i]
	}
}

func bits(x byte) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// TestMangleBodies: every truncation and every single-byte change of a
// valid canonical body is refused, or parses to a different, still valid,
// canonical value.
func TestMangleBodies(t *testing.T) {
	c := testPST()
	delete(c, PSTV1PMB) // keep it small: one version, one key
	vc := c[PSTV1VOPRF]
	vc.Keys = map[string]PSTKey{"1": vc.Keys["1"]}
	c[PSTV1VOPRF] = vc
	voprfOnly := testDirectory()
	voprfOnly.TokenKeys = voprfOnly.TokenKeys[:1]
	for name, body := range map[string]struct {
		k   Kind
		v   any
		all bool
	}{
		"pst":                {KindKeyCommitment, &KeyCommitment{PST: c}, true},
		"privacy pass voprf": {KindKeyCommitment, &KeyCommitment{PrivacyPass: voprfOnly}, true},
		// The 2048-bit RSA key makes every byte value at every position
		// too slow; every bit flip still covers every byte.
		"privacy pass rsa": {KindKeyCommitment, &KeyCommitment{PrivacyPass: testDirectory()}, false},
		"registration":     {KindRegistration, &Registration{Contact: "mailto:a@b.example", AccountKey: bytes.Repeat([]byte{7}, 32)}, true},
	} {
		t.Run(name, func(t *testing.T) {
			orig := mustCanonical(t, body.v)
			if _, err := ParseBody(body.k, orig); err != nil {
				t.Fatal(err)
			}
			accepted := 0
			mangle(t, orig, body.all, func(what string, m []byte) {
				v, err := ParseBody(body.k, m)
				if err != nil {
					return
				}
				accepted++
				re := mustCanonical(t, v)
				if !bytes.Equal(re, m) {
					t.Fatalf("%s: parsed, but re-encodes to other bytes", what)
				}
				if bytes.Equal(re, orig) {
					t.Fatalf("%s: parsed to the original value", what)
				}
				if vv, ok := v.(*KeyCommitment); ok {
					if _, err := vv.Keys(); err != nil {
						t.Fatalf("%s: parsed to an invalid commitment: %v", what, err)
					}
				}
			})
			t.Logf("%d mangled bodies parsed to other valid values", accepted)
		})
	}
}

// TestMangleEntries does the same for whole entries (every entry kind),
// with bit flips: each flip is refused or gives another canonical entry.
func TestMangleEntries(t *testing.T) {
	es := testEntries(t)
	names := make([]string, 0, len(es))
	for n := range es {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		switch name {
		case "key_commitment-emergency":
			if raceEnabled {
				continue // the largest; covered without -race
			}
		case "registration", "key_commitment-pst", "key_commitment-privacy-pass", "snapshot":
			// Their bodies are mangled byte by byte in TestMangleBodies,
			// and the envelope is the same as the other entries'.
			continue
		}
		orig := es[name]
		t.Run(name, func(t *testing.T) {
			if _, err := ParseEntry(orig); err != nil {
				t.Fatal(err)
			}
			for n := 0; n < len(orig); n++ {
				if _, err := ParseEntry(orig[:n]); err == nil {
					t.Fatalf("truncation to %d bytes parsed", n)
				}
			}
			m := append([]byte(nil), orig...)
			for i := range orig {
				for bit := 0; bit < 8; bit++ {
					m[i] ^= 1 << bit
					if e, err := ParseEntry(m); err == nil {
						re, err := e.Marshal()
						if err != nil || !bytes.Equal(re, m) || bytes.Equal(re, orig) {
							t.Fatalf("byte %d bit %d: parsed to a non-canonical or identical entry", i, bit)
						}
					}
					m[i] ^= 1 << bit
				}
			}
		})
	}
}

// TestMangleServedFiles: the lenient parsers of served files never panic,
// and whatever they accept is a valid commitment in canonical form.
func TestMangleServedFiles(t *testing.T) {
	for name, b := range map[string][]byte{"pst": servedPST(t), "directory": servedDirectory(t)} {
		t.Run(name, func(t *testing.T) {
			mangle(t, b, false, func(what string, m []byte) {
				kc, _, err := ParseCommitmentFile(m)
				if err != nil {
					return
				}
				if _, err := ParseBody(KindKeyCommitment, mustCanonical(t, kc)); err != nil {
					t.Fatalf("%s: accepted, but its canonical form does not parse: %v", what, err)
				}
			})
		})
	}
}
