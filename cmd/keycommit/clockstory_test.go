package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/monitor"
)

// waitFor polls cond until it holds; it fails the test, saying what it
// waited for, if that takes more than a minute (a bound for a loaded
// machine, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricValue reads an unlabelled metric from a /metrics page; ok is
// false if the page has no such line.
func metricValue(page, name string) (float64, bool) {
	for _, l := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// monitorEvidence starts `monitor --listen` over the data directory an
// earlier `monitor --once` wrote, and fetches the evidence bundle id.
func monitorEvidence(t *testing.T, args []string, id string) []byte {
	t.Helper()
	cmd := exec.Command(keycommitBin, append(args, "--listen", "127.0.0.1:0", "--poll", "1h", "--log-level", "info")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	re := regexp.MustCompile(`monitor listening"? url=(\S+)`)
	sc := bufio.NewScanner(stderr)
	url := ""
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		t.Fatal("monitor --listen printed no URL")
	}
	go io.Copy(io.Discard, stderr)
	resp, body := httpGet(t, url+"/v1/evidence/"+id)
	if resp.StatusCode != 200 {
		t.Fatalf("GET evidence %s: %d %s", id, resp.StatusCode, body)
	}
	return []byte(body)
}

// timeAlert returns the first time alert of rule among the JSON lines of
// a monitor's stdout.
func timeAlert(t *testing.T, out, rule string) *monitor.Alert {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		var a monitor.Alert
		if json.Unmarshal([]byte(l), &a) == nil && a.Kind == monitor.KindTime && a.Rule == rule {
			return &a
		}
	}
	t.Fatalf("no %s alert of rule %s in:\n%s", monitor.KindTime, rule, out)
	return nil
}

// TestClockLieStory tells issue 18's clock-lie story through the real
// binaries, with two witnesses (both needed): the log, restarted with its
// clock 61 days ahead, refuses to sequence (503 naming the clock); run
// without witnesses it admits a rotation, and the monitor's own clock
// catches it (monitor --once exits 2 with a time alert whose evidence
// check-evidence accepts); back on the right clock with its witnesses,
// the log refuses to sequence behind its last entry, the witnesses'
// cosignatures give the monitor a second time alert with offline-checkable
// evidence, and verify refuses the bundle with its time check.
func TestClockLieStory(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	out, err := exec.Command(keycommitBin, "log", "init", "--data", logDir, "--origin", "clock.example/log").CombinedOutput()
	if err != nil {
		t.Fatalf("log init: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	vkey := lines[len(lines)-1]

	policy := filepath.Join(dir, "witnesses.txt")
	pol := fmt.Sprintf("log %s\n", vkey)
	var wurls []string
	for _, n := range []string{"w1", "w2"} {
		wdir := filepath.Join(dir, n)
		wout, err := witRun(t, keycommitBin, "witness", "init", "--data", wdir, "--name", "witness.clock.example/"+n)
		if err != nil {
			t.Fatalf("witness init: %v\n%s", err, wout)
		}
		wvkey := strings.TrimSpace(wout[strings.LastIndex(strings.TrimSpace(wout), "\n")+1:])
		if wout, err := witRun(t, keycommitBin, "witness", "add-log", "--data", wdir, "--origin", "clock.example/log", "--vkey", vkey); err != nil {
			t.Fatalf("witness add-log: %v\n%s", err, wout)
		}
		_, url := witServe(t, keycommitBin, wdir)
		wurls = append(wurls, url)
		pol += fmt.Sprintf("witness %s %s %s\n", n, wvkey, url)
	}
	pol += "group both all w1 w2\nquorum both\n"
	if err := os.WriteFile(policy, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}

	var log *storyLog
	web := startStoryOrigin(t, dir, "issuer.clock.example")
	start := func(offset time.Duration, witnesses bool) {
		t.Helper()
		args := append(web.serveArgs(), "--log-level", "warn", "--unsafe-clock-offset", offset.String())
		if witnesses {
			args = append(args, "--witness-policy", policy)
		}
		cmd, url := startServe(t, keycommitBin, logDir, args...)
		log = &storyLog{cmd: cmd, url: strings.TrimSuffix(url, "/")}
	}
	metrics := func() string {
		_, body := httpGet(t, log.url+"/metrics")
		return body
	}
	cosigned := func() bool {
		_, body := httpGet(t, log.url+"/checkpoint")
		return strings.Contains(body, "— witness.clock.example/w1 ") && strings.Contains(body, "— witness.clock.example/w2 ")
	}
	key := filepath.Join(dir, "issuer.key")
	origin := "https://issuer.clock.example"
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(keycommitBin, args...)
		cmd.Env = append(os.Environ(), "KEYCOMMIT_LOG="+log.url, "KEYCOMMIT_LOG_VKEY="+vkey)
		out, err := cmd.CombinedOutput()
		return string(out), exitCodeOf(err)
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, code := run(args...)
		if code != 0 {
			t.Fatalf("keycommit %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	commitment := func(id int) string {
		t.Helper()
		f := filepath.Join(dir, fmt.Sprintf("commitment-%d.json", id))
		mustRun("issuer", "gen-commitment", "--id", fmt.Sprint(id), "--first-key", fmt.Sprint(10*id),
			"--lifetime", "4800h", "--out", f, "--keys-out", f+".keys")
		return f
	}
	submit := func(f string) (string, int) {
		return run("issuer", "submit", "--key", key, "--origin", origin, "--commitment", f)
	}

	// Day 0, with the witnesses: a first commitment.
	start(0, true)
	mustRun("issuer", "keygen", "--out", key)
	web.serveChallengeFor(t, "clock.example/log", origin, key)
	mustRun("issuer", "register", "--key", key, "--origin", origin, "--contact", "mailto:keys@issuer.clock.example")
	if out, code := submit(commitment(1)); code != 0 {
		t.Fatalf("first commitment refused (exit %d):\n%s", code, out)
	}
	waitFor(t, "the witnesses vouch for the log's clock", func() bool {
		v, ok := metricValue(metrics(), "keycommit_log_clock_ok")
		return ok && v == 1
	})
	log.stop(t)

	// The log comes back 61 days ahead, with its witnesses: it refuses to
	// sequence once they answered, and says why.
	start(1465*time.Hour, true)
	waitFor(t, "the log refuses its clock", func() bool {
		v, ok := metricValue(metrics(), "keycommit_log_clock_refusing")
		return ok && v == 1
	})
	rotation := commitment(2)
	out2, code := submit(rotation)
	if code == 0 || !strings.Contains(out2, "503") || !strings.Contains(out2, "its clock disagrees") || !strings.Contains(out2, "1465h") {
		t.Fatalf("rotation with the clock 61 days ahead: exit %d, want a 503 naming the clock\n%s", code, out2)
	}
	log.stop(t)

	// Without witnesses nothing checks its clock: the rotation gets
	// through, and the monitor's own clock catches it.
	start(1465*time.Hour, false)
	if out, code := submit(rotation); code != 0 {
		t.Fatalf("rotation without witnesses refused (exit %d):\n%s", code, out)
	}
	monData := filepath.Join(dir, "monitor")
	monArgs := []string{"monitor", "--log", log.url, "--log-vkey", vkey, "--data", monData}
	mout, merr, code := runBin(t, keycommitBin, append(monArgs, "--once")...)
	if code != 2 {
		t.Fatalf("monitor --once: exit %d, want 2 (alert)\n%s%s", code, mout, merr)
	}
	a := timeAlert(t, mout, monitor.RuleAfterMonitorClock)
	ev := filepath.Join(dir, "future.evidence")
	if err := os.WriteFile(ev, monitorEvidence(t, monArgs, a.Evidence), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runBin(t, keycommitBin, "monitor", "check-evidence", ev, "--log-vkey", vkey); code != 0 || !strings.Contains(out, "valid time evidence") {
		t.Fatalf("check-evidence of the monitor-clock evidence: exit %d\n%s%s", code, out, errOut)
	}
	log.stop(t)

	// Back on the right clock, with the witnesses: the log cosigns the
	// checkpoint holding the future entries and refuses to sequence
	// behind its last entry.
	start(0, true)
	waitFor(t, "the checkpoint is cosigned by both witnesses", cosigned)
	out5, code := submit(commitment(3))
	if code == 0 || !strings.Contains(out5, "503") || !strings.Contains(out5, "behind its last entry") {
		t.Fatalf("submission behind the last entry: exit %d, want a 503 naming the clock\n%s", code, out5)
	}
	// The monitor, now with the witness policy, holds the entry against
	// the witnesses' cosignatures.
	monArgs = []string{"monitor", "--log", log.url, "--log-vkey", vkey, "--data", monData, "--witness-policy", policy}
	for _, u := range wurls {
		monArgs = append(monArgs, "--witness", u)
	}
	mout, merr, code = runBin(t, keycommitBin, append(monArgs, "--once")...)
	if code != 2 {
		t.Fatalf("monitor --once with the witnesses: exit %d, want 2\n%s%s", code, mout, merr)
	}
	if !strings.Contains(mout, monitor.RuleAfterCosignatures) {
		t.Fatalf("monitor --once with the witnesses raised no %s alert:\n%s%s", monitor.RuleAfterCosignatures, mout, merr)
	}
	a = timeAlert(t, mout, monitor.RuleAfterCosignatures)
	if err := os.WriteFile(ev, monitorEvidence(t, monArgs, a.Evidence), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runBin(t, keycommitBin, "monitor", "check-evidence", ev, "--log-vkey", vkey, "--witness-policy", policy); code != 0 ||
		!strings.Contains(out, "valid time evidence") || !strings.Contains(out, "after-cosignatures") {
		t.Fatalf("check-evidence of the cosignature evidence: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runBin(t, keycommitBin, "monitor", "check-evidence", ev, "--log-vkey", vkey); code == 0 {
		t.Errorf("check-evidence without the witness policy accepted cosignature evidence:\n%s%s", out, errOut)
	}
	// A user agent refuses the bundle: its snapshot is dated 61 days after
	// the cosignatures.
	vout, verr, code := runBin(t, keycommitBin, "verify", "--bundle", log.url+"/v1/keys.bundle", "--log-vkey", vkey, "--witness-policy", policy)
	if code != exitVerifyFailed || !strings.Contains(verr, "time check failed") {
		t.Fatalf("verify: exit %d, want %d naming the time check\n%s%s", code, exitVerifyFailed, vout, verr)
	}
	log.stop(t)
}
