package policy_test

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/policy/internal/gen"
	"github.com/keycommit/keycommit/schema"
)

// base registers A at t0 (index 0) and logs its first commitment, keys k1
// and k2 with id 1, at t0 (index 1).
func base(h *harness) {
	h.register(originA, t0)
	h.commit(originA, voprf(1, t0, "k1", "k2"), t0)
}

// withEmergencies adds to base: emergencies at day 10 (index 2) and day 20
// (index 4), each with its final report a day later, and renewals at days
// 150 and 300.
func withEmergencies(h *harness) {
	base(h)
	em := h.commit(originA, emergency(voprf(2, t0+10*day, "k1", "e1"), originA, t0+9*day), t0+10*day)
	h.final(originA, em, t0+11*day)
	em = h.commit(originA, emergency(voprf(3, t0+20*day, "e1", "e2"), originA, t0+19*day), t0+20*day)
	h.final(originA, em, t0+21*day)
	h.register(originA, t0+150*day)
	h.register(originA, t0+300*day)
}

// windowed sets max_keys_per_window to 4, registers A and logs a first
// commitment of 3 keys at t0 (index 2).
func windowed(h *harness) {
	p := policy.DefaultParams()
	p.MaxKeysPerWindow = 4
	h.params(p, t0)
	h.register(originA, t0)
	h.commit(originA, voprf(1, t0, "w1", "w2", "w3"), t0)
}

func registered(h *harness) { h.register(originA, t0) }

func pmb(n int, at int64) *schema.KeyCommitment {
	var ks []key
	for i := range n {
		ks = append(ks, key{seed: "p" + string(rune('a'+i)), label: uint32(i + 1)})
	}
	return pst(schema.PSTV1PMB, 1, 10, at, ks...)
}

func privacyPass(n int) *schema.KeyCommitment {
	d := &schema.IssuerDirectory{IssuerRequestURI: "https://a.example/token"}
	for i := range n {
		d.TokenKeys = append(d.TokenKeys, gen.TokenKey("pp"+string(rune('a'+i))))
	}
	return &schema.KeyCommitment{PrivacyPass: d}
}

type ruleCase struct {
	name  string
	setup func(h *harness)
	cand  func(h *harness) *schema.Entry
	rule  string   // "" to accept
	msg   []string // substrings of the reason
}

func commitAt(origin string, at int64, c func(at int64) *schema.KeyCommitment) func(h *harness) *schema.Entry {
	return func(h *harness) *schema.Entry { return h.entry(origin, schema.KindKeyCommitment, c(at), at) }
}

var ruleCases = []ruleCase{
	// Rotation at most once per min_rotation_interval.
	{"rotation/exactly 60 days later", base,
		commitAt(originA, t0+60*day, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k1", "k3") }), "", nil},
	{"rotation/60 days minus a second", base,
		commitAt(originA, t0+60*day-sec, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k1", "k3") }),
		policy.RuleRotation, []string{"rotation 59 days 23h59m59s after the last one at index 1 (2026-01-01T00:00:00Z); next allowed 2026-03-02T00:00:00Z (min_rotation_interval 60 days)"}},
	{"rotation/12 days later", base,
		commitAt(originA, t0+12*day, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k1", "k3") }),
		policy.RuleRotation, []string{"rotation 12 days after the last one at index 1 (2026-01-01T00:00:00Z); next allowed 2026-03-02T00:00:00Z", "must be an emergency"}},
	{"rotation/no new key is not a rotation", base,
		commitAt(originA, t0+12*day, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k2") }), "", nil},
	{"rotation/clock restarts at an emergency, refused", func(h *harness) {
		base(h)
		em := h.commit(originA, emergency(voprf(2, t0+30*day, "k1", "e1"), originA, t0+29*day), t0+30*day)
		h.final(originA, em, t0+31*day)
	}, commitAt(originA, t0+90*day-sec, func(at int64) *schema.KeyCommitment { return voprf(3, at, "e1", "n1") }),
		policy.RuleRotation, []string{"after the last one at index 2 (2026-01-31T00:00:00Z); next allowed 2026-04-01T00:00:00Z"}},
	{"rotation/clock restarts at an emergency, accepted", func(h *harness) {
		base(h)
		em := h.commit(originA, emergency(voprf(2, t0+30*day, "k1", "e1"), originA, t0+29*day), t0+30*day)
		h.final(originA, em, t0+31*day)
	}, commitAt(originA, t0+90*day, func(at int64) *schema.KeyCommitment { return voprf(3, at, "e1", "n1") }), "", nil},

	// Emergencies.
	{"emergency/faster rotation with a report", base,
		commitAt(originA, t0+12*day, func(at int64) *schema.KeyCommitment {
			return emergency(voprf(2, at, "k1", "k3"), originA, at-day)
		}), "", nil},
	{"emergency/while the last incident is open", func(h *harness) {
		base(h)
		h.commit(originA, emergency(voprf(2, t0+12*day, "k1", "e1"), originA, t0+11*day), t0+12*day)
	}, commitAt(originA, t0+20*day, func(at int64) *schema.KeyCommitment {
		return emergency(voprf(3, at, "e1", "e2"), originA, at-day)
	}), policy.RuleOpenIncident, []string{"the emergency at index 2 (2026-01-13T00:00:00Z) has no final report; log an incident_report entry for index 2"}},
	{"emergency/after the final report", func(h *harness) {
		base(h)
		em := h.commit(originA, emergency(voprf(2, t0+12*day, "k1", "e1"), originA, t0+11*day), t0+12*day)
		h.final(originA, em, t0+15*day)
	}, commitAt(originA, t0+20*day, func(at int64) *schema.KeyCommitment {
		return emergency(voprf(3, at, "e1", "e2"), originA, at-day)
	}), "", nil},
	{"emergency/third in the window", withEmergencies,
		commitAt(originA, t0+375*day-sec, func(at int64) *schema.KeyCommitment {
			return emergency(voprf(4, at, "e3"), originA, at-day)
		}), policy.RuleEmergencyRate, []string{"2 emergencies in the last 365 days already (at most 2, max_emergencies per emergency_window): index 2 (2026-01-11T00:00:00Z), index 4 (2026-01-21T00:00:00Z); next allowed 2027-01-11T00:00:00Z"}},
	{"emergency/first one left the window", withEmergencies,
		commitAt(originA, t0+375*day, func(at int64) *schema.KeyCommitment {
			return emergency(voprf(4, at, "e3"), originA, at-day)
		}), "", nil},
	{"emergency/discovered in the future", base,
		commitAt(originA, t0+12*day, func(at int64) *schema.KeyCommitment {
			return emergency(voprf(2, at, "k1", "k3"), originA, at+1)
		}), policy.RuleIncidentReport, []string{"incident discovered at 2026-01-13T00:00:00.001Z, after the entry time 2026-01-13T00:00:00Z"}},

	// Final reports.
	{"final/answers the open emergency", func(h *harness) {
		base(h)
		h.commit(originA, emergency(voprf(2, t0+12*day, "k1", "e1"), originA, t0+11*day), t0+12*day)
	}, func(h *harness) *schema.Entry {
		return h.entry(originA, schema.KindIncidentReport, &schema.IncidentFinal{Emergency: 2, Report: *gen.Report(originA, t0+11*day)}, t0+13*day)
	}, "", nil},
	{"final/no emergency", base, func(h *harness) *schema.Entry {
		return h.entry(originA, schema.KindIncidentReport, &schema.IncidentFinal{Emergency: 1, Report: *gen.Report(originA, t0)}, t0+day)
	}, policy.RuleIncidentReport, []string{"issuer https://a.example has no emergency rotation"}},
	{"final/wrong index", func(h *harness) {
		base(h)
		h.commit(originA, emergency(voprf(2, t0+12*day, "k1", "e1"), originA, t0+11*day), t0+12*day)
	}, func(h *harness) *schema.Entry {
		return h.entry(originA, schema.KindIncidentReport, &schema.IncidentFinal{Emergency: 1, Report: *gen.Report(originA, t0+11*day)}, t0+13*day)
	}, policy.RuleIncidentReport, []string{"final report names index 1, but issuer https://a.example's latest emergency is at index 2 (2026-01-13T00:00:00Z)"}},
	{"final/twice", func(h *harness) {
		base(h)
		h.final(originA, h.commit(originA, emergency(voprf(2, t0+12*day, "k1", "e1"), originA, t0+11*day), t0+12*day), t0+13*day)
	}, func(h *harness) *schema.Entry {
		return h.entry(originA, schema.KindIncidentReport, &schema.IncidentFinal{Emergency: 2, Report: *gen.Report(originA, t0+11*day)}, t0+14*day)
	}, policy.RuleIncidentReport, []string{"the emergency at index 2 already has its final report at index 3"}},

	// Key counts.
	{"key-count/6 VOPRF keys", registered,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment { return voprf(1, at, seeds("v", 6)...) }), "", nil},
	{"key-count/7 VOPRF keys", registered,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment { return voprf(1, at, seeds("v", 7)...) }),
		policy.RuleKeyCount, []string{"PrivateStateTokenV1VOPRF has 7 keys; at most 6 (max_keys_voprf)"}},
	{"key-count/3 PMB keys", registered,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment { return pmb(3, at) }), "", nil},
	{"key-count/4 PMB keys", registered,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment { return pmb(4, at) }),
		policy.RuleKeyCount, []string{"PrivateStateTokenV1PMB has 4 keys; at most 3 (max_keys_pmb)"}},
	{"key-count/6 privacy pass keys", registered,
		commitAt(originA, t0, func(int64) *schema.KeyCommitment { return privacyPass(6) }), "", nil},
	{"key-count/7 privacy pass keys", registered,
		commitAt(originA, t0, func(int64) *schema.KeyCommitment { return privacyPass(7) }),
		policy.RuleKeyCount, []string{"privacy pass directory has 7 token-keys; at most 6 (max_keys_privacy_pass)"}},

	// Distinct keys per rolling key window (max 4 here, 3 used at t0).
	{"key-window/up to the limit", windowed,
		commitAt(originA, t0+day, func(at int64) *schema.KeyCommitment {
			return emergency(voprf(2, at, "w1", "w2", "w3", "w4"), originA, at-sec)
		}), "", nil},
	{"key-window/over the limit", windowed,
		commitAt(originA, t0+day, func(at int64) *schema.KeyCommitment {
			return emergency(voprf(2, at, "w1", "w2", "w3", "w4", "w5"), originA, at-sec)
		}), policy.RuleKeyWindow, []string{"commitment adds 2 new keys; with the 3 added in the last 60 days (3 at index 2 (2026-01-01T00:00:00Z)) that makes 5, above max_keys_per_window 4; next allowed 2026-03-02T00:00:00Z"}},
	{"key-window/a second before the old keys leave", windowed,
		commitAt(originA, t0+60*day-sec, func(at int64) *schema.KeyCommitment {
			return emergency(voprf(2, at, "w1", "w4", "w5"), originA, at-sec)
		}), policy.RuleKeyWindow, []string{"next allowed 2026-03-02T00:00:00Z"}},
	{"key-window/once the old keys left", windowed,
		commitAt(originA, t0+60*day, func(at int64) *schema.KeyCommitment { return voprf(2, at, "w1", "w4", "w5") }), "", nil},
	{"key-window/one commitment over the limit", func(h *harness) {
		p := policy.DefaultParams()
		p.MaxKeysPerWindow = 4
		h.params(p, t0)
		h.register(originA, t0)
	}, commitAt(originA, t0, func(at int64) *schema.KeyCommitment { return voprf(1, at, seeds("x", 5)...) }),
		policy.RuleKeyWindow, []string{"commitment adds 5 new keys; at most 4 in any 60 days (max_keys_per_window)"}},

	// Commitment ids strictly increase.
	{"commitment-id/increases", base,
		commitAt(originA, t0+day, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k1") }), "", nil},
	{"commitment-id/same id", base,
		commitAt(originA, t0+day, func(at int64) *schema.KeyCommitment { return voprf(1, at, "k1") }),
		policy.RuleCommitmentID, []string{"PrivateStateTokenV1VOPRF id 1 does not increase on id 1 of the commitment at index 1; use an id above 1"}},

	// Key lifetimes.
	{"expiry/a millisecond after the entry", registered,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment {
			return pst(schema.PSTV1VOPRF, 1, 10, at, key{"k1", 1, at + 1})
		}), "", nil},
	{"expiry/at the entry time", registered,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment {
			return pst(schema.PSTV1VOPRF, 1, 10, at, key{"k1", 1, 0}, key{"k2", 7, at})
		}), policy.RuleExpiry, []string{"PrivateStateTokenV1VOPRF key 7 expired at 2026-01-01T00:00:00Z, not after the entry time 2026-01-01T00:00:00Z"}},
	{"expiry/exactly the maximum lifetime", registered,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment {
			return pst(schema.PSTV1VOPRF, 1, 10, at, key{"k1", 1, at + 365*day})
		}), "", nil},
	{"expiry/beyond the maximum lifetime", registered,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment {
			return pst(schema.PSTV1VOPRF, 1, 10, at, key{"k1", 1, at + 365*day + 1})
		}), policy.RuleExpiry, []string{"key 1 expires at 2027-01-01T00:00:00.001Z, more than max_key_lifetime (365 days) after the entry time 2026-01-01T00:00:00Z; latest allowed 2027-01-01T00:00:00Z"}},

	// Keys belong to one issuer, and retired keys stay retired.
	{"key-reuse/another issuer's key", func(h *harness) { base(h); h.register(originB, t0) },
		commitAt(originB, t0+day, func(at int64) *schema.KeyCommitment { return voprf(1, at, "b1", "k2") }),
		policy.RuleKeyReuse, []string{"PrivateStateTokenV1VOPRF key 2 (key id ", ") is already committed by https://a.example (first at index 1)"}},
	{"key-reuse/own keys", func(h *harness) { base(h); h.register(originB, t0) },
		commitAt(originB, t0+day, func(at int64) *schema.KeyCommitment { return voprf(1, at, "b1", "b2") }), "", nil},
	{"retired-key/brought back", func(h *harness) { base(h); h.commit(originA, voprf(2, t0+day, "k1"), t0+day) },
		commitAt(originA, t0+90*day, func(at int64) *schema.KeyCommitment { return voprf(3, at, "k1", "k2") }),
		policy.RuleRetiredKey, []string{"key 2 (key id ", ") was first committed at index 1 and retired at index 2; a retired key cannot come back"}},
	{"retired-key/kept keys are not retired", func(h *harness) { base(h); h.commit(originA, voprf(2, t0+day, "k1"), t0+day) },
		commitAt(originA, t0+90*day, func(at int64) *schema.KeyCommitment { return voprf(3, at, "k1", "k3") }), "", nil},

	// Batch size.
	{"batch-size/Chrome's maximum", registered,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment { return pst(schema.PSTV1VOPRF, 1, 100, at, key{"k1", 1, 0}) }), "", nil},
	{"batch-size/above", registered,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment { return pst(schema.PSTV1VOPRF, 1, 101, at, key{"k1", 1, 0}) }),
		policy.RuleBatchSize, []string{"PrivateStateTokenV1VOPRF batchsize 101 is outside [1, 100] (min_batch_size, max_batch_size)"}},
	{"batch-size/below a raised minimum", func(h *harness) {
		p := policy.DefaultParams()
		p.MinBatchSize = 5
		h.params(p, t0)
		h.register(originA, t0)
	}, commitAt(originA, t0, func(at int64) *schema.KeyCommitment { return pst(schema.PSTV1VOPRF, 1, 4, at, key{"k1", 1, 0}) }),
		policy.RuleBatchSize, []string{"batchsize 4 is outside [5, 100]"}},

	// Registration.
	{"registration/not registered", base,
		commitAt(originB, t0+day, func(at int64) *schema.KeyCommitment { return voprf(1, at, "b1") }),
		policy.RuleRegistration, []string{"issuer https://b.example is not registered; register it before submitting a key_commitment"}},
	{"registration/a millisecond before it lapses", base,
		commitAt(originA, t0+183*day-1, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k1") }), "", nil},
	{"registration/lapsed", base,
		commitAt(originA, t0+183*day, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k1") }),
		policy.RuleRegistration, []string{"registration of https://a.example (index 0) lapsed at 2026-07-03T00:00:00Z; renew it"}},
	{"registration/renewed after lapsing", func(h *harness) { base(h); h.register(originA, t0+200*day) },
		commitAt(originA, t0+201*day, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k1") }), "", nil},
	{"registration/key change with proof", base, func(h *harness) *schema.Entry {
		nk := gen.AccountKey("new")
		r := &schema.Registration{Contact: "mailto:new@example.com", AccountKey: nk.Public().(ed25519.PublicKey)}
		if err := r.ProveKeyPossession(originA, h.prev(originA), nk); err != nil {
			h.t.Fatal(err)
		}
		return h.entry(originA, schema.KindRegistration, r, t0+day)
	}, "", nil},
	{"registration/key change without proof", base, func(h *harness) *schema.Entry {
		r := &schema.Registration{Contact: "mailto:new@example.com", AccountKey: gen.AccountKey("new").Public().(ed25519.PublicKey)}
		return h.entry(originA, schema.KindRegistration, r, t0+day)
	}, policy.RuleRegistration, []string{"account key change for https://a.example: registration changes the account key but has no key_proof signed by the new key"}},
	{"registration/key change with a proof by another key", base, func(h *harness) *schema.Entry {
		nk := gen.AccountKey("new")
		r := &schema.Registration{Contact: "mailto:new@example.com", AccountKey: nk.Public().(ed25519.PublicKey)}
		if err := r.ProveKeyPossession(originA, h.prev(originA), nk); err != nil {
			h.t.Fatal(err)
		}
		r.AccountKey = gen.AccountKey("other").Public().(ed25519.PublicKey)
		return h.entry(originA, schema.KindRegistration, r, t0+day)
	}, policy.RuleRegistration, []string{"key_proof does not verify under the new account key"}},
	{"registration/proof replayed for another origin", func(h *harness) { base(h); h.register(originB, t0) }, func(h *harness) *schema.Entry {
		nk := gen.AccountKey("new")
		r := &schema.Registration{Contact: "mailto:new@example.com", AccountKey: nk.Public().(ed25519.PublicKey)}
		if err := r.ProveKeyPossession(originA, h.prev(originA), nk); err != nil {
			h.t.Fatal(err)
		}
		return h.entry(originB, schema.KindRegistration, r, t0+day)
	}, policy.RuleRegistration, []string{"key_proof does not verify"}},

	// Time, prev and signatures.
	{"time/same time as the latest entry", base,
		commitAt(originA, t0, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k1") }), "", nil},
	{"time/before the latest entry", base,
		commitAt(originA, t0-1, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k1") }),
		policy.RuleTime, []string{"log time 2025-12-31T23:59:59.999Z is before issuer https://a.example's latest entry at index 1 (2026-01-01T00:00:00Z)"}},
	{"prev/stale", base, func(h *harness) *schema.Entry {
		e, err := gen.Signed(h.key[originA], originA, schema.KindKeyCommitment, make([]byte, 32), voprf(2, t0+day, "k1"), t0+day)
		if err != nil {
			h.t.Fatal(err)
		}
		return e
	}, policy.RulePrev, []string{"prev does not match issuer https://a.example's latest entry (index 1"}},
	{"prev/first registration with a prev", func(*harness) {}, func(h *harness) *schema.Entry {
		k := gen.AccountKey(originA)
		e, err := gen.Signed(k, originA, schema.KindRegistration, make([]byte, 32), &schema.Registration{Contact: "mailto:a@example.com", AccountKey: k.Public().(ed25519.PublicKey)}, t0)
		if err != nil {
			h.t.Fatal(err)
		}
		return e
	}, policy.RulePrev, []string{"prev must be empty for the first entry of issuer https://a.example"}},
	{"signature/another key", base, func(h *harness) *schema.Entry {
		e, err := gen.Signed(gen.AccountKey("intruder"), originA, schema.KindKeyCommitment, h.prev(originA), voprf(2, t0+day, "k1"), t0+day)
		if err != nil {
			h.t.Fatal(err)
		}
		return e
	}, policy.RuleSignature, []string{"bad signature: key_commitment statement for \"https://a.example\" does not verify under the account key"}},
	{"signature/registration not signed by the key it registers", func(*harness) {}, func(h *harness) *schema.Entry {
		e, err := gen.Signed(gen.AccountKey("intruder"), originA, schema.KindRegistration, nil, &schema.Registration{Contact: "mailto:a@example.com", AccountKey: gen.AccountKey(originA).Public().(ed25519.PublicKey)}, t0)
		if err != nil {
			h.t.Fatal(err)
		}
		return e
	}, policy.RuleSignature, []string{"bad signature"}},

	// Parameters.
	{"params/shorter rotation interval", func(h *harness) {
		base(h)
		p := policy.DefaultParams()
		p.MinRotationInterval = 30 * 24 * 3600
		h.params(p, t0+day)
	}, commitAt(originA, t0+30*day, func(at int64) *schema.KeyCommitment { return voprf(2, at, "k1", "k3") }), "", nil},
	{"params/beyond Chrome's key limit", base, func(h *harness) *schema.Entry {
		p := policy.DefaultParams()
		p.MaxKeysVOPRF = 7
		e, err := schema.NewLogEntry(schema.KindPolicyParams, t0+day, &p)
		if err != nil {
			h.t.Fatal(err)
		}
		return e
	}, policy.RuleParams, []string{"max_keys_voprf 7 is not in 1..6 (Chrome uses at most 6)"}},
	{"params/window beyond the maximum", base, func(h *harness) *schema.Entry {
		p := policy.DefaultParams()
		p.KeyWindow = policy.MaxWindow + 1
		e, err := schema.NewLogEntry(schema.KindPolicyParams, t0+day, &p)
		if err != nil {
			h.t.Fatal(err)
		}
		return e
	}, policy.RuleParams, []string{"key_window 63072001 is not in 1..63072000 seconds"}},

	// Snapshots.
	{"snapshot/right root", base, func(h *harness) *schema.Entry { return snapshotEntry(h, "root", false) }, "", nil},
	{"snapshot/wrong root", base, func(h *harness) *schema.Entry { return snapshotEntry(h, "root", true) },
		policy.RuleSnapshot, []string{"snapshot says 1 issuers with root"}},
	{"snapshot/right digest", base, func(h *harness) *schema.Entry { return snapshotEntry(h, "digest", false) }, "", nil},
	{"snapshot/wrong digest", base, func(h *harness) *schema.Entry { return snapshotEntry(h, "digest", true) },
		policy.RuleSnapshot, []string{"snapshot says 1 issuers with digest"}},
	{"snapshot/digest given as root", base, func(h *harness) *schema.Entry {
		e := snapshotEntry(h, "digest", false)
		b, _ := e.ParsedBody()
		s := *b.(*schema.Snapshot)
		s.Root, s.Digest = s.Digest, nil
		e, err := schema.NewLogEntry(schema.KindSnapshot, t0+day, &s)
		if err != nil {
			h.t.Fatal(err)
		}
		return e
	}, policy.RuleSnapshot, []string{"snapshot says 1 issuers with root"}},
}

// snapshotEntry computes the key set from what base committed, not from
// the policy state, and commits to it in form ("root" or "digest").
func snapshotEntry(h *harness, form string, wrong bool) *schema.Entry {
	ks := &schema.KeySet{PST: map[string]schema.PSTCommitment{originA: voprf(1, t0, "k1", "k2").PST}}
	s := &schema.Snapshot{Issuers: 1}
	var err error
	if form == "root" {
		s.Root, err = ks.Root()
	} else {
		s.Digest, err = ks.Digest()
	}
	if err != nil {
		h.t.Fatal(err)
	}
	if wrong {
		s.Root = flipFirst(s.Root)
		s.Digest = flipFirst(s.Digest)
	}
	e, err := schema.NewLogEntry(schema.KindSnapshot, t0+day, s)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

func flipFirst(b []byte) []byte {
	if b != nil {
		b[0] ^= 1
	}
	return b
}

func TestRules(t *testing.T) {
	for _, c := range ruleCases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			c.setup(h)
			e := c.cand(h)
			d := h.eval(e)
			if c.rule == "" {
				if !d.Accept || d.Rule != "" || d.Reason != "" || d.Err() != nil {
					t.Fatalf("refused: %v", d.Err())
				}
				// An accepted entry applies cleanly.
				b, _ := e.Marshal()
				if err := h.st.Apply(e, h.st.Size(), gen.LeafHash(b)); err != nil {
					t.Fatal(err)
				}
				return
			}
			if d.Accept {
				t.Fatalf("accepted; want refusal by rule %s", c.rule)
			}
			if d.Rule != c.rule {
				t.Fatalf("refused by rule %s (%s); want rule %s", d.Rule, d.Reason, c.rule)
			}
			for _, m := range c.msg {
				if !strings.Contains(d.Reason, m) {
					t.Errorf("reason %q\ndoes not contain %q", d.Reason, m)
				}
			}
			if err := d.Err(); err == nil || !strings.Contains(err.Error(), "policy rule "+c.rule+": ") {
				t.Errorf("Err() = %v", err)
			}
		})
	}
}

// TestEveryRuleTested checks that the table refuses by every rule, and
// accepts something next to each.
func TestEveryRuleTested(t *testing.T) {
	refused := map[string]bool{}
	for _, c := range ruleCases {
		refused[c.rule] = true
	}
	for _, r := range policy.Rules {
		switch r.Name {
		case policy.RuleMalformed: // TestMalformed
			continue
		case policy.RuleLogBinding, policy.RuleOriginControl: // TestOriginRules
			continue
		}
		if !refused[r.Name] {
			t.Errorf("no table case is refused by rule %s", r.Name)
		}
	}
}

func TestMalformed(t *testing.T) {
	h := newHarness(t)
	base(h)
	e := h.entry(originA, schema.KindKeyCommitment, voprf(2, t0+day, "k1"), t0+day)
	for name, d := range map[string]policy.Decision{
		"index ahead":  policy.Evaluate(h.st, e, h.st.Size()+1),
		"index behind": policy.Evaluate(h.st, e, h.st.Size()-1),
		"negative time": func() policy.Decision {
			c := *e
			c.Time = -1
			return policy.Evaluate(h.st, &c, h.st.Size())
		}(),
		"body not canonical": func() policy.Decision {
			c := *e
			c.Body = append([]byte(" "), e.Body...)
			return policy.Evaluate(h.st, &c, h.st.Size())
		}(),
		"log entry with a signature": func() policy.Decision {
			p := policy.DefaultParams()
			le, err := schema.NewLogEntry(schema.KindPolicyParams, t0+day, &p)
			if err != nil {
				t.Fatal(err)
			}
			le.Sig = make([]byte, 64)
			return policy.Evaluate(h.st, le, h.st.Size())
		}(),
	} {
		if d.Accept || d.Rule != policy.RuleMalformed {
			t.Errorf("%s: got %+v, want refusal by %s", name, d, policy.RuleMalformed)
		}
	}
	if d := policy.Evaluate(h.st, e, h.st.Size()); !d.Accept {
		t.Errorf("the unmangled entry is refused: %v", d.Err())
	}
}

func TestCheckCommitment(t *testing.T) {
	h := newHarness(t)
	base(h)
	// A first commitment of a new issuer: fine.
	if ds := policy.CheckCommitment(h.st, originB, voprf(1, t0, "b1"), t0); len(ds) != 0 {
		t.Errorf("first commitment refused: %+v", ds)
	}
	// Several problems at once: an expired key, a key of A's, a batch size
	// above Chrome's, a rotation too early.
	c := pst(schema.PSTV1VOPRF, 1, 500, t0+day, key{"k1", 1, 0}, key{"z", 2, t0}, key{"new", 3, 0})
	got := map[string]bool{}
	for _, d := range policy.CheckCommitment(h.st, originA, c, t0+day) {
		got[d.Rule] = true
	}
	for _, r := range []string{policy.RuleBatchSize, policy.RuleCommitmentID, policy.RuleExpiry, policy.RuleRotation} {
		if !got[r] {
			t.Errorf("CheckCommitment did not report rule %s (got %v)", r, got)
		}
	}
	if ds := policy.CheckCommitment(h.st, originB, voprf(1, t0, "k1"), t0); len(ds) != 1 || ds[0].Rule != policy.RuleKeyReuse {
		t.Errorf("another issuer's key: %+v", ds)
	}
}
