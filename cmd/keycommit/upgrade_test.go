package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpgradeServe: a log made before entry format 2
// (testdata/upgrade/v1) opens with the current binary, answers for its
// issuers, takes a renewal signed for it (a version 2 entry), and a
// monitor verifies and replays all of it without an alert.
func TestUpgradeServe(t *testing.T) {
	src := filepath.Join("..", "..", "testdata", "upgrade", "v1")
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile := func(name, to string, mode os.FileMode) {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("log.db", filepath.Join(logDir, logDBFile), 0o600)
	copyFile("log.key", filepath.Join(logDir, "log.key"), 0o600)
	copyFile("log.vkey", filepath.Join(logDir, "log.vkey"), 0o644)
	copyFile("issuer.key", filepath.Join(dir, "issuer.key"), 0o600)
	vb, _ := os.ReadFile(filepath.Join(src, "log.vkey"))
	vkey := strings.TrimSpace(string(vb))

	// The issuer serves its challenge, so the renewal goes through even
	// once the fixture's registration has lapsed (June 2027), when it
	// needs proof of control.
	web := startStoryOrigin(t, dir, "issuer.upgrade.example")
	cmd, url := startServe(t, keycommitBin, logDir, "--log-level", "warn", "--challenge-ca", web.caPEM, "--challenge-dial", "issuer.upgrade.example="+web.addr)
	defer cmd.Process.Kill()
	run := func(args ...string) (string, int) {
		t.Helper()
		c := exec.Command(keycommitBin, args...)
		c.Env = append(os.Environ(), "KEYCOMMIT_LOG="+url, "KEYCOMMIT_LOG_VKEY="+vkey)
		out, err := c.CombinedOutput()
		return string(out), exitCodeOf(err)
	}
	const origin = "https://issuer.upgrade.example"
	if out, code := run("issuer", "status", "--origin", origin); code != 0 || !strings.Contains(out, "registered        index 5") {
		t.Fatalf("status of the legacy issuer: exit %d\n%s", code, out)
	}
	chOut, code := run("issuer", "challenge", "--key", filepath.Join(dir, "issuer.key"), "--origin", origin, "--out", filepath.Join(dir, "challenge"))
	if code != 0 {
		t.Fatalf("issuer challenge: exit %d\n%s", code, chOut)
	}
	lines := strings.Split(strings.TrimSpace(chOut), "\n")
	ch, _ := os.ReadFile(filepath.Join(dir, "challenge"))
	web.serve(lines[len(lines)-1], ch)
	out, code := run("issuer", "register", "--key", filepath.Join(dir, "issuer.key"), "--origin", origin, "--contact", "mailto:keys@issuer.upgrade.example")
	if code != 0 || !strings.Contains(out, "registration logged at index 6") {
		t.Fatalf("renewal on the upgraded log: exit %d\n%s", code, out)
	}
	mon := exec.Command(keycommitBin, "monitor", "--once", "--log", url, "--log-vkey", vkey, "--data", filepath.Join(dir, "monitor"), "--log-level", "error")
	if mout, err := mon.CombinedOutput(); err != nil {
		t.Fatalf("the monitor does not verify and replay the upgraded log: %v\n%s", err, mout)
	}
}
