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
