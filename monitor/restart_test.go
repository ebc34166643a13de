package monitor

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

// bigLog builds (once per test binary) a log of n entries: 20 issuers,
// then mostly policy parameter entries (alternating values, so the state
// depends on every one of them), a snapshot every 500 entries, a
// re-commitment every 1,000, and two violations the monitor must report.
var bigLogs sync.Map // n -> *bigLog

type bigLog struct {
	once    sync.Once
	tl      *testLog
	badIdxs []int64
}

func getBigLog(t testing.TB, n int) (*testLog, []int64) {
	v, _ := bigLogs.LoadOrStore(n, &bigLog{})
	bl := v.(*bigLog)
	bl.once.Do(func() {
		tl := newTestLogUnclean(t, "example.com/big")
		g := tl.gen
		origins := populate(t, g, 20)
		p1, p2 := policy.DefaultParams(), policy.DefaultParams()
		p2.MaxEmergencies = 3
		for i := 0; tl.Size() < int64(n); i++ {
			g.Advance(time.Second)
			var err error
			switch {
			case tl.Size() == int64(n/2):
				var e *schema.Entry
				if e, err = g.SnapshotEntry(origins[3]); err == nil {
					var idx uint64
					idx, err = g.Force(e)
					bl.badIdxs = append(bl.badIdxs, int64(idx))
				}
			case tl.Size() == int64(n*7/10):
				var e *schema.Entry
				if e, err = g.CommitEntry(origins[5], 1, 3, nil); err == nil {
					var idx uint64
					idx, err = g.Force(e)
					bl.badIdxs = append(bl.badIdxs, int64(idx))
				}
			case i%1000 == 999:
				_, err = g.Commit(origins[i/1000%len(origins)], 0, 3)
			case i%500 == 0:
				_, err = g.Snapshot()
			case i%2 == 0:
				_, err = g.Params(p1)
			default:
				_, err = g.Params(p2)
			}
			if err != nil {
				panic(fmt.Sprintf("building the big log at %d: %v", tl.Size(), err))
			}
		}
		bl.tl = tl
	})
	if bl.tl == nil {
		t.Fatal("building the big log failed")
	}
	return bl.tl, bl.badIdxs
}

// TestRestartMidCatchUp is must-hold 3: a monitor interrupted while catching
// up on 100,000 entries resumes from its last save (not from the start)
// and ends with the same state, verified checkpoint and alerts as an
// uninterrupted run, each alert raised once.
func TestRestartMidCatchUp(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	t0 := time.Now()
	l, badIdxs := getBigLog(t, n)
	t.Logf("built the log in %v", time.Since(t0))
	t0 = time.Now()
	defer func() { t.Logf("runs took %v", time.Since(t0)) }()
	totalBundles := (l.Size() + 255) / 256

	// The uninterrupted run.
	clean := newTestMonitor(t, "", func(c *Config) { c.SaveEvery = 8192 }, l)
	if rep := clean.once(t); len(rep.Errors) != 0 {
		t.Fatalf("uninterrupted run: %+v", rep)
	}
	want := clean.Status()[0]
	if want.VerifiedSize != l.Size() {
		t.Fatalf("uninterrupted run verified %d of %d entries", want.VerifiedSize, l.Size())
	}
	wantAlerts := alertKeys(clean.out.alerts(t))
	if len(wantAlerts) != len(badIdxs) {
		t.Fatalf("uninterrupted run raised %v, want one alert for each of %v", wantAlerts, badIdxs)
	}

	// The interrupted run: the log stops answering after 60% of the
	// bundles, and the monitor process is closed.
	dir := t.TempDir()
	stopAfter := totalBundles * 6 / 10
	var served int64
	var mu sync.Mutex
	l.SetIntercept(func(r *http.Request) error {
		if !strings.HasPrefix(r.URL.Path, "/tile/entries/") {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if served >= stopAfter {
			return errors.New("log unavailable")
		}
		served++
		return nil
	})
	first := newTestMonitor(t, dir, func(c *Config) { c.SaveEvery = 8192 }, l)
	rep, err := first.Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) == 0 {
		t.Fatal("the interrupted run reported no error")
	}
	firstAlerts := first.out.alerts(t)
	first.Close()
	l.SetIntercept(nil)

	// The resumed run.
	before := l.bundles.Load()
	second := newTestMonitor(t, dir, func(c *Config) { c.SaveEvery = 8192 }, l)
	resumedAt := second.Status()[0].Position
	if resumedAt == 0 || resumedAt >= l.Size() {
		t.Fatalf("resumed at position %d of %d: want somewhere in the middle", resumedAt, l.Size())
	}
	if rep := second.once(t); len(rep.Errors) != 0 {
		t.Fatalf("resumed run: %+v", rep)
	}
	fetched := l.bundles.Load() - before
	if wantFetch := totalBundles - resumedAt/256; fetched != wantFetch {
		t.Errorf("resumed run fetched %d bundles, want %d (from position %d)", fetched, wantFetch, resumedAt)
	}
	got := second.Status()[0]
	if got.VerifiedSize != want.VerifiedSize || got.VerifiedRoot != want.VerifiedRoot || got.Position != want.Position {
		t.Errorf("resumed run ends at %+v, uninterrupted at %+v", got, want)
	}
	dGot := must[[32]byte](t)(second.StateDigest(l.Origin()))
	if dGot != must[[32]byte](t)(clean.StateDigest(l.Origin())) || dGot != stateDigest(t, l.gen) {
		t.Error("resumed run's policy state differs from the uninterrupted run's")
	}
	all := alertKeys(append(firstAlerts, second.out.alerts(t)...))
	if strings.Join(all, "\n") != strings.Join(wantAlerts, "\n") {
		t.Errorf("alerts over both runs:\n%s\nuninterrupted:\n%s", strings.Join(all, "\n"), strings.Join(wantAlerts, "\n"))
	}
	t.Logf("%d entries; interrupted after %d bundles, resumed at %d, fetched %d of %d bundles", l.Size(), stopAfter, resumedAt, fetched, totalBundles)
}

// alertKeys returns what alerts are about (without their times), sorted.
func alertKeys(as []Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.key())
	}
	sort.Strings(out)
	return out
}
