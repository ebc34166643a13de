package monitor

import (
	"strings"
	"testing"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

// TestSnapshotForms: a monitor recomputes a snapshot in the form it
// carries. A log that wrote digest-form snapshots (made before the key set
// root) and then root-form ones raises nothing; a wrong snapshot in either
// form raises the snapshot alert naming the form and the issuers.
func TestSnapshotForms(t *testing.T) {
	l := newTestLog(t, "example.com/forms")
	g := l.gen
	origins := populate(t, g, 3)
	g.DigestSnapshots = true
	must[uint64](t)(g.Snapshot())
	badDigest := int64(must[uint64](t)(g.Force(must[*schema.Entry](t)(g.SnapshotEntry(origins[0])))))
	g.DigestSnapshots = false
	must[uint64](t)(g.Snapshot())
	badRoot := int64(must[uint64](t)(g.Force(must[*schema.Entry](t)(g.SnapshotEntry(origins[2])))))
	must[uint64](t)(g.Snapshot())

	m := newTestMonitor(t, "", nil, l)
	m.once(t)
	as := m.out.alerts(t)
	for _, w := range []struct {
		index int64
		form  string
	}{{badDigest, "digest"}, {badRoot, "root"}} {
		found := false
		for _, a := range alertsOfKind(as, KindSnapshot) {
			if a.Index != nil && *a.Index == w.index && a.Rule == policy.RuleSnapshot {
				found = true
				if !strings.Contains(a.Message, "issuers with "+w.form+" ") || !strings.Contains(a.Message, origins[1]) {
					t.Errorf("snapshot alert at %d does not name the %s and the issuers: %q", w.index, w.form, a.Message)
				}
			}
		}
		if !found {
			t.Errorf("no snapshot alert for the wrong %s-form snapshot at %d; alerts: %+v", w.form, w.index, as)
		}
	}
	if len(as) != 2 {
		t.Errorf("%d alerts, want the 2 wrong snapshots': %+v", len(as), as)
	}
}
