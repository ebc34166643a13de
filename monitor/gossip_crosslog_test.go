package monitor

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keycommit/keycommit/witness/quorum"
)

// logBuffer collects a monitor's log lines (text handler).
type logBuffer struct{ alertBuffer }

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines containing every one of subs.
func (b *logBuffer) lines(subs ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// gossipMonitor is a monitor of logs under the cross-log witness policy,
// pulling from peers, logging to lb.
func gossipMonitor(t *testing.T, dir string, lb *logBuffer, peers []string, logs ...*testLog) *testMonitor {
	t.Helper()
	pol := crossPolicy(t)
	return newTestMonitor(t, dir, func(c *Config) {
		c.WitnessPolicy, c.Peers = pol, peers
		c.Logger = slog.New(slog.NewTextHandler(lb, nil))
	}, logs...)
}

// pull runs one gossip pull (and no round of its own: the monitor has not
// replayed the logs, so it cannot find the equivocation itself).
func (m *testMonitor) pull(t *testing.T) {
	t.Helper()
	if errs := m.pullAll(t.Context()); len(errs) != 0 {
		t.Fatalf("gossip pull: %v", errors.Join(errs...))
	}
}

// tamperingPeer serves m1's handler, but every evidence bundle with one
// byte flipped in its reason (the evidence id, derived from the issuer and
// the commitment entries, is unchanged). fetched counts the bundles served.
func tamperingPeer(t *testing.T, h http.Handler) (url string, fetched *atomic.Int64) {
	fetched = &atomic.Int64{}
	url = httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/evidence/") {
			h.ServeHTTP(w, r)
			return
		}
		fetched.Add(1)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		b := rec.Body.Bytes()
		if i := bytes.LastIndex(b, []byte("committed")); i >= 0 {
			b[i] ^= 0x01
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		w.Write(b)
	}))
	return url, fetched
}

// relabellingPeer serves h, but lists evidence id under the id fake (and
// serves id's bundle at fake).
func relabellingPeer(t *testing.T, h http.Handler, id, fake string) string {
	return httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/evidence":
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			w.Header().Set("Content-Type", "application/json")
			w.Write(bytes.ReplaceAll(rec.Body.Bytes(), []byte(id), []byte(fake)))
		case "/v1/evidence/" + fake:
			r.URL.Path = "/v1/evidence/" + id
			h.ServeHTTP(w, r)
		default:
			h.ServeHTTP(w, r)
		}
	}))
}

// TestCrossLogGossip: monitor M1 finds an equivocation across logs a and
// b; M2, following both but not yet having replayed them, learns it from
// M1's evidence (refusing a tampered copy from another peer first): one
// cross-log alert naming M1, the evidence stored byte for byte as M1
// serves it. M2's own later detection of the same finding and a restart
// raise nothing more, and M3, gossiping only with M2, gets it from M2.
func TestCrossLogGossip(t *testing.T) {
	a, b, x := equivocation(t)
	m1 := crossMonitor(t, "", a, b)
	m1.once(t)
	as := alertsOfKind(m1.out.alerts(t), KindCrossLog)
	if len(as) != 1 {
		t.Fatalf("M1: want one cross-log alert, got %+v", m1.out.alerts(t))
	}
	id := as[0].Evidence
	url1 := httptestServer(t, m1.Handler())
	bad, _ := tamperingPeer(t, m1.Handler())

	var lb2 logBuffer
	dir2 := t.TempDir()
	m2 := gossipMonitor(t, dir2, &lb2, []string{bad, url1}, a, b)
	m2.pull(t)
	as2 := alertsOfKind(m2.out.alerts(t), KindCrossLog)
	if len(as2) != 1 || as2[0].Evidence != id || as2[0].Issuer != x {
		t.Fatalf("M2: want one cross-log alert for evidence %s, got %+v", id, m2.out.alerts(t))
	}
	if msg := as2[0].Message; !strings.Contains(msg, "evidence from peer "+url1+")") || strings.Contains(msg, bad) {
		t.Errorf("M2's alert does not name peer %s as the source: %q", url1, msg)
	}
	if l := lb2.lines("refused cross-log evidence", "peer="+bad, "is not what the evidence shows"); len(l) != 1 {
		t.Errorf("M2 did not log the refusal of the tampered copy once:\n%s", lb2.String())
	}
	if l := lb2.lines("issuer committed different keys", "source=\"peer "+url1+"\""); len(l) != 1 {
		t.Errorf("M2 did not log the finding from %s:\n%s", url1, lb2.String())
	}
	want := must[[]byte](t)(m1.EvidenceBundle(t.Context(), id))
	got := must[[]byte](t)(m2.EvidenceBundle(t.Context(), id))
	if !bytes.Equal(got, want) {
		t.Fatalf("M2 stored other bytes than M1 serves:\n%s\nwant\n%s", got, want)
	}

	// M2's own round finds the same two commitments: nothing new.
	m2.once(t)
	m2.cross.mu.Lock()
	found := m2.cross.done[id]
	m2.cross.mu.Unlock()
	if !found {
		t.Error("M2's own round did not come to the finding (the test no longer shows the dedup)")
	}
	if n := len(alertsOfKind(m2.out.alerts(t), KindCrossLog)); n != 1 {
		t.Errorf("M2 raised %d cross-log alerts after its own round, want 1: %+v", n, m2.out.alerts(t))
	}

	// Re-served: M3 pulls only from M2.
	url2 := httptestServer(t, m2.Handler())
	var lb3 logBuffer
	m3 := gossipMonitor(t, "", &lb3, []string{url2}, a, b)
	m3.pull(t)
	as3 := alertsOfKind(m3.out.alerts(t), KindCrossLog)
	if len(as3) != 1 || as3[0].Evidence != id || !strings.Contains(as3[0].Message, "evidence from peer "+url2+")") {
		t.Fatalf("M3: want one cross-log alert from %s, got %+v", url2, m3.out.alerts(t))
	}
	if _, err := CheckCrossLog(must[[]byte](t)(m3.EvidenceBundle(t.Context(), id)),
		CrossLogCheck{VKeys: []string{a.vkey, b.vkey}, Policies: []*quorum.Policy{crossPolicy(t)}}); err != nil {
		t.Errorf("evidence M3 got from M2 does not verify: %v", err)
	}

	// A restart of M2, pulling and following again: nothing raised.
	m2.Close()
	var lb2b logBuffer
	m2 = gossipMonitor(t, dir2, &lb2b, []string{bad, url1}, a, b)
	m2.pull(t)
	m2.once(t)
	if as := m2.out.alerts(t); len(as) != 0 {
		t.Fatalf("restarted M2 raised %+v", as)
	}
	if n := must[int](t)(m2.AlertCount(t.Context(), AlertFilter{Kind: KindCrossLog})); n != 1 {
		t.Errorf("%d cross-log alerts stored after the restart, want 1", n)
	}
	if n := must[int](t)(m2.EvidenceCount(t.Context())); n != 1 {
		t.Errorf("%d evidence bundles stored after the restart, want 1", n)
	}
}

// TestCrossLogGossipRefused: peer cross-log evidence the monitor cannot
// verify with what it trusts is refused, logged with the reason and not
// stored: a copy with one byte flipped (fetched once, not on every pull),
// evidence naming a log the monitor does not follow (either side),
// listed by the peer under another id than its own, giving a log
// another key than the monitor's, or checked without a witness policy.
func TestCrossLogGossipRefused(t *testing.T) {
	a, b, _ := equivocation(t)
	m1 := crossMonitor(t, "", a, b)
	m1.once(t)
	url1 := httptestServer(t, m1.Handler())
	bad, fetched := tamperingPeer(t, m1.Handler())
	id := alertsOfKind(m1.out.alerts(t), KindCrossLog)[0].Evidence
	fake := strings.Repeat("0", len(id))
	relabel := relabellingPeer(t, m1.Handler(), id, fake)
	otherB := &testLog{Log: b.Log, url: b.url, vkey: b.otherKey(t)}

	for _, tc := range []struct {
		name string
		peer string
		logs []*testLog
		want []string // in one log line
		// checkpointsFail: the pull's checkpoints do not verify under the
		// monitor's key for b (an error of the pull, not of the evidence).
		checkpointsFail bool
	}{
		{"one byte flipped", bad, []*testLog{a, b}, []string{"refused cross-log evidence", "is not what the evidence shows"}, false},
		{"second log not followed", url1, []*testLog{a}, []string{"does not follow", "log=" + b.Origin()}, false},
		{"first log not followed", url1, []*testLog{b}, []string{"does not follow", "log=" + a.Origin()}, false},
		{"listed under another id", relabel, []*testLog{a, b}, []string{"refused cross-log evidence", "lists it as " + fake + ", but its id is " + id}, false},
		{"another key for a log", url1, []*testLog{a, otherB}, []string{"refused cross-log evidence", "gives log " + b.Origin() + " the key"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lb logBuffer
			m := gossipMonitor(t, "", &lb, []string{tc.peer}, tc.logs...)
			fetched.Store(0)
			for range 2 {
				if tc.checkpointsFail {
					m.pullAll(t.Context())
				} else {
					m.pull(t)
				}
			}
			if l := lb.lines(append([]string{"peer=" + tc.peer}, tc.want...)...); len(l) != 1 {
				t.Errorf("want one log line with %q, got:\n%s", tc.want, lb.String())
			}
			if n := must[int](t)(m.EvidenceCount(t.Context())); n != 0 {
				t.Errorf("%d evidence bundles stored, want none", n)
			}
			if as := m.out.alerts(t); len(as) != 0 {
				t.Errorf("alerts raised: %+v", as)
			}
			if tc.peer == bad && fetched.Load() != 1 {
				t.Errorf("the refused bundle was fetched %d times in two pulls, want once", fetched.Load())
			}
		})
	}
	// Without a witness policy the logged times cannot be checked.
	var lb logBuffer
	m := newTestMonitor(t, "", func(c *Config) {
		c.Peers, c.Logger = []string{url1}, slog.New(slog.NewTextHandler(&lb, nil))
	}, a, b)
	m.pull(t)
	if l := lb.lines("refused cross-log evidence", "no witness policy"); len(l) != 1 {
		t.Errorf("no witness policy: want one refusal, got:\n%s", lb.String())
	}
	if n := must[int](t)(m.EvidenceCount(t.Context())); n != 0 {
		t.Errorf("no witness policy: %d evidence bundles stored, want none", n)
	}
}
