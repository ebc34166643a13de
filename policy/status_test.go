package policy_test

import (
	"testing"

	"github.com/keycommit/keycommit/policy"
)

func TestStatus(t *testing.T) {
	h := newHarness(t)
	base(h)
	if _, ok := h.st.Status(originB, t0); ok {
		t.Fatal("status of an unregistered origin")
	}
	em := h.commit(originA, emergency(voprf(2, t0+30*day, "k1", "e1"), originA, t0+29*day), t0+30*day)
	s, ok := h.st.Status(originA, t0+31*day)
	if !ok {
		t.Fatal("no status")
	}
	if s.NextRotation != t0+90*day || s.LastRotation == nil || s.LastRotation.Index != em {
		t.Errorf("next rotation %d after rotation %+v; want %d after index %d", s.NextRotation, s.LastRotation, t0+90*day, em)
	}
	if s.OpenIncident == nil || *s.OpenIncident != em {
		t.Errorf("open incident %v, want %d", s.OpenIncident, em)
	}
	if s.EmergenciesInWindow != 1 || s.NextEmergency != 0 {
		t.Errorf("emergencies in window %d, next %d; want 1, 0", s.EmergenciesInWindow, s.NextEmergency)
	}
	// k1 and k2 at t0 and e1 at day 30 are all in the 60-day window.
	if s.KeysInWindow != 3 || s.KeysAllowedNow != 15 {
		t.Errorf("keys in window %d, allowed now %d; want 3, 15", s.KeysInWindow, s.KeysAllowedNow)
	}
	if len(s.Keys) != 2 || len(s.CommitmentIDs) != 1 || s.CommitmentIDs[0].ID != 2 {
		t.Errorf("keys %+v ids %+v", s.Keys, s.CommitmentIDs)
	}
	if s.RegistrationExpires != t0+183*day || s.RegistrationLapsed {
		t.Errorf("registration expires %d lapsed %v", s.RegistrationExpires, s.RegistrationLapsed)
	}
	h.final(originA, em, t0+32*day)
	s, _ = h.st.Status(originA, t0+400*day)
	if s.OpenIncident != nil || s.LastEmergency == nil || !s.LastEmergency.Finalized || !s.RegistrationLapsed || s.KeysInWindow != 0 || s.EmergenciesInWindow != 0 {
		t.Errorf("status a year later: %+v", s)
	}
}

// TestStateBounded runs ten years of rotations and emergencies for one
// issuer and checks the state keeps only a bounded window of events.
func TestStateBounded(t *testing.T) {
	h := newHarness(t)
	h.register(originA, t0)
	at := t0
	for i := 0; i < 60; i++ {
		s := seeds("r"+string(rune('A'+i%26))+string(rune('a'+i/26)), 2)
		c := voprf(uint32(i+1), at, s...)
		if i%6 == 5 {
			c = emergency(c, originA, at-sec)
		}
		em := h.commit(originA, c, at)
		if i%6 == 5 {
			h.final(originA, em, at+sec)
		}
		at += 61 * day
		if i%2 == 0 {
			h.register(originA, at-day)
		}
	}
	is, _ := h.st.Issuer(originA)
	maxEvents := policy.MaxWindow/(61*24*3600) + 1
	if len(is.KeyIntros) > int(maxEvents) || len(is.Emergencies) > int(maxEvents) {
		t.Errorf("after 60 rotations the issuer keeps %d key introductions and %d emergencies; want at most %d", len(is.KeyIntros), len(is.Emergencies), maxEvents)
	}
	if h.st.KeyCount() != 120 {
		t.Errorf("key count %d, want 120", h.st.KeyCount())
	}
}
