package verify_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/witness/quorum"
)

// mldsaBundle is a 100-issuer bundle cosigned by all three witnesses of a
// 2-of-3 policy whose witnesses are ML-DSA-44 (pq) or Ed25519 ones.
func mldsaBundle(b *testing.B, pq bool) (*fixture, []byte) {
	f := newFixture(b)
	if pq {
		f.ws = nil
		for _, n := range []string{"witness-1.example", "witness-2.example", "witness-3.example"} {
			f.ws = append(f.ws, bundletest.NewMLDSAWitness(n))
		}
		pol, err := quorum.Parse([]byte(bundletest.Policy(f.log.VKey, 2, f.ws...)))
		if err != nil {
			b.Fatal(err)
		}
		f.pol = pol
	}
	f.grow(9000)
	f.snapshot(b, keySet(b, 100, 6, "bench"))
	f.grow(1000)
	f.publish(b, t0, f.ws...)
	return f, f.bundle(b, 0)
}

// sigFloor is the signature verifications alone of a bundle with three
// cosignatures: the log's Ed25519 signature and three Ed25519 or ML-DSA-44
// signatures over messages of a checkpoint's size.
func sigFloor(b *testing.B, pq bool) func() {
	priv := ed25519.NewKeyFromSeed(bundletest.Seed("floor"))
	pub := priv.Public().(ed25519.PublicKey)
	msg := bytes.Repeat([]byte("c"), 120)
	sig := ed25519.Sign(priv, msg)
	var seed [mldsa44.SeedSize]byte
	copy(seed[:], bundletest.Seed("floor-mldsa"))
	ppub, ppriv := mldsa44.NewKeyFromSeed(&seed)
	psig := make([]byte, mldsa44.SignatureSize)
	if err := mldsa44.SignTo(ppriv, msg, nil, false, psig); err != nil {
		b.Fatal(err)
	}
	return func() {
		ok := ed25519.Verify(pub, msg, sig)
		for i := 0; i < 3; i++ {
			if pq {
				ok = ok && mldsa44.Verify(ppub, msg, nil, psig)
			} else {
				ok = ok && ed25519.Verify(pub, msg, sig)
			}
		}
		if !ok {
			b.Fatal("floor signature")
		}
	}
}

// BenchmarkVerifyMLDSA verifies a 100-issuer bundle with three Ed25519
// cosignatures and one with three ML-DSA-44 cosignatures, and the floor of
// each (its four signature verifications alone), interleaved in every
// iteration so that the ratios hold on a loaded machine. It reports each
// bundle's time over its floor (ed25519_x_floor, mldsa44_x_floor), the
// ML-DSA-44 bundle's time and size over the Ed25519 one's (time_x_ed25519,
// bytes_x_ed25519), the floors' ratio (floor_x_ed25519) and both sizes.
// ns/op is the sum of the four.
func BenchmarkVerifyMLDSA(b *testing.B) {
	type side struct {
		raw           []byte
		verify, floor func()
		verifyNs      time.Duration
		floorNs       time.Duration
	}
	var sides [2]*side
	for i, pq := range []bool{false, true} {
		f, raw := mldsaBundle(b, pq)
		v := f.verifier(b, nil)
		sides[i] = &side{raw: raw, floor: sigFloor(b, pq), verify: func() {
			got, err := v.Verify(raw, nil)
			if err != nil || len(got.Checkpoint.Cosignatures) != 3 {
				b.Fatal(err)
			}
		}}
	}
	b.ResetTimer()
	for b.Loop() {
		for _, s := range sides {
			t := time.Now()
			s.verify()
			s.verifyNs += time.Since(t)
			t = time.Now()
			s.floor()
			s.floorNs += time.Since(t)
		}
	}
	ed, pq := sides[0], sides[1]
	b.ReportMetric(float64(ed.verifyNs)/float64(ed.floorNs), "ed25519_x_floor")
	b.ReportMetric(float64(pq.verifyNs)/float64(pq.floorNs), "mldsa44_x_floor")
	b.ReportMetric(float64(pq.verifyNs)/float64(ed.verifyNs), "time_x_ed25519")
	b.ReportMetric(float64(pq.floorNs)/float64(ed.floorNs), "floor_x_ed25519")
	b.ReportMetric(float64(len(pq.raw))/float64(len(ed.raw)), "bytes_x_ed25519")
	b.ReportMetric(float64(len(ed.raw)), "ed25519_bytes")
	b.ReportMetric(float64(len(pq.raw)), "mldsa44_bytes")
}
