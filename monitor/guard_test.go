package monitor

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/keycommit/keycommit/log/httpguard"
)

// TestStoreMode0600: the monitor's database (and its WAL) are private to
// the operator, like every other keycommit database. (Drop the
// OpenFile/Chmod in openStore and SQLite creates it 0644.)
func TestStoreMode0600(t *testing.T) {
	l := newTestLog(t, "guard.example/log")
	m := newTestMonitor(t, "", nil, l)
	m.once(t)
	for _, name := range []string{"monitor.db", "monitor.db-wal"} {
		fi, err := os.Stat(filepath.Join(m.dir, name))
		if err != nil {
			if name == "monitor.db-wal" {
				continue
			}
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
}

// TestUnstoredAlertNotLost: when the alert cannot be stored, it is still
// written out and counted, so that `monitor --once` exits 2. (Restore the
// old "log and return" in raise and the alert is lost: nothing is
// written and the count stays 0.)
func TestUnstoredAlertNotLost(t *testing.T) {
	l := newTestLog(t, "guard.example/log")
	m := newTestMonitor(t, "", nil, l)
	m.store.db.Close() // every store write fails from here
	m.raise(context.Background(), Alert{Log: "x", Kind: KindCheckpoint, Rule: RuleSignature, Message: "the log served a checkpoint that does not verify"})
	if as := m.out.alerts(t); len(as) != 1 || as[0].Rule != RuleSignature {
		t.Errorf("alerts written: %+v, want the unstored one", as)
	}
	if m.raised.Load() != 1 {
		t.Errorf("raised = %d, want 1", m.raised.Load())
	}
}

// TestWatchPages: GET /watch pages through the watches in order with
// ?after and the Link header, and refuses a page over the maximum.
func TestWatchPages(t *testing.T) {
	l := newTestLog(t, "guard.example/log")
	m := newTestMonitor(t, "", nil, l)
	want := []string{}
	for _, o := range []string{"https://a.example", "https://b.example", "https://c.example", "https://d.example", "https://e.example"} {
		if err := m.Watch(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		want = append(want, o)
	}
	srv := httptestServer(t, m.Handler())
	var got []string
	for after, pages := "", 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		resp, err := http.Get(srv + "/watch?limit=2&after=" + after)
		if err != nil {
			t.Fatal(err)
		}
		var page struct{ Watches []string }
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if len(page.Watches) > 2 {
			t.Fatalf("page of %d with limit=2", len(page.Watches))
		}
		got = append(got, page.Watches...)
		if after = httpguard.NextPage(resp.Header); after == "" {
			break
		}
	}
	if len(got) != len(want) {
		t.Fatalf("paged watches %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("paged watches %v, want %v", got, want)
		}
	}
	resp, err := http.Get(srv + "/watch?limit=1001")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("limit=1001: %d, want 400", resp.StatusCode)
	}
}
