package schema

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type rfcKey struct {
	tokenType uint16
	key       []byte
}

func rfc9578Keys(t testing.TB) []rfcKey {
	f, err := os.Open(filepath.Join("..", "testdata", "schema", "rfc9578-keys.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []rfcKey
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<16)
	for s.Scan() {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		typ, h, _ := strings.Cut(line, " ")
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rfcKey{map[string]uint16{"1": 1, "2": 2}[typ], b})
	}
	return out
}

// rfc9578RSAKey returns the token-type 2 key of the RFC 9578 test vectors.
func rfc9578RSAKey(t testing.TB) []byte {
	if t == nil {
		t = &testing.T{}
	}
	for _, k := range rfc9578Keys(t) {
		if k.tokenType == TokenTypeBlindRSA {
			return k.key
		}
	}
	panic("no token-type 2 key in rfc9578-keys.txt")
}

func TestRFC9578Keys(t *testing.T) {
	for i, k := range rfc9578Keys(t) {
		tk := TokenKey{TokenType: k.tokenType, TokenKey: base64.URLEncoding.EncodeToString(k.key)}
		id, err := tk.KeyID()
		if err != nil {
			t.Errorf("vector %d (type %d): %v", i, k.tokenType, err)
			continue
		}
		if id != sha256.Sum256(k.key) {
			t.Errorf("vector %d: key id is not SHA-256 of the key", i)
		}
	}
}

func TestPSTValidate(t *testing.T) {
	mod := func(f func(c PSTCommitment)) PSTCommitment {
		c := testPST()
		f(c)
		return c
	}
	setVC := func(v string, f func(vc *PSTVersionCommitment)) PSTCommitment {
		return mod(func(c PSTCommitment) {
			vc := c[v]
			keys := map[string]PSTKey{}
			for l, k := range vc.Keys {
				keys[l] = k
			}
			vc.Keys = keys
			f(&vc)
			c[v] = vc
		})
	}
	u, _ := testPoint("x")
	offCurve := append([]byte{0, 0, 0, 1}, u...)
	offCurve[len(offCurve)-1] ^= 1
	identity := append([]byte{0, 0, 0, 1, 4}, make([]byte, 96)...)
	for _, c := range []struct {
		name string
		c    PSTCommitment
		want string // "" valid
	}{
		{"valid", testPST(), ""},
		{"legacy V3", PSTCommitment{PSTV3VOPRF: {ProtocolVersion: PSTV3VOPRF, ID: 1, BatchSize: 1, Keys: map[string]PSTKey{"0": testPSTKey(PSTV3VOPRF, 0, "a", testExpiry)}}}, ""},
		{"id at Chrome's maximum", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.ID = 2147483647 }), ""},
		{"empty", PSTCommitment{}, "no protocol versions"},
		{"unknown version", mod(func(c PSTCommitment) { c["PrivateStateTokenV9"] = c[PSTV1VOPRF] }), "unknown PST protocol version"},
		{"protocol_version mismatch", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.ProtocolVersion = PSTV1PMB }), "does not match"},
		{"id 0", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.ID = 0 }), "id must be a positive integer"},
		{"id above int32", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.ID = 2147483648 }), "the largest Chrome reads"},
		{"batchsize 0", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.BatchSize = 0 }), "batchsize must be a positive integer"},
		{"no keys", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.Keys = map[string]PSTKey{} }), "no keys"},
		{"label not decimal", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.Keys["x"] = vc.Keys["1"]; delete(vc.Keys, "1") }), "not a uint32"},
		{"label with a leading zero", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.Keys["01"] = vc.Keys["1"]; delete(vc.Keys, "1") }), "canonical decimal"},
		{"label above uint32", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.Keys["4294967296"] = vc.Keys["1"]; delete(vc.Keys, "1") }), "not a uint32"},
		{"expiry with a plus", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { k := vc.Keys["1"]; k.Expiry = "+1"; vc.Keys["1"] = k }), "expiry"},
		{"expiry negative", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { k := vc.Keys["1"]; k.Expiry = "-1"; vc.Keys["1"] = k }), "expiry"},
		{"Y not base64", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { k := vc.Keys["1"]; k.Y = "!!!!"; vc.Keys["1"] = k }), "base64"},
		{"Y unpadded", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { k := vc.Keys["1"]; k.Y = strings.TrimRight(k.Y, "="); vc.Keys["1"] = k }), "base64"},
		{"Y too short", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) {
			k := vc.Keys["1"]
			k.Y = base64.StdEncoding.EncodeToString(offCurve[:100])
			vc.Keys["1"] = k
		}), "Y is 100 bytes, want 101"},
		{"PMB key in a VOPRF commitment", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.Keys["1"] = testPSTKey(PSTV1PMB, 1, "p", testExpiry) }), "Y is 295 bytes, want 101"},
		{"point off the curve", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) {
			k := vc.Keys["1"]
			k.Y = base64.StdEncoding.EncodeToString(offCurve)
			vc.Keys["1"] = k
		}), "invalid P-384 point"},
		{"identity", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) {
			k := vc.Keys["1"]
			k.Y = base64.StdEncoding.EncodeToString(identity)
			vc.Keys["1"] = k
		}), "invalid P-384 point"},
		{"compressed point", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) {
			_, c := testPoint("x")
			k := vc.Keys["1"]
			k.Y = base64.StdEncoding.EncodeToString(append(append([]byte{0, 0, 0, 1}, c...), make([]byte, 48)...))
			vc.Keys["1"] = k
		}), "not an uncompressed P-384 point"},
		{"same key twice", setVC(PSTV1VOPRF, func(vc *PSTVersionCommitment) { vc.Keys["3"] = testPSTKey(PSTV1VOPRF, 9, "v1", testExpiry) }), "keys 1 and 3 are the same key"},
	} {
		err := c.c.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestDirectoryValidate(t *testing.T) {
	d := testDirectory()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	_, c := testPoint("q/0")
	rsa := rfc9578RSAKey(t)
	for _, tc := range []struct {
		name string
		mod  func(d *IssuerDirectory)
		want string
	}{
		{"empty uri", func(d *IssuerDirectory) { d.IssuerRequestURI = "" }, "issuer-request-uri is empty"},
		{"http uri", func(d *IssuerDirectory) { d.IssuerRequestURI = "http://issuer.example/t" }, "https"},
		{"relative uri", func(d *IssuerDirectory) { d.IssuerRequestURI = "/token-request" }, ""},
		{"no keys", func(d *IssuerDirectory) { d.TokenKeys = nil }, "no token-keys"},
		{"unpadded", func(d *IssuerDirectory) { d.TokenKeys[0].TokenKey = base64.RawURLEncoding.EncodeToString(c) }, "padded base64url"},
		{"std alphabet", func(d *IssuerDirectory) {
			d.TokenKeys[1].TokenKey = base64.StdEncoding.EncodeToString(rsa)
		}, "base64url"},
		{"uncompressed point", func(d *IssuerDirectory) {
			u, _ := testPoint("q/0")
			d.TokenKeys[0].TokenKey = base64.URLEncoding.EncodeToString(u)
		}, "want 49"},
		{"x not below the field prime", func(d *IssuerDirectory) {
			d.TokenKeys[0].TokenKey = base64.URLEncoding.EncodeToString(append([]byte{2}, bytes.Repeat([]byte{0xff}, 48)...))
		}, "invalid P-384 point"},
		{"identity", func(d *IssuerDirectory) { d.TokenKeys[0].TokenKey = base64.URLEncoding.EncodeToString([]byte{0}) }, "want 49"},
		{"unknown type", func(d *IssuerDirectory) { d.TokenKeys[0].TokenType = 3 }, "unsupported token-type 3"},
		{"RSA key with a trailing byte", func(d *IssuerDirectory) {
			d.TokenKeys[1].TokenKey = base64.URLEncoding.EncodeToString(append(append([]byte(nil), rsa...), 0))
		}, "trailing data"},
		{"RSA key typed as VOPRF", func(d *IssuerDirectory) { d.TokenKeys[1].TokenType = 1 }, "want 49"},
		{"same key twice", func(d *IssuerDirectory) { d.TokenKeys = append(d.TokenKeys, d.TokenKeys[0]) }, "token-keys[0] and [2] are the same key"},
		{"negative not-before", func(d *IssuerDirectory) { n := int64(-1); d.TokenKeys[0].NotBefore = &n }, "not-before is negative"},
	} {
		d := testDirectory()
		tc.mod(d)
		err := d.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// TestKeyIdentityAcrossFormats: the same P-384 point as a PST VOPRF key
// and a Privacy Pass token-type 1 key has one identity, the RFC 9578
// token_key_id.
func TestKeyIdentityAcrossFormats(t *testing.T) {
	c := &KeyCommitment{PST: PSTCommitment{PSTV1VOPRF: {ProtocolVersion: PSTV1VOPRF, ID: 1, BatchSize: 1, Keys: map[string]PSTKey{"5": testPSTKey(PSTV1VOPRF, 5, "same", testExpiry)}}}}
	_, comp := testPoint("same/0")
	d := &KeyCommitment{PrivacyPass: &IssuerDirectory{IssuerRequestURI: "/t", TokenKeys: []TokenKey{{TokenType: 1, TokenKey: base64.URLEncoding.EncodeToString(comp)}}}}
	ck, err := c.Keys()
	if err != nil {
		t.Fatal(err)
	}
	dk, err := d.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if ck[0].ID != dk[0].ID || ck[0].ID != sha256.Sum256(comp) {
		t.Errorf("identities differ: %s %s", ck[0].ID, dk[0].ID)
	}
}

// The commitment files as issuers serve them (pretty-printed, members in
// another order, fields Chrome ignores) and what keycommit logs for them.
func servedPST(t testing.TB) []byte {
	c := testPST()
	v := c[PSTV1VOPRF]
	return []byte(`{
  "PrivateStateTokenV1VOPRF": {
    "keys": {
      "2": { "expiry": "` + v.Keys["2"].Expiry + `", "Y": "` + v.Keys["2"].Y + `", "comment": "standby" },
      "+01": { "Y": "` + v.Keys["1"].Y + `", "expiry": "` + v.Keys["1"].Expiry + `" },
      "9": "not an object: Chrome skips it"
    },
    "batchsize": 10,
    "protocol_version": "PrivateStateTokenV1VOPRF",
    "id": 7,
    "request_issuance_locally_on": []
  },
  "PrivateStateTokenV1PMB": {
    "protocol_version": "PrivateStateTokenV1PMB", "id": 3, "batchsize": 5,
    "keys": { "1": { "Y": "` + c[PSTV1PMB].Keys["1"].Y + `", "expiry": "` + c[PSTV1PMB].Keys["1"].Expiry + `" } }
  },
  "PrivateStateTokenV2Future": { "anything": true }
}
`)
}

func TestParsePSTFile(t *testing.T) {
	b := readTestdata(t, "pst-served.json", servedPST(t))
	c, notes, err := ParsePSTFile(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := canonicalJSON(testPST())
	got, _ := canonicalJSON(c)
	if !bytes.Equal(got, want) {
		t.Errorf("canonical form\n%s\nwant\n%s", got, want)
	}
	for _, n := range []string{`ignored member "comment"`, `key label "+01" rewritten as "1"`, `ignored key "9"`,
		`ignored member "request_issuance_locally_on"`, `ignored top-level member "PrivateStateTokenV2Future"`} {
		if !strings.Contains(strings.Join(notes, "\n"), n) {
			t.Errorf("notes %q lack %q", notes, n)
		}
	}
	if _, err := ParseBody(KindKeyCommitment, mustCanonical(t, &KeyCommitment{PST: c})); err != nil {
		t.Errorf("the canonical form does not parse strictly: %v", err)
	}
	canon := readTestdata(t, "pst-canonical.json", want)
	if !bytes.Equal(canon, want) {
		t.Errorf("testdata/schema/pst-canonical.json is not the canonical form")
	}

	good := `{"PrivateStateTokenV1VOPRF":{"protocol_version":"PrivateStateTokenV1VOPRF","id":ID,"batchsize":BS,"keys":{"1":{"Y":"` + testPST()[PSTV1VOPRF].Keys["1"].Y + `","expiry":"EXP"}}}}`
	file := func(id, bs, exp string) []byte {
		return []byte(strings.NewReplacer("ID", id, "BS", bs, "EXP", exp).Replace(good))
	}
	if _, _, err := ParsePSTFile(file("1", "1", "1800000000000000")); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"id as a string", file(`"1"`, "1", "1800000000000000"), "want a JSON integer"},
		{"id as a float", file("1.0", "1", "1800000000000000"), "not written as an integer"},
		{"id with an exponent", file("1e2", "1", "1800000000000000"), "not written as an integer"},
		{"id negative", file("-1", "1", "1800000000000000"), "not positive"},
		{"id zero", file("0", "1", "1800000000000000"), "not positive"},
		{"id above int32", file("2147483648", "1", "1800000000000000"), "the largest Chrome reads"},
		{"id overflowing", file("99999999999999999999999", "1", "1800000000000000"), "the largest Chrome reads"},
		{"batchsize missing", []byte(strings.Replace(string(file("1", "1", "1800000000000000")), `"batchsize":1,`, "", 1)), "batchsize is missing"},
		{"batchsize null", file("1", "null", "1800000000000000"), "batchsize is null"},
		{"expiry as a number", []byte(strings.Replace(string(file("1", "1", "X")), `"X"`, "1800000000000000", 1)), "expiry must be a string"},
		{"expiry not decimal", file("1", "1", "18e14"), "not a uint64"},
		{"expiry overflowing", file("1", "1", "18446744073709551616"), "not a uint64"},
		{"Y lower case", []byte(strings.Replace(string(file("1", "1", "1800000000000000")), `"Y"`, `"y"`, 1)), "Y must be a string"},
		{"duplicate member", []byte(strings.Replace(string(file("1", "1", "1800000000000000")), `"id":1`, `"id":1,"id":2`, 1)), `member "id" twice`},
		{"trailing data", append(file("1", "1", "1800000000000000"), '{'), "trailing data"},
		{"not UTF-8", append(file("1", "1", "1800000000000000")[:10], 0xff), "UTF-8"},
		{"no known version", []byte(`{"PrivateStateTokenV9":{}}`), "none of the protocol versions"},
		{"top level array", []byte(`[]`), "want an object"},
		{"version not an object", []byte(`{"PrivateStateTokenV1VOPRF":[]}`), "want an object"},
		{"keys missing", []byte(`{"PrivateStateTokenV1VOPRF":{"protocol_version":"PrivateStateTokenV1VOPRF","id":1,"batchsize":1}}`), "no keys member"},
	} {
		_, _, err := ParsePSTFile(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func servedDirectory(t testing.TB) []byte {
	d := testDirectory()
	return []byte(`{
  "token-keys": [
    { "token-type": 2, "token-key": "` + d.TokenKeys[1].TokenKey + `", "not-before": 1767225600 },
    { "token-type": 5, "token-key": "AAAA" },
    { "token-key": "` + strings.TrimRight(d.TokenKeys[0].TokenKey, "=") + `", "token-type": 1, "x-extra": 1 }
  ],
  "issuer-request-uri": "https://issuer.example/token-request",
  "x-vendor": {}
}
`)
}

func TestParseDirectoryFile(t *testing.T) {
	b := readTestdata(t, "directory-served.json", servedDirectory(t))
	d, notes, err := ParseDirectoryFile(b)
	if err != nil {
		t.Fatal(err)
	}
	want := testDirectory()
	want.TokenKeys[0], want.TokenKeys[1] = want.TokenKeys[1], want.TokenKeys[0]
	wb, _ := canonicalJSON(want)
	gb, _ := canonicalJSON(d)
	if !bytes.Equal(gb, wb) {
		t.Errorf("canonical form\n%s\nwant\n%s", gb, wb)
	}
	for _, n := range []string{"dropped token-keys[1]: token-type 5", "token-keys[2]: token-key re-encoded", `token-keys[2]: ignored member "x-extra"`, `ignored member "x-vendor"`} {
		if !strings.Contains(strings.Join(notes, "\n"), n) {
			t.Errorf("notes %q lack %q", notes, n)
		}
	}
	kc, _, err := ParseCommitmentFile(b)
	if err != nil || kc.PrivacyPass == nil {
		t.Errorf("ParseCommitmentFile: %v", err)
	}
	for _, tc := range []struct{ name, b, want string }{
		{"no uri", `{"token-keys":[]}`, "no issuer-request-uri"},
		{"float not-before", `{"issuer-request-uri":"/t","token-keys":[{"token-type":1,"token-key":"` + testDirectory().TokenKeys[0].TokenKey + `","not-before":1.5}]}`, "not a non-negative integer"},
		{"type as string", `{"issuer-request-uri":"/t","token-keys":[{"token-type":"1","token-key":"AAAA"}]}`, "token-type must be a JSON integer"},
		{"key whitespace", `{"issuer-request-uri":"/t","token-keys":[{"token-type":1,"token-key":"AA AA"}]}`, "whitespace"},
		{"only unknown types", `{"issuer-request-uri":"/t","token-keys":[{"token-type":7,"token-key":"AAAA"}]}`, "no token-keys"},
		{"keys not an array", `{"issuer-request-uri":"/t","token-keys":{}}`, "want an array"},
	} {
		_, _, err := ParseDirectoryFile([]byte(tc.b))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func mustCanonical(t testing.TB, v any) []byte {
	t.Helper()
	b, err := canonicalJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEmptyPrevIsNull(t *testing.T) {
	b := testEntries(t)["registration"]
	if !bytes.Contains(b, []byte(`"prev":null`)) {
		t.Fatalf("first registration has no null prev: %s", b)
	}
	if _, err := ParseEntry(bytes.Replace(b, []byte(`"prev":null`), []byte(`"prev":""`), 1)); err == nil {
		t.Error(`an entry with "prev":"" parsed`)
	}
}

func TestKeyPossession(t *testing.T) {
	nk := testAccountKey("new")
	prev := bytes.Repeat([]byte{1}, 32)
	origin := "https://issuer.example"
	r := &Registration{Contact: "mailto:a@example.com", AccountKey: nk.Public().(ed25519.PublicKey)}
	if err := r.ProveKeyPossession(origin, prev, testAccountKey("other")); err == nil {
		t.Error("proved possession with a key that is not account_key")
	}
	if err := r.ProveKeyPossession(origin, prev, nk); err != nil {
		t.Fatal(err)
	}
	if err := r.VerifyKeyPossession(origin, prev); err != nil {
		t.Fatalf("proof does not verify: %v", err)
	}
	if err := r.VerifyKeyPossession("https://other.example", prev); err == nil {
		t.Error("proof verifies for another origin")
	}
	if err := r.VerifyKeyPossession(origin, make([]byte, 32)); err == nil {
		t.Error("proof verifies for another prev")
	}
	c := *r
	c.Contact = "mailto:b@example.com"
	if err := c.VerifyKeyPossession(origin, prev); err == nil {
		t.Error("proof verifies for another contact")
	}
	// The proof is not a statement signature: the same key's statement
	// signature over the registration differs.
	sub, err := Sign(Statement{Kind: KindRegistration, Issuer: origin, Prev: prev, Body: mustCanonical(t, &Registration{Contact: r.Contact, AccountKey: r.AccountKey})}, nk)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(sub.Sig, r.KeyProof) {
		t.Error("key proof equals a statement signature")
	}
}
