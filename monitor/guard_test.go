package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

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

// TestPostCheckpointInFlightLimit: with MaxInFlight POST /v1/checkpoint
// requests inside the handler (their bodies still arriving, held by
// pipes: the barrier is that both are in ReadBody before the third is
// sent), the next one is answered 429 with Retry-After before its body is
// read; once they end, a body over the note size bound is 413. Mutation
// (tried): postLimit without a bound (NewLimiter(1<<30)) and the third
// request waits for its body instead of being refused: "third POST: no
// answer while two were in flight" after 30 s.
func TestPostCheckpointInFlightLimit(t *testing.T) {
	l := newTestLog(t, "guard.example/log")
	m := newTestMonitor(t, "", func(c *Config) { c.MaxInFlight = 2 }, l)
	base := httptestServer(t, m.Handler())
	var held []*io.PipeWriter
	done := make(chan struct{}, 2)
	for range 2 {
		pr, pw := io.Pipe()
		held = append(held, pw)
		go func() {
			if resp, err := http.Post(base+"/v1/checkpoint", "text/plain", pr); err == nil {
				resp.Body.Close()
			}
			done <- struct{}{}
		}()
		pw.Write([]byte("guard.example/log\n")) // the handler is reading
	}
	for m.postLimit.InFlight() < 2 {
		time.Sleep(time.Millisecond)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	type answer struct {
		code  int
		retry string
		err   error
	}
	third := make(chan answer, 1)
	go func() {
		resp, err := http.Post(base+"/v1/checkpoint", "text/plain", pr)
		if err != nil {
			third <- answer{err: err}
			return
		}
		resp.Body.Close()
		third <- answer{resp.StatusCode, resp.Header.Get("Retry-After"), nil}
	}()
	select {
	case a := <-third:
		if a.err != nil || a.code != http.StatusTooManyRequests || a.retry == "" {
			t.Errorf("third POST: %d, Retry-After %q, %v; want 429 with Retry-After", a.code, a.retry, a.err)
		}
	case <-time.After(30 * time.Second):
		t.Error("third POST: no answer while two were in flight; want 429 at once")
	}
	for _, pw := range held {
		pw.Close()
	}
	<-done
	<-done
	resp, err := http.Post(base+"/v1/checkpoint", "text/plain", bytes.NewReader(bytes.Repeat([]byte("x"), maxNoteSize+1)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("over-size POST: %d, want 413", resp.StatusCode)
	}
}

// TestEvidencePages: GET /v1/evidence answers a bounded page of the
// evidence list in id order: 100 without ?limit, at most 1000 (1001 or 0
// is 400), those after ?after=<id>, with Link rel="next" while more follow;
// following the links walks every record once. (Drop the page bound in
// serveEvidenceList and the first page has all 150.)
func TestEvidencePages(t *testing.T) {
	l := newTestLog(t, "guard.example/log")
	m := newTestMonitor(t, "", nil, l)
	var want []string
	for i := range 150 {
		id := fmt.Sprintf("ev%03d", i)
		want = append(want, id)
		a := Alert{Log: l.Origin(), Kind: KindSplitView, Rule: RuleConsistency, Evidence: id, Message: "split view " + id}
		if _, err := m.store.addEvidence(t.Context(), id, l.Origin(), map[string]string{"id": id}, genesis, a); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptestServer(t, m.Handler())
	get := func(query string) (int, []EvidenceInfo, string) {
		t.Helper()
		resp, err := http.Get(srv + "/v1/evidence" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var page []EvidenceInfo
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, page, httpguard.NextPage(resp.Header)
	}
	for _, c := range []struct {
		query      string
		code, n    int
		first, nxt string
	}{
		{"", 200, 100, "ev000", "ev099"},
		{"?limit=1000", 200, 150, "ev000", ""},
		{"?limit=1001", 400, 0, "", ""},
		{"?limit=0", 400, 0, "", ""},
		{"?after=ev010&limit=3", 200, 3, "ev011", "ev013"},
		{"?after=ev149", 200, 0, "", ""},
	} {
		code, page, next := get(c.query)
		first := ""
		if len(page) > 0 {
			first = page[0].ID
		}
		if code != c.code || len(page) != c.n || first != c.first || next != c.nxt {
			t.Errorf("GET /v1/evidence%s: %d, %d records from %q, next %q; want %d, %d from %q, next %q", c.query, code, len(page), first, next, c.code, c.n, c.first, c.nxt)
		}
	}
	var got []string
	for after, pages := "", 0; ; pages++ {
		if pages > 150/7+1 {
			t.Fatal("pagination does not end")
		}
		_, page, next := get("?limit=7&after=" + after)
		for _, e := range page {
			got = append(got, e.ID)
		}
		if after = next; after == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("walked %d records, want the %d in id order", len(got), len(want))
	}
}

// TestReadInFlightLimit: every GET of the monitor's handler shares one
// in-flight limit (four times MaxInFlight): with its slots taken, each
// answers 429 with Retry-After; once they are free, 200. (Mount a GET
// without m.readLimit.Wrap and its row answers 200 while the slots are
// taken.)
func TestReadInFlightLimit(t *testing.T) {
	l := newTestLog(t, "guard.example/log")
	m := newTestMonitor(t, "", func(c *Config) { c.MaxInFlight = 1 }, l)
	m.once(t)
	srv := httptestServer(t, m.Handler())
	paths := []string{"/" + originID(l.Origin()) + "/checkpoint", "/v1/checkpoints", "/v1/evidence", "/v1/gossip", "/v1/evidence/nope", "/watch"}
	var release []func()
	for range m.readLimit.Cap() {
		r, ok := m.readLimit.TryAcquire()
		if !ok {
			t.Fatal("a read slot is taken before the test")
		}
		release = append(release, r)
	}
	status := func(path string) (int, string) {
		resp, err := http.Get(srv + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for _, p := range paths {
		if code, ra := status(p); code != http.StatusTooManyRequests || ra == "" {
			t.Errorf("GET %s with every read slot taken: %d, Retry-After %q; want 429", p, code, ra)
		}
	}
	for _, r := range release {
		r()
	}
	for _, p := range paths {
		if code, _ := status(p); code == http.StatusTooManyRequests {
			t.Errorf("GET %s with the slots free: 429", p)
		}
	}
}

// TestAlertPages: the explorer's alert reads are one filtered page from
// the store, newest first, with the totals from COUNT queries; evidence
// and watch counts likewise.
func TestAlertPages(t *testing.T) {
	l := newTestLog(t, "guard.example/log")
	m := newTestMonitor(t, "", nil, l)
	var alerts []Alert
	for i := range 5000 {
		a := Alert{Log: l.Origin(), Kind: KindPolicy, Rule: "rotation-interval", Issuer: fmt.Sprintf("https://Issuer%d.example", i%4), Message: fmt.Sprintf("alert %d", i)}
		if i%10 == 0 {
			a.Kind, a.Issuer = KindKeyChange, ""
		}
		alerts = append(alerts, a)
	}
	if err := m.store.addAlerts(t.Context(), alerts); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if err := m.store.addWatch(t.Context(), fmt.Sprintf("https://w%d.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		f             AlertFilter
		offset, limit int
		count         int
		first, last   string
	}{
		{AlertFilter{}, 0, 50, 5000, "alert 4999", "alert 4950"},
		{AlertFilter{}, 4990, 50, 5000, "alert 9", "alert 0"},
		{AlertFilter{Kind: KindKeyChange}, 10, 5, 500, "alert 4890", "alert 4850"},
		{AlertFilter{Issuer: "issuer1.EXAMPLE"}, 0, 3, 1250, "alert 4997", "alert 4989"}, // 4993 is i%4==1 but i%10 != 0: 4997, 4993, 4989
		{AlertFilter{Kind: KindPolicy, Issuer: "issuer2"}, 0, 2, 1000, "alert 4998", "alert 4994"},
		{AlertFilter{Kind: KindReclaim}, 0, 50, 0, "", ""},
	} {
		page, err := m.AlertsPage(t.Context(), c.f, c.offset, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		n, err := m.AlertCount(t.Context(), c.f)
		if err != nil {
			t.Fatal(err)
		}
		if n != c.count || len(page) > c.limit {
			t.Errorf("%+v: count %d (want %d), page of %d (limit %d)", c.f, n, c.count, len(page), c.limit)
		}
		if c.first == "" {
			if len(page) != 0 {
				t.Errorf("%+v: page of %d, want none", c.f, len(page))
			}
			continue
		}
		if len(page) == 0 || page[0].Message != c.first || page[len(page)-1].Message != c.last {
			t.Errorf("%+v offset %d: page %v, want %s .. %s", c.f, c.offset, page, c.first, c.last)
		}
	}
	if n, err := m.WatchCount(t.Context()); err != nil || n != 7 {
		t.Errorf("WatchCount = %d, %v; want 7", n, err)
	}
	if n, err := m.EvidenceCount(t.Context()); err != nil || n != 0 {
		t.Errorf("EvidenceCount = %d, %v; want 0", n, err)
	}
}
