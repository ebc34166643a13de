package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/keycommit/keycommit/log/httpguard"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/monitor/monitortest"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

// TestFollowHonestLog follows a log that keeps its policy across several
// rounds of growth: no alerts, and the replayed state equals the log's.
func TestFollowHonestLog(t *testing.T) {
	l := newTestLog(t, "example.com/honest")
	origins := populate(t, l.gen, 5)
	m := newTestMonitor(t, "", nil, l)
	for round := range 4 {
		rep := m.once(t)
		if !rep.OK() {
			t.Fatalf("round %d: report not OK: %+v, alerts %v", round, rep, m.out.alerts(t))
		}
		st := rep.Logs[0]
		if st.VerifiedSize != l.Size() || st.Position != l.Size() {
			t.Fatalf("round %d: verified %d, position %d; log has %d", round, st.VerifiedSize, st.Position, l.Size())
		}
		if got, want := must[[32]byte](t)(m.StateDigest(l.Origin())), stateDigest(t, l.gen); got != want {
			t.Fatalf("round %d: replayed policy state differs from the log's", round)
		}
		// Grow by an uneven number of entries, across bundle boundaries.
		for i := range 97 * (round + 1) {
			l.gen.Advance(time.Minute)
			must[uint64](t)(l.gen.Commit(origins[i%len(origins)], 0, 3))
			if i%50 == 0 {
				must[uint64](t)(l.gen.Snapshot())
			}
		}
	}
	if as := m.out.alerts(t); len(as) != 0 {
		t.Errorf("honest log raised alerts: %+v", as)
	}
}

// TestPolicyViolationsAlert is must-hold 2: a log that admits a rotation 10
// days after the previous one without an incident report, or publishes a
// snapshot that omits an issuer, is reported with the entry's index and the
// rule; so are timestamps going backwards and non-canonical entries.
func TestPolicyViolationsAlert(t *testing.T) {
	l := newTestLog(t, "example.com/liar")
	g := l.gen
	origins := populate(t, g, 3)
	g.Advance(10 * 24 * time.Hour)
	rot := must[*schema.Entry](t)(g.CommitEntry(origins[0], 1, 3, nil))
	if d := policy.Evaluate(g.State, rot, uint64(l.Size())); d.Accept || d.Rule != policy.RuleRotation {
		t.Fatalf("the policy should refuse a rotation 10 days after the previous: %+v", d)
	}
	rotIdx := int64(must[uint64](t)(g.Force(rot)))
	snap := must[*schema.Entry](t)(g.SnapshotEntry(origins[1]))
	snapIdx := int64(must[uint64](t)(g.Force(snap)))
	// An issuer entry timed before that issuer's previous entry.
	now := g.Now
	g.Now = genesis.UnixMilli() // issuer2's previous entry is 2 minutes later
	back := must[*schema.Entry](t)(g.CommitEntry(origins[2], 0, 3, nil))
	backIdx := int64(must[uint64](t)(g.Force(back)))
	g.Now = now
	// A valid entry with one extra space: not canonical.
	good := must[*schema.Entry](t)(g.CommitEntry(origins[1], 0, 3, nil))
	raw := must[[]byte](t)(good.Marshal())
	rawIdx := int64(must[uint64](t)(g.ForceRaw(bytes.Replace(raw, []byte(`{"v":2,`), []byte(`{"v":2, `), 1))))
	must[uint64](t)(g.Snapshot()) // the log goes on honestly

	m := newTestMonitor(t, "", nil, l)
	rep := m.once(t)
	if rep.OK() {
		t.Fatal("report OK for a log that broke its policy")
	}
	as := m.out.alerts(t)
	want := []struct {
		kind, rule string
		index      int64
	}{
		{KindPolicy, policy.RuleRotation, rotIdx},
		{KindSnapshot, policy.RuleSnapshot, snapIdx},
		{KindTimestamp, policy.RuleTime, backIdx},
		{KindNonCanonical, RuleCanonical, rawIdx},
	}
	for _, w := range want {
		found := false
		for _, a := range as {
			if a.Kind == w.kind && a.Rule == w.rule && a.Index != nil && *a.Index == w.index && a.Log == l.Origin() {
				found = true
				if !strings.Contains(a.Message, "entry") && !strings.Contains(a.Message, "snapshot") {
					t.Errorf("alert message does not say what is wrong: %q", a.Message)
				}
			}
		}
		if !found {
			t.Errorf("no %s alert for rule %s at index %d; alerts: %+v", w.kind, w.rule, w.index, as)
		}
	}
	for _, a := range as {
		if a.Index == nil || (*a.Index != rotIdx && *a.Index != snapIdx && *a.Index != backIdx && *a.Index != rawIdx) {
			t.Errorf("unexpected alert: %+v", a)
		}
	}
	// The snapshot alert names the issuers the key set holds.
	for _, a := range alertsOfKind(as, KindSnapshot) {
		if !strings.Contains(a.Message, origins[1]) {
			t.Errorf("snapshot alert does not list the issuers: %q", a.Message)
		}
	}
	// Alerts are raised once: another round finds nothing new.
	n := len(as)
	if rep := m.once(t); rep.Alerts != int64(n) {
		t.Errorf("second round: %d alerts raised in total, want still %d", rep.Alerts, n)
	}
	if got := len(m.out.alerts(t)); got != n {
		t.Errorf("second round wrote %d more alerts", got-n)
	}
	// The state still ends equal to the log's (the log applied the bad
	// entries, and so does the monitor).
	if got, want := must[[32]byte](t)(m.StateDigest(l.Origin())), stateDigest(t, g); got != want {
		t.Error("replayed policy state differs from the log's")
	}
}

// TestInclusionFailure: a log whose bundles serve an entry its tree does
// not contain is caught with the entry's index.
func TestInclusionFailure(t *testing.T) {
	l := newTestLog(t, "example.com/tamper")
	populate(t, l.gen, 200) // 401 entries: two bundles
	l.TamperEntry(300, []byte(`{"not":"the entry"}`))
	m := newTestMonitor(t, "", func(c *Config) { c.BatchBundles = 1 }, l)
	rep := m.once(t)
	if rep.OK() || len(rep.Errors) == 0 {
		t.Fatalf("report OK for a log serving a tampered entry: %+v", rep)
	}
	as := alertsOfKind(m.out.alerts(t), KindInclusion)
	if len(as) != 1 || as[0].Index == nil || *as[0].Index != 300 {
		t.Fatalf("want one inclusion alert at index 300, got %+v", as)
	}
	// Nothing past the verified bundles was replayed.
	if st := m.Status()[0]; st.Position != 256 || st.VerifiedSize != 0 {
		t.Errorf("position %d, verified %d; want 256 and 0", st.Position, st.VerifiedSize)
	}
}

// TestBadCheckpointSignature: a checkpoint signed by another key raises an
// alert and verifies nothing.
func TestBadCheckpointSignature(t *testing.T) {
	l := newTestLog(t, "example.com/sig")
	populate(t, l.gen, 2)
	other, _, err := monitortest.NewWithKey("example.com/sig")
	if err != nil {
		t.Fatal(err)
	}
	m := newTestMonitor(t, "", func(c *Config) { c.Logs[0].URL = serveView(t, other) }, l)
	rep := m.once(t)
	if rep.OK() {
		t.Fatal("report OK for a checkpoint signed by the wrong key")
	}
	if as := alertsOfKind(m.out.alerts(t), KindCheckpoint); len(as) != 1 || as[0].Rule != RuleSignature {
		t.Errorf("want one checkpoint-signature alert, got %+v", m.out.alerts(t))
	}
}

// TestWatchKeyChange is must-hold 4: a key change for a watched origin
// raises exactly one alert, however many rounds and restarts follow, and
// re-commitments of the same keys raise none.
func TestWatchKeyChange(t *testing.T) {
	l := newTestLog(t, "example.com/watch")
	g := l.gen
	origins := populate(t, g, 3)
	dir := t.TempDir()
	m := newTestMonitor(t, dir, func(c *Config) { c.Watch = []string{origins[0]} }, l)
	if rep := m.once(t); !rep.OK() {
		t.Fatalf("report not OK: %+v", rep)
	}
	if as := m.out.alerts(t); len(as) != 0 {
		t.Fatalf("alerts before any change: %+v", as)
	}
	// Same keys under a new id, and another issuer's rotation: no alert.
	g.Advance(time.Hour)
	must[uint64](t)(g.Commit(origins[0], 0, 3))
	g.Advance(61 * 24 * time.Hour)
	must[uint64](t)(g.Commit(origins[1], 1, 3))
	m.once(t)
	if as := m.out.alerts(t); len(as) != 0 {
		t.Fatalf("alerts without a change to the watched keys: %+v", as)
	}
	// The watched issuer rotates.
	idx := int64(must[uint64](t)(g.Commit(origins[0], 1, 3)))
	must[uint64](t)(g.Snapshot())
	for range 3 {
		m.once(t)
	}
	as := m.out.alerts(t)
	if len(as) != 1 || as[0].Kind != KindKeyChange || *as[0].Index != idx || as[0].Issuer != origins[0] {
		t.Fatalf("want exactly one key-change alert at %d, got %+v", idx, as)
	}
	// A restarted monitor does not raise it again.
	m.Close()
	tokFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokFile, []byte("s3cret-operator-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := httpguard.LoadToken(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	m2 := newTestMonitor(t, dir, func(c *Config) { c.AdminToken = tok }, l)
	m2.once(t)
	if as := m2.out.alerts(t); len(as) != 0 {
		t.Fatalf("restarted monitor raised %+v", as)
	}
	// Watches added over HTTP, with the operator's token, take effect
	// for later changes; without it nothing is added.
	srv := httptestServer(t, m2.Handler())
	if resp := postJSON(t, srv+"/watch", `{"origin":"https://stranger.example"}`); resp != 401 {
		t.Fatalf("POST /watch without the token: %d, want 401", resp)
	}
	if resp := postJSONAuth(t, srv+"/watch", `{"origin":"https://stranger.example"}`, "Bearer not-the-token-at-all"); resp != 401 {
		t.Fatalf("POST /watch with a wrong token: %d, want 401", resp)
	}
	resp := postJSONAuth(t, srv+"/watch", `{"origin":"https://issuer2.example"}`, "Bearer s3cret-operator-token")
	if resp != 200 {
		t.Fatalf("POST /watch: %d", resp)
	}
	if resp := postJSONAuth(t, srv+"/watch", `{"origin":"http://not-https.example"}`, "Bearer s3cret-operator-token"); resp != 400 {
		t.Errorf("POST /watch with a non-https origin: %d, want 400", resp)
	}
	if ws, _ := m2.Watches(context.Background()); slices.Contains(ws, "https://stranger.example") {
		t.Errorf("a watch without the token was added: %v", ws)
	}
	g.Advance(61 * 24 * time.Hour)
	idx2 := int64(must[uint64](t)(g.Commit(origins[2], 2, 3)))
	m2.once(t)
	as = m2.out.alerts(t)
	if len(as) != 1 || as[0].Kind != KindKeyChange || *as[0].Index != idx2 || as[0].Issuer != origins[2] {
		t.Fatalf("want exactly one key-change alert for %s at %d, got %+v", origins[2], idx2, as)
	}
}

// TestWebhook: alerts are POSTed to the webhook too.
func TestWebhook(t *testing.T) {
	got := make(chan Alert, 10)
	hook := httptestServer(t, httpHandlerFunc(func(body []byte) int {
		var a Alert
		if err := json.Unmarshal(body, &a); err != nil {
			return 400
		}
		got <- a
		return 200
	}))
	l := newTestLog(t, "example.com/hook")
	populate(t, l.gen, 2)
	must[uint64](t)(l.gen.Force(must[*schema.Entry](t)(l.gen.SnapshotEntry("https://issuer0.example"))))
	m := newTestMonitor(t, "", func(c *Config) { c.Webhook = hook }, l)
	m.once(t)
	select {
	case a := <-got:
		if a.Kind != KindSnapshot {
			t.Errorf("webhook got %+v", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook received no alert")
	}
}
