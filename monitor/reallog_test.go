package monitor

import (
	"context"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/schema"
)

// TestRealLog follows the project's own log server (sequencer, storage,
// HTTP read path) rather than the double: everything it admits checks out,
// across growth and a monitor restart.
func TestRealLog(t *testing.T) {
	l := logtest.Start(t, storage.NewMemory(), nil)
	ctx := context.Background()
	submit := func(is *issuertest.Issuer, sub *schema.Submission) {
		t.Helper()
		res, err := l.Client.Submit(ctx, sub)
		if err != nil {
			t.Fatalf("submit %s for %s: %v", sub.Kind, is.Origin, err)
		}
		var h [32]byte
		copy(h[:], res.LeafHash)
		is.Logged(h)
	}
	var issuers []*issuertest.Issuer
	for i := range 3 {
		is := issuertest.Numbered(t, i)
		submit(is, is.Register(t))
		submit(is, is.Commit(t, 2, l.Clock.Now()))
		issuers = append(issuers, is)
	}
	tl := &testLog{url: l.URL, vkey: l.VKey}
	dir := t.TempDir()
	m := newTestMonitor(t, dir, func(c *Config) { c.Watch = []string{issuers[0].Origin} }, tl)
	rep := m.once(t)
	if !rep.OK() {
		t.Fatalf("monitor finds fault with the real log: %+v\n%+v", rep, m.out.alerts(t))
	}
	first := rep.Logs[0].VerifiedSize
	if first < 6 {
		t.Fatalf("verified only %d entries", first)
	}
	// A rotation the log refuses is not logged; one 61 days later is, and
	// the watched issuer's key change is reported once.
	l.Clock.Advance(24 * time.Hour)
	if _, err := l.Client.Submit(ctx, issuers[0].Commit(t, 2, l.Clock.Now())); err == nil {
		t.Fatal("the log admitted a rotation one day after the previous one")
	}
	issuers[0].NextID--
	l.Clock.Advance(61 * 24 * time.Hour)
	for _, is := range issuers {
		submit(is, is.Register(t)) // renew before the registration lapses
		submit(is, is.Commit(t, 2, l.Clock.Now()))
	}
	m.Close()
	m2 := newTestMonitor(t, dir, nil, tl)
	if st := m2.Status()[0]; st.VerifiedSize != first {
		t.Fatalf("restarted monitor starts at %d, want %d", st.VerifiedSize, first)
	}
	rep = m2.once(t)
	as := m2.out.alerts(t)
	if len(rep.Errors) != 0 || len(as) != 1 || as[0].Kind != KindKeyChange || as[0].Issuer != issuers[0].Origin {
		t.Fatalf("want only the watched issuer's key change, got %+v, alerts %+v", rep, as)
	}
	if rep.Logs[0].VerifiedSize <= first {
		t.Fatalf("monitor did not follow the log's growth: %+v", rep.Logs[0])
	}
}
