package verify_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/keycommit/keycommit/log/verify"
)

// lazyFixture: a user agent holding the bundle of a 200-issuer, 6-key log
// (a key set of about 240 KB), and the deltas to the log's next bundle
// after 0 or 1 issuers changed, or 1 was added (the tree grew by 10
// entries each time), with the full bundles they stand for.
func lazyFixture(t *testing.T) (v *verify.Verifier, held *verify.Verified, names []string, deltas, fulls [][]byte) {
	f, base, v, held := heldLog(t, 200, "lazy", 90, 10)
	for _, name := range []string{"changed=0", "changed=1", "added=1"} {
		ks := copyKeySet(t, base)
		switch name {
		case "changed=1":
			ks.PST["https://issuer-7.example"] = base.PST["https://issuer-107.example"]
		case "added=1":
			ks.PST["https://added.example"] = base.PST["https://issuer-107.example"]
		}
		if name != "changed=0" {
			f.snapshot(t, ks)
		}
		f.grow(10)
		f.publish(t, t0, f.ws[0], f.ws[1])
		names = append(names, name)
		deltas = append(deltas, makeDelta(t, f, held))
		fulls = append(fulls, f.bundle(t, held.Checkpoint.Size))
	}
	return v, held, names, deltas, fulls
}

// TestDeltaWritesNoKeySet: verifying a delta that changes nothing, one
// issuer, or adds one, and reading its keys, changes and commitment,
// writes no key set (no bundle is assembled) and allocates far less than
// the key set's size; the bundle's bytes are written when first asked for
// (Raw, shared with Bundle, and identical to the full bundle), once.
func TestDeltaWritesNoKeySet(t *testing.T) {
	v, held, names, deltas, fulls := lazyFixture(t)
	keySetLen := len(held.Bundle().KeySet)
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			const runs = 5
			var got *verify.Verified
			writes := verify.KeySetWrites()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range runs {
				var err error
				if got, err = v.VerifyDelta(deltas[i], held); err != nil {
					t.Fatal(err)
				}
				if _, err := got.KeySet(); err != nil {
					t.Fatal(err)
				}
				_, _ = got.Changes, got.Commitment()
			}
			runtime.ReadMemStats(&after)
			if w := verify.KeySetWrites() - writes; w != 0 {
				t.Errorf("%d deltas wrote %d key sets before their bytes were asked for", runs, w)
			}
			per := int(after.TotalAlloc-before.TotalAlloc) / runs
			if per > keySetLen/4 {
				t.Errorf("a delta allocates %d bytes, want under a quarter of the %d-byte key set", per, keySetLen)
			}
			t.Logf("a delta allocates %d bytes (key set %d bytes)", per, keySetLen)
			raw := got.Raw()
			if !bytes.Equal(raw, fulls[i]) {
				t.Fatal("Raw differs from the full bundle")
			}
			if w := verify.KeySetWrites() - writes; w != 1 {
				t.Errorf("Raw wrote %d key sets, want 1", w)
			}
			if ks := got.Bundle().KeySet; &got.Raw()[0] != &raw[0] || !bytes.Contains(raw, ks) || &ks[0] != &raw[len("keycommit.bundle/v1\nkeyset ")] {
				t.Error("Raw's second call, or Bundle, gives other bytes than the first Raw")
			}
			if w := verify.KeySetWrites() - writes; w != 1 {
				t.Errorf("Raw, Raw and Bundle wrote %d key sets, want 1", w)
			}
		})
	}
}

// TestDeltaRawConcurrent: Raw, Bundle and Stored called at once from
// several goroutines (released together) on a bundle a delta built agree,
// and the bundle is assembled once: without the sync.Once around the
// assembly each caller would write its own (the count would be the
// number of callers) and -race would report the writes of raw.
func TestDeltaRawConcurrent(t *testing.T) {
	v, held, _, deltas, fulls := lazyFixture(t)
	got, err := v.VerifyDelta(deltas[1], held)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	writes := verify.KeySetWrites()
	start := make(chan struct{})
	raws := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if i%2 == 0 {
				raws[i] = got.Raw()
			} else {
				raws[i] = got.Bundle().KeySet
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if i%2 == 0 && &raws[i][0] != &raws[0][0] || !bytes.Contains(fulls[1], raws[i]) {
			t.Fatalf("caller %d got other bytes", i)
		}
	}
	if w := verify.KeySetWrites() - writes; w != 1 {
		t.Errorf("%d concurrent callers wrote %d bundles, want 1", n, w)
	}
	if !bytes.Equal(got.Raw(), fulls[1]) {
		t.Error("Raw differs from the full bundle")
	}
}

// TestDeltaOverLimit: a delta whose bundle would be larger than
// MaxBundleSize is refused by the delta check (so that what Raw and
// Stored return always parses), though it writes no bundle.
func TestDeltaOverLimit(t *testing.T) {
	v, held, _, deltas, _ := lazyFixture(t)
	big := verify.WithKeySetSize(held, verify.MaxBundleSize-len(held.Raw())+len(held.Bundle().KeySet)+1)
	_, err := v.VerifyDelta(deltas[0], big)
	wantCheck(t, err, verify.CheckDelta)
	if !strings.Contains(err.Error(), fmt.Sprint(verify.MaxBundleSize)) {
		t.Errorf("error %q does not name the limit", err)
	}
}
