package monitor

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

// TestSignaturesCheckedDespitePreverify: the fetch workers check
// signatures speculatively against the account key they last saw, so a
// log that admits a statement signed by a key that is not (or no longer)
// in force must still be caught. In one bundle: issuer A changes its
// account key and then commits signed with its old key (the workers still
// hold the old key, under which the signature verifies); issuer B commits
// with a signature by a stranger's key; issuer C's first registration is
// signed by a key other than the one it registers. Every other entry must
// pass.
func TestSignaturesCheckedDespitePreverify(t *testing.T) {
	l := newTestLog(t, "example.com/preverify")
	g := l.gen
	a, b, c := "https://a.example", "https://b.example", "https://c.example"
	must[uint64](t)(g.Register(a))
	must[uint64](t)(g.Commit(a, 2, 3))
	must[uint64](t)(g.Register(b))
	must[uint64](t)(g.Commit(b, 2, 3))
	g.Advance(time.Hour)

	sign := func(origin string, k schema.Kind, body any, key ed25519.PrivateKey) *schema.Entry {
		t.Helper()
		raw, err := schema.CanonicalizeBody(k, body)
		if err != nil {
			t.Fatal(err)
		}
		st := schema.Statement{Kind: k, Log: g.Log.Origin(), Issuer: origin, Body: raw}
		if is, ok := g.State.Issuer(origin); ok {
			st.Prev = append([]byte(nil), is.LastLeafHash[:]...)
		}
		sub, err := schema.Sign(st, key)
		if err != nil {
			t.Fatal(err)
		}
		return schema.NewEntry(sub, g.Now)
	}

	// A moves to a new account key, properly.
	oldA := g.AccountKey(a)
	newA := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	reg := &schema.Registration{Contact: "mailto:ops@a.example", AccountKey: newA.Public().(ed25519.PublicKey)}
	is, _ := g.State.Issuer(a)
	if err := reg.ProveKeyPossession(a, is.LastLeafHash[:], newA); err != nil {
		t.Fatal(err)
	}
	must[uint64](t)(g.Append(sign(a, schema.KindRegistration, reg, oldA)))
	// Then a commitment signed with the old key, in the same bundle.
	ce := must[*schema.Entry](t)(g.CommitEntry(a, 0, 3, nil))
	body, err := ce.ParsedBody()
	if err != nil {
		t.Fatal(err)
	}
	badA := must[uint64](t)(g.Force(sign(a, schema.KindKeyCommitment, body, oldA)))

	// B's commitment signed by a stranger.
	stranger := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 7))
	cb := must[*schema.Entry](t)(g.CommitEntry(b, 0, 3, nil))
	body, err = cb.ParsedBody()
	if err != nil {
		t.Fatal(err)
	}
	badB := must[uint64](t)(g.Force(sign(b, schema.KindKeyCommitment, body, stranger)))

	// C registers a key it does not hold.
	regC := &schema.Registration{Contact: "mailto:ops@c.example", AccountKey: newA.Public().(ed25519.PublicKey)}
	badC := must[uint64](t)(g.Force(sign(c, schema.KindRegistration, regC, stranger)))
	must[uint64](t)(g.Snapshot())

	m := newTestMonitor(t, "", nil, l)
	rep := m.once(t)
	if len(rep.Errors) != 0 || rep.Logs[0].VerifiedSize != l.Size() {
		t.Fatalf("catch-up did not complete: %+v", rep)
	}
	got := map[int64]Alert{}
	for _, al := range m.out.alerts(t) {
		if al.Index == nil {
			t.Fatalf("alert without an index: %+v", al)
		}
		got[*al.Index] = al
	}
	for _, idx := range []uint64{badA, badB, badC} {
		al, ok := got[int64(idx)]
		if !ok || al.Kind != KindPolicy || al.Rule != policy.RuleSignature {
			t.Errorf("entry %d: alert %+v, want a policy alert with rule %q", idx, al, policy.RuleSignature)
		}
		delete(got, int64(idx))
	}
	for idx, al := range got {
		t.Errorf("unexpected alert at %d: %+v", idx, al)
	}
}
