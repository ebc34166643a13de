package verify_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
)

// reflectParseKeySet is the reference key set parser: encoding/json into
// the typed value, then the canonical re-encoding must be the input.
func reflectParseKeySet(b []byte) (*verify.KeySet, error) {
	var k verify.KeySet
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, bytesErr("trailing data")
	}
	re, err := k.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(re, b) {
		return nil, bytesErr("not canonical")
	}
	return &k, nil
}

type bytesErr string

func (e bytesErr) Error() string { return string(e) }

func keySetSeeds(t testing.TB) [][]byte {
	nb := int64(-3)
	ks := keySet(t, 3, 2, "fuzz")
	ks.PrivacyPass = map[string]schema.IssuerDirectory{
		"https://pp.example":  {IssuerRequestURI: "https://pp.example/t?a=<b>&c\u2028é\"\\", TokenKeys: []schema.TokenKey{{TokenType: 1, TokenKey: "A-_x", NotBefore: &nb}, {TokenType: 2, TokenKey: "QUJD"}}},
		"https://nil.example": {IssuerRequestURI: "x"},
		"https://empty.exam":  {TokenKeys: []schema.TokenKey{}},
	}
	ks.PST["https://null.example"] = nil
	ks.PST["https://nokeys.example"] = schema.PSTCommitment{"v": {ProtocolVersion: "v", ID: 4294967295, BatchSize: -1}}
	full, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := (&schema.KeySet{}).Marshal()
	return [][]byte{full, empty, []byte(`{"pst":{"a":{}},"privacy_pass":{}}`), []byte(`{"pst":{"\u00e9":{}},"privacy_pass":{}}`)}
}

// TestParseKeySetAgreesWithReflection: the non-reflective parser reads the
// same values as encoding/json and accepts exactly the canonical encoding.
func TestParseKeySetAgreesWithReflection(t *testing.T) {
	for _, s := range keySetSeeds(t) {
		checkKeySetParsers(t, s)
	}
}

func checkKeySetParsers(t *testing.T, b []byte) {
	got, err := verify.ParseKeySet(b)
	want, werr := reflectParseKeySet(b)
	if (err == nil) != (werr == nil) {
		t.Fatalf("ParseKeySet(%.200q): error %v, reference error %v", b, err, werr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseKeySet(%.200q) = %+v, reference %+v", b, got, want)
	}
	if re, _ := got.Marshal(); !bytes.Equal(re, b) {
		t.Fatalf("re-encoding differs")
	}
}

func FuzzParseKeySet(f *testing.F) {
	for _, s := range keySetSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(checkKeySetParsers)
}

// TestParseKeySetStringBytes: every byte, at every position of an 8-byte
// word, is read as encoding/json reads it.
func TestParseKeySetStringBytes(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 9; pos++ {
			s := []byte("abcdefghijklmnop")
			s[pos] = byte(c)
			checkKeySetParsers(t, []byte(`{"pst":{"`+string(s)+`":null},"privacy_pass":{}}`))
		}
	}
}
