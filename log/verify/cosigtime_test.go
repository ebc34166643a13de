package verify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"testing"
)

// TestVerifyCosignatureRejectsTimestampAbove2to63 proves a correctly signed
// cosignature whose timestamp exceeds 2^63-1 is refused (C2SP
// tlog-cosignature: "It MUST NOT exceed 2^63 - 1"), while 2^63-1 itself is
// accepted.
func TestVerifyCosignatureRejectsTimestampAbove2to63(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	text := []byte("example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	sign := func(ts uint64) []byte {
		sig := binary.BigEndian.AppendUint64(nil, ts)
		return append(sig, ed25519.Sign(priv, cosignedMessage(ts, text))...)
	}
	if ts, ok := verifyCosignature(pub, text, sign(1<<63-1)); !ok || ts != 1<<63-1 {
		t.Fatalf("timestamp 2^63-1: got (%d, %v), want accepted", ts, ok)
	}
	for _, ts := range []uint64{1 << 63, 1<<64 - 1} {
		if _, ok := verifyCosignature(pub, text, sign(ts)); ok {
			t.Errorf("timestamp %d above 2^63-1 accepted", ts)
		}
	}
}
