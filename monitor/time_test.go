package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/witness/quorum"
)

// cosigningWitnesses serves, at the C2SP monitoring path, the checkpoint
// it was given with cosignature lines from every witness at a chosen
// timestamp.
type cosigningWitnesses struct {
	ws   []*bundletest.Witness
	mu   sync.Mutex
	note []byte
}

func (c *cosigningWitnesses) cosign(signed []byte, at time.Time) {
	i := bytes.Index(signed, []byte("\n\n"))
	out := append([]byte(nil), signed...)
	for _, w := range c.ws {
		out = append(out, w.CosignatureLine(signed[:i+1], uint64(at.Unix()))...)
	}
	c.mu.Lock()
	c.note = out
	c.mu.Unlock()
}

func (c *cosigningWitnesses) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	b := c.note
	c.mu.Unlock()
	if b == nil || !strings.HasSuffix(r.URL.Path, "/checkpoint") {
		http.NotFound(rw, r)
		return
	}
	rw.Write(b)
}

// timeLog is a log double whose last rotation is dated 61 days after the
// entries before it (the clock-lie story), with two witnesses (2 of 2).
func timeLog(t *testing.T) (*testLog, *cosigningWitnesses, *quorum.Policy, time.Time) {
	t.Helper()
	tl := newTestLog(t, "keycommit.example/log/time")
	origins := populate(t, tl.gen, 2)
	honest := time.UnixMilli(tl.gen.Now)
	tl.gen.Advance(1465 * time.Hour)
	must[uint64](t)(tl.gen.Commit(origins[0], 1, 3))
	must[uint64](t)(tl.gen.Snapshot())
	cw := &cosigningWitnesses{ws: []*bundletest.Witness{bundletest.NewWitness("w1.example"), bundletest.NewWitness("w2.example")}}
	pol, err := quorum.Parse([]byte(bundletest.Policy(tl.vkey, 2, cw.ws...)))
	if err != nil {
		t.Fatal(err)
	}
	return tl, cw, pol, honest
}

// TestTimeAfterCosignatures: a checkpoint whose witnesses cosigned 61
// days before its latest entry's date, pulled from the witnesses after the
// entries were replayed, is a time alert whose evidence verifies offline;
// tampered evidence, evidence checked without the policy, and evidence
// against cosignatures the entry agrees with are refused.
func TestTimeAfterCosignatures(t *testing.T) {
	tl, cw, pol, honest := timeLog(t)
	wurl := httptestServer(t, cw)
	late := time.UnixMilli(tl.gen.Now).Add(time.Hour) // the monitor's clock: no future entry
	m := newTestMonitor(t, "", func(c *Config) {
		c.Witnesses, c.WitnessPolicy, c.Now = []string{wurl}, pol, func() time.Time { return late }
	}, tl)
	if rep := m.once(t); !rep.OK() {
		t.Fatalf("before any cosignature: %+v %+v", rep, m.out.alerts(t))
	}
	cw.cosign(must[[]byte](t)(tl.Checkpoint()), honest.Add(time.Minute))
	rep := m.once(t)
	as := alertsOfKind(m.out.alerts(t), KindTime)
	if rep.OK() || len(as) != 1 || as[0].Rule != RuleAfterCosignatures || as[0].Index == nil || *as[0].Index != tl.Size()-2 {
		t.Fatalf("want one %s alert for entry %d, got %+v (report %+v)", RuleAfterCosignatures, tl.Size()-2, m.out.alerts(t), rep)
	}
	if !strings.Contains(as[0].Message, "more than 10m0s after the cosignatures") {
		t.Errorf("alert message %q does not say what is wrong", as[0].Message)
	}
	raw := must[[]byte](t)(m.EvidenceBundle(t.Context(), as[0].Evidence))
	ev, err := VerifyTimeEvidence(raw, tl.vkey, pol, time.Now())
	if err != nil {
		t.Fatalf("evidence does not verify: %v\n%s", err, raw)
	}
	if ev.ID() != as[0].Evidence {
		t.Errorf("evidence id %s, alert names %s", ev.ID(), as[0].Evidence)
	}
	if _, err := VerifyTimeEvidence(raw, tl.vkey, nil, time.Now()); err == nil {
		t.Error("cosignature evidence verified without a witness policy")
	}
	other := must[*quorum.Policy](t)(quorum.Parse([]byte(bundletest.Policy("", 2, bundletest.NewWitness("w1.example"), bundletest.NewWitness("w3.example")))))
	if _, err := VerifyTimeEvidence(raw, tl.vkey, other, time.Now()); err == nil {
		t.Error("evidence verified under a policy whose quorum did not cosign")
	}
	for _, tc := range []struct {
		name string
		mod  func(e *TimeEvidence)
	}{
		{"another index", func(e *TimeEvidence) { e.Index-- }},
		{"entry byte flipped", func(e *TimeEvidence) { e.Entry[len(e.Entry)/2] ^= 1 }},
		{"proof hash flipped", func(e *TimeEvidence) { e.Proof[0][0] ^= 1 }},
		{"proof truncated", func(e *TimeEvidence) { e.Proof = e.Proof[:len(e.Proof)-1] }},
		{"checkpoint signature flipped", func(e *TimeEvidence) { e.Checkpoint = flipInSignature(e.Checkpoint) }},
		{"unknown rule", func(e *TimeEvidence) { e.Rule = "sometime" }},
		{"monitor clock rule", func(e *TimeEvidence) { e.Rule = RuleAfterMonitorClock }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e TimeEvidence
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			tc.mod(&e)
			b, _ := json.Marshal(&e)
			if _, err := VerifyTimeEvidence(b, tl.vkey, pol, late); err == nil {
				t.Errorf("tampered evidence verifies")
			}
		})
	}
	// The same entry against cosignatures made after its date is no
	// evidence.
	var e TimeEvidence
	json.Unmarshal(raw, &e)
	cw.cosign(must[[]byte](t)(tl.Checkpoint()), late)
	e.Checkpoint = string(cw.note)
	b, _ := json.Marshal(&e)
	if _, err := VerifyTimeEvidence(b, tl.vkey, pol, late); !errors.Is(err, ErrNoTimeViolation) {
		t.Errorf("entry agreeing with the cosignatures: %v, want ErrNoTimeViolation", err)
	}
}

// TestTimeMonitorClock: without witnesses, an entry dated 61 days ahead of
// the monitor's clock is a time alert; its evidence verifies against a
// clock it is in the future of, and not once that date has passed.
func TestTimeMonitorClock(t *testing.T) {
	tl, _, _, honest := timeLog(t)
	now := honest.Add(time.Hour)
	m := newTestMonitor(t, "", func(c *Config) { c.Now = func() time.Time { return now } }, tl)
	rep := m.once(t)
	as := alertsOfKind(m.out.alerts(t), KindTime)
	if rep.OK() || len(as) != 1 || as[0].Rule != RuleAfterMonitorClock || *as[0].Index != tl.Size()-2 {
		t.Fatalf("want one %s alert for entry %d, got %+v", RuleAfterMonitorClock, tl.Size()-2, m.out.alerts(t))
	}
	raw := must[[]byte](t)(m.EvidenceBundle(t.Context(), as[0].Evidence))
	if _, err := VerifyTimeEvidence(raw, tl.vkey, nil, now); err != nil {
		t.Fatalf("evidence does not verify: %v", err)
	}
	if _, err := VerifyTimeEvidence(raw, tl.vkey, nil, time.UnixMilli(tl.gen.Now)); !errors.Is(err, ErrNoTimeViolation) {
		t.Errorf("evidence checked once the entry's date has come: %v, want ErrNoTimeViolation", err)
	}
	// A second round raises nothing new.
	m.once(t)
	if n := len(alertsOfKind(m.out.alerts(t), KindTime)); n != 1 {
		t.Errorf("%d time alerts after a second round, want 1", n)
	}
}
