package policy

import (
	"bytes"
	"crypto/ed25519"
	"strings"

	"github.com/keycommit/keycommit/schema"
)

// maxTime bounds entry times (ms): the start of the year 3000.
const maxTime = 32503680000000

// evaluate is Evaluate, skipping the signature check when the key that
// must sign e is exactly verified (see EvaluatePreverified).
func evaluate(st *State, e *schema.Entry, idx uint64, verified ed25519.PublicKey) Decision {
	if idx != st.size {
		return reject(RuleMalformed, "entry evaluated at index %d but the log has %d entries", idx, st.size)
	}
	if e.Time < 0 || e.Time > maxTime {
		return reject(RuleMalformed, "entry time %d ms is outside 0..%d (year 3000)", e.Time, int64(maxTime))
	}
	if d, ok := checkVersion(st, e); !ok {
		return d
	}
	body, err := e.ParsedBody()
	if err != nil {
		return reject(RuleMalformed, "%v", err)
	}
	if !e.Kind.IssuerSigned() {
		if e.Issuer != "" || len(e.Prev) != 0 || len(e.Sig) != 0 {
			return reject(RuleMalformed, "%s entry is written by the log and must have no issuer, prev or sig", e.Kind)
		}
		return evaluateLogEntry(st, e, body)
	}
	if d, ok := checkBinding(st, e); !ok {
		return d
	}
	is := st.issuers[e.Issuer]
	// Who must have signed, and what prev must be.
	var signer ed25519.PublicKey
	var wantPrev []byte
	claim := claimOf(st, e, body)
	switch {
	case claim != claimNone:
		// A first registration or a reclaim is signed by the key it
		// registers; a reclaim still names the issuer's latest entry.
		signer = body.(*schema.Registration).AccountKey
		if is != nil {
			wantPrev = is.LastLeafHash[:]
		}
	case is == nil:
		return reject(RuleRegistration, "issuer %s is not registered; register it before submitting a %s", e.Issuer, e.Kind)
	default:
		signer = is.AccountKey
		wantPrev = is.LastLeafHash[:]
	}
	if !bytes.Equal(e.Prev, wantPrev) {
		if wantPrev == nil {
			return reject(RulePrev, "prev must be empty for the first entry of issuer %s", e.Issuer)
		}
		return reject(RulePrev, "prev does not match issuer %s's latest entry (index %d, leaf hash %x); fetch it and sign again", e.Issuer, is.LastIndex, is.LastLeafHash)
	}
	if verified == nil || !bytes.Equal(verified, signer) {
		if err := e.VerifySignature(signer); err != nil {
			return reject(RuleSignature, "%v", err)
		}
	}
	if is != nil && e.Time < is.LastTime {
		return reject(RuleTime, "log time %s is before issuer %s's latest entry at index %d (%s)", fmtMillis(e.Time), e.Issuer, is.LastIndex, fmtMillis(is.LastTime))
	}
	if claim != claimNone {
		if d, ok := checkControl(is, e, body.(*schema.Registration), claim); !ok {
			return d
		}
	}
	switch b := body.(type) {
	case *schema.Registration:
		if claim == claimReclaim {
			return accept() // signed by the new key itself, with proof of control
		}
		return evaluateRegistration(is, e, b)
	case *schema.KeyCommitment:
		return evaluateCommitment(st, is, e, b)
	case *schema.IncidentFinal:
		return evaluateFinal(is, e, b)
	}
	return reject(RuleMalformed, "unhandled entry kind %q", e.Kind)
}

func evaluateRegistration(is *Issuer, e *schema.Entry, r *schema.Registration) Decision {
	changes := is != nil && !bytes.Equal(r.AccountKey, is.AccountKey)
	if changes || r.KeyProof != nil {
		if err := r.VerifyKeyPossession(e.Issuer, e.Prev); err != nil {
			return reject(RuleRegistration, "account key change for %s: %v", e.Issuer, err)
		}
	}
	return accept()
}

func evaluateFinal(is *Issuer, e *schema.Entry, f *schema.IncidentFinal) Decision {
	le := is.LastEmergency
	switch {
	case le == nil:
		return reject(RuleIncidentReport, "issuer %s has no emergency rotation for index %d's final report to answer", e.Issuer, f.Emergency)
	case f.Emergency != le.Index:
		return reject(RuleIncidentReport, "final report names index %d, but issuer %s's latest emergency is at index %d (%s)", f.Emergency, e.Issuer, le.Index, fmtMillis(le.Time))
	case le.Finalized:
		return reject(RuleIncidentReport, "the emergency at index %d already has its final report at index %d", le.Index, le.Final)
	case f.Report.Discovered > e.Time:
		return reject(RuleIncidentReport, "incident discovered at %s, after the entry time %s", fmtMillis(f.Report.Discovered), fmtMillis(e.Time))
	}
	return accept()
}

func evaluateCommitment(st *State, is *Issuer, e *schema.Entry, c *schema.KeyCommitment) Decision {
	ds := commitmentProblems(st, is, e.Issuer, e.Time, c, false)
	if len(ds) == 0 {
		return accept()
	}
	return ds[0]
}

// commitmentProblems applies the commitment rules in order and returns the
// refusals: only the first unless all is set.
func commitmentProblems(st *State, is *Issuer, origin string, t int64, c *schema.KeyCommitment, all bool) []Decision {
	var out []Decision
	// add records a refusal and reports whether to stop: at the first
	// unless all is set.
	add := func(d Decision) bool {
		out = append(out, d)
		return !all
	}
	p := st.params
	if t >= is.Expires {
		if add(reject(RuleRegistration, "registration of %s (index %d) lapsed at %s; renew it with a registration entry first", origin, is.Registered, fmtMillis(is.Expires))) {
			return out
		}
	}
	keys, err := c.Keys()
	if err != nil {
		add(reject(RuleMalformed, "%v", err))
		return out
	}

	// Format limits, per protocol version.
	for _, v := range c.PST.Versions() {
		vc := c.PST[v]
		if vc.BatchSize < p.MinBatchSize || vc.BatchSize > p.MaxBatchSize {
			if add(reject(RuleBatchSize, "%s batchsize %d is outside [%d, %d] (min_batch_size, max_batch_size)", v, vc.BatchSize, p.MinBatchSize, p.MaxBatchSize)) {
				return out
			}
		}
		max, param := p.MaxKeysVOPRF, "max_keys_voprf"
		if schema.IsPMB(v) {
			max, param = p.MaxKeysPMB, "max_keys_pmb"
		}
		if len(vc.Keys) > max {
			if add(reject(RuleKeyCount, "%s has %d keys; at most %d (%s)", v, len(vc.Keys), max, param)) {
				return out
			}
		}
	}
	if c.PrivacyPass != nil && len(c.PrivacyPass.TokenKeys) > p.MaxKeysPrivacyPass {
		if add(reject(RuleKeyCount, "privacy pass directory has %d token-keys; at most %d (max_keys_privacy_pass)", len(c.PrivacyPass.TokenKeys), p.MaxKeysPrivacyPass)) {
			return out
		}
	}
	for _, v := range c.PST.Versions() {
		if prev, ok := is.IDs[v]; ok && c.PST[v].ID <= prev.ID {
			if add(reject(RuleCommitmentID, "%s id %d does not increase on id %d of the commitment at index %d; use an id above %d", v, c.PST[v].ID, prev.ID, prev.Index, prev.ID)) {
				return out
			}
		}
	}

	// Key lifetimes.
	nowUs := uint64(t) * 1000
	maxUs := uint64(t+p.MaxKeyLifetime*1000) * 1000
	for _, k := range keys {
		if k.NotBefore != nil {
			if *k.NotBefore*1000 > t+p.MaxKeyLifetime*1000 {
				if add(reject(RuleExpiry, "%s key %s: not-before %s is more than max_key_lifetime (%s) after the entry time %s", k.Protocol, k.Label, fmtMillis(*k.NotBefore*1000), fmtSeconds(p.MaxKeyLifetime), fmtMillis(t))) {
					return out
				}
			}
			continue
		}
		if k.Protocol == schema.ProtocolPrivacyPassVOPRF || k.Protocol == schema.ProtocolPrivacyPassBlindRSA {
			continue
		}
		if k.Expiry <= nowUs {
			if add(reject(RuleExpiry, "%s key %s expired at %s, not after the entry time %s; remove it", k.Protocol, k.Label, fmtMicros(k.Expiry), fmtMillis(t))) {
				return out
			}
		}
		if k.Expiry > maxUs {
			if add(reject(RuleExpiry, "%s key %s expires at %s, more than max_key_lifetime (%s) after the entry time %s; latest allowed %s", k.Protocol, k.Label, fmtMicros(k.Expiry), fmtSeconds(p.MaxKeyLifetime), fmtMillis(t), fmtMicros(maxUs))) {
				return out
			}
		}
	}

	// Keys new to this issuer's commitment: never another issuer's, never
	// one of its own retired keys.
	current := keySet(is.Keys)
	var added []schema.CommittedKey
	for _, k := range keys {
		if current[k.ID] || containsKey(added, k.ID) {
			continue
		}
		if r := st.keys[k.ID]; r != nil {
			if r.issuer != origin {
				if add(reject(RuleKeyReuse, "%s key %s (key id %s) is already committed by %s (first at index %d)", k.Protocol, k.Label, k.ID.Short(), r.issuer, r.first)) {
					return out
				}
			} else if add(reject(RuleRetiredKey, "%s key %s (key id %s) was first committed at index %d and retired at index %d; a retired key cannot come back", k.Protocol, k.Label, k.ID.Short(), r.first, r.retiredAt)) {
				return out
			}
			continue
		}
		added = append(added, k)
	}

	// Emergencies: a preliminary report, none while an incident is open,
	// at most max_emergencies per rolling emergency_window.
	if em := c.Emergency; em != nil {
		if em.Discovered > t {
			if add(reject(RuleIncidentReport, "incident discovered at %s, after the entry time %s", fmtMillis(em.Discovered), fmtMillis(t))) {
				return out
			}
		}
		if le := is.LastEmergency; le != nil && !le.Finalized {
			if add(reject(RuleOpenIncident, "the emergency at index %d (%s) has no final report; log an incident_report entry for index %d before another emergency", le.Index, fmtMillis(le.Time), le.Index)) {
				return out
			}
		}
		w := p.EmergencyWindow * 1000
		in := eventsSince(is.Emergencies, t-w)
		if p.MaxEmergencies == 0 {
			if add(reject(RuleEmergencyRate, "emergency rotations are not allowed (max_emergencies 0)")) {
				return out
			}
		} else if len(in) >= p.MaxEmergencies {
			next := in[len(in)-p.MaxEmergencies].Time + w
			if add(reject(RuleEmergencyRate, "%d emergencies in the last %s already (at most %d, max_emergencies per emergency_window): %s; next allowed %s",
				len(in), fmtSeconds(p.EmergencyWindow), p.MaxEmergencies, fmtEvents(in), fmtMillis(next))) {
				return out
			}
		}
	} else if len(added) > 0 && is.HasRotated {
		next := is.LastRotation.Time + p.MinRotationInterval*1000
		if t < next {
			if add(reject(RuleRotation, "rotation %s after the last one at index %d (%s); next allowed %s (min_rotation_interval %s); a faster rotation must be an emergency with an incident report",
				fmtDuration(t-is.LastRotation.Time), is.LastRotation.Index, fmtMillis(is.LastRotation.Time), fmtMillis(next), fmtSeconds(p.MinRotationInterval))) {
				return out
			}
		}
	}

	// Information limit: distinct new keys per rolling key_window.
	if len(added) > 0 {
		w := p.KeyWindow * 1000
		in := introsSince(is.KeyIntros, t-w)
		sum := 0
		for _, ki := range in {
			sum += ki.Count
		}
		if len(added) > p.MaxKeysPerWindow {
			if add(reject(RuleKeyWindow, "commitment adds %d new keys; at most %d in any %s (max_keys_per_window)", len(added), p.MaxKeysPerWindow, fmtSeconds(p.KeyWindow))) {
				return out
			}
		} else if sum+len(added) > p.MaxKeysPerWindow {
			// The earliest time enough introductions have left the window.
			need, i := sum+len(added)-p.MaxKeysPerWindow, 0
			for ; need > 0; i++ {
				need -= in[i].Count
			}
			if add(reject(RuleKeyWindow, "commitment adds %d new keys; with the %d added in the last %s (%s) that makes %d, above max_keys_per_window %d; next allowed %s",
				len(added), sum, fmtSeconds(p.KeyWindow), fmtIntros(in), sum+len(added), p.MaxKeysPerWindow, fmtMillis(in[i-1].Time+w))) {
				return out
			}
		}
	}
	return out
}

func evaluateLogEntry(st *State, e *schema.Entry, body any) Decision {
	switch b := body.(type) {
	case *schema.PolicyParams:
		if err := ValidateParams(*b); err != nil {
			return reject(RuleParams, "%v", err)
		}
		return accept()
	case *schema.Snapshot:
		ks := st.KeySet(e.Time)
		form, want := b.Commitment()
		d, err := b.KeySetCommitment(ks)
		if err != nil {
			return reject(RuleSnapshot, "couldn't compute the key set %s: %v", form, err)
		}
		if n := len(ks.PST) + len(ks.PrivacyPass); b.Issuers != n || !bytes.Equal(want, d) {
			return reject(RuleSnapshot, "snapshot says %d issuers with %s %x; the entries before it give %d issuers with %s %x", b.Issuers, form, want, n, form, d)
		}
		return accept()
	}
	return reject(RuleMalformed, "unhandled entry kind %q", e.Kind)
}

// eventsSince returns the events with a time after since (the window
// (since, t] of a rolling window ending at t).
func eventsSince(evs []Event, since int64) []Event {
	i := 0
	for i < len(evs) && evs[i].Time <= since {
		i++
	}
	return evs[i:]
}

func introsSince(kis []KeyIntro, since int64) []KeyIntro {
	i := 0
	for i < len(kis) && kis[i].Time <= since {
		i++
	}
	return kis[i:]
}

func fmtEvents(evs []Event) string {
	parts := make([]string, len(evs))
	for i, ev := range evs {
		parts[i] = "index " + uitoa(ev.Index) + " (" + fmtMillis(ev.Time) + ")"
	}
	return strings.Join(parts, ", ")
}

func fmtIntros(kis []KeyIntro) string {
	parts := make([]string, len(kis))
	for i, ki := range kis {
		parts[i] = itoa(ki.Count) + " at index " + uitoa(ki.Index) + " (" + fmtMillis(ki.Time) + ")"
	}
	return strings.Join(parts, ", ")
}

func containsKey(keys []schema.CommittedKey, id schema.KeyID) bool {
	for _, k := range keys {
		if k.ID == id {
			return true
		}
	}
	return false
}
