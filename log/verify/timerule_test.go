package verify_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/witness/quorum"
)

// TestCheckEntryTime is the time rule as a table: an entry in a
// checkpoint may not be dated more than TimeSkew after a quorum's
// cosignatures, one not in it not more than TimeSkew before them; a
// minority of contradicting witnesses is not enough.
func TestCheckEntryTime(t *testing.T) {
	pol := policyOf(t, 2, "a", "b", "c")
	c := t0
	skew := verify.TimeSkew
	for _, tc := range []struct {
		name         string
		index, size  uint64
		entry        time.Time
		cosigs       map[string]time.Time
		wantViolated bool
	}{
		{"contained, same time", 5, 10, c, map[string]time.Time{"a": c, "b": c}, false},
		{"contained, dated before the cosignatures", 5, 10, c.Add(-48 * time.Hour), map[string]time.Time{"a": c, "b": c}, false},
		{"contained, exactly the skew later", 5, 10, c.Add(skew), map[string]time.Time{"a": c, "b": c}, false},
		{"contained, just over the skew later", 5, 10, c.Add(skew + time.Millisecond), map[string]time.Time{"a": c, "b": c}, true},
		{"contained, 61 days later", 9, 10, c.Add(1465 * time.Hour), map[string]time.Time{"a": c, "b": c, "c": c}, true},
		{"contained, only one witness contradicted", 5, 10, c.Add(time.Hour), map[string]time.Time{"a": c, "b": c.Add(time.Hour)}, false},
		{"contained, quorum contradicted, third agrees", 5, 10, c.Add(time.Hour), map[string]time.Time{"a": c, "b": c, "c": c.Add(time.Hour)}, true},
		{"not contained, exactly the size", 10, 10, c.Add(-skew - time.Millisecond), map[string]time.Time{"a": c, "b": c}, true},
		{"not contained, exactly the skew earlier", 12, 10, c.Add(-skew), map[string]time.Time{"a": c, "b": c}, false},
		{"not contained, dated later", 12, 10, c.Add(48 * time.Hour), map[string]time.Time{"a": c, "b": c}, false},
		{"not contained, 61 days earlier", 12, 10, c.Add(-1465 * time.Hour), map[string]time.Time{"a": c, "b": c}, true},
		{"no cosignatures", 5, 10, c.Add(1465 * time.Hour), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verify.CheckEntryTime(tc.index, tc.entry, tc.size, tc.cosigs, pol)
			if got := err != nil; got != tc.wantViolated {
				t.Fatalf("violated = %v (%v), want %v", got, err, tc.wantViolated)
			}
			if err != nil && (verify.CheckOf(err) != verify.CheckTime || !strings.Contains(err.Error(), fmt.Sprintf("entry %d", tc.index))) {
				t.Errorf("error %q does not name the time check and the entry", err)
			}
		})
	}
}

// policyOf returns a k-of-n policy over fresh witnesses with the names.
func policyOf(t *testing.T, k int, names ...string) *quorum.Policy {
	t.Helper()
	text := ""
	for _, n := range names {
		w := bundletest.NewWitness(n + ".example")
		text += fmt.Sprintf("witness %s %s\n", n, w.VKey)
	}
	text += fmt.Sprintf("group g %d %s\nquorum g\n", k, strings.Join(names, " "))
	pol, err := quorum.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// TestVerifyTimeCheck forges a bundle whose snapshot is dated 61 days
// after its witnesses' cosignatures (the clock-lie story): the time check
// refuses it, in Verify and in VerifyStored, while the same snapshot
// cosigned after its date passes.
func TestVerifyTimeCheck(t *testing.T) {
	f := newFixture(t)
	f.grow(5)
	if _, err := f.log.AppendSnapshot(keySet(t, 1, 1, "future"), t0.Add(1465*time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.publish(t, t0, f.ws[0], f.ws[1])
	raw := f.bundle(t, 0)
	v := f.verifier(t, nil)
	_, err := v.Verify(raw, nil)
	wantCheck(t, err, verify.CheckTime)
	for _, want := range []string{"more than 10m0s after the cosignatures", "w1 at 2026-06-01T12:00:00Z"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	_, err = v.VerifyStored(raw)
	wantCheck(t, err, verify.CheckTime)

	// Within the skew: accepted.
	g := newFixture(t)
	g.grow(5)
	if _, err := g.log.AppendSnapshot(keySet(t, 1, 1, "near"), t0.Add(verify.TimeSkew)); err != nil {
		t.Fatal(err)
	}
	g.publish(t, t0, g.ws[0], g.ws[1])
	if _, err := g.verifier(t, nil).Verify(g.bundle(t, 0), nil); err != nil {
		t.Fatalf("snapshot dated the skew after its cosignatures refused: %v", err)
	}
}

// TestIssuerProofTimeCheck: an issuer's entry dated 61 days after the
// cosignatures of the checkpoint its proof leads to is refused.
func TestIssuerProofTimeCheck(t *testing.T) {
	f := newFixture(t)
	issuer := "https://issuer.example"
	future := t0.Add(1465 * time.Hour)
	body, acct := issuerCommitment(t, future.Add(48*time.Hour))
	if _, _, err := f.log.AppendCommitment(issuer, body, acct, nil, future); err != nil {
		t.Fatal(err)
	}
	f.publish(t, t0, f.ws[0], f.ws[2])
	raw, err := bundleBuildIssuerProof(f, issuer)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.verifier(t, nil).VerifyIssuerProof(raw, issuer)
	wantCheck(t, err, verify.CheckTime)
}
