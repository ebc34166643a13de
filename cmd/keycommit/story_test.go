package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// storyLog is a `log serve` process whose clock is shifted by offset.
type storyLog struct {
	cmd *exec.Cmd
	url string
}

func serveShifted(t *testing.T, dir string, offset time.Duration, extra ...string) *storyLog {
	t.Helper()
	cmd, url := startServe(t, keycommitBin, dir, append([]string{"--log-level", "warn", "--unsafe-clock-offset", offset.String()}, extra...)...)
	return &storyLog{cmd: cmd, url: strings.TrimSuffix(url, "/")}
}

// runAgainst runs the keycommit binary with the log at l (and its vkey)
// as $KEYCOMMIT_LOG, and returns its output and exit code.
func runAgainst(l *storyLog, vkey string, args ...string) (string, int) {
	cmd := exec.Command(keycommitBin, args...)
	cmd.Env = append(os.Environ(), "KEYCOMMIT_LOG="+l.url, "KEYCOMMIT_LOG_VKEY="+vkey)
	out, err := cmd.CombinedOutput()
	return string(out), exitCodeOf(err)
}

// mustRunAgainst is runAgainst, failing the test unless it exits 0.
func mustRunAgainst(t *testing.T, l *storyLog, vkey string, args ...string) string {
	t.Helper()
	out, code := runAgainst(l, vkey, args...)
	if code != 0 {
		t.Fatalf("keycommit %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func (l *storyLog) stop(t *testing.T) {
	t.Helper()
	l.cmd.Process.Signal(os.Interrupt)
	l.cmd.Wait()
}

// TestRotationStory tells issue 3's rotation story through the real
// binary, with the log's clock moved forward between chapters: register,
// first commitment; at day 30 a normal rotation is refused with the date it
// becomes allowed, an emergency rotation with an incident report is
// accepted, a second emergency is refused until the final report for the
// first is logged; at day 90 a normal rotation is accepted.
func TestRotationStory(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	out, err := exec.Command(keycommitBin, "log", "init", "--data", logDir, "--origin", "story.example/log").CombinedOutput()
	if err != nil {
		t.Fatalf("log init: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	vkey := lines[len(lines)-1]
	key := filepath.Join(dir, "issuer.key")
	origin := "https://issuer.story.example"

	// run runs an issuer command against the log and returns its output and exit code.
	var log *storyLog
	run := func(args ...string) (string, int) { return runAgainst(log, vkey, args...) }
	mustRun := func(args ...string) string { t.Helper(); return mustRunAgainst(t, log, vkey, args...) }
	commitment := func(id int) string {
		t.Helper()
		f := filepath.Join(dir, fmt.Sprintf("commitment-%d.json", id))
		mustRun("issuer", "gen-commitment", "--id", fmt.Sprint(id), "--first-key", fmt.Sprint(10*id),
			"--lifetime", "4800h", "--out", f, "--keys-out", f+".keys")
		return f
	}
	report := filepath.Join(dir, "report.json")
	if err := os.WriteFile(report, []byte(fmt.Sprintf(`{"summary": "signing key copied to an unmanaged host",
		"discovered": %d, "impact": "tokens could be forged", "root_cause": "backup job",
		"remediation": "keys rotated, backups encrypted", "url": "https://issuer.story.example/incidents/1"}`,
		time.Now().Add(29*24*time.Hour).UnixMilli())), 0o644); err != nil {
		t.Fatal(err)
	}
	submit := func(f string, extra ...string) (string, int) {
		return run(append([]string{"issuer", "submit", "--key", key, "--origin", origin, "--commitment", f}, extra...)...)
	}

	// Day 0. The issuer's origin serves the challenge for its key.
	web := startStoryOrigin(t, dir, "issuer.story.example")
	log = serveShifted(t, logDir, 0, web.serveArgs()...)
	mustRun("issuer", "keygen", "--out", key)
	web.serveChallengeFor(t, "story.example/log", origin, key)
	mustRun("issuer", "register", "--key", key, "--origin", origin, "--contact", "mailto:keys@issuer.story.example")
	if out, code := submit(commitment(1)); code != 0 {
		t.Fatalf("first commitment refused (exit %d):\n%s", code, out)
	}
	status := mustRun("issuer", "status", "--origin", origin)
	if !strings.Contains(status, "next rotation     allowed from") {
		t.Errorf("status does not say when the next rotation is allowed:\n%s", status)
	}
	log.stop(t)

	// Day 30.
	log = serveShifted(t, logDir, 30*24*time.Hour)
	out2, code := submit(commitment(2))
	if code != exitRefused {
		t.Fatalf("rotation at day 30: exit %d, want %d (refused)\n%s", code, exitRefused, out2)
	}
	if !strings.Contains(out2, "rule rotation") || !regexp.MustCompile(`next allowed \d{4}-\d\d-\d\dT`).MatchString(out2) {
		t.Errorf("refusal does not name the rule and the date it becomes allowed:\n%s", out2)
	}
	out3, code := submit(commitment(3), "--emergency", report)
	if code != 0 {
		t.Fatalf("emergency rotation with a report at day 30 refused (exit %d):\n%s", code, out3)
	}
	m := regexp.MustCompile(`logged at index (\d+)`).FindStringSubmatch(out3)
	if m == nil {
		t.Fatalf("no index in:\n%s", out3)
	}
	emergencyIndex := m[1]
	out4, code := submit(commitment(4), "--emergency", report)
	if code != exitRefused || !strings.Contains(out4, "final report") {
		t.Errorf("second emergency before the final report: exit %d, want %d naming the missing final report\n%s", code, exitRefused, out4)
	}
	mustRun("issuer", "report", "--key", key, "--origin", origin, "--emergency-index", emergencyIndex, "--report", report)
	if out, code := submit(commitment(5), "--emergency", report); code != 0 {
		t.Errorf("second emergency after the final report refused (exit %d):\n%s", code, out)
	}
	log.stop(t)

	// Day 90: 60 days after the last rotation.
	log = serveShifted(t, logDir, 90*24*time.Hour)
	if out, code := submit(commitment(6)); code != 0 {
		t.Errorf("normal rotation at day 90 refused (exit %d):\n%s", code, out)
	}
	log.stop(t)
}
