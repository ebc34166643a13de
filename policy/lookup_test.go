package policy_test

import (
	"crypto/ed25519"
	"testing"
)

// TestLookups checks LastEntry and AccountKey against Issuer, and that
// AccountKey returns a copy.
func TestLookups(t *testing.T) {
	h := newHarness(t)
	if _, _, ok := h.st.LastEntry(originA); ok {
		t.Fatal("LastEntry of an unregistered origin reports an entry")
	}
	if k := h.st.AccountKey(originA); k != nil {
		t.Fatalf("AccountKey of an unregistered origin = %x, want nil", k)
	}
	h.register(originA, t0)
	idx := h.commit(originA, voprf(1, t0+sec, "k1"), t0+sec)
	is, _ := h.st.Issuer(originA)
	gotIdx, gotTime, ok := h.st.LastEntry(originA)
	if !ok || gotIdx != idx || gotTime != t0+sec || gotIdx != is.LastIndex || gotTime != is.LastTime {
		t.Fatalf("LastEntry = %d, %d, %v; want %d, %d, true", gotIdx, gotTime, ok, idx, t0+sec)
	}
	want := h.key[originA].Public().(ed25519.PublicKey)
	k := h.st.AccountKey(originA)
	if !k.Equal(want) || !k.Equal(is.AccountKey) {
		t.Fatalf("AccountKey = %x, want %x", k, want)
	}
	k[0] ^= 1
	if !h.st.AccountKey(originA).Equal(want) {
		t.Fatal("changing the key AccountKey returned changed the state")
	}
}
