package verify_test

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/keysetroot"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
)

// copyKeySet deep-copies a key set through its canonical encoding.
func copyKeySet(t testing.TB, ks *schema.KeySet) *schema.KeySet {
	t.Helper()
	b, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := schema.ParseKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mutate changes the key set as the step-th batch would: change an
// issuer's key, add an issuer, remove one, or a Privacy Pass directory.
func mutate(t testing.TB, ks *schema.KeySet, step int) *schema.KeySet {
	ks = copyKeySet(t, ks)
	switch step % 4 {
	case 0:
		o := fmt.Sprintf("https://issuer-%d.example", step%5)
		if c, ok := ks.PST[o]; ok {
			for v, vc := range c {
				for l, k := range vc.Keys {
					k.Expiry = fmt.Sprint(1e15 + step)
					vc.Keys[l] = k
				}
				c[v] = vc
			}
		}
	case 1:
		ks.PST[fmt.Sprintf("https://new-%d.example", step)] = ks.PST["https://issuer-0.example"]
	case 2:
		for o := range ks.PST {
			if strings.HasPrefix(o, "https://new-") {
				delete(ks.PST, o)
				break
			}
		}
	case 3:
		if ks.PrivacyPass == nil {
			ks.PrivacyPass = map[string]schema.IssuerDirectory{}
		}
		ks.PrivacyPass[fmt.Sprintf("https://pp-%d.example", step%3)] = schema.IssuerDirectory{IssuerRequestURI: fmt.Sprintf("https://pp.example/%d", step),
			TokenKeys: []schema.TokenKey{{TokenType: 2, TokenKey: "QUJD"}}}
	}
	return ks
}

// TestDeltaHistory: along a 1,000-entry history, a user agent taking every
// full bundle and one taking every delta hold byte-identical bundles (the
// delta's assembled when asked for: Raw, Bundle, Stored) and key sets at
// every step; a third, taking the same deltas, never asks for its bundle's
// bytes until the end, writes no key set while the snapshots commit to
// roots, and ends with the same bundle. The log writes root-form
// snapshots; in "legacy", it writes digest-form ones (a log made before
// the key set root) for its first 400 entries, then root-form ones:
// deltas from a digest-form base to a root-form target included.
func TestDeltaHistory(t *testing.T) {
	t.Run("root", func(t *testing.T) { deltaHistory(t, 0) })
	t.Run("legacy", func(t *testing.T) { deltaHistory(t, 400) })
}

// deltaHistory runs TestDeltaHistory with digest-form snapshots up to log
// size legacyUntil.
func deltaHistory(t *testing.T, legacyUntil uint64) {
	f := newFixture(t)
	f.log.DigestSnapshots = legacyUntil > 0
	forms := map[string]int{}
	ks := keySet(t, 5, 2, "history")
	f.grow(3)
	f.snapshot(t, ks)
	f.publish(t, t0, f.ws[0], f.ws[1])
	v := f.verifier(t, nil)
	first, err := verifyAll(v, f.bundle(t, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	full, delta, lazy := first, first, first
	for step := 0; f.log.Size() < 1000; step++ {
		if f.log.Size() >= legacyUntil {
			f.log.DigestSnapshots = false
		}
		f.grow(step % 13)
		if step%3 != 2 {
			ks = mutate(t, ks, step)
			f.snapshot(t, ks)
		}
		f.grow(step % 2)
		f.publish(t, t0.Add(time.Duration(step)*time.Second), f.ws[0], f.ws[1])

		raw := f.bundle(t, full.Checkpoint.Size)
		nf, err := verifyAll(v, raw, full)
		if err != nil {
			t.Fatalf("step %d: full bundle: %v", step, err)
		}
		d := makeDelta(t, f, delta)
		nd, err := v.VerifyDelta(d, delta)
		if err != nil {
			t.Fatalf("step %d: delta: %v", step, err)
		}
		dks, err := nd.KeySet()
		if err != nil {
			t.Fatalf("step %d: delta key set: %v", step, err)
		}
		if !bytes.Equal(nf.Stored(), nd.Stored()) {
			t.Fatalf("step %d: stored bundles differ", step)
		}
		if !bytes.Equal(nf.Raw(), nd.Raw()) {
			t.Fatalf("step %d: bundles differ", step)
		}
		if !bytes.Equal(nf.Bundle().KeySet, nd.Bundle().KeySet) || !bytes.Equal(nf.Bundle().Entry, nd.Bundle().Entry) {
			t.Fatalf("step %d: key sets or entries differ", step)
		}
		// The typed key set the delta built from the held one (sharing
		// its unchanged issuers) is the one the full bundle parses to.
		fks, err := nf.KeySet()
		if err != nil {
			t.Fatal(err)
		}
		if db, _ := dks.Marshal(); !bytes.Equal(db, nf.Bundle().KeySet) || !reflect.DeepEqual(asSchema(dks), asSchema(fks)) {
			t.Fatalf("step %d: the delta's typed key set differs from the full bundle's", step)
		}
		if fmt.Sprint(nf.Changes) != fmt.Sprint(nd.Changes) {
			t.Fatalf("step %d: changes %v (full) and %v (delta)", step, nf.Changes, nd.Changes)
		}
		if !bytes.Equal(nf.Commitment(), nd.Commitment()) || nf.SnapshotIndex != nd.SnapshotIndex {
			t.Fatalf("step %d: commitments %x (full) and %x (delta), snapshot indexes %d and %d", step, nf.Commitment(), nd.Commitment(), nf.SnapshotIndex, nd.SnapshotIndex)
		}
		s, err := verify.ParseSnapshotEntry(nf.Bundle().Entry)
		if err != nil {
			t.Fatal(err)
		}
		forms[fmt.Sprintf("root=%v", s.Root != nil)]++

		// The lazy user agent: the same delta (its bundle is the
		// delta's), its bytes never asked for.
		held, err := verify.ParseSnapshotEntry(delta.Bundle().Entry)
		if err != nil {
			t.Fatal(err)
		}
		writes := verify.KeySetWrites()
		nl, err := v.VerifyDelta(d, lazy)
		if err != nil {
			t.Fatalf("step %d: lazy delta: %v", step, err)
		}
		lks, err := nl.KeySet()
		if err != nil {
			t.Fatalf("step %d: lazy delta key set: %v", step, err)
		}
		if w := verify.KeySetWrites() - writes; w != 0 && s.Root != nil && held.Root != nil {
			t.Fatalf("step %d: a delta between root-form snapshots wrote %d key sets before its bytes were asked for", step, w)
		}
		if lb, _ := lks.Marshal(); !bytes.Equal(lb, nf.Bundle().KeySet) || fmt.Sprint(nl.Changes) != fmt.Sprint(nf.Changes) {
			t.Fatalf("step %d: the lazy user agent's key set or changes differ", step)
		}
		full, delta, lazy = nf, nd, nl
	}
	if !bytes.Equal(lazy.Raw(), full.Raw()) || !bytes.Equal(lazy.Stored(), full.Stored()) || !bytes.Equal(lazy.Bundle().KeySet, full.Bundle().KeySet) {
		t.Error("the lazy user agent's bundle differs from the full one's at the end")
	}
	if legacyUntil > 0 && (forms["root=true"] == 0 || forms["root=false"] == 0) || legacyUntil == 0 && forms["root=false"] > 0 {
		t.Errorf("bundles by snapshot form: %v", forms)
	}
}

// makeDelta builds the delta from the held bundle to the log's latest
// bundle, as the log does.
func makeDelta(t testing.TB, f *fixture, held *verify.Verified) []byte {
	t.Helper()
	next, err := verify.ParseBundle(f.bundle(t, held.Checkpoint.Size))
	if err != nil {
		t.Fatal(err)
	}
	d, err := verify.MakeDelta(held.Bundle(), held.Checkpoint.Size, next)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// deltaFixture: a held bundle and a delta changing one issuer, adding one
// and removing one.
func deltaFixture(t *testing.T) (*fixture, *verify.Verifier, *verify.Verified, []byte) {
	f := newFixture(t)
	ks := keySet(t, 4, 1, "flip")
	f.grow(5)
	f.snapshot(t, ks)
	f.publish(t, t0, f.ws[0], f.ws[1])
	v := f.verifier(t, nil)
	held, err := verifyAll(v, f.bundle(t, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	ks = mutate(t, ks, 0)
	ks = mutate(t, ks, 1)
	delete(ks.PST, "https://issuer-3.example")
	f.grow(2)
	f.snapshot(t, ks)
	f.publish(t, t0, f.ws[0], f.ws[1])
	return f, v, held, makeDelta(t, f, held)
}

// TestDeltaByteFlips: every byte flip of a delta is refused.
func TestDeltaByteFlips(t *testing.T) {
	_, v, held, d := deltaFixture(t)
	if _, err := v.VerifyDelta(d, held); err != nil {
		t.Fatal(err)
	}
	for i := range d {
		for _, x := range []byte{0x01, 0x80} {
			m := bytes.Clone(d)
			m[i] ^= x
			if _, err := v.VerifyDelta(m, held); err == nil {
				t.Fatalf("flipping bit %#x of byte %d (%q) was accepted", x, i, d[max(0, i-20):min(len(d), i+20)])
			} else if verify.CheckOf(err) == "" {
				t.Fatalf("byte %d: error %v names no check", i, err)
			}
		}
	}
}

// TestDeltaWrongBase: a delta applied to another bundle than its base is
// refused by the delta check, naming both.
func TestDeltaWrongBase(t *testing.T) {
	f, v, held, d := deltaFixture(t)
	// The bundle after the delta's: the delta's base is older.
	next, err := v.VerifyDelta(d, held)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyDelta(d, next)
	wantCheck(t, err, verify.CheckDelta)
	if !strings.Contains(err.Error(), fmt.Sprint(held.Checkpoint.Size)) || !strings.Contains(err.Error(), fmt.Sprint(next.Checkpoint.Size)) {
		t.Errorf("error %q does not name both tree sizes", err)
	}
	// Same size, another key set commitment.
	other := verify.WithCommitment(held, make([]byte, 32))
	_, err = v.VerifyDelta(d, other)
	wantCheck(t, err, verify.CheckDelta)
	if !strings.Contains(err.Error(), fmt.Sprintf("%x", held.Commitment())) || !strings.Contains(err.Error(), strings.Repeat("00", 32)) {
		t.Errorf("error %q does not name both commitments", err)
	}
	_, err = v.VerifyDelta(d, nil)
	wantCheck(t, err, verify.CheckDelta)
	_ = f
}

// TestDeltaUnchanged: with nothing changed the delta is only the fresher
// checkpoint and proofs, and its round trip is exact.
func TestDeltaUnchanged(t *testing.T) {
	f := newFixture(t)
	f.grow(5)
	f.snapshot(t, keySet(t, 3, 2, "same"))
	f.publish(t, t0, f.ws[0], f.ws[1])
	v := f.verifier(t, nil)
	held, err := verifyAll(v, f.bundle(t, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.grow(4)
	f.publish(t, t0.Add(time.Minute), f.ws[0], f.ws[1])
	raw := makeDelta(t, f, held)
	d, err := verify.ParseDelta(raw)
	if err != nil {
		t.Fatal(err)
	}
	if d.Entry != nil || len(d.Changes) != 0 || d.Consistency == nil {
		t.Fatalf("unchanged delta has entry %q, %d changes, consistency %v", d.Entry, len(d.Changes), d.Consistency)
	}
	if re, _ := d.Marshal(); !bytes.Equal(re, raw) {
		t.Error("round trip differs")
	}
	got, err := v.VerifyDelta(raw, held)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Changes) != 0 || !bytes.Equal(got.Bundle().KeySet, held.Bundle().KeySet) {
		t.Errorf("changes %v", got.Changes)
	}
}

func FuzzParseDelta(f *testing.F) {
	fx := newFixture(f)
	ks := keySet(f, 2, 1, "fuzz")
	fx.grow(3)
	fx.snapshot(f, ks)
	fx.publish(f, t0, fx.ws[0], fx.ws[1])
	held, err := fx.verifier(f, nil).Verify(fx.bundle(f, 0), nil)
	if err != nil {
		f.Fatal(err)
	}
	fx.snapshot(f, mutate(f, mutate(f, ks, 1), 3))
	fx.publish(f, t0, fx.ws[0], fx.ws[1])
	f.Add(makeDelta(f, fx, held))
	v := fx.verifier(f, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := verify.ParseDelta(b)
		if err != nil {
			return
		}
		re, err := d.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("Marshal(ParseDelta(b)) = %.100q, %v; want b", re, err)
		}
		// Applied on the root path (the held tree updated, not the key
		// set hashed), an accepted delta's key set has the root its
		// snapshot commits to, computed afresh over the bundle
		// assembled when asked for.
		got, err := v.VerifyDelta(b, held)
		if err != nil {
			return
		}
		r, err := keysetroot.OfKeySet(got.Bundle().KeySet)
		if err != nil || !bytes.Equal(r[:], got.Commitment()) {
			t.Fatalf("accepted delta: key set root %x (%v), commitment %x", r, err, got.Commitment())
		}
		// The bundle assembled without a check is what Marshal, which
		// checks, encodes, and the stored form verifies as a full
		// bundle.
		if m, err := got.Bundle().Marshal(); err != nil || !bytes.Equal(m, got.Raw()) {
			t.Fatalf("accepted delta: the assembled bundle is not its parts' encoding (%v)", err)
		}
		if _, err := v.VerifyStored(got.Stored()); err != nil {
			t.Fatalf("accepted delta: its stored bundle does not verify: %v", err)
		}
	})
}

// TestDeltaNewSnapshotSameKeySet: a delta carrying a new snapshot entry
// and no changes verifies when that snapshot records the held key set, and
// is refused by the digest check when it records another (the key set is
// then not hashed again, its digest compared with the held snapshot's).
func TestDeltaNewSnapshotSameKeySet(t *testing.T) {
	ks := keySet(t, 3, 2, "resnap")
	f, v, raw := publishedKeySet(t, ks, false)
	held, err := verifyAll(v, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.grow(2)
	f.snapshot(t, ks)
	f.publish(t, t0, f.ws[0], f.ws[1])
	raw = makeDelta(t, f, held)
	d, err := verify.ParseDelta(raw)
	if err != nil {
		t.Fatal(err)
	}
	if d.Entry == nil || len(d.Changes) != 0 {
		t.Fatalf("delta has entry %q and %d changes, want a new entry and none", d.Entry, len(d.Changes))
	}
	got, err := v.VerifyDelta(raw, held)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bundle().KeySet, held.Bundle().KeySet) || len(got.Changes) != 0 {
		t.Fatalf("changes %v", got.Changes)
	}
	// A snapshot of another key set, sent as a delta with no changes.
	f.grow(2)
	f.snapshot(t, mutate(t, ks, 1))
	f.publish(t, t0, f.ws[0], f.ws[1])
	next, err := verify.ParseBundle(f.bundle(t, held.Checkpoint.Size))
	if err != nil {
		t.Fatal(err)
	}
	lie := &verify.Delta{BaseSize: d.BaseSize, BaseDigest: d.BaseDigest, Entry: next.Entry, Consistency: next.Consistency,
		Index: next.Index, Inclusion: next.Inclusion, Checkpoint: next.Checkpoint}
	raw, err = lie.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyDelta(raw, held)
	wantCheck(t, err, verify.CheckDigest)
}
