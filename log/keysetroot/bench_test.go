package keysetroot_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/keysetroot"
)

// benchKeySet is the canonical encoding of the key set of issuers issuers
// with 6 P-384 keys each, the key sets log/verify's benchmarks verify.
func benchKeySet(b *testing.B, issuers int) []byte {
	ks, err := bundletest.KeySet(issuers, 6, time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), "bench")
	if err != nil {
		b.Fatal(err)
	}
	raw, err := ks.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkRoot times, over the 100- and 1,000-issuer key sets: split
// (finding the members), root (the key set root from its bytes, what
// Verify's digest check computes) and floor (the root from members found
// before the timer: a leaf hash of each and the node hashes).
func BenchmarkRoot(b *testing.B) {
	for _, issuers := range []int{100, 1000} {
		ks := benchKeySet(b, issuers)
		var parts []string
		var members [][]byte
		if err := keysetroot.Split(ks, func(part string, m []byte) {
			parts, members = append(parts, part), append(members, m)
		}); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("issuers=%d/split", issuers), func(b *testing.B) {
			b.SetBytes(int64(len(ks)))
			for b.Loop() {
				if err := keysetroot.Split(ks, func(string, []byte) {}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("issuers=%d/root", issuers), func(b *testing.B) {
			b.SetBytes(int64(len(ks)))
			for b.Loop() {
				if _, err := keysetroot.FromKeySet(ks); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("issuers=%d/floor", issuers), func(b *testing.B) {
			b.SetBytes(int64(len(ks)))
			leaves := make([]keysetroot.Hash, len(members))
			for b.Loop() {
				var hs keysetroot.Hasher
				for i, m := range members {
					leaves[i] = hs.Leaf(parts[i], m)
				}
				keysetroot.New(leaves).Root()
			}
		})
	}
}
