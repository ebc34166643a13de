package sequencer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

// TestImplausibleDiscoveredRefused: the log refuses a new emergency
// rotation (and a dry run of it) whose incident report gives discovered
// in seconds or microseconds instead of milliseconds, logs nothing, and
// admits the same rotation with the time in milliseconds. Without
// admissionProblem the seconds value (a 1970 date, before the entry's
// time) would be admitted silently.
func TestImplausibleDiscoveredRefused(t *testing.T) {
	l := newLog(t, storage.NewMemory())
	is := issuertest.New(t, "https://a.example")
	ctx := context.Background()
	submit(t, l, is, is.Register(t))
	submit(t, l, is, is.Commit(t, 1, t0))

	discovered := t0.Add(-time.Hour)
	emergency := func(d int64) *schema.Submission {
		c := &schema.KeyCommitment{PST: issuertest.Commitment(t, is.NextID, 1, t0.Add(30*24*time.Hour)),
			Emergency: &schema.IncidentReport{Summary: "key leaked", Discovered: d, Impact: "tokens forgeable",
				RootCause: "backup exposed", Remediation: "rotated", URL: "https://a.example/incidents/1"}}
		return is.Sign(t, schema.KindKeyCommitment, c)
	}
	for _, c := range []struct {
		name string
		d    int64
		want string
	}{
		{"seconds", discovered.Unix(), "not seconds"},
		{"microseconds", discovered.UnixMicro(), "not microseconds"},
	} {
		before, _ := l.seq.Checkpoint()
		sub := emergency(c.d)
		if d := l.seq.Check(ctx, is.DryRun(t, sub)); d.Accept || d.Rule != policy.RuleIncidentReport || !strings.Contains(d.Reason, c.want) {
			t.Errorf("%s: Check = %+v, want rule %s naming %q", c.name, d, policy.RuleIncidentReport, c.want)
		}
		_, err := l.seq.Submit(ctx, sub)
		var re *policy.RejectError
		if !errors.As(err, &re) || re.Rule != policy.RuleIncidentReport || !strings.Contains(re.Reason, c.want) {
			t.Errorf("%s: Submit error %v, want rule %s naming %q", c.name, err, policy.RuleIncidentReport, c.want)
		}
		if after, _ := l.seq.Checkpoint(); after != before {
			t.Errorf("%s: tree grew from %d to %d", c.name, before, after)
		}
	}
	size, _ := l.seq.Checkpoint()
	if r := submit(t, l, is, emergency(discovered.UnixMilli())); r.Index < size {
		t.Fatalf("emergency rotation logged at %d, want the next entry after size %d", r.Index, size)
	}
}
