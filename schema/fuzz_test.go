package schema

import (
	"bytes"
	"sort"
	"testing"
)

// Fuzz targets. Seeds: the served and canonical files of testdata/schema
// and one entry of every kind. Properties: no panic; what a strict parser
// accepts re-encodes to the same bytes; what a lenient parser accepts is a
// valid commitment whose canonical form the strict parser accepts.

func addSeeds(f *testing.F, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"PrivateStateTokenV1VOPRF":{"protocol_version":"PrivateStateTokenV1VOPRF","id":1,"batchsize":1,"keys":{}}}`))
	f.Add([]byte(`{"issuer-request-uri":"/t","token-keys":[{"token-type":1,"token-key":"AAAA","not-before":0}]}`))
}

func sortedEntries(f *testing.F) [][]byte {
	es := testEntries(f)
	names := make([]string, 0, len(es))
	for n := range es {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = es[n]
	}
	return out
}

func checkLenient(t *testing.T, kc *KeyCommitment) {
	b, err := canonicalJSON(kc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseBody(KindKeyCommitment, b); err != nil {
		t.Fatalf("accepted a commitment whose canonical form does not parse: %v\n%s", err, b)
	}
}

func FuzzParsePST(f *testing.F) {
	canon, _ := canonicalJSON(testPST())
	addSeeds(f, servedPST(f), canon)
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, _, err := ParsePSTFile(b); err == nil {
			checkLenient(t, &KeyCommitment{PST: c})
		}
		if v, err := ParseBody(KindKeyCommitment, b); err == nil {
			if re, _ := canonicalJSON(v); !bytes.Equal(re, b) {
				t.Fatal("strict parse of a non-canonical body")
			}
		}
	})
}

func FuzzParseDirectory(f *testing.F) {
	canon, _ := canonicalJSON(testDirectory())
	addSeeds(f, servedDirectory(f), canon)
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, _, err := ParseDirectoryFile(b); err == nil {
			checkLenient(t, &KeyCommitment{PrivacyPass: d})
		}
		if kc, _, err := ParseCommitmentFile(b); err == nil {
			checkLenient(t, kc)
		}
	})
}

func FuzzParseEntry(f *testing.F) {
	addSeeds(f, sortedEntries(f)...)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil {
			return
		}
		re, err := e.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("parsed entry re-encodes differently (%v)", err)
		}
		if _, err := e.ParsedBody(); err != nil {
			t.Fatalf("parsed entry has an invalid body: %v", err)
		}
	})
}

func FuzzParseSubmission(f *testing.F) {
	var seeds [][]byte
	for _, b := range sortedEntries(f) {
		e, err := ParseEntry(b)
		if err != nil || !e.Kind.IssuerSigned() {
			continue
		}
		s, err := canonicalJSON(e.Submission())
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, s)
	}
	addSeeds(f, seeds...)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSubmission(b)
		if err != nil {
			return
		}
		if _, err := s.SignedMessage(); err != nil {
			t.Fatalf("parsed submission has no signed message: %v", err)
		}
	})
}

func FuzzParseKeySet(f *testing.F) {
	ks := &KeySet{PST: map[string]PSTCommitment{"https://a.example": testPST()}, PrivacyPass: map[string]IssuerDirectory{"https://b.example": *testDirectory()}}
	b, err := ks.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	addSeeds(f, b)
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKeySet(b)
		if err != nil {
			return
		}
		if re, err := k.Marshal(); err != nil || !bytes.Equal(re, b) {
			t.Fatal("parsed key set re-encodes differently")
		}
	})
}
