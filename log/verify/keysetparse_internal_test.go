package verify

import (
	"reflect"
	"testing"
)

// TestParseKeySetSizeHint: the size hint changes nothing in what is read
// or refused, whatever it says.
func TestParseKeySetSizeHint(t *testing.T) {
	for _, b := range []string{
		`{"pst":{"a":null,"b":{}},"privacy_pass":{"c":{"issuer-request-uri":"u","token-keys":null}}}`,
		`{"pst":{},"privacy_pass":{}}`,
		`{"pst":{"b":null,"a":null},"privacy_pass":{}}`,
	} {
		want, werr := parseKeySetFast([]byte(b), nil)
		for _, hint := range []int{-1, 0, 1, 3, 1000, 1 << 40} {
			got, err := parseKeySetSized([]byte(b), nil, hint)
			if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
				t.Errorf("hint %d: %+v, %v; without it %+v, %v", hint, got, err, want, werr)
			}
		}
	}
}

// TestApplyTypedShares: a delta's typed key set shares the unchanged
// issuers with the held one (their records point into the held key set's
// memory, not a new parse) and reads only the changed members; what it
// reads is what parsing the whole new key set reads.
func TestApplyTypedShares(t *testing.T) {
	old, err := ParseKeySet([]byte(`{"pst":{"a":{"v":{"protocol_version":"v","id":1,"batchsize":1,"keys":{"1":{"Y":"AAAA","expiry":"1"}}}},"b":null,"c":{}},` +
		`"privacy_pass":{"a":{"issuer-request-uri":"u","token-keys":[{"token-type":2,"token-key":"QUJD"}]},"d":{"issuer-request-uri":"x","token-keys":null}}}`))
	if err != nil {
		t.Fatal(err)
	}
	changes := []DeltaChange{
		{Part: "pst", Origin: "b", Member: []byte(`"b":{"v":{"protocol_version":"v","id":2,"batchsize":3,"keys":{"7":{"Y":"QUJD","expiry":"9"}}}}`)},
		{Part: "pst", Origin: "c"},
		{Part: "privacy_pass", Origin: "e", Member: []byte(`"e":{"issuer-request-uri":"y","token-keys":[]}`)},
	}
	got, cs, err := applyTyped(old, changes)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseKeySet([]byte(`{"pst":{"a":{"v":{"protocol_version":"v","id":1,"batchsize":1,"keys":{"1":{"Y":"AAAA","expiry":"1"}}}},"b":{"v":{"protocol_version":"v","id":2,"batchsize":3,"keys":{"7":{"Y":"QUJD","expiry":"9"}}}}},` +
		`"privacy_pass":{"a":{"issuer-request-uri":"u","token-keys":[{"token-type":2,"token-key":"QUJD"}]},"d":{"issuer-request-uri":"x","token-keys":null},"e":{"issuer-request-uri":"y","token-keys":[]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := got.Marshal()
	wb, _ := want.Marshal()
	if string(gb) != string(wb) {
		t.Fatalf("applied key set %s, want %s", gb, wb)
	}
	if !reflect.DeepEqual(cs, Diff(old, want)) || len(cs) != 3 {
		t.Errorf("changes %v, Diff says %v", cs, Diff(old, want))
	}
	// a (pst and privacy_pass) and d are the held key set's records.
	if got.pst[0].d != old.pst[0].d || &got.pst[0].versions[0] != &old.pst[0].versions[0] ||
		got.pp[0].d != old.pp[0].d || &got.pp[0].tokenKeys[0] != &old.pp[0].tokenKeys[0] || got.pp[1].d != old.pp[1].d {
		t.Error("unchanged issuers are not shared with the held key set")
	}
	if got.pst[1].d == old.pst[0].d || got.pp[2].d == old.pp[0].d || got.pst[1].d != got.pp[2].d {
		t.Error("the changed members are not read from one copy of the delta's members")
	}
	if v, ok := got.pst[1].versions, len(got.pst[1].versions) == 1; !ok || v[0].id != 2 || v[0].batchSize != 3 || got.pst[1].d.str(v[0].keys[0].y) != "QUJD" {
		t.Errorf("changed member read as %+v", got.pst[1])
	}
}
