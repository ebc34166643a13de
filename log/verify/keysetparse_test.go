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

// TestParseKeySetStringBytes: every byte, at every position of the 16- and
// 8-byte words the string scan reads and of its byte-at-a-time tail, is
// read as encoding/json reads it.
func TestParseKeySetStringBytes(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 41; pos++ {
			s := []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO")
			s[pos] = byte(c)
			checkKeySetParsers(t, []byte(`{"pst":{"`+string(s)+`":null},"privacy_pass":{}}`))
		}
	}
}

// TestParseKeySetIntegers: integers at and beyond the bounds of their
// types, and non-canonical ones, are read (or refused) as encoding/json
// and the canonical re-encoding read them.
func TestParseKeySetIntegers(t *testing.T) {
	pst := func(id, batch string) []byte {
		return []byte(`{"pst":{"a":{"v":{"protocol_version":"v","id":` + id + `,"batchsize":` + batch + `,"keys":null}}},"privacy_pass":{}}`)
	}
	pp := func(typ, nb string) []byte {
		return []byte(`{"pst":{},"privacy_pass":{"a":{"issuer-request-uri":"u","token-keys":[{"token-type":` + typ + `,"token-key":"k","not-before":` + nb + `}]}}}`)
	}
	for _, b := range [][]byte{
		pst("0", "0"), pst("4294967295", "1"), pst("4294967296", "1"), pst("-1", "1"), pst("01", "1"),
		pst("1", "9223372036854775807"), pst("1", "9223372036854775808"), pst("1", "-9223372036854775808"),
		pst("1", "-9223372036854775809"), pst("1", "-0"), pst("1", "-"), pst("1", "18446744073709551616"),
		pst("1", "99999999999999999999"), pst("1", "184467440737095516150"), pst("", "1"), pst("1.0", "1"),
		pp("65535", "0"), pp("65536", "0"), pp("1", "-9223372036854775808"), pp("1", "9223372036854775807"),
		pp("1", "9223372036854775808"), pp("1", "00"), pp("1", "-01"),
	} {
		checkKeySetParsers(t, b)
	}
	got, err := verify.ParseKeySet(pst("4294967295", "-9223372036854775808"))
	if err != nil {
		t.Fatal(err)
	}
	if v := got.PST["a"]["v"]; v.ID != 4294967295 || v.BatchSize != -9223372036854775808 {
		t.Fatalf("read id %d, batchsize %d", v.ID, v.BatchSize)
	}
}

// TestParseKeySetOwnsStrings: the key set read does not change when the
// bytes it was read from are overwritten (its strings are copies).
func TestParseKeySetOwnsStrings(t *testing.T) {
	b := keySetSeeds(t)[0]
	want, err := verify.ParseKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := verify.ParseKeySet(b)
	for i := range b {
		b[i] = 'x'
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("the key set changed with the bytes it was read from")
	}
}
