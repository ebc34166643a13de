package monitor

import (
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/witness/quorum"
)

// TestTimeAfterMLDSACosignatures is TestTimeAfterCosignatures with a
// policy of one Ed25519 and one ML-DSA-44 witness (2 of 2): the monitor
// verifies the ML-DSA-44 cosignature pulled from the witnesses, counts it
// toward the quorum for the time rule, and its evidence verifies offline;
// with the ML-DSA-44 line alone the quorum is not met and nothing is
// alerted.
func TestTimeAfterMLDSACosignatures(t *testing.T) {
	tl, cw, _, honest := timeLog(t)
	cw.ws = []*bundletest.Witness{bundletest.NewWitness("w1.example"), bundletest.NewMLDSAWitness("w2.example")}
	pol, err := quorum.Parse([]byte(bundletest.Policy(tl.vkey, 2, cw.ws...)))
	if err != nil {
		t.Fatal(err)
	}
	wurl := httptestServer(t, cw)
	late := time.UnixMilli(tl.gen.Now).Add(time.Hour)
	m := newTestMonitor(t, "", func(c *Config) {
		c.Witnesses, c.WitnessPolicy, c.Now = []string{wurl}, pol, func() time.Time { return late }
	}, tl)
	if rep := m.once(t); !rep.OK() {
		t.Fatalf("before any cosignature: %+v %+v", rep, m.out.alerts(t))
	}
	// Only the ML-DSA-44 witness: one of two, no quorum, no alert.
	all := cw.ws
	cw.ws = all[1:]
	cw.cosign(must[[]byte](t)(tl.Checkpoint()), honest.Add(time.Minute))
	m.once(t)
	if as := alertsOfKind(m.out.alerts(t), KindTime); len(as) != 0 {
		t.Fatalf("time alert with one of two cosignatures: %+v", as)
	}
	cw.ws = all
	cw.cosign(must[[]byte](t)(tl.Checkpoint()), honest.Add(time.Minute))
	rep := m.once(t)
	as := alertsOfKind(m.out.alerts(t), KindTime)
	if rep.OK() || len(as) != 1 || as[0].Rule != RuleAfterCosignatures {
		t.Fatalf("want one %s alert, got %+v (report %+v)", RuleAfterCosignatures, m.out.alerts(t), rep)
	}
	raw := must[[]byte](t)(m.EvidenceBundle(t.Context(), as[0].Evidence))
	if _, err := VerifyTimeEvidence(raw, tl.vkey, pol, time.Now()); err != nil {
		t.Fatalf("evidence with an ML-DSA-44 cosignature does not verify: %v", err)
	}
}
