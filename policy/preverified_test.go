package policy_test

import (
	"crypto/ed25519"
	"testing"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/policy/internal/gen"
	"github.com/keycommit/keycommit/schema"
)

// TestEvaluatePreverified checks that a pre-verified key skips the
// signature check only when it is exactly the key that must sign.
func TestEvaluatePreverified(t *testing.T) {
	h := newHarness(t)
	h.register(originA, t0)
	keyA := h.key[originA].Public().(ed25519.PublicKey)

	good := h.entry(originA, schema.KindKeyCommitment, voprf(1, t0+sec, "k1"), t0+sec)
	if got := policy.SigningKey(h.st, good); !got.Equal(keyA) {
		t.Fatalf("SigningKey = %x, want the account key in force %x", got, keyA)
	}
	bad := h.entry(originA, schema.KindKeyCommitment, voprf(1, t0+sec, "k1"), t0+sec)
	bad.Sig[0] ^= 1
	other := gen.AccountKey("someone else").Public().(ed25519.PublicKey)
	for _, tc := range []struct {
		name     string
		e        *schema.Entry
		verified ed25519.PublicKey
		accept   bool
	}{
		{"good, nothing verified", good, nil, true},
		{"good, key in force verified", good, keyA, true},
		{"good, another key verified", good, other, true},
		{"bad signature, nothing verified", bad, nil, false},
		// The caller vouches for the key in force: trusted as documented.
		{"bad signature, key in force claimed", bad, keyA, true},
		// The key changed since the caller verified: checked again.
		{"bad signature, stale key verified", bad, other, false},
	} {
		d := policy.EvaluatePreverified(h.st, tc.e, h.st.Size(), tc.verified)
		if d.Accept != tc.accept || (!tc.accept && d.Rule != policy.RuleSignature) {
			t.Errorf("%s: %+v, want accept=%v (or a signature refusal)", tc.name, d, tc.accept)
		}
	}

	// A first registration must be signed by the key it registers.
	reg := h.entry(originB, schema.KindRegistration, &schema.Registration{Contact: "mailto:b@example.com", AccountKey: gen.AccountKey(originB).Public().(ed25519.PublicKey)}, t0)
	if got, want := policy.SigningKey(h.st, reg), gen.AccountKey(originB).Public().(ed25519.PublicKey); !got.Equal(want) {
		t.Fatalf("SigningKey of a first registration = %x, want %x", got, want)
	}
	if got := policy.SigningKey(h.st, h.entry("https://c.example", schema.KindKeyCommitment, voprf(1, t0, "c1"), t0)); got != nil {
		t.Fatalf("SigningKey of an unregistered issuer's commitment = %x, want nil", got)
	}
	p, _ := schema.NewLogEntry(schema.KindPolicyParams, t0, policy.DefaultParams())
	if got := policy.SigningKey(h.st, p); got != nil {
		t.Fatalf("SigningKey of a log-written entry = %x, want nil", got)
	}
}
