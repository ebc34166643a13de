package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnits checks docs/systemd/*.service, one per service (log,
// witness, monitor): `systemd-analyze verify` accepts each without a
// warning (with ExecStart pointing at this binary), and each ExecStart's
// command and flags exist (the command runs with --help). Without
// systemd-analyze only the commands are checked.
func TestSystemdUnits(t *testing.T) {
	units, _ := filepath.Glob(filepath.Join("..", "..", "docs", "systemd", "*.service"))
	want := map[string]bool{"keycommit-log.service": true, "keycommit-witness.service": true, "keycommit-monitor.service": true}
	if len(units) != len(want) {
		t.Fatalf("docs/systemd has %v, want %v", units, want)
	}
	analyze, lookErr := exec.LookPath("systemd-analyze")
	dir := t.TempDir()
	for _, u := range units {
		if !want[filepath.Base(u)] {
			t.Errorf("unexpected unit %s", u)
		}
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		var exe string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
				exe = v
			}
		}
		args := strings.Fields(exe)
		if len(args) < 3 || args[0] != "/usr/local/bin/keycommit" {
			t.Fatalf("%s: ExecStart=%q does not run /usr/local/bin/keycommit", u, exe)
		}
		if out, errOut, code := runBin(t, keycommitBin, append(args[1:], "--help")...); code != 0 {
			t.Errorf("%s: %v --help: exit %d\n%s%s", u, args[1:], code, out, errOut)
		}
		if lookErr != nil {
			continue
		}
		local := filepath.Join(dir, filepath.Base(u))
		os.WriteFile(local, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/keycommit", keycommitBin)), 0o644)
		out, err := exec.Command(analyze, "verify", local).CombinedOutput()
		if err != nil || strings.Contains(string(out), filepath.Base(u)) {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
		}
	}
	if lookErr != nil {
		t.Skip("systemd-analyze is not installed: checked the units' commands only")
	}
}
