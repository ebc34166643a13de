package policy_test

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/policy/internal/gen"
	"github.com/keycommit/keycommit/schema"
)

// lapse is after the default registration lifetime of a registration at t0.
const lapse = t0 + 184*day

// signedFor returns a statement by origin signed with key for the log
// named logName after the harness's prev, with a control record when
// control is set.
func signedFor(h *harness, key ed25519.PrivateKey, logName, origin string, k schema.Kind, body any, at int64, control bool) *schema.Entry {
	h.t.Helper()
	e, err := gen.Signed(key, origin, k, h.prev(origin), body, at)
	if err != nil {
		h.t.Fatal(err)
	}
	if e.Log != logName {
		e.Log = logName
		sub := e.Submission()
		sub.Log = logName
		s, err := schema.Sign(sub.Statement, key)
		if err != nil {
			h.t.Fatal(err)
		}
		e.Sig = s.Sig
		if r, ok := body.(*schema.Registration); ok {
			e.Control.URL = schema.ChallengeURL(logName, origin, r.AccountKey)
		}
	}
	if !control {
		e.Control = nil
	}
	return e
}

func registration(key ed25519.PrivateKey) *schema.Registration {
	return &schema.Registration{Contact: "mailto:ops@example.com", AccountKey: key.Public().(ed25519.PublicKey)}
}

// TestOriginRules: log binding, proof of origin control, reclaim after
// a lapse, and the legacy entry format.
func TestOriginRules(t *testing.T) {
	squatter := gen.AccountKey("squatter")
	owner := gen.AccountKey("owner")
	for _, c := range []struct {
		name  string
		setup func(*harness)
		cand  func(*harness) *schema.Entry
		rule  string
		msg   []string
	}{
		{"first registration with proof of control", func(*harness) {}, func(h *harness) *schema.Entry {
			return signedFor(h, owner, gen.LogName, originA, schema.KindRegistration, registration(owner), t0, true)
		}, "", nil},
		{"first registration without proof of control", func(*harness) {}, func(h *harness) *schema.Entry {
			return signedFor(h, owner, gen.LogName, originA, schema.KindRegistration, registration(owner), t0, false)
		}, policy.RuleOriginControl, []string{"the first registration of https://a.example needs proof of control of the origin, and the log recorded none; serve the challenge at https://a.example/.well-known/keycommit-challenge/"}},
		{"proof of control for another key", func(*harness) {}, func(h *harness) *schema.Entry {
			e := signedFor(h, owner, gen.LogName, originA, schema.KindRegistration, registration(owner), t0, true)
			e.Control.URL = schema.ChallengeURL(gen.LogName, originA, squatter.Public().(ed25519.PublicKey))
			return e
		}, policy.RuleOriginControl, []string{"the log's record is of https https://a.example/.well-known/keycommit-challenge/", ", want https https://a.example/.well-known/keycommit-challenge/"}},
		{"proof of control too old", func(*harness) {}, func(h *harness) *schema.Entry {
			e := signedFor(h, owner, gen.LogName, originA, schema.KindRegistration, registration(owner), t0, true)
			e.Control.Time = t0 - policy.MaxControlAge - 1
			return e
		}, policy.RuleOriginControl, []string{"not within 1h0m0s before the entry time"}},
		{"proof of control after the entry", func(*harness) {}, func(h *harness) *schema.Entry {
			e := signedFor(h, owner, gen.LogName, originA, schema.KindRegistration, registration(owner), t0, true)
			e.Control.Time = t0 + 1
			return e
		}, policy.RuleOriginControl, []string{"not within"}},
		{"registration for another log", func(*harness) {}, func(h *harness) *schema.Entry {
			return signedFor(h, owner, "other.example/log", originA, schema.KindRegistration, registration(owner), t0, true)
		}, policy.RuleLogBinding, []string{`signed for log "other.example/log", not for this log "keycommit.example/log/gen"`}},
		{"commitment for another log", base, func(h *harness) *schema.Entry {
			return signedFor(h, gen.AccountKey(originA), "other.example/log", originA, schema.KindKeyCommitment, voprf(2, t0+day, "k1"), t0+day, false)
		}, policy.RuleLogBinding, []string{`the key_commitment statement for https://a.example is signed for log "other.example/log"`}},
		{"statement naming no log", base, func(h *harness) *schema.Entry {
			e := signedFor(h, gen.AccountKey(originA), gen.LogName, originA, schema.KindKeyCommitment, voprf(2, t0+day, "k1"), t0+day, false)
			e.Log = ""
			return e
		}, policy.RuleLogBinding, []string{"names no log"}},
		{"renewal before the lapse needs no proof", base, func(h *harness) *schema.Entry {
			return signedFor(h, gen.AccountKey(originA), gen.LogName, originA, schema.KindRegistration, registration(gen.AccountKey(originA)), t0+100*day, false)
		}, "", nil},
		{"squatter's key cannot take over before the lapse", base, func(h *harness) *schema.Entry {
			return signedFor(h, squatter, gen.LogName, originA, schema.KindRegistration, registration(squatter), t0+100*day, true)
		}, policy.RuleSignature, []string{"bad signature"}},
		{"renewal after the lapse needs proof", base, func(h *harness) *schema.Entry {
			return signedFor(h, gen.AccountKey(originA), gen.LogName, originA, schema.KindRegistration, registration(gen.AccountKey(originA)), lapse, false)
		}, policy.RuleOriginControl, []string{"a registration of https://a.example after its registration (index 0) lapsed at"}},
		{"reclaim after the lapse with proof", base, func(h *harness) *schema.Entry {
			return signedFor(h, owner, gen.LogName, originA, schema.KindRegistration, registration(owner), lapse, true)
		}, "", nil},
		{"reclaim after the lapse without proof", base, func(h *harness) *schema.Entry {
			return signedFor(h, owner, gen.LogName, originA, schema.KindRegistration, registration(owner), lapse, false)
		}, policy.RuleOriginControl, []string{"lapsed at"}},
		{"reclaim must name the latest entry", base, func(h *harness) *schema.Entry {
			e := signedFor(h, owner, gen.LogName, originA, schema.KindRegistration, registration(owner), lapse, true)
			e.Prev = nil
			return e
		}, policy.RulePrev, nil},
		{"reclaim signed by another key than it registers", base, func(h *harness) *schema.Entry {
			e := signedFor(h, squatter, gen.LogName, originA, schema.KindRegistration, registration(owner), lapse, true)
			return e
		}, policy.RuleSignature, nil},
		{"legacy entry after a current one", base, func(h *harness) *schema.Entry {
			e := signedFor(h, gen.AccountKey(originA), gen.LogName, originA, schema.KindKeyCommitment, voprf(2, t0+day, "k1"), t0+day, false)
			e.V, e.Log = schema.VersionLegacy, ""
			return e
		}, policy.RuleMalformed, []string{"an upgraded log never writes legacy entries"}},
		{"origin in a non-canonical spelling", func(*harness) {}, func(h *harness) *schema.Entry {
			return signedFor(h, owner, gen.LogName, "https://A.example", schema.KindRegistration, registration(owner), t0, true)
		}, policy.RuleMalformed, []string{`not in its canonical spelling "https://a.example"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			c.setup(h)
			e := c.cand(h)
			d := policy.Evaluate(h.st, e, h.st.Size())
			if c.rule == "" {
				if !d.Accept {
					t.Fatalf("refused: %v", d.Err())
				}
				return
			}
			if d.Accept || d.Rule != c.rule {
				t.Fatalf("decision %+v; want refusal by rule %s", d, c.rule)
			}
			for _, m := range c.msg {
				if !strings.Contains(d.Reason, m) {
					t.Errorf("reason %q\ndoes not contain %q", d.Reason, m)
				}
			}
		})
	}
}

// TestReclaimResets: after a reclaim, the new key signs, the previous
// owner's key cannot, its commitment leaves the key set and its keys are
// retired; the status lists the reclaim.
func TestReclaimResets(t *testing.T) {
	h := newHarness(t)
	base(h)
	owner := gen.AccountKey("owner")
	e := signedFor(h, owner, gen.LogName, originA, schema.KindRegistration, registration(owner), lapse, true)
	idx := h.add(e)
	is, _ := h.st.Issuer(originA)
	if len(is.Reclaims) != 1 || is.Reclaims[0].Index != idx || is.Reclaims[0].Lapsed != 0 || is.Commitment != nil || is.Control == nil {
		t.Fatalf("issuer after the reclaim: reclaims %+v, commitment %v, control %v", is.Reclaims, is.Commitment, is.Control)
	}
	if ks := h.st.KeySet(lapse + 1); len(ks.PST) != 0 {
		t.Errorf("the previous owner's commitment is still in the key set: %v", ks.PST)
	}
	old := signedFor(h, gen.AccountKey(originA), gen.LogName, originA, schema.KindKeyCommitment, voprf(5, lapse+day, "n1"), lapse+day, false)
	if d := policy.Evaluate(h.st, old, h.st.Size()); d.Rule != policy.RuleSignature {
		t.Errorf("the previous owner's commitment after the reclaim: %+v, want rule signature", d)
	}
	back := signedFor(h, owner, gen.LogName, originA, schema.KindKeyCommitment, voprf(5, lapse+day, "k1"), lapse+day, false)
	if d := policy.Evaluate(h.st, back, h.st.Size()); d.Rule != policy.RuleRetiredKey {
		t.Errorf("the previous owner's key brought back by the new owner: %+v, want rule retired-key", d)
	}
	st, ok := h.st.Status(originA, lapse+day)
	if !ok || len(st.Reclaims) != 1 || st.Reclaims[0].Index != idx {
		t.Errorf("status lists reclaims %+v, want the one at index %d", st, idx)
	}
}
