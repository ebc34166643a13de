package verify_test

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/keysetroot"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// benchBundle is a bundle for issuers issuers with 6 keys each, in a log of
// about 10,000 entries, cosigned by cosigners of the 2-of-3 policy.
func benchBundle(b *testing.B, issuers, cosigners int) (*fixture, []byte) {
	f := newFixture(b)
	f.grow(9000)
	f.snapshot(b, keySet(b, issuers, 6, "bench"))
	f.grow(1000)
	f.publish(b, t0, f.ws[:cosigners]...)
	return f, f.bundle(b, 0)
}

// floor does what any verifier of the bundle must: three Ed25519
// verifications (the log's signature and two cosignatures), the key set
// root (since snapshots commit to it rather than to one SHA-256 of the key
// set: a leaf hash of every member, whose bounds are found outside the
// floor, and the n-1 node hashes over them), the snapshot's leaf hash and
// the inclusion proof.
func floorFunc(b *testing.B, f *fixture, raw []byte) func() {
	bd, err := verify.ParseBundle(raw)
	if err != nil {
		b.Fatal(err)
	}
	type leaf struct {
		part   string
		member []byte
	}
	var members []leaf
	if err := keysetroot.Split(bd.KeySet, func(part string, m []byte) { members = append(members, leaf{part, m}) }); err != nil {
		b.Fatal(err)
	}
	snap, err := verify.ParseSnapshotEntry(bd.Entry)
	if err != nil || snap.Root == nil {
		b.Fatal("floor: not a root-form snapshot", err)
	}
	cp, err := verify.ParseCheckpoint(bd.Checkpoint)
	if err != nil {
		b.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(bundletest.Seed("floor"))
	pub := priv.Public().(ed25519.PublicKey)
	msg := bd.Checkpoint[:bytes.LastIndex(bd.Checkpoint, []byte("\n\n"))+1]
	sig := ed25519.Sign(priv, msg)
	return func() {
		for i := 0; i < 3; i++ {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("floor signature")
			}
		}
		var hs keysetroot.Hasher
		leaves := make([]keysetroot.Hash, len(members))
		for i, m := range members {
			leaves[i] = hs.Leaf(m.part, m.member)
		}
		root := keysetroot.New(leaves).Root()
		leaf := rfc6962.DefaultHasher.HashLeaf(bd.Entry)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, bd.Index, cp.Size, leaf, bd.Inclusion, cp.Hash[:]); err != nil || !bytes.Equal(root[:], snap.Root) {
			b.Fatal("floor hashing", err)
		}
	}
}

var benchCache = map[[2]int]struct {
	f   *fixture
	raw []byte
}{}

// cachedBundle builds each benchmark bundle once per process.
func cachedBundle(b *testing.B, issuers, cosigners int) (*fixture, []byte) {
	k := [2]int{issuers, cosigners}
	if c, ok := benchCache[k]; ok {
		return c.f, c.raw
	}
	f, raw := benchBundle(b, issuers, cosigners)
	benchCache[k] = struct {
		f   *fixture
		raw []byte
	}{f, raw}
	return f, raw
}

// BenchmarkVerify verifies a 100-issuer bundle cosigned 2-of-3 (two
// cosignatures) and, in the same run, its floor; x_floor is the ratio.
// The 3-cosignature variant verifies one more signature than the floor;
// with-keyset-parse adds Verified.KeySet (the strict, canonical JSON parse
// a user agent runs when it reads the keys), which yields the flat KeySet:
// one owned copy of the encoding and a few arrays of offsets into it, in
// a handful of allocations; Y stays base64, decoded when KeySet.PSTKey or
// HasPSTKey uses it.
//
// x_floor divides by the floor timed once before the loop, where it makes
// no garbage and a loaded machine may be quieter or busier than during
// the loop. x_floor_blocks and x_floor_cpu come instead from blocks of
// floor runs interleaved with the timed ones (blockRuns each), so that
// both see the same load: the ratio of wall time, and of the CPU time the
// process used (getrusage; garbage collection included, on whichever
// block it falls), which a loaded machine's scheduling delays do not
// inflate.
func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct {
		cosigners int
		keySet    bool
	}{{2, false}, {3, false}, {2, true}} {
		cosigners := tc.cosigners
		name := fmt.Sprintf("issuers=100/cosignatures=%d", cosigners)
		if tc.keySet {
			name += "/with-keyset-parse"
		}
		b.Run(name, func(b *testing.B) {
			f, raw := cachedBundle(b, 100, cosigners)
			v := f.verifier(b, nil)
			fl := floorFunc(b, f, raw)
			// The floor, timed in the same run.
			const floorRuns = 300
			start := time.Now()
			for i := 0; i < floorRuns; i++ {
				fl()
			}
			floorNs := float64(time.Since(start).Nanoseconds()) / floorRuns
			const blockRuns = 10
			var floorWall, floorCPU, verWall, verCPU time.Duration
			var blockStart time.Time
			var blockCPU time.Duration
			n, floors := 0, 0
			endBlock := func() {
				verWall += time.Since(blockStart)
				verCPU += cpuTime(b) - blockCPU
			}
			b.ResetTimer()
			for b.Loop() {
				if n%blockRuns == 0 {
					if n > 0 {
						endBlock()
					}
					b.StopTimer()
					s, sc := time.Now(), cpuTime(b)
					for range blockRuns {
						fl()
					}
					floorCPU += cpuTime(b) - sc
					floorWall += time.Since(s)
					floors += blockRuns
					b.StartTimer()
					blockStart, blockCPU = time.Now(), cpuTime(b)
				}
				n++
				got, err := v.Verify(raw, nil)
				if err != nil {
					b.Fatal(err)
				}
				if tc.keySet {
					if _, err := got.KeySet(); err != nil {
						b.Fatal(err)
					}
				}
			}
			endBlock()
			verifyNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(floorNs/1e3, "floor_µs")
			b.ReportMetric(verifyNs/floorNs, "x_floor")
			b.ReportMetric(float64(verWall)/float64(n)/(float64(floorWall)/float64(floors)), "x_floor_blocks")
			b.ReportMetric(float64(verCPU)/float64(n)/(float64(floorCPU)/float64(floors)), "x_floor_cpu")
			b.ReportMetric(float64(len(raw)), "bundle_bytes")
		})
	}
}

func BenchmarkVerifyParts(b *testing.B) {
	f, raw := cachedBundle(b, 100, 2)
	bd, _ := verify.ParseBundle(raw)
	b.Run("floor", func(b *testing.B) {
		fl := floorFunc(b, f, raw)
		for b.Loop() {
			fl()
		}
	})
	b.Run("verify", func(b *testing.B) {
		v := f.verifier(b, nil)
		for b.Loop() {
			if _, err := v.Verify(raw, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse-bundle", func(b *testing.B) {
		for b.Loop() {
			if _, err := verify.ParseBundle(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyset-root", func(b *testing.B) {
		for b.Loop() {
			if _, err := keysetroot.FromKeySet(bd.KeySet); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyset-split", func(b *testing.B) {
		for b.Loop() {
			if err := keysetroot.Split(bd.KeySet, func(string, []byte) {}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyset-sha256", func(b *testing.B) {
		for b.Loop() {
			sha256.Sum256(bd.KeySet)
		}
	})
	b.Run("parse-keyset", func(b *testing.B) {
		for b.Loop() {
			if _, err := verify.ParseKeySet(bd.KeySet); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("checkpoint", func(b *testing.B) {
		v := f.verifier(b, nil)
		for b.Loop() {
			if _, err := v.VerifyCheckpoint(bd.Checkpoint); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBundleGzip measures gzip at best compression (what the bundle
// handler does once per bundle, log/bundle) of a 1,000-issuer, 6-key
// bundle, and reports its size plain and gzipped.
func BenchmarkBundleGzip(b *testing.B) {
	_, raw := cachedBundle(b, 1000, 3)
	var buf bytes.Buffer
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		buf.Reset()
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(raw)
		zw.Close()
	}
	b.ReportMetric(float64(len(raw)), "bytes")
	b.ReportMetric(float64(buf.Len()), "gzip_bytes")
}
