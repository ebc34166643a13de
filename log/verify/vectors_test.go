package verify_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/witness/quorum"
)

var update = flag.Bool("update", false, "rewrite testdata/bundle from the generator")

const vectorDir = "../../testdata/bundle"

// vector is one entry of testdata/bundle/vectors.json.
type vector struct {
	File        string `json:"file"`
	Description string `json:"description"`
	// Previous, if set, is the bundle (verified with VerifyStored) to
	// check File against.
	Previous string `json:"previous,omitempty"`
	// Now is the verification time (RFC 3339).
	Now string `json:"now"`
	// Want is the check that must fail, "" if the bundle must verify.
	Want verify.Check `json:"want"`
}

// generateVectors builds every vector file deterministically.
func generateVectors(t *testing.T) (map[string][]byte, []vector) {
	files := map[string][]byte{}
	var vs []vector
	now := t0.Add(10 * time.Minute).Format(time.RFC3339)
	add := func(name, desc, prev string, want verify.Check, b []byte) {
		files[name] = b
		vs = append(vs, vector{File: name, Description: desc, Previous: prev, Now: now, Want: want})
	}
	f := newFixture(t)
	files["log.vkey"] = []byte(f.log.VKey + "\n")
	files["witness-policy.txt"] = []byte("# 2-of-3 witness policy of the test vectors\n" + bundletest.Policy(f.log.VKey, 2, f.ws...))
	f.grow(6)
	f.snapshot(t, keySet(t, 3, 2, "vectors"))
	f.grow(3)
	f.publish(t, t0, f.ws[0], f.ws[1])
	valid := f.bundle(t, 0)
	add("valid.bundle", "3 issuers with 2 PST keys each, cosigned by 2 of 3 witnesses", "", "", valid)
	oldSize := f.log.Size()

	// Hostile variants of valid.
	b, _ := verify.ParseBundle(valid)
	mod := func(change func(b *verify.Bundle)) []byte {
		c := *b
		c.Inclusion = append([][]byte(nil), b.Inclusion...)
		change(&c)
		out, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	other, _ := keySet(t, 3, 2, "other vectors").Marshal()
	add("keyset-swapped.bundle", "valid, with another well-formed key set", "", verify.CheckDigest, mod(func(b *verify.Bundle) { b.KeySet = other }))
	add("inclusion-flipped.bundle", "valid, with one bit of an inclusion proof hash flipped", "", verify.CheckInclusion, mod(func(b *verify.Bundle) {
		h := append([]byte(nil), b.Inclusion[1]...)
		h[5] ^= 0x10
		b.Inclusion[1] = h
	}))
	add("index-changed.bundle", "valid, with the index of a neighbouring leaf", "", verify.CheckInclusion, mod(func(b *verify.Bundle) { b.Index++ }))
	add("truncated.bundle", "valid, cut in the middle of the inclusion proof", "", verify.CheckFormat, valid[:bytes.Index(valid, []byte("index "))+30])
	add("trailing-garbage.bundle", "valid, with a byte after the last signature line", "", verify.CheckCheckpoint, append(append([]byte(nil), valid...), 'x'))
	logLine := bytes.Index(valid, []byte("\u2014 "+origin+" "))
	badLog := append([]byte(nil), valid...)
	badLog[logLine+len("\u2014 "+origin+" ")+10] ^= 0x01
	add("log-signature-flipped.bundle", "valid, with one base64 character of the log's signature changed", "", verify.CheckLogSignature, badLog)
	w2 := bytes.Index(valid, []byte("\u2014 witness-2.example "))
	badCos := append([]byte(nil), valid...)
	badCos[w2+len("\u2014 witness-2.example ")+30] ^= 0x01
	add("cosignature-flipped.bundle", "valid, with one base64 character of witness-2's cosignature changed", "", verify.CheckCosignature, badCos)
	add("one-cosignature.bundle", "valid, with witness-2's cosignature line removed: 1 of the 2 required", "", verify.CheckQuorum, bytes.Replace(valid, valid[w2:], nil, 1))

	stale := newFixture(t)
	stale.grow(6)
	stale.snapshot(t, keySet(t, 3, 2, "vectors"))
	stale.grow(3)
	stale.publish(t, t0.Add(-2*time.Hour), stale.ws[0], stale.ws[1])
	add("stale.bundle", "cosignatures made 2 hours before verification (maximum age 1 hour)", "", verify.CheckFreshness, stale.bundle(t, 0))
	unknown := newFixture(t)
	unknown.grow(6)
	unknown.snapshot(t, keySet(t, 3, 2, "vectors"))
	unknown.grow(3)
	unknown.publish(t, t0, bundletest.NewWitness("witness-1.example.evil"), bundletest.NewWitness("stranger.example"))
	add("unknown-witnesses.bundle", "cosigned by 2 witnesses that are not in the policy", "", verify.CheckQuorum, unknown.bundle(t, 0))

	// The log grows: issuer-1 rotates, a fourth issuer arrives.
	ks2 := keySet(t, 3, 2, "vectors")
	ks2.PST["https://issuer-1.example"] = keySet(t, 2, 2, "rotation").PST["https://issuer-1.example"]
	ks2.PST["https://issuer-3.example"] = keySet(t, 4, 2, "newcomer").PST["https://issuer-3.example"]
	f.grow(5)
	f.snapshot(t, ks2)
	f.publish(t, t0, f.ws[1], f.ws[2])
	add("next.bundle", "the next bundle, carrying the consistency proof from valid.bundle's size (issuer-1 changed, issuer-3 added)", "valid.bundle", "", f.bundle(t, oldSize))
	add("next-without-proof.bundle", "the next bundle without a consistency proof", "valid.bundle", verify.CheckConsistency, f.bundle(t, 0))
	add("rollback.bundle", "valid.bundle checked against next.bundle", "next-stored.bundle", verify.CheckRollback, valid)
	nv, err := f.verifier(t, nil).Verify(files["next.bundle"], mustStored(t, f, valid))
	if err != nil {
		t.Fatal(err)
	}
	stored := nv.Stored()
	files["next-stored.bundle"] = stored
	vs = append(vs, vector{File: "next-stored.bundle", Description: "next.bundle as saved for the next check (no consistency section)", Now: now})

	// Deltas (files *.delta, applied with VerifyDelta to Previous).
	held := mustStored(t, f, valid)
	nextB, _ := verify.ParseBundle(files["next.bundle"])
	dl, err := verify.MakeDelta(held.Bundle(), held.Checkpoint.Size, nextB)
	if err != nil {
		t.Fatal(err)
	}
	nextDelta, err := dl.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	add("next.delta", "the delta from valid.bundle to next.bundle (issuer-1 changed, issuer-3 added); applied, it saves as next-stored.bundle", "valid.bundle", "", nextDelta)
	if got, err := f.verifier(t, nil).VerifyDelta(nextDelta, held); err != nil {
		t.Fatal(err)
	} else if !bytes.Equal(got.Stored(), stored) {
		t.Fatal("next.delta applied does not save as next-stored.bundle")
	}
	add("wrong-base.delta", "next.delta applied to next-stored.bundle instead of valid.bundle", "next-stored.bundle", verify.CheckDelta, nextDelta)
	tampered := *dl
	tampered.Changes = append([]verify.DeltaChange(nil), dl.Changes...)
	tampered.Changes[0].Member = bytes.Replace(tampered.Changes[0].Member, []byte(`"batchsize":10`), []byte(`"batchsize":11`), 1)
	tamperedDelta, err := tampered.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	add("member-changed.delta", "next.delta with issuer-1's batch size changed", "valid.bundle", verify.CheckDigest, tamperedDelta)
	f.grow(2)
	f.publish(t, t0.Add(5*time.Minute), f.ws[0], f.ws[1])
	nextStored, err := f.verifier(t, nil).VerifyStored(stored)
	if err != nil {
		t.Fatal(err)
	}
	nextFull, _ := verify.ParseBundle(f.bundle(t, nextStored.Checkpoint.Size))
	ud, err := verify.MakeDelta(nextStored.Bundle(), nextStored.Checkpoint.Size, nextFull)
	if err != nil {
		t.Fatal(err)
	}
	unchanged, err := ud.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	add("unchanged.delta", "nothing changed since next-stored.bundle, 2 more entries: a fresher checkpoint, the consistency and inclusion proofs", "next-stored.bundle", "", unchanged)

	// A fork: same log key, a different history from index 7 on.
	fork := newFixture(t)
	fork.grow(6)
	fork.snapshot(t, keySet(t, 3, 2, "vectors"))
	fork.log.Append([]byte("a leaf the honest log never had"))
	fork.grow(7)
	fork.publish(t, t0, fork.ws[0], fork.ws[2])
	add("fork.bundle", "a log-signed and cosigned bundle of a different history, with its own consistency proof from valid.bundle's size", "valid.bundle", verify.CheckConsistency, fork.bundle(t, oldSize))

	// A log made before the key set root: a digest-form snapshot, then
	// the log's first root-form one, reached by a delta.
	legacy := newFixture(t)
	legacy.log.DigestSnapshots = true
	legacy.grow(6)
	legacy.snapshot(t, keySet(t, 3, 2, "vectors"))
	legacy.grow(3)
	legacy.publish(t, t0, legacy.ws[0], legacy.ws[1])
	lv := legacy.bundle(t, 0)
	add("legacy.bundle", "valid.bundle's key set in a log made before the key set root: its snapshot commits to the key set's SHA-256 digest", "", "", lv)
	lheld := mustStored(t, legacy, lv)
	legacy.log.DigestSnapshots = false
	legacy.grow(5)
	legacy.snapshot(t, ks2)
	legacy.publish(t, t0, legacy.ws[1], legacy.ws[2])
	add("legacy-upgrade.delta", "from legacy.bundle to the log's first root-form snapshot (issuer-1 changed, issuer-3 added): the base line carries legacy.bundle's digest", "legacy.bundle", "", makeDelta(t, legacy, lheld))
	return files, vs
}

func mustStored(t *testing.T, f *fixture, raw []byte) *verify.Verified {
	v, err := f.verifier(t, nil).VerifyStored(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVectors checks testdata/bundle: the generator reproduces it byte for
// byte, and each vector verifies or fails the check it names.
func TestVectors(t *testing.T) {
	files, vs := generateVectors(t)
	index, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	files["vectors.json"] = append(index, '\n')
	if *update {
		if err := os.MkdirAll(vectorDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(vectorDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testdata/bundle/%s differs from the generator's output (%v); run go test ./log/verify -run TestVectors -args -update", name, err)
		}
	}

	// Verify from the files alone.
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pol, err := quorum.Parse(read("witness-policy.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var list []vector
	if err := json.Unmarshal(read("vectors.json"), &list); err != nil {
		t.Fatal(err)
	}
	for _, vc := range list {
		t.Run(vc.File, func(t *testing.T) {
			now, err := time.Parse(time.RFC3339, vc.Now)
			if err != nil {
				t.Fatal(err)
			}
			v, err := verify.New(verify.Config{LogKey: strings.TrimSpace(string(read("log.vkey"))), Policy: pol, MaxAge: time.Hour,
				Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			var prev *verify.Verified
			if vc.Previous != "" {
				if prev, err = v.VerifyStored(read(vc.Previous)); err != nil {
					t.Fatalf("previous %s: %v", vc.Previous, err)
				}
			}
			if strings.HasSuffix(vc.File, ".delta") {
				var got *verify.Verified
				if got, err = v.VerifyDelta(read(vc.File), prev); err == nil {
					_, err = got.KeySet()
				}
			} else {
				_, err = verifyAll(v, read(vc.File), prev)
			}
			if vc.Want == "" {
				if err != nil {
					t.Fatalf("%s: %v", vc.Description, err)
				}
				return
			}
			wantCheck(t, err, vc.Want)
		})
	}
}
