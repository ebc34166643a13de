package schema

import (
	"crypto/ed25519"
	"strings"
	"testing"
)

// TestSubmissionEnvelopeStrict: a submission whose members differ in
// case, repeat, or are unknown is refused with an error naming the
// member, although encoding/json alone would accept each of them.
func TestSubmissionEnvelopeStrict(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	body, err := CanonicalizeBody(KindRegistration, &Registration{Contact: "mailto:a@issuer.example", AccountKey: k.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := Sign(Statement{Kind: KindRegistration, Issuer: "https://issuer.example", Body: body}, k)
	if err != nil {
		t.Fatal(err)
	}
	good, err := canonicalJSON(sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSubmission(good); err != nil {
		t.Fatalf("the well-formed submission is refused: %v", err)
	}
	g := string(good)
	for _, tc := range []struct{ name, in, want string }{
		{"upper-case member", strings.Replace(g, `"kind"`, `"KIND"`, 1), `member "KIND": member names are case-sensitive; want "kind"`},
		{"mixed-case member", strings.Replace(g, `"sig"`, `"Sig"`, 1), `member "Sig"`},
		{"duplicate member", strings.Replace(g, `{"kind":"registration",`, `{"kind":"key_commitment","kind":"registration",`, 1), `member "kind" twice`},
		{"duplicate member in the body", strings.Replace(g, `"body":{`, `"body":{"contact":"mailto:x@evil.example",`, 1), `member "contact" twice`},
		{"unknown member", strings.Replace(g, `{"kind"`, `{"extra":1,"kind"`, 1), `unknown member "extra"`},
		{"not an object", `["kind"]`, "want a JSON object"},
		{"trailing data", g + "{}", "trailing data"},
	} {
		if tc.in == g {
			t.Fatalf("%s: the test did not change the submission", tc.name)
		}
		_, err := ParseSubmission([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
