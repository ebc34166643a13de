package policy_test

import (
	"testing"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/policy/internal/gen"
	"github.com/keycommit/keycommit/schema"
)

// TestReplay generates a 10,000-entry log with many issuers (normal and
// emergency rotations, final reports, lapses, key changes, snapshots and
// refused attempts interleaved; the generator checks every decision against
// its own model of the rules), then evaluates it from scratch, from the
// bytes alone: every admitted entry is admitted again and every refused
// attempt is refused again, by the same rule.
func TestReplay(t *testing.T) {
	// 10,000 entries normally; 2,000 under -short or the race detector
	// (run `go test -run TestReplay ./policy` for the full log).
	n := 10000
	if testing.Short() || raceEnabled {
		n = 2000
		t.Logf("replaying %d entries (-short or -race); without them the log has 10,000", n)
	}
	l, err := gen.Generate(gen.Config{Seed: 1, Entries: n, Issuers: 40})
	if err != nil {
		t.Fatal(err)
	}
	// The log must exercise every rule it can reach.
	for _, c := range []string{"accept/rotation", "accept/emergency", "accept/final report", "accept/first commitment",
		"accept/snapshot", "accept/renew", "accept/renew after lapse", "accept/account key change", "accept/drop a key", "accept/params",
		"reject/" + policy.RuleRotation, "reject/" + policy.RuleOpenIncident, "reject/" + policy.RuleEmergencyRate,
		"reject/" + policy.RuleKeyWindow, "reject/" + policy.RuleSignature, "reject/" + policy.RulePrev,
		"reject/" + policy.RuleCommitmentID, "reject/" + policy.RuleKeyReuse, "reject/" + policy.RuleRetiredKey,
		"reject/" + policy.RuleKeyCount, "reject/" + policy.RuleExpiry, "reject/" + policy.RuleBatchSize,
		"reject/" + policy.RuleRegistration, "reject/" + policy.RuleIncidentReport, "reject/" + policy.RuleSnapshot} {
		if l.Counts[c] == 0 {
			t.Errorf("generated log has no %s", c)
		}
	}
	t.Logf("%d entries, %d refused attempts: %v", len(l.Entries), len(l.Attempts), l.Counts)

	replay(t, l)
}

// replay evaluates l from scratch and returns the refusals' decisions.
func replay(t *testing.T, l *gen.Log) {
	t.Helper()
	st := policy.NewLogState(gen.LogName)
	a := 0
	for i := 0; i <= len(l.Entries); i++ {
		for ; a < len(l.Attempts) && l.Attempts[a].Before == uint64(i); a++ {
			at := l.Attempts[a]
			e, err := schema.ParseEntry(at.Entry)
			if err != nil {
				t.Fatalf("attempt %d (%s): %v", a, at.What, err)
			}
			d := policy.Evaluate(st, e, uint64(i))
			if d.Accept || d.Rule != at.Want {
				t.Fatalf("attempt %d before entry %d (%s): want refusal by %s, got %+v", a, i, at.What, at.Want, d)
			}
		}
		if i == len(l.Entries) {
			break
		}
		b := l.Entries[i]
		e, err := schema.ParseEntry(b)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if d := policy.Evaluate(st, e, uint64(i)); !d.Accept {
			t.Fatalf("entry %d (%s) refused on replay: %v", i, e.Kind, d.Err())
		}
		if err := st.Apply(e, uint64(i), gen.LeafHash(b)); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	if a != len(l.Attempts) {
		t.Fatalf("%d attempts left after the last entry", len(l.Attempts)-a)
	}
}
