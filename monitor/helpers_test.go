package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycommit/keycommit/monitor/monitortest"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
)

var genesis = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

// testLog is a log double served over loopback.
type testLog struct {
	*monitortest.Log
	vkey    string
	url     string
	gen     *monitortest.Gen
	bundles atomic.Int64 // entry bundle requests served
	close   func()
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	tl := newTestLogUnclean(t, origin)
	t.Cleanup(tl.close)
	return tl
}

// newTestLogUnclean is newTestLog for a log shared between tests: its
// server is never closed.
func newTestLogUnclean(t testing.TB, origin string) *testLog {
	t.Helper()
	l, vkey, err := monitortest.NewWithKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLog{Log: l, vkey: vkey, gen: monitortest.NewGen(l, genesis, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/tile/entries/") {
			tl.bundles.Add(1)
		}
		l.ServeHTTP(w, r)
	}))
	tl.url = srv.URL
	tl.close = srv.Close
	return tl
}

// serveView serves log l (one view of a split log) on its own server.
func serveView(t testing.TB, l *monitortest.Log) string {
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	return srv.URL
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// populate registers n issuers with a first commitment each, then a
// snapshot.
func populate(t testing.TB, g *monitortest.Gen, n int) []string {
	t.Helper()
	var origins []string
	for i := range n {
		o := fmt.Sprintf("https://issuer%d.example", i)
		origins = append(origins, o)
		must[uint64](t)(g.Register(o))
		must[uint64](t)(g.Commit(o, 2, 3))
		g.Advance(time.Minute)
	}
	must[uint64](t)(g.Snapshot())
	return origins
}

// alertBuffer collects the JSON lines a monitor writes.
type alertBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *alertBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *alertBuffer) alerts(t testing.TB) []Alert {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Alert
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var a Alert
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("alert line %q is not JSON: %v", l, err)
		}
		out = append(out, a)
	}
	return out
}

type testMonitor struct {
	*Monitor
	out *alertBuffer
	dir string
}

func newTestMonitor(t testing.TB, dir string, tweak func(*Config), logs ...*testLog) *testMonitor {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	out := &alertBuffer{}
	// The log doubles date entries from genesis (in the future of the
	// real clock): the monitor's clock is set after anything they write,
	// so that only tests about it meet the monitor-clock time rule.
	cfg := Config{DataDir: dir, AlertOut: out, Registerer: prometheus.NewRegistry(), BatchBundles: 4,
		Now: func() time.Time { return genesis.AddDate(10, 0, 0) }}
	for _, l := range logs {
		cfg.Logs = append(cfg.Logs, LogConfig{URL: l.url, VKey: l.vkey})
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &testMonitor{Monitor: m, out: out, dir: dir}
}

func (m *testMonitor) once(t testing.TB) *Report {
	t.Helper()
	rep, err := m.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func alertsOfKind(as []Alert, kind string) []Alert {
	var out []Alert
	for _, a := range as {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

func stateDigest(t testing.TB, g *monitortest.Gen) [32]byte {
	t.Helper()
	b, err := g.State.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return sha256Sum(b)
}

func mustVerifier(t testing.TB, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
