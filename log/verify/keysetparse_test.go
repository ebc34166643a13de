package verify_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
)

// reflectParseKeySet is the reference key set parser: encoding/json into
// schema's types (which mirror the verifier's encoding, TestMirrorsSchema),
// then the canonical re-encoding must be the input.
func reflectParseKeySet(b []byte) (*schema.KeySet, error) {
	var k schema.KeySet
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

// asSchema reads every value of ks through its accessors into schema's
// types (null and empty kept apart, as encoding/json keeps them), to
// compare with the reference parser's.
func asSchema(ks *verify.KeySet) *schema.KeySet {
	out := &schema.KeySet{PST: map[string]schema.PSTCommitment{}, PrivacyPass: map[string]schema.IssuerDirectory{}}
	for origin, c := range ks.AllPST() {
		if c.IsNull() {
			out.PST[origin] = nil
			continue
		}
		sc := schema.PSTCommitment{}
		for v := range c.Versions() {
			sv := schema.PSTVersionCommitment{ProtocolVersion: v.ProtocolVersion, ID: v.ID, BatchSize: v.BatchSize}
			if !v.KeysNull() {
				sv.Keys = map[string]schema.PSTKey{}
				for k := range v.Keys() {
					sv.Keys[k.Label] = schema.PSTKey{Y: k.Y, Expiry: k.Expiry}
				}
			}
			sc[v.Version] = sv
		}
		out.PST[origin] = sc
	}
	for origin, d := range ks.AllPrivacyPass() {
		sd := schema.IssuerDirectory{IssuerRequestURI: d.IssuerRequestURI}
		if !d.TokenKeysNull() {
			sd.TokenKeys = []schema.TokenKey{}
			for tk := range d.TokenKeys() {
				st := schema.TokenKey{TokenType: tk.TokenType, TokenKey: tk.TokenKey}
				if tk.HasNotBefore {
					st.NotBefore = &tk.NotBefore
				}
				sd.TokenKeys = append(sd.TokenKeys, st)
			}
		}
		out.PrivacyPass[origin] = sd
	}
	return out
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
	scanned, serr := verify.ParseKeySetScanning(b)
	if (serr == nil) != (err == nil) || err != nil && serr.Error() != err.Error() {
		t.Fatalf("ParseKeySet(%.200q): error %v, without the plain-text path %v", b, err, serr)
	}
	if err == nil && !reflect.DeepEqual(asSchema(scanned), asSchema(got)) {
		t.Fatalf("ParseKeySet(%.200q) reads another key set without the plain-text path", b)
	}
	if err != nil {
		return
	}
	if g := asSchema(got); !reflect.DeepEqual(g, want) {
		t.Fatalf("ParseKeySet(%.200q) = %+v, reference %+v", b, g, want)
	}
	if re, _ := got.Marshal(); !bytes.Equal(re, b) {
		t.Fatalf("re-encoding differs")
	}
	checkAccessors(t, got, want)
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
	c, _ := got.PST("a")
	if v, _ := c.Version("v"); v.ID != 4294967295 || v.BatchSize != -9223372036854775808 {
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
	if !reflect.DeepEqual(asSchema(got), asSchema(want)) {
		t.Fatal("the key set changed with the bytes it was read from")
	}
	if g, _ := got.Marshal(); !bytes.Equal(g, keySetSeeds(t)[0]) {
		t.Fatal("the key set's encoding changed with the bytes it was read from")
	}
}

// canonical encodes v as the key set's canonical encoding does.
func canonical(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// checkAccessors checks got's lookups and encodings against want, the
// same key set read by the reference parser: every member, version and
// key is found and encodes as encoding/json encodes it, and the names
// just after each one are not found.
func checkAccessors(t testing.TB, got *verify.KeySet, want *schema.KeySet) {
	t.Helper()
	var issuers []string
	for o := range want.PST {
		issuers = append(issuers, o)
	}
	for o := range want.PrivacyPass {
		if _, ok := want.PST[o]; !ok {
			issuers = append(issuers, o)
		}
	}
	slices.Sort(issuers)
	if g := got.Issuers(); !slices.Equal(g, issuers) || got.NumPST() != len(want.PST) || got.NumPrivacyPass() != len(want.PrivacyPass) {
		t.Fatalf("issuers %q (%d pst, %d privacy_pass), want %q (%d, %d)", g, got.NumPST(), got.NumPrivacyPass(), issuers, len(want.PST), len(want.PrivacyPass))
	}
	if g, w := string(got.PSTJSON()), canonical(t, map[string]schema.PSTCommitment(want.PST)); g != w {
		t.Fatalf("PSTJSON %s, want %s", g, w)
	}
	if g, w := string(got.PrivacyPassJSON()), canonical(t, want.PrivacyPass); g != w {
		t.Fatalf("PrivacyPassJSON %s, want %s", g, w)
	}
	if g, _ := got.MarshalJSON(); !bytes.Equal(g, []byte(canonical(t, want))) {
		t.Fatalf("MarshalJSON %s", g)
	}
	for o, wc := range want.PST {
		c, ok := got.PST(o)
		if !ok || c.IsNull() != (wc == nil) || c.Len() != len(wc) {
			t.Fatalf("PST(%q) = %v, %v", o, c, ok)
		}
		if g, _ := c.MarshalJSON(); string(g) != canonical(t, wc) {
			t.Fatalf("PST(%q) encodes as %s, want %s", o, g, canonical(t, wc))
		}
		if _, ok := got.PST(o + "\x00"); ok {
			t.Fatalf("PST(%q) found", o+"\x00")
		}
		for v, wv := range wc {
			gv, ok := c.Version(v)
			if !ok || gv.Version != v || gv.KeysNull() != (wv.Keys == nil) || gv.NumKeys() != len(wv.Keys) {
				t.Fatalf("%q version %q = %+v, %v", o, v, gv, ok)
			}
			if g, _ := gv.MarshalJSON(); string(g) != canonical(t, wv) {
				t.Fatalf("%q version %q encodes as %s, want %s", o, v, g, canonical(t, wv))
			}
			if _, ok := c.Version(v + "\x00"); ok {
				t.Fatalf("%q version %q found", o, v+"\x00")
			}
			for label, wk := range wv.Keys {
				k, ok := gv.Key(label)
				if !ok || k != (verify.PSTKey{Label: label, Y: wk.Y, Expiry: wk.Expiry}) {
					t.Fatalf("%q %q key %q = %+v, %v", o, v, label, k, ok)
				}
				if _, ok := gv.Key(label + "\x00"); ok {
					t.Fatalf("%q %q key %q found", o, v, label+"\x00")
				}
				y, err := base64.StdEncoding.Strict().DecodeString(wk.Y)
				gy, ok := got.PSTKey(o, v, label)
				if ok != (err == nil) || err == nil && (!bytes.Equal(gy, y) || !got.HasPSTKey(o, v, y)) {
					t.Fatalf("%q %q key %q: PSTKey %x, %v; decoded %x, %v", o, v, label, gy, ok, y, err)
				}
			}
		}
	}
	for o, wd := range want.PrivacyPass {
		d, ok := got.PrivacyPass(o)
		if !ok || d.IssuerRequestURI != wd.IssuerRequestURI || d.TokenKeysNull() != (wd.TokenKeys == nil) || d.NumTokenKeys() != len(wd.TokenKeys) {
			t.Fatalf("PrivacyPass(%q) = %+v, %v", o, d, ok)
		}
		if g, _ := d.MarshalJSON(); string(g) != canonical(t, wd) {
			t.Fatalf("PrivacyPass(%q) encodes as %s, want %s", o, g, canonical(t, wd))
		}
		if _, ok := got.PrivacyPass(o + "\x00"); ok {
			t.Fatalf("PrivacyPass(%q) found", o+"\x00")
		}
		i := 0
		for tk := range d.TokenKeys() {
			if g, w := canonical(t, tk), canonical(t, wd.TokenKeys[i]); g != w {
				t.Fatalf("%q token key %d encodes as %s, want %s", o, i, g, w)
			}
			b, err := base64.URLEncoding.Strict().DecodeString(tk.TokenKey)
			if err != nil {
				b, err = base64.RawURLEncoding.Strict().DecodeString(tk.TokenKey)
			}
			if err == nil && !got.HasTokenKey(o, tk.TokenType, b) {
				t.Fatalf("%q token key %d not found by HasTokenKey", o, i)
			}
			i++
		}
	}
}

// TestPlainText: plainText is true exactly for input of the bytes
// 0x20..0x7f without '\\', for every byte at every position of the
// 32-byte blocks it reads and of its byte-at-a-time tail, alone and
// beside a byte just below or above the range (borrows between bytes).
func TestPlainText(t *testing.T) {
	plain := func(b []byte) bool {
		for _, c := range b {
			if c < 0x20 || c >= 0x80 || c == '\\' {
				return false
			}
		}
		return true
	}
	for _, other := range []int{-1, 0x1f, 0x20, 0x7f, 0x80} {
		for c := 0; c < 256; c++ {
			for pos := 0; pos < 70; pos++ {
				b := bytes.Repeat([]byte("a"), 70)
				b[pos] = byte(c)
				if other >= 0 {
					b[(pos+1)%70] = byte(other)
				}
				if got := verify.PlainText(b); got != plain(b) {
					t.Fatalf("plainText(%q) = %v", b, got)
				}
			}
		}
	}
}
