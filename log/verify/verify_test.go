package verify_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
	"github.com/keycommit/keycommit/witness/quorum"
	"github.com/transparency-dev/merkle/proof"
)

const origin = "keycommit.example/log/test"

// t0 is when the test checkpoints are cosigned; verifiers run at t0+1m.
var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	log *bundletest.Log
	ws  []*bundletest.Witness // w1..w3 are in the policy
	pol *quorum.Policy
	now time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{log: bundletest.NewLog(origin), now: t0.Add(time.Minute)}
	for _, n := range []string{"witness-1.example", "witness-2.example", "witness-3.example"} {
		f.ws = append(f.ws, bundletest.NewWitness(n))
	}
	pol, err := quorum.Parse([]byte(bundletest.Policy(f.log.VKey, 2, f.ws...)))
	if err != nil {
		t.Fatal(err)
	}
	f.pol = pol
	return f
}

func (f *fixture) verifier(t testing.TB, mod func(*verify.Config)) *verify.Verifier {
	t.Helper()
	cfg := verify.Config{LogKey: f.log.VKey, Policy: f.pol, MaxAge: time.Hour, Now: func() time.Time { return f.now }}
	if mod != nil {
		mod(&cfg)
	}
	v, err := verify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func keySet(t testing.TB, n, k int, seed string) *schema.KeySet {
	t.Helper()
	ks, err := bundletest.KeySet(n, k, t0.Add(90*24*time.Hour), seed)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// grow appends n filler leaves.
func (f *fixture) grow(n int) {
	for i := 0; i < n; i++ {
		f.log.Append([]byte(fmt.Sprintf("filler %d at %d", i, f.log.Size())))
	}
}

func (f *fixture) snapshot(t testing.TB, ks *schema.KeySet) uint64 {
	t.Helper()
	i, err := f.log.AppendSnapshot(ks, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func (f *fixture) publish(t testing.TB, ts time.Time, ws ...*bundletest.Witness) {
	t.Helper()
	if _, err := f.log.Publish(ts, ws...); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) bundle(t testing.TB, old uint64) []byte {
	t.Helper()
	b, err := f.log.Bundle(old)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// small builds a small valid bundle cosigned by exactly the quorum (w1,
// w2), so that every signature in it counts.
func small(t testing.TB) (*fixture, []byte) {
	f := newFixture(t)
	f.grow(5)
	f.snapshot(t, keySet(t, 1, 1, "small"))
	f.grow(3)
	f.publish(t, t0, f.ws[0], f.ws[1])
	return f, f.bundle(t, 0)
}

// verifyAll runs Verify and then the key set check.
func verifyAll(v *verify.Verifier, raw []byte, prev *verify.Verified) (*verify.Verified, error) {
	got, err := v.Verify(raw, prev)
	if err != nil {
		return nil, err
	}
	if _, err := got.KeySet(); err != nil {
		return nil, err
	}
	return got, nil
}

func wantCheck(t *testing.T, err error, want verify.Check) {
	t.Helper()
	if err == nil {
		t.Fatalf("verification passed, want the %s check to fail", want)
	}
	if got := verify.CheckOf(err); got != want {
		t.Fatalf("failed check %q (%v), want %q", got, err, want)
	}
	if !strings.Contains(err.Error(), string(want)) {
		t.Fatalf("error %q does not name the check %q", err, want)
	}
}

func TestVerifyValid(t *testing.T) {
	f := newFixture(t)
	f.grow(10)
	ks := keySet(t, 20, 6, "valid")
	idx := f.snapshot(t, ks)
	f.grow(7)
	f.publish(t, t0, f.ws...)
	raw := f.bundle(t, 0)
	got, err := f.verifier(t, nil).Verify(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bundle().Index != idx || got.Checkpoint.Size != 18 || got.Checkpoint.Origin != origin {
		t.Errorf("index %d size %d origin %q, want %d 18 %q", got.Bundle().Index, got.Checkpoint.Size, got.Checkpoint.Origin, idx, origin)
	}
	if len(got.Checkpoint.Cosignatures) != 3 {
		t.Errorf("%d cosignatures, want 3", len(got.Checkpoint.Cosignatures))
	}
	for _, c := range got.Checkpoint.Cosignatures {
		if !c.Time.Equal(t0) || !c.Fresh {
			t.Errorf("cosignature %+v, want fresh at %v", c, t0)
		}
	}
	vks, err := got.KeySet()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ks.Marshal()
	gotKS, _ := vks.Marshal()
	if !bytes.Equal(want, gotKS) || len(vks.Issuers()) != 20 {
		t.Errorf("verified key set differs from the one committed")
	}
	if !got.SnapshotTime.Equal(t0.Add(-time.Hour)) {
		t.Errorf("snapshot time %v, want %v", got.SnapshotTime, t0.Add(-time.Hour))
	}
	if got.Changes != nil || got.Previous != 0 {
		t.Errorf("changes %v previous %d without a previous bundle", got.Changes, got.Previous)
	}
	// The stored form re-verifies long after, when it is no longer fresh.
	f.now = t0.Add(30 * 24 * time.Hour)
	if _, err := f.verifier(t, nil).VerifyStored(raw); err != nil {
		t.Errorf("VerifyStored: %v", err)
	}
	_, err = f.verifier(t, nil).Verify(raw, nil)
	wantCheck(t, err, verify.CheckFreshness)
}

// TestMangle: every single-byte change to a bundle is rejected. The bundle
// is cosigned by exactly the quorum, so every byte of it is authenticated.
func TestMangle(t *testing.T) {
	f, raw := small(t)
	v := f.verifier(t, nil)
	if _, err := v.Verify(raw, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("bundle of %d bytes", len(raw))
	values := 256
	if testing.Short() {
		values = 0 // bit flips only
	}
	for _, half := range []int{0, 1} {
		t.Run(fmt.Sprint(half), func(t *testing.T) {
			t.Parallel()
			start, end := half*len(raw)/2, (half+1)*len(raw)/2
			m := append([]byte(nil), raw...)
			for i := start; i < end; i++ {
				orig := m[i]
				try := func(c byte) {
					if c == orig {
						return
					}
					m[i] = c
					if _, err := verifyAll(v, m, nil); err == nil {
						t.Errorf("byte %d changed from %q to %q: bundle still verifies", i, orig, c)
					} else if verify.CheckOf(err) == "" {
						t.Errorf("byte %d: error %v names no check", i, err)
					}
				}
				for bit := 0; bit < 8; bit++ {
					try(orig ^ 1<<bit)
				}
				for c := 0; c < values; c++ {
					try(byte(c))
				}
				m[i] = orig
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	f, raw := small(t)
	v := f.verifier(t, nil)
	for n := 0; n < len(raw); n++ {
		if _, err := verifyAll(v, raw[:n], nil); err == nil {
			t.Fatalf("bundle truncated to %d of %d bytes verifies", n, len(raw))
		}
	}
	if _, err := v.Verify(append(append([]byte(nil), raw...), "x"...), nil); err == nil {
		t.Errorf("bundle with a trailing byte verifies")
	}
}

func TestFreshness(t *testing.T) {
	f, raw := small(t)
	for _, tc := range []struct {
		name  string
		now   time.Time
		want  verify.Check
		valid bool
	}{
		{"just fresh", t0.Add(time.Hour), "", true},
		{"stale", t0.Add(time.Hour + time.Second), verify.CheckFreshness, false},
		{"within skew", t0.Add(-5 * time.Minute), "", true},
		{"future", t0.Add(-5*time.Minute - time.Second), verify.CheckFreshness, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.now = tc.now
			_, err := f.verifier(t, nil).Verify(raw, nil)
			if tc.valid {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCheck(t, err, tc.want)
		})
	}
	// One stale cosignature of three still leaves a fresh 2-of-3 quorum.
	f2 := newFixture(t)
	f2.grow(2)
	f2.snapshot(t, keySet(t, 2, 1, "mixed"))
	signed, err := f2.log.Sign()
	if err != nil {
		t.Fatal(err)
	}
	cp := bundletest.Cosign(bundletest.Cosign(signed, t0, f2.ws[0], f2.ws[1]), t0.Add(-48*time.Hour), f2.ws[2])
	f2.log.SetCheckpoint(cp)
	got, err := f2.verifier(t, nil).Verify(f2.bundle(t, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	var fresh int
	for _, c := range got.Checkpoint.Cosignatures {
		if c.Fresh {
			fresh++
		}
	}
	if len(got.Checkpoint.Cosignatures) != 3 || fresh != 2 {
		t.Errorf("cosignatures %+v, want 3 valid of which 2 fresh", got.Checkpoint.Cosignatures)
	}
}

func TestQuorum(t *testing.T) {
	others := []*bundletest.Witness{bundletest.NewWitness("stranger-1.example"), bundletest.NewWitness("stranger-2.example")}
	for _, tc := range []struct {
		name string
		ws   func(f *fixture) []*bundletest.Witness
		ok   bool
	}{
		{"none", func(f *fixture) []*bundletest.Witness { return nil }, false},
		{"one of three", func(f *fixture) []*bundletest.Witness { return f.ws[:1] }, false},
		{"unknown witnesses", func(f *fixture) []*bundletest.Witness { return others }, false},
		{"one known and unknown ones", func(f *fixture) []*bundletest.Witness { return append([]*bundletest.Witness{f.ws[2]}, others...) }, false},
		{"two of three", func(f *fixture) []*bundletest.Witness { return f.ws[1:] }, true},
		{"two of three and unknown ones", func(f *fixture) []*bundletest.Witness {
			return append([]*bundletest.Witness{f.ws[0], f.ws[2]}, others...)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.grow(1)
			f.snapshot(t, keySet(t, 1, 1, "q"))
			f.publish(t, t0, tc.ws(f)...)
			_, err := f.verifier(t, nil).Verify(f.bundle(t, 0), nil)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCheck(t, err, verify.CheckQuorum)
		})
	}
}

func TestBadSignatures(t *testing.T) {
	f, raw := small(t)
	v := f.verifier(t, nil)
	// A checkpoint signed by another log key with the same origin.
	other := bundletest.NewLog("impostor")
	other.Append([]byte("x"))
	_, err := verify.New(verify.Config{LogKey: other.VKey, Policy: f.pol})
	if err == nil {
		t.Errorf("verifier accepted a log key the policy does not list")
	}
	// Strip the log's signature line: the witnesses alone are not enough.
	i := bytes.Index(raw, []byte("\u2014 "+origin+" "))
	j := i + bytes.IndexByte(raw[i:], '\n') + 1
	_, err = v.Verify(append(append([]byte(nil), raw[:i]...), raw[j:]...), nil)
	wantCheck(t, err, verify.CheckLogSignature)
	// A cosignature over different text from a policy witness.
	text := []byte(origin + "\n9\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n")
	line := f.ws[2].CosignatureLine(text, uint64(t0.Unix()))
	_, err = v.Verify(append(append([]byte(nil), raw...), line...), nil)
	wantCheck(t, err, verify.CheckCosignature)
}

func TestKeySetMismatch(t *testing.T) {
	f, raw := small(t)
	v := f.verifier(t, nil)
	b, err := verify.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := keySet(t, 1, 1, "other").Marshal()
	b.KeySet = other
	m, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(m, nil)
	wantCheck(t, err, verify.CheckDigest)
}

// appendRawEntry appends an entry written by hand.
func appendRawEntry(t *testing.T, f *fixture, entry string) uint64 {
	t.Helper()
	return f.log.Append([]byte(entry))
}

func TestSnapshotChecks(t *testing.T) {
	ksb, _ := keySet(t, 2, 1, "snap").Marshal()
	d := sha256.Sum256(ksb)
	body := fmt.Sprintf(`{"issuers":2,"digest":"%s"}`, base64.StdEncoding.EncodeToString(d[:]))
	for _, tc := range []struct {
		name, entry string
		keySet      []byte
		want        verify.Check
	}{
		{"valid", `{"v":1,"kind":"snapshot","time":1,"issuer":"","prev":null,"body":` + body + `,"sig":null}`, ksb, ""},
		{"schema version 2", `{"v":2,"kind":"snapshot","time":1,"issuer":"","prev":null,"body":` + body + `,"sig":null}`, ksb, ""},
		{"schema version 3", `{"v":3,"kind":"snapshot","time":1,"issuer":"","prev":null,"body":` + body + `,"sig":null}`, ksb, verify.CheckSnapshot},
		{"with a log", `{"v":2,"kind":"snapshot","time":1,"log":"keycommit.example/log","issuer":"","prev":null,"body":` + body + `,"sig":null}`, ksb, verify.CheckSnapshot},
		{"not a snapshot", `{"v":1,"kind":"policy_params","time":1,"issuer":"","prev":null,"body":` + body + `,"sig":null}`, ksb, verify.CheckSnapshot},
		{"with an issuer", `{"v":1,"kind":"snapshot","time":1,"issuer":"https://a.example","prev":null,"body":` + body + `,"sig":null}`, ksb, verify.CheckSnapshot},
		{"unknown member", `{"v":1,"kind":"snapshot","time":1,"issuer":"","prev":null,"body":` + body + `,"sig":null,"x":1}`, ksb, verify.CheckSnapshot},
		{"not canonical", `{"v":1, "kind":"snapshot","time":1,"issuer":"","prev":null,"body":` + body + `,"sig":null}`, ksb, verify.CheckSnapshot},
		{"wrong issuer count", `{"v":1,"kind":"snapshot","time":1,"issuer":"","prev":null,"body":` + strings.Replace(body, `"issuers":2`, `"issuers":3`, 1) + `,"sig":null}`, ksb, verify.CheckKeySet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.grow(3)
			idx := appendRawEntry(t, f, tc.entry)
			f.publish(t, t0, f.ws...)
			incl, err := f.log.InclusionProof(context.Background(), idx, f.log.Size())
			if err != nil {
				t.Fatal(err)
			}
			cp, _ := f.log.Checkpoint(context.Background())
			b := &verify.Bundle{KeySet: tc.keySet, Entry: []byte(tc.entry), Index: idx, Inclusion: incl, Checkpoint: cp}
			raw, err := b.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			_, err = verifyAll(f.verifier(t, nil), raw, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCheck(t, err, tc.want)
		})
	}
}

// TestKeySetNotCanonical: a key set whose digest the snapshot records but
// that is not in its canonical encoding (here, a duplicate member that
// parsers could read two ways) is refused.
func TestKeySetNotCanonical(t *testing.T) {
	ks := keySet(t, 1, 1, "dup")
	good, _ := ks.Marshal()
	var o string
	for k := range ks.PST {
		o = k
	}
	// {"pst":{"<o>":X,"<o>":X},...}
	i := bytes.Index(good, []byte(`"`+o+`":`))
	j := bytes.Index(good, []byte(`},"privacy_pass"`))
	member := good[i:j]
	dup := append(append(append(append([]byte(nil), good[:j]...), ','), member...), good[j:]...)
	d := sha256.Sum256(dup)
	entry := fmt.Sprintf(`{"v":1,"kind":"snapshot","time":1,"issuer":"","prev":null,"body":{"issuers":1,"digest":"%s"},"sig":null}`, base64.StdEncoding.EncodeToString(d[:]))
	f := newFixture(t)
	idx := f.log.Append([]byte(entry))
	f.publish(t, t0, f.ws...)
	incl, _ := f.log.InclusionProof(context.Background(), idx, f.log.Size())
	cp, _ := f.log.Checkpoint(context.Background())
	raw, err := (&verify.Bundle{KeySet: dup, Entry: []byte(entry), Index: idx, Inclusion: incl, Checkpoint: cp}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = verifyAll(f.verifier(t, nil), raw, nil)
	wantCheck(t, err, verify.CheckKeySet)
}

func TestPrevious(t *testing.T) {
	f := newFixture(t)
	f.grow(4)
	ks1 := keySet(t, 5, 2, "prev")
	f.snapshot(t, ks1)
	f.publish(t, t0, f.ws...)
	v := f.verifier(t, nil)
	prev, err := v.Verify(f.bundle(t, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	oldSize := prev.Checkpoint.Size

	// The log grows: issuer-0 rotates, issuer-4 goes, issuer-9 arrives.
	ks2 := keySet(t, 5, 2, "prev")
	ks2.PST["https://issuer-0.example"] = keySet(t, 1, 2, "rotated").PST["https://issuer-0.example"]
	ks2.PST["https://issuer-9.example"] = ks2.PST["https://issuer-4.example"]
	delete(ks2.PST, "https://issuer-4.example")
	ks2.PrivacyPass = map[string]schema.IssuerDirectory{"https://issuer-1.example": {IssuerRequestURI: "https://issuer-1.example/token",
		TokenKeys: []schema.TokenKey{{TokenType: 2, TokenKey: "AAAA"}}}}
	f.grow(9)
	f.snapshot(t, ks2)
	f.grow(2)
	f.publish(t, t0, f.ws...)

	t.Run("proof in the bundle", func(t *testing.T) {
		got, err := v.Verify(f.bundle(t, oldSize), prev)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"https://issuer-0.example pst changed",
			"https://issuer-1.example privacy_pass added",
			"https://issuer-4.example pst removed",
			"https://issuer-9.example pst added",
		}
		var gotS []string
		for _, c := range got.Changes {
			gotS = append(gotS, c.String())
		}
		if strings.Join(gotS, "\n") != strings.Join(want, "\n") {
			t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(gotS, "\n"), strings.Join(want, "\n"))
		}
		if got.Previous != oldSize {
			t.Errorf("previous size %d, want %d", got.Previous, oldSize)
		}
	})
	t.Run("no proof", func(t *testing.T) {
		_, err := v.Verify(f.bundle(t, 0), prev)
		wantCheck(t, err, verify.CheckConsistency)
	})
	t.Run("proof from the prover", func(t *testing.T) {
		pv := f.verifier(t, func(c *verify.Config) {
			c.ConsistencyProof = func(o, n uint64) ([][]byte, error) {
				return f.log.ConsistencyProof(context.Background(), o, n)
			}
		})
		if _, err := pv.Verify(f.bundle(t, 0), prev); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("prover fails", func(t *testing.T) {
		pv := f.verifier(t, func(c *verify.Config) {
			c.ConsistencyProof = func(o, n uint64) ([][]byte, error) { return nil, errors.New("log unreachable") }
		})
		_, err := pv.Verify(f.bundle(t, 0), prev)
		wantCheck(t, err, verify.CheckConsistency)
	})
	t.Run("proof from another size", func(t *testing.T) {
		_, err := v.Verify(f.bundle(t, oldSize-1), prev)
		wantCheck(t, err, verify.CheckConsistency)
	})
	t.Run("proof without a previous bundle", func(t *testing.T) {
		_, err := v.Verify(f.bundle(t, oldSize), nil)
		wantCheck(t, err, verify.CheckConsistency)
	})
	t.Run("same bundle again", func(t *testing.T) {
		got, err := v.Verify(prev.Raw(), prev)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Changes) != 0 {
			t.Errorf("changes %v between identical bundles", got.Changes)
		}
	})
	t.Run("stored form", func(t *testing.T) {
		next, err := v.Verify(f.bundle(t, oldSize), prev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyStored(next.Raw()); verify.CheckOf(err) != verify.CheckConsistency {
			t.Errorf("VerifyStored of a bundle with a proof: %v, want a consistency failure", err)
		}
		stored := next.Stored()
		back, err := v.VerifyStored(stored)
		if err != nil {
			t.Fatal(err)
		}
		if back.Bundle().Consistency != nil || back.Checkpoint.Size != next.Checkpoint.Size {
			t.Errorf("stored bundle differs")
		}
	})
	t.Run("rollback", func(t *testing.T) {
		next, err := v.Verify(f.bundle(t, oldSize), prev)
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(prev.Raw(), next)
		wantCheck(t, err, verify.CheckRollback)
	})
	t.Run("older snapshot in a newer checkpoint", func(t *testing.T) {
		next, err := v.Verify(f.bundle(t, oldSize), prev)
		if err != nil {
			t.Fatal(err)
		}
		f.grow(1)
		f.publish(t, t0, f.ws...)
		cp, _ := f.log.Checkpoint(context.Background())
		size := f.log.Size()
		incl, _ := f.log.InclusionProof(context.Background(), prev.Bundle().Index, size)
		cons, _ := f.log.ConsistencyProof(context.Background(), next.Checkpoint.Size, size)
		b := &verify.Bundle{KeySet: prev.Bundle().KeySet, Entry: prev.Bundle().Entry, Index: prev.Bundle().Index, Inclusion: incl,
			Consistency: &verify.ConsistencyProof{OldSize: next.Checkpoint.Size, Hashes: cons}, Checkpoint: cp}
		raw, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(raw, nil); err == nil || verify.CheckOf(err) != verify.CheckConsistency {
			t.Fatalf("old snapshot bundle without previous: %v", err)
		}
		_, err = v.Verify(raw, next)
		wantCheck(t, err, verify.CheckRollback)
	})
}

// TestFork: a log that shows two different histories under one key.
func TestFork(t *testing.T) {
	a, b := newFixture(t), newFixture(t)
	for _, f := range []*fixture{a, b} {
		f.grow(3)
		f.snapshot(t, keySet(t, 2, 1, "fork"))
	}
	a.grow(2)
	b.log.Append([]byte("a different leaf"))
	b.grow(1)
	a.publish(t, t0, a.ws...)
	b.publish(t, t0, b.ws...)
	v := a.verifier(t, nil)
	prevA, err := v.Verify(a.bundle(t, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, different root.
	_, err = v.Verify(b.bundle(t, 0), prevA)
	wantCheck(t, err, verify.CheckConsistency)
	// A larger tree of the other history, with its own proof from size 6.
	b.grow(4)
	b.publish(t, t0, b.ws...)
	_, err = v.Verify(b.bundle(t, prevA.Checkpoint.Size), prevA)
	wantCheck(t, err, verify.CheckConsistency)
	// ...and with the honest log's proof.
	a.grow(4)
	cons, _ := a.log.ConsistencyProof(context.Background(), prevA.Checkpoint.Size, a.log.Size())
	bb, _ := verify.ParseBundle(b.bundle(t, prevA.Checkpoint.Size))
	bb.Consistency.Hashes = cons
	raw, _ := bb.Marshal()
	_, err = v.Verify(raw, prevA)
	wantCheck(t, err, verify.CheckConsistency)
}

func TestOrigin(t *testing.T) {
	f, raw := small(t)
	_, err := f.verifier(t, func(c *verify.Config) { c.Origin = "keycommit.example/other" }).Verify(raw, nil)
	wantCheck(t, err, verify.CheckCheckpoint)
}

func TestIssuerProof(t *testing.T) {
	f := newFixture(t)
	f.grow(3)
	issuer := "https://issuer.example"
	body, acct := issuerCommitment(t, t0.Add(48*time.Hour))
	idx, leaf, err := f.log.AppendCommitment(issuer, body, acct, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	f.grow(5)
	f.publish(t, t0, f.ws[0], f.ws[2])
	raw, err := bundleBuildIssuerProof(f, issuer)
	if err != nil {
		t.Fatal(err)
	}
	v := f.verifier(t, nil)
	got, err := v.VerifyIssuerProof(raw, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != idx || !bytes.Equal(got.Entry, leaf) || !got.Time.Equal(t0) {
		t.Errorf("got index %d time %v, want %d %v", got.Index, got.Time, idx, t0)
	}
	_, err = v.VerifyIssuerProof(raw, "https://other.example")
	wantCheck(t, err, verify.CheckEntry)
	for i := range raw {
		m := append([]byte(nil), raw...)
		m[i] ^= 0x01
		if _, err := v.VerifyIssuerProof(m, issuer); err == nil {
			t.Fatalf("tlog-proof with byte %d flipped verifies", i)
		}
	}
	for n := range raw {
		if _, err := v.VerifyIssuerProof(raw[:n], issuer); err == nil {
			t.Fatalf("tlog-proof truncated to %d bytes verifies", n)
		}
	}
}

// issuerCommitment returns a one-key PST commitment whose key expires at
// expiry, and the account key that signs it.
func issuerCommitment(t *testing.T, expiry time.Time) (*schema.KeyCommitment, ed25519.PrivateKey) {
	t.Helper()
	acct := ed25519.NewKeyFromSeed(bundletest.Seed("acct"))
	pt, err := bundletest.P384Point("issuer-key")
	if err != nil {
		t.Fatal(err)
	}
	y := append([]byte{0, 0, 0, 7}, pt...)
	return &schema.KeyCommitment{PST: schema.PSTCommitment{schema.PSTV1VOPRF: {ProtocolVersion: schema.PSTV1VOPRF, ID: 1, BatchSize: 10,
		Keys: map[string]schema.PSTKey{"7": {Y: base64.StdEncoding.EncodeToString(y), Expiry: fmt.Sprint(expiry.UnixMicro())}}}}}, acct
}

// TestProofErrorBase64: a root mismatch names both roots in base64, not as
// Go byte slices.
func TestProofErrorBase64(t *testing.T) {
	a, b := bytes.Repeat([]byte{0x23}, 32), bytes.Repeat([]byte{0xe5}, 32)
	err := verify.ProofError(proof.RootMismatchError{ExpectedRoot: a, CalculatedRoot: b})
	want := "the proof leads to root " + base64.StdEncoding.EncodeToString(b) + ", the checkpoint's root is " + base64.StdEncoding.EncodeToString(a)
	if err.Error() != want {
		t.Errorf("ProofError = %q, want %q", err, want)
	}
	if other := errors.New("x"); verify.ProofError(other) != other {
		t.Error("ProofError changed another error")
	}
}
