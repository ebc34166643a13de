package verify_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
)

// publishedKeySet returns a fixture whose log holds filler entries and a
// snapshot of ks (in digest form if legacy), cosigned by a quorum, its
// verifier, and the bundle.
func publishedKeySet(t *testing.T, ks *schema.KeySet, legacy bool) (*fixture, *verify.Verifier, []byte) {
	t.Helper()
	f := newFixture(t)
	f.log.DigestSnapshots = legacy
	f.grow(5)
	f.snapshot(t, ks)
	f.publish(t, t0, f.ws[0], f.ws[1])
	return f, f.verifier(t, nil), f.bundle(t, 0)
}

// TestDeltaUsesHeldTree: applying a delta to a root-form bundle updates
// the held bundle's cached tree instead of hashing the unchanged members
// again. With one unchanged leaf of the cached tree spoiled, a delta
// replacing other members and one adding and removing members are refused
// by the digest check (the spoiled leaf was used), while a delta that
// replaces the spoiled member itself verifies (only the changed members
// are hashed).
func TestDeltaUsesHeldTree(t *testing.T) {
	ks := keySet(t, 6, 1, "tree")
	f, v, stored := publishedKeySet(t, ks, false)
	held := func(t *testing.T, spoil int) *verify.Verified {
		h, err := verifyAll(v, stored, nil)
		if err != nil {
			t.Fatal(err)
		}
		if spoil >= 0 && !verify.SetHeldTreeLeaf(h, spoil, [32]byte{1}) {
			t.Fatal("a verified root-form bundle keeps no tree")
		}
		return h
	}
	// Members in order: issuer-0 .. issuer-5 (pst).
	replace := func(origins ...string) *schema.KeySet {
		n := copyKeySet(t, ks)
		for _, o := range origins {
			n.PST[o] = keySet(t, 6, 1, "tree replaced").PST[o]
		}
		return n
	}
	added := replace("https://issuer-4.example")
	added.PST["https://issuer-9.example"] = added.PST["https://issuer-4.example"]
	delete(added.PST, "https://issuer-2.example")
	for _, c := range []struct {
		name  string
		ks    *schema.KeySet
		spoil int
		want  verify.Check
	}{
		{"replace, nothing spoiled", replace("https://issuer-3.example"), -1, ""},
		{"replace another member", replace("https://issuer-3.example", "https://issuer-5.example"), 0, verify.CheckDigest},
		{"add and remove", added, 0, verify.CheckDigest},
		{"add and remove, nothing spoiled", added, -1, ""},
		{"replace the spoiled member", replace("https://issuer-0.example"), 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := held(t, c.spoil)
			f.grow(1)
			f.snapshot(t, c.ks)
			f.publish(t, t0, f.ws[0], f.ws[1])
			got, err := v.VerifyDelta(makeDelta(t, f, h), h)
			if c.want != "" {
				wantCheck(t, err, c.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r, _ := c.ks.Root()
			if !bytes.Equal(got.Commitment(), r) {
				t.Fatalf("commitment %x, want the key set root %x", got.Commitment(), r)
			}
		})
	}
}

// TestSnapshotEntryForms: a snapshot entry carries exactly one of a root
// and a digest, 32 bytes.
func TestSnapshotEntryForms(t *testing.T) {
	h := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	entry := func(body string) []byte {
		return []byte(`{"v":2,"kind":"snapshot","time":1,"issuer":"","prev":null,"body":` + body + `,"sig":null}`)
	}
	for _, c := range []struct{ body, err string }{
		{`{"issuers":1,"root":"` + h + `"}`, ""},
		{`{"issuers":1,"digest":"` + h + `"}`, ""},
		{`{"issuers":1,"digest":"` + h + `","root":"` + h + `"}`, "both a root and a digest"},
		{`{"issuers":1}`, "neither a root nor a digest"},
		{`{"issuers":1,"root":"AAAA"}`, "3-byte root"},
		{`{"issuers":1,"root":"` + h + `","extra":1}`, "unknown field"},
		{`{"issuers":1,"root":null}`, "canonical"},
	} {
		s, err := verify.ParseSnapshotEntry(entry(c.body))
		if c.err == "" {
			if err != nil {
				t.Errorf("%s: %v", c.body, err)
			} else if !bytes.Equal(s.Commitment(), bytes.Repeat([]byte{7}, 32)) || (s.Root == nil) == (s.Digest == nil) {
				t.Errorf("%s: root %x, digest %x", c.body, s.Root, s.Digest)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || verify.CheckOf(err) != verify.CheckSnapshot {
			t.Errorf("%s: error %v, want a snapshot check failure containing %q", c.body, err, c.err)
		}
	}
}

// TestVerifyRootAndDigest: a root-form bundle and a digest-form bundle
// (a log made before the key set root) both verify; a root-form bundle
// with another key set, or one that does not split into members, fails the
// digest check saying which.
func TestVerifyRootAndDigest(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		ks := keySet(t, 3, 2, "forms")
		_, v, raw := publishedKeySet(t, ks, legacy)
		got, err := verifyAll(v, raw, nil)
		if err != nil {
			t.Fatalf("legacy %v: %v", legacy, err)
		}
		want, _ := ks.Root()
		if legacy {
			want, _ = ks.Digest()
		}
		if !bytes.Equal(got.Commitment(), want) {
			t.Errorf("legacy %v: commitment %x, want %x", legacy, got.Commitment(), want)
		}
		b, _ := verify.ParseBundle(raw)
		other, _ := keySet(t, 3, 2, "other forms").Marshal()
		for _, ks := range [][]byte{other, []byte(`{"pst":{"a":1,},"privacy_pass":{}}`)} {
			c := *b
			c.KeySet = ks
			m, _ := c.Marshal()
			_, err := v.Verify(m, nil)
			wantCheck(t, err, verify.CheckDigest)
			if !legacy && !strings.Contains(err.Error(), "root") {
				t.Errorf("root-form digest failure does not say root: %v", err)
			}
		}
	}
}
