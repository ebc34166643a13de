package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keycommit/keycommit/monitor"
	"github.com/keycommit/keycommit/monitor/monitortest"
)

func monitorBinary(t *testing.T) string {
	t.Helper()
	return keycommitBin
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestMonitorOnceBinary runs `keycommit monitor --once` against a log
// double: exit 0 on an honest log, then exit 2 with a JSON alert line
// naming the index and the rule once the log admits a bad snapshot; a
// second run over the same --data resumes and raises nothing new.
func TestMonitorOnceBinary(t *testing.T) {
	bin := monitorBinary(t)
	l, vkey, err := monitortest.NewWithKey("example.com/cli")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l)
	defer srv.Close()
	g := monitortest.NewGen(l, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 3)
	for _, o := range []string{"https://a.example", "https://b.example"} {
		if _, err := g.Register(o); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Commit(o, 1, 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Snapshot(); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	run := func() (int, []monitor.Alert, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "monitor", "--log", srv.URL, "--log-vkey", vkey, "--once", "--data", data)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		code := exitCodeOf(cmd.Run())
		var alerts []monitor.Alert
		sc := bufio.NewScanner(&stdout)
		for sc.Scan() {
			var a monitor.Alert
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatalf("stdout line %q is not a JSON alert: %v", sc.Text(), err)
			}
			alerts = append(alerts, a)
		}
		return code, alerts, stderr.String()
	}
	if code, alerts, stderr := run(); code != 0 || len(alerts) != 0 {
		t.Fatalf("honest log: exit %d, alerts %+v\n%s", code, alerts, stderr)
	}
	bad, err := g.SnapshotEntry("https://b.example")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := g.Force(bad)
	if err != nil {
		t.Fatal(err)
	}
	code, alerts, stderr := run()
	if code != 2 || len(alerts) != 1 || alerts[0].Index == nil || *alerts[0].Index != int64(idx) || alerts[0].Rule != "snapshot" {
		t.Fatalf("bad snapshot at %d: exit %d, alerts %+v\n%s", idx, code, alerts, stderr)
	}
	if !strings.Contains(stderr, "NOT OK: 1 alerts raised") {
		t.Errorf("no report on stderr:\n%s", stderr)
	}
	if code, alerts, stderr := run(); code != 0 || len(alerts) != 0 {
		t.Fatalf("third run over the same data: exit %d, alerts %+v\n%s", code, alerts, stderr)
	}
}

// TestMonitorCheckEvidenceBinary checks evidence offline with the binary.
func TestMonitorCheckEvidenceBinary(t *testing.T) {
	bin := monitorBinary(t)
	dir := filepath.Join("..", "..", "testdata", "monitor", "evidence")
	vk, err := os.ReadFile(filepath.Join(dir, "vkey"))
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(vk))
	for file, want := range map[string]int{"proof.json": 0, "same-size.json": 0, "bad-proof.json": 1, "consistent.json": 1, "bad-signature.json": 1} {
		out, err := exec.Command(bin, "monitor", "check-evidence", filepath.Join(dir, file), "--log-vkey", vkey).CombinedOutput()
		if code := exitCodeOf(err); code != want {
			t.Errorf("check-evidence %s: exit %d, want %d\n%s", file, code, want, out)
		}
	}
	_, otherVKey, _ := monitortest.NewKey("example.com/split")
	if err := exec.Command(bin, "monitor", "check-evidence", filepath.Join(dir, "proof.json"), "--log-vkey", otherVKey).Run(); exitCodeOf(err) != 1 {
		t.Errorf("check-evidence under another key: exit %d, want 1", exitCodeOf(err))
	}
}

// TestMonitorKillResume kills `keycommit monitor` with SIGKILL while it
// catches up on 100,000 entries, after it saved progress, and checks that
// `keycommit monitor --once` over the same --data resumes from the saved
// position (fetching only the rest) and ends verified.
func TestMonitorKillResume(t *testing.T) {
	bin := monitorBinary(t)
	n := int64(100_000)
	if testing.Short() {
		n = 70_000
	}
	l, vkey, err := monitortest.NewWithKey("example.com/kill")
	if err != nil {
		t.Fatal(err)
	}
	g := monitortest.NewGen(l, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 5)
	if _, err := g.Register("https://a.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Commit("https://a.example", 2, 2); err != nil {
		t.Fatal(err)
	}
	p := g.State.Params()
	for i := 0; l.Size() < n; i++ {
		if i%1000 == 0 {
			_, err = g.Snapshot()
		} else {
			p.MaxEmergencies = 2 + i%2
			_, err = g.Params(p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Bundles beyond 80% of the log hang until the test ends, so the
	// monitor is killed in the middle of catching up, after its save at
	// 65,536 entries.
	var bundles atomic.Int64
	var hang atomic.Bool
	hang.Store(true)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unhang := func() { hang.Store(false); releaseOnce.Do(func() { close(release) }) }
	defer unhang()
	hangFrom := n * 8 / 10 / 256
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/tile/entries/") {
			bundles.Add(1)
			if tl, err := monitortest.ParsePath(strings.TrimPrefix(r.URL.Path, "/")); err == nil && tl.N >= hangFrom && hang.Load() {
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
		}
		l.ServeHTTP(w, r)
	}))
	defer srv.Close()
	data := t.TempDir()
	cmd := exec.Command(bin, "monitor", "--log", srv.URL, "--log-vkey", vkey, "--data", data, "--poll", "1h")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	saved := int64(0)
	for deadline := time.Now().Add(5 * time.Minute); saved == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the monitor saved no progress:\n%s", stderr.String())
		}
		saved = savedPosition(t, filepath.Join(data, "monitor.db"))
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if saved >= n {
		t.Fatalf("saved position %d: the monitor was not interrupted", saved)
	}
	unhang()
	before := bundles.Load()
	out, err := exec.Command(bin, "monitor", "--log", srv.URL, "--log-vkey", vkey, "--data", data, "--once").CombinedOutput()
	if code := exitCodeOf(err); code != 0 {
		t.Fatalf("resumed --once: exit %d\n%s", code, out)
	}
	fetched := bundles.Load() - before
	total := (n + 255) / 256
	if want := total - saved/256; fetched != want {
		t.Errorf("resumed run fetched %d bundles, want %d (saved position %d of %d)", fetched, want, saved, n)
	}
	if got := savedPosition(t, filepath.Join(data, "monitor.db")); got != n {
		t.Errorf("position after the resumed run %d, want %d", got, n)
	}
}

// savedPosition reads the replay position from a monitor database (0 if
// none yet).
func savedPosition(t *testing.T, path string) int64 {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pos int64
	if err := db.QueryRow(`SELECT position FROM logs`).Scan(&pos); err != nil {
		return 0
	}
	return pos
}

// TestMonitorListenBinary runs `keycommit monitor --listen 127.0.0.1:0`:
// it serves the verified checkpoint at the witness monitoring path,
// accepts watches and serves metrics, and exits cleanly on SIGTERM.
func TestMonitorListenBinary(t *testing.T) {
	bin := monitorBinary(t)
	l, vkey, err := monitortest.NewWithKey("example.com/listen")
	if err != nil {
		t.Fatal(err)
	}
	g := monitortest.NewGen(l, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 4)
	if _, err := g.Register("https://a.example"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l)
	defer srv.Close()
	cmd, base := startListeningMonitor(t, bin, "--log", srv.URL, "--log-vkey", vkey, "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--poll", "100ms")
	defer cmd.Process.Kill()
	cpURL := base + "/" + fmt.Sprintf("%x", sha256.Sum256([]byte(l.Origin()))) + "/checkpoint"
	var body []byte
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(cpURL)
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint never served: %v %s", err, body)
		}
	}
	want, _ := l.Checkpoint()
	if !bytes.Equal(body, want) {
		t.Errorf("served checkpoint\n%s\nwant\n%s", body, want)
	}
	// No --admin-token-file: POST /watch is off.
	resp, err := http.Post(base+"/watch", "application/json", strings.NewReader(`{"origin":"https://a.example"}`))
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST /watch without a configured token: %v %v, want 403", err, resp)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `keycommit_monitor_verified_size{log="example.com/listen"} 1`) {
		t.Errorf("metrics lack the verified size:\n%s", m)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("monitor did not exit cleanly on SIGTERM: %v", err)
	}
}

// startListeningMonitor starts `keycommit monitor` with args (which hold
// --listen), waits for its "monitor listening" line and returns the
// process and its base URL; the rest of its stderr is drained.
func startListeningMonitor(t *testing.T, bin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"monitor"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Process.Kill()
				t.Fatal("monitor exited before listening")
			}
			if _, u, found := strings.Cut(line, "url=http://"); found && strings.Contains(line, "monitor listening") {
				go func() {
					for range lines {
					}
				}()
				return cmd, "http://" + strings.Fields(u)[0]
			}
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			t.Fatal("no listening line")
		}
	}
}
