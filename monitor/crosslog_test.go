package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/monitor/monitortest"
	"github.com/keycommit/keycommit/schema"
	"github.com/keycommit/keycommit/witness/quorum"
)

// crossLogDir holds the cross-log evidence vector (regenerate with go
// test -run TestCrossLogEquivocation -update); cmd/keycommit checks it
// with the binary.
const crossLogDir = "../testdata/monitor/evidence/cross-log"

// crossWitnesses are the two witnesses (2 of 2) cosigning every log of the
// cross-log tests.
var crossWitnesses = []*bundletest.Witness{bundletest.NewWitness("w1.example"), bundletest.NewWitness("w2.example")}

// newCosignedLog is a log double whose /checkpoint carries the
// cosignatures of crossWitnesses, dated at its latest entry's time (as a
// keycommit log serves its cosigned checkpoint).
func newCosignedLog(t testing.TB, origin string) *testLog {
	t.Helper()
	tl := newTestLog(t, origin)
	srv := httptest.NewServer(monitortest.CosignedHandler(tl.Log, func(text []byte) []byte {
		cp, err := c2sp.ParseCheckpoint(text)
		if err != nil || cp.Size == 0 {
			return nil
		}
		e, err := schema.ParseEntry(tl.Entry(int64(cp.Size) - 1))
		if err != nil {
			return nil
		}
		var lines []byte
		for _, w := range crossWitnesses {
			lines = append(lines, w.CosignatureLine(text, uint64(e.Time/1000))...)
		}
		return lines
	}))
	t.Cleanup(srv.Close)
	tl.url = srv.URL
	return tl
}

func crossPolicy(t testing.TB) *quorum.Policy {
	t.Helper()
	return must[*quorum.Policy](t)(quorum.Parse([]byte(bundletest.Policy("", 2, crossWitnesses...))))
}

// commitBody returns the key commitment body of entry idx of l.
func commitBody(t testing.TB, l *testLog, idx uint64) *schema.KeyCommitment {
	t.Helper()
	e := must[*schema.Entry](t)(schema.ParseEntry(l.Entry(int64(idx))))
	return must[any](t)(e.ParsedBody()).(*schema.KeyCommitment)
}

// crossMonitor follows logs a and b under the cross-log witness policy.
func crossMonitor(t testing.TB, dir string, a, b *testLog) *testMonitor {
	t.Helper()
	pol := crossPolicy(t)
	return newTestMonitor(t, dir, func(c *Config) { c.WitnessPolicy = pol }, a, b)
}

// advanceBoth moves both logs' time forward and appends a snapshot to
// each (another issuer's activity would make the log write one).
func advanceBoth(t testing.TB, d time.Duration, ls ...*testLog) {
	t.Helper()
	for _, l := range ls {
		l.gen.Advance(d)
		must[uint64](t)(l.gen.Snapshot())
	}
}

// TestCrossLogSameKeys: an issuer with the same keys in two logs (and an
// issuer in only one) raises no cross-log alert.
func TestCrossLogSameKeys(t *testing.T) {
	a, b := newCosignedLog(t, "keycommit.example/log/a"), newCosignedLog(t, "keycommit.example/log/b")
	const x = "https://x.example"
	for _, l := range []*testLog{a, b} {
		must[uint64](t)(l.gen.Register(x))
	}
	must[uint64](t)(a.gen.Register("https://only-a.example"))
	must[uint64](t)(a.gen.Commit("https://only-a.example", 2, 3))
	idx := must[uint64](t)(a.gen.Commit(x, 2, 3))
	must[uint64](t)(a.gen.Snapshot())
	must[uint64](t)(b.gen.CommitBody(x, commitBody(t, a, idx)))
	must[uint64](t)(b.gen.Snapshot())
	advanceBoth(t, 24*time.Hour, a, b)
	m := crossMonitor(t, "", a, b)
	if rep := m.once(t); !rep.OK() {
		t.Fatalf("same keys in both logs: %+v\n%+v", rep, m.out.alerts(t))
	}
}

// equivocation makes x commit different keys to a and b at the same
// time, both still in force an hour later by each log's snapshot.
func equivocation(t testing.TB) (a, b *testLog, x string) {
	a, b, x = differentKeys(t, func(l *testLog) { must[uint64](t)(l.gen.Snapshot()) })
	advanceBoth(t, time.Hour, a, b)
	return a, b, x
}

// differentKeys registers x in two new logs a and b and commits fresh
// (so different) keys for it in each, at the same time; then(l) follows
// in each log.
func differentKeys(t testing.TB, then func(l *testLog)) (a, b *testLog, x string) {
	a, b = newCosignedLog(t, "keycommit.example/log/a"), newCosignedLog(t, "keycommit.example/log/b")
	x = "https://x.example"
	for _, l := range []*testLog{a, b} {
		must[uint64](t)(l.gen.Register(x))
		must[uint64](t)(l.gen.Commit(x, 2, 3))
		then(l)
	}
	return a, b, x
}

// TestCrossLogEquivocation: an issuer that committed different keys to
// two logs is one cross-log alert whose evidence CheckCrossLog accepts;
// a restarted monitor, seeing the logs grow, does not raise it again.
func TestCrossLogEquivocation(t *testing.T) {
	a, b, x := equivocation(t)
	dir := t.TempDir()
	m := crossMonitor(t, dir, a, b)
	rep := m.once(t)
	as := alertsOfKind(m.out.alerts(t), KindCrossLog)
	if len(as) != 1 || as[0].Issuer != x || as[0].Evidence == "" || rep.OK() || rep.Evidence != 1 {
		t.Fatalf("want one cross-log alert for %s, got %+v (report %+v)", x, m.out.alerts(t), rep)
	}
	if !strings.Contains(as[0].Message, "more than the grace 10m0s") {
		t.Errorf("alert message %q does not state the grace", as[0].Message)
	}
	raw := must[[]byte](t)(m.EvidenceBundle(t.Context(), as[0].Evidence))
	chk := CrossLogCheck{VKeys: []string{a.vkey, b.vkey}, Policies: []*quorum.Policy{crossPolicy(t)}, MinGrace: verify.DefaultGrace}
	ev, err := CheckCrossLog(raw, chk)
	if err != nil {
		t.Fatalf("evidence does not verify: %v\n%s", err, raw)
	}
	if ev.ID() != as[0].Evidence || ev.Issuer != x || ev.Grace != "10m0s" {
		t.Errorf("evidence %s (issuer %s, grace %s), alert names %s", ev.ID(), ev.Issuer, ev.Grace, as[0].Evidence)
	}
	if *update {
		if err := os.MkdirAll(crossLogDir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(crossLogDir, "cross-log.json"), append(raw, '\n'), 0o644)
		os.WriteFile(filepath.Join(crossLogDir, "vkeys"), []byte(a.vkey+"\n"+b.vkey+"\n"), 0o644)
		os.WriteFile(filepath.Join(crossLogDir, "policy"), []byte(bundletest.Policy("", 2, crossWitnesses...)), 0o644)
	}
	for _, tc := range []struct {
		name string
		chk  CrossLogCheck
	}{
		{"one log key", CrossLogCheck{VKeys: []string{a.vkey}, Policies: chk.Policies}},
		{"no witness policy", CrossLogCheck{VKeys: chk.VKeys}},
		{"a larger grace", CrossLogCheck{VKeys: chk.VKeys, Policies: chk.Policies, MinGrace: 2 * time.Hour}},
		{"another quorum", CrossLogCheck{VKeys: chk.VKeys, Policies: []*quorum.Policy{must[*quorum.Policy](t)(quorum.Parse(
			[]byte(bundletest.Policy("", 2, crossWitnesses[0], bundletest.NewWitness("w3.example")))))}}},
	} {
		if _, err := CheckCrossLog(raw, tc.chk); err == nil {
			t.Errorf("%s: evidence accepted", tc.name)
		}
	}

	// A restart, and the logs growing with the commitments still in
	// force: the alert is not raised again.
	m.Close()
	advanceBoth(t, time.Hour, a, b)
	m2 := crossMonitor(t, dir, a, b)
	m2.once(t)
	if as := m2.out.alerts(t); len(as) != 0 {
		t.Fatalf("restarted monitor raised %+v", as)
	}
	if n := must[int](t)(m2.AlertCount(t.Context(), AlertFilter{Kind: KindCrossLog})); n != 1 {
		t.Fatalf("%d cross-log alerts stored after the restart, want 1", n)
	}
}

// TestCrossLogEvidenceFlips: every single-byte change anywhere in the
// evidence file makes it refused.
func TestCrossLogEvidenceFlips(t *testing.T) {
	raw := must[[]byte](t)(os.ReadFile(filepath.Join(crossLogDir, "cross-log.json")))
	vkeys := strings.Fields(string(must[[]byte](t)(os.ReadFile(filepath.Join(crossLogDir, "vkeys")))))
	pol := must[*quorum.Policy](t)(quorum.Parse(must[[]byte](t)(os.ReadFile(filepath.Join(crossLogDir, "policy")))))
	chk := CrossLogCheck{VKeys: vkeys, Policies: []*quorum.Policy{pol}}
	if _, err := CheckCrossLog(raw, chk); err != nil {
		t.Fatalf("the vector does not verify: %v", err)
	}
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		if _, err := CheckCrossLog(b, chk); err == nil {
			t.Errorf("byte %d (%q -> %q) still verifies", i, raw[i], b[i])
		}
	}
	// Compact is the other encoding the checker takes; re-indented is not.
	var e CrossLogEvidence
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckCrossLog(must[[]byte](t)(json.Marshal(&e)), chk); err != nil {
		t.Errorf("compact encoding refused: %v", err)
	}
	if _, err := CheckCrossLog(must[[]byte](t)(json.MarshalIndent(&e, "", "\t")), chk); err == nil {
		t.Error("tab-indented encoding accepted")
	}
}

// TestCrossLogEvidenceSemantics: evidence whose every signature and proof
// verifies but that does not show a cross-log overlap is refused.
func TestCrossLogEvidenceSemantics(t *testing.T) {
	raw := must[[]byte](t)(os.ReadFile(filepath.Join(crossLogDir, "cross-log.json")))
	vkeys := strings.Fields(string(must[[]byte](t)(os.ReadFile(filepath.Join(crossLogDir, "vkeys")))))
	pol := must[*quorum.Policy](t)(quorum.Parse(must[[]byte](t)(os.ReadFile(filepath.Join(crossLogDir, "policy")))))
	chk := CrossLogCheck{VKeys: vkeys, Policies: []*quorum.Policy{pol}}
	for _, tc := range []struct {
		name, want string
		mod        func(e *CrossLogEvidence)
	}{
		{"the same log twice", "not two different logs", func(e *CrossLogEvidence) { e.Logs[1] = e.Logs[0] }},
		{"sides swapped", "origin order", func(e *CrossLogEvidence) { e.Logs[0], e.Logs[1] = e.Logs[1], e.Logs[0] }},
		{"grace of a day", "not more than the grace", func(e *CrossLogEvidence) { e.Grace = "24h0m0s" }},
		{"another issuer", "is for issuer", func(e *CrossLogEvidence) { e.Issuer = "https://y.example" }},
		{"snapshot before the commitment", "want 0 ≤ commitment < snapshot", func(e *CrossLogEvidence) { e.Logs[0].SnapshotIndex = e.Logs[0].CommitmentIndex }},
		{"the other log's key set", "is not the one snapshot", func(e *CrossLogEvidence) { e.Logs[0].KeySet = e.Logs[1].KeySet }},
		{"reason reworded", "is not what the evidence shows", func(e *CrossLogEvidence) { e.Reason = "it lied" }},
	} {
		var e CrossLogEvidence
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		tc.mod(&e)
		b := must[[]byte](t)(json.MarshalIndent(&e, "", "  "))
		if _, err := CheckCrossLog(b, chk); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	// A checker's grace beyond the overlap shown.
	_, err := CheckCrossLog(raw, CrossLogCheck{VKeys: vkeys, Policies: chk.Policies, MinGrace: 1000 * time.Hour})
	if !errors.Is(err, ErrNoCrossLogOverlap) {
		t.Errorf("grace beyond the overlap: %v, want ErrNoCrossLogOverlap", err)
	}
}

// TestCrossLogRotationGrace: a rotation that reaches log b one minute
// after log a (b showing the old keys 30 seconds after a's rotation) is no
// alert (grace 10 minutes); one that reaches it 30 minutes later, with a
// snapshot of b still holding the old keys 20 minutes after a's rotation,
// is. Mutation caught: ignoring the grace (y's 30 seconds would alert).
func TestCrossLogRotationGrace(t *testing.T) {
	a, b, _, z := rotations(t)
	m := crossMonitor(t, "", a, b)
	m.once(t)
	as := alertsOfKind(m.out.alerts(t), KindCrossLog)
	if len(as) != 1 || as[0].Issuer != z {
		t.Fatalf("want one cross-log alert, for %s, got %+v", z, m.out.alerts(t))
	}
	raw := must[[]byte](t)(m.EvidenceBundle(t.Context(), as[0].Evidence))
	ev, err := CheckCrossLog(raw, CrossLogCheck{VKeys: []string{a.vkey, b.vkey}, Policies: []*quorum.Policy{crossPolicy(t)}})
	if err != nil {
		t.Fatalf("evidence does not verify: %v", err)
	}
	if !strings.Contains(ev.Reason, "(20m0s)") {
		t.Errorf("reason %q does not show the 20-minute overlap", ev.Reason)
	}
	if len(alertsOfKind(m.out.alerts(t), KindTime))+len(alertsOfKind(m.out.alerts(t), KindPolicy)) != 0 {
		t.Errorf("other alerts: %+v", m.out.alerts(t))
	}
}

// TestCrossLogNoGrace: with the grace turned off (CrossLogGrace < 0),
// the 30 seconds y's old and new keys are shown in force together are an
// alert too, whose evidence states a grace of 0s.
func TestCrossLogNoGrace(t *testing.T) {
	a, b, y, z := rotations(t)
	m := newTestMonitor(t, "", func(c *Config) { c.WitnessPolicy, c.CrossLogGrace = crossPolicy(t), -1 }, a, b)
	m.once(t)
	as := alertsOfKind(m.out.alerts(t), KindCrossLog)
	got := map[string]string{}
	for _, al := range as {
		got[al.Issuer] = al.Evidence
	}
	if len(as) != 2 || got[y] == "" || got[z] == "" {
		t.Fatalf("want cross-log alerts for %s and %s, got %+v", y, z, m.out.alerts(t))
	}
	raw := must[[]byte](t)(m.EvidenceBundle(t.Context(), got[y]))
	ev, err := CheckCrossLog(raw, CrossLogCheck{VKeys: []string{a.vkey, b.vkey}, Policies: []*quorum.Policy{crossPolicy(t)}})
	if err != nil || ev.Grace != "0s" || !strings.Contains(ev.Reason, "(30s)") {
		t.Fatalf("evidence for %s: %v (grace %q, reason %q)", y, err, ev.Grace, ev.Reason)
	}
	if _, err := CheckCrossLog(raw, CrossLogCheck{VKeys: []string{a.vkey, b.vkey}, Policies: []*quorum.Policy{crossPolicy(t)}, MinGrace: verify.DefaultGrace}); !errors.Is(err, ErrNoCrossLogOverlap) {
		t.Errorf("30 seconds of overlap under a checker's grace of 10 minutes: %v, want ErrNoCrossLogOverlap", err)
	}
}

// rotations writes two logs where issuers y and z rotate in a at t1: y's
// rotation reaches b a minute later (b showing y's old keys 30 seconds
// after t1), z's 30 minutes later (b showing z's old keys 20 minutes after
// t1).
func rotations(t *testing.T) (a, b *testLog, y, z string) {
	t.Helper()
	a, b = newCosignedLog(t, "keycommit.example/log/a"), newCosignedLog(t, "keycommit.example/log/b")
	y, z = "https://y.example", "https://z.example"
	for _, o := range []string{y, z} {
		for _, l := range []*testLog{a, b} {
			must[uint64](t)(l.gen.Register(o))
		}
		idx := must[uint64](t)(a.gen.Commit(o, 2, 3))
		must[uint64](t)(b.gen.CommitBody(o, commitBody(t, a, idx)))
	}
	advanceBoth(t, 61*24*time.Hour, a, b)
	yRot := must[uint64](t)(a.gen.Commit(y, 1, 3))
	zRot := must[uint64](t)(a.gen.Commit(z, 1, 3))
	must[uint64](t)(a.gen.Snapshot())
	b.gen.Advance(30 * time.Second)
	must[uint64](t)(b.gen.Snapshot())
	b.gen.Advance(30 * time.Second)
	must[uint64](t)(b.gen.CommitBody(y, commitBody(t, a, yRot)))
	must[uint64](t)(b.gen.Snapshot())
	b.gen.Advance(19 * time.Minute)
	must[uint64](t)(b.gen.Snapshot())
	b.gen.Advance(10 * time.Minute)
	must[uint64](t)(b.gen.CommitBody(z, commitBody(t, a, zRot)))
	must[uint64](t)(b.gen.Snapshot())
	a.gen.Advance(30 * time.Minute)
	advanceBoth(t, time.Hour, a, b)
	return a, b, y, z
}

// TestCrossLogFoundAgainAfterCrash: a finding whose evidence was not
// stored when the monitor stopped (a crash after the replay was saved) is
// found again from the recorded commitments at the next start. Mutation
// caught: not looking for findings at startup (crossLog.findAll).
func TestCrossLogFoundAgainAfterCrash(t *testing.T) {
	a, b, x := equivocation(t)
	dir := t.TempDir()
	m := crossMonitor(t, dir, a, b)
	m.once(t)
	if len(alertsOfKind(m.out.alerts(t), KindCrossLog)) != 1 {
		t.Fatalf("no cross-log alert: %+v", m.out.alerts(t))
	}
	if _, err := m.store.db.Exec(`DELETE FROM evidence; DELETE FROM alerts`); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m2 := crossMonitor(t, dir, a, b)
	m2.once(t)
	if as := alertsOfKind(m2.out.alerts(t), KindCrossLog); len(as) != 1 || as[0].Issuer != x {
		t.Fatalf("after the restart: %+v, want the cross-log alert for %s again", m2.out.alerts(t), x)
	}
}

// TestCrossLogSeveralIssuers: three issuers equivocating at different
// times are three alerts, each with its own evidence (the key sets of
// both logs' snapshots are rebuilt in one pass per log), and an issuer
// with the same keys in both logs is none.
func TestCrossLogSeveralIssuers(t *testing.T) {
	a, b := newCosignedLog(t, "keycommit.example/log/a"), newCosignedLog(t, "keycommit.example/log/b")
	issuers := []string{"https://x1.example", "https://x2.example", "https://x3.example"}
	const honest = "https://honest.example"
	for _, l := range []*testLog{a, b} {
		must[uint64](t)(l.gen.Register(honest))
	}
	must[uint64](t)(b.gen.CommitBody(honest, commitBody(t, a, must[uint64](t)(a.gen.Commit(honest, 2, 3)))))
	for _, o := range issuers {
		for _, l := range []*testLog{a, b} {
			must[uint64](t)(l.gen.Register(o))
			must[uint64](t)(l.gen.Commit(o, 1, 3))
			must[uint64](t)(l.gen.Snapshot())
		}
		advanceBoth(t, time.Hour, a, b)
	}
	m := crossMonitor(t, "", a, b)
	m.once(t)
	as := alertsOfKind(m.out.alerts(t), KindCrossLog)
	if len(as) != len(issuers) {
		t.Fatalf("want %d cross-log alerts, got %+v", len(issuers), m.out.alerts(t))
	}
	chk := CrossLogCheck{VKeys: []string{a.vkey, b.vkey}, Policies: []*quorum.Policy{crossPolicy(t)}}
	seen := map[string]bool{}
	for _, al := range as {
		ev, err := CheckCrossLog(must[[]byte](t)(m.EvidenceBundle(t.Context(), al.Evidence)), chk)
		if err != nil || ev.Issuer != al.Issuer {
			t.Fatalf("evidence of the alert for %s: %v", al.Issuer, err)
		}
		seen[ev.Issuer] = true
	}
	for _, o := range issuers {
		if !seen[o] {
			t.Errorf("no cross-log alert for %s", o)
		}
	}
}

// BenchmarkCrossLogRecord times what the cross-log check adds to the
// replay of each entry (recording commitments and snapshots, and the
// comparison after each batch of 256) on two logs where 500 issuers hold
// the same keys (every issuer is compared after every batch with a
// snapshot: the costly case), next to schema.ParseEntry of the same
// entries, which the replay does for each entry anyway.
func BenchmarkCrossLogRecord(b *testing.B) {
	var logs [2]*testLog
	for i, o := range []string{"keycommit.example/log/a", "keycommit.example/log/b"} {
		logs[i] = newTestLog(b, o)
	}
	for k := range 500 {
		o := fmt.Sprintf("https://issuer%d.example", k)
		for _, l := range logs {
			must[uint64](b)(l.gen.Register(o))
		}
		idx := must[uint64](b)(logs[0].gen.Commit(o, 2, 3))
		must[uint64](b)(logs[1].gen.CommitBody(o, commitBody(b, logs[0], idx)))
		if k%10 == 9 {
			advanceBoth(b, time.Minute, logs[0], logs[1])
		}
	}
	n := logs[0].Size() + logs[1].Size()
	parsed := make([][]*schema.Entry, 2)
	for i, l := range logs {
		for j := range l.Size() {
			parsed[i] = append(parsed[i], must[*schema.Entry](b)(schema.ParseEntry(l.Entry(j))))
		}
	}
	var parseNs, recordNs float64
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			for _, l := range logs {
				for j := range l.Size() {
					if _, err := schema.ParseEntry(l.Entry(j)); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		parseNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(n)
		b.ReportMetric(parseNs, "ns/entry")
	})
	b.Run("record", func(b *testing.B) {
		for b.Loop() {
			c := newCrossLog(verify.DefaultGrace)
			for i, l := range logs {
				for start := int64(0); start < l.Size(); start += tileWidth {
					rec := &clRecord{}
					for j := start; j < min(start+tileWidth, l.Size()); j++ {
						rec.entry(j, parsed[i][j], l.gen.State)
					}
					c.add(l.Origin(), rec)
				}
			}
			if len(c.pending) != 0 {
				b.Fatalf("%d findings on logs that agree", len(c.pending))
			}
		}
		recordNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(n)
		b.ReportMetric(recordNs, "ns/entry")
	})
	if parseNs > 0 && recordNs > 0 {
		b.Logf("cross-log recording: %.0f ns/entry, %.2fx of ParseEntry (%.0f ns/entry)", recordNs, recordNs/parseNs, parseNs)
	}
}

// TestCrossLogLapsedRegistration: an issuer whose registration lapsed in
// log a is left out of a's later snapshots; the overlap is shown with a's
// last snapshot before the lapse (a day after the commitments), not with
// one that no longer holds the issuer. Mutation caught: taking the latest
// snapshot of the commitment's period whatever the registration (the
// evidence cannot be made and nothing is raised).
func TestCrossLogLapsedRegistration(t *testing.T) {
	a, b, x := differentKeys(t, func(l *testLog) {
		l.gen.Advance(time.Minute)
		must[uint64](t)(l.gen.Snapshot())
	})
	a.gen.Advance(24 * time.Hour)
	dayAfter := must[uint64](t)(a.gen.Snapshot())
	// b renews x's registration; a does not, and it lapses.
	b.gen.Advance(100 * 24 * time.Hour)
	must[uint64](t)(b.gen.Register(x))
	must[uint64](t)(b.gen.Snapshot())
	advanceBoth(t, 100*24*time.Hour, b)
	advanceBoth(t, 200*24*time.Hour, a)
	m := crossMonitor(t, "", a, b)
	m.once(t)
	as := alertsOfKind(m.out.alerts(t), KindCrossLog)
	if len(as) != 1 {
		t.Fatalf("want one cross-log alert, got %+v", m.out.alerts(t))
	}
	ev, err := CheckCrossLog(must[[]byte](t)(m.EvidenceBundle(t.Context(), as[0].Evidence)),
		CrossLogCheck{VKeys: []string{a.vkey, b.vkey}, Policies: []*quorum.Policy{crossPolicy(t)}})
	if err != nil {
		t.Fatalf("evidence does not verify: %v", err)
	}
	if ev.Logs[0].SnapshotIndex != int64(dayAfter) {
		t.Errorf("a's side is proven with snapshot %d, want %d (the last before the lapse)", ev.Logs[0].SnapshotIndex, dayAfter)
	}
}

// TestCrossLogDroppedStaysDropped: a finding that cannot be made into
// evidence (here log a's latest snapshot is wrong, so its key set cannot
// be rebuilt) raises no cross-log alert, and is not tried again after a
// restart (each try reads the log again).
func TestCrossLogDroppedStaysDropped(t *testing.T) {
	a, b, x := differentKeys(t, func(l *testLog) {
		must[uint64](t)(l.gen.Snapshot())
		l.gen.Advance(time.Hour)
	})
	must[uint64](t)(b.gen.Snapshot())
	must[uint64](t)(a.gen.Force(must[*schema.Entry](t)(a.gen.SnapshotEntry(x)))) // leaves x out
	dir := t.TempDir()
	m := crossMonitor(t, dir, a, b)
	m.once(t)
	if as := alertsOfKind(m.out.alerts(t), KindCrossLog); len(as) != 0 {
		t.Fatalf("cross-log alert without evidence: %+v", as)
	}
	if n := must[int](t)(m.store.count(t.Context(), "dropped", `SELECT COUNT(*) FROM crosslog_dropped`)); n != 1 {
		t.Fatalf("%d dropped findings recorded, want 1", n)
	}
	m.Close()
	m2 := crossMonitor(t, dir, a, b)
	if len(m2.cross.pending) != 0 {
		t.Fatalf("the dropped finding is pending again after the restart: %+v", m2.cross.pending)
	}
}

// TestCrossLogRun: followers running concurrently (Run) record, compare
// and make evidence without a data race (run with -race), and raise the
// alert once.
func TestCrossLogRun(t *testing.T) {
	a, b, x := equivocation(t)
	pol := crossPolicy(t)
	m := newTestMonitor(t, "", func(c *Config) { c.WitnessPolicy, c.PollInterval = pol, 20*time.Millisecond }, a, b)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(alertsOfKind(m.out.alerts(t), KindCrossLog)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// More rounds, with the logs growing, while both followers run.
	advanceBoth(t, time.Hour, a, b)
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if as := alertsOfKind(m.out.alerts(t), KindCrossLog); len(as) != 1 || as[0].Issuer != x {
		t.Fatalf("want one cross-log alert for %s, got %+v", x, m.out.alerts(t))
	}
}

// TestCrossLogUnfollowedLog: a log recorded in the database but no longer
// followed after a restart is not compared (its findings would name a log
// the monitor cannot prove anything in).
func TestCrossLogUnfollowedLog(t *testing.T) {
	a, b, _ := equivocation(t)
	dir := t.TempDir()
	m := crossMonitor(t, dir, a, b)
	m.once(t)
	if _, err := m.store.db.Exec(`DELETE FROM evidence; DELETE FROM alerts`); err != nil {
		t.Fatal(err)
	}
	m.Close()
	c := newCosignedLog(t, "keycommit.example/log/c")
	m2 := crossMonitor(t, dir, a, c)
	if len(m2.cross.pending) != 0 || m2.cross.logs[b.Origin()] != nil {
		t.Fatalf("log b, no longer followed, is still compared: pending %+v", m2.cross.pending)
	}
	m2.once(t)
	if as := alertsOfKind(m2.out.alerts(t), KindCrossLog); len(as) != 0 {
		t.Fatalf("cross-log alerts about a log not followed: %+v", as)
	}
}
