package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDataDirLock: for every long-running command (log serve, witness
// serve, monitor; dev in TestDev), a second instance on the data directory
// of a running one refuses, naming the first one's PID, and changes
// nothing there; every one of these servers answers GET /v1/version.
func TestDataDirLock(t *testing.T) {
	logDir, witDir, monDir := t.TempDir(), t.TempDir(), t.TempDir()
	out, _, code := runBin(t, keycommitBin, "log", "init", "--data", logDir, "--origin", "keycommit.example/log/lock")
	if code != 0 {
		t.Fatalf("log init: %s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	vkey := lines[len(lines)-1]
	if out, _, code := runBin(t, keycommitBin, "witness", "init", "--data", witDir, "--name", "witness.example/lock"); code != 0 {
		t.Fatalf("witness init: %s", out)
	}
	logCmd, logURL := startServe(t, keycommitBin, logDir)
	witCmd, witURL := witServe(t, keycommitBin, witDir)
	monCmd, monURL := startMonitor(t, "--log", logURL, "--log-vkey", vkey, "--data", monDir, "--listen", "127.0.0.1:0")
	for _, base := range []string{logURL, witURL, monURL} {
		getVersion(t, strings.TrimSuffix(base, "/"))
	}
	for _, c := range []struct {
		first *exec.Cmd
		dir   string
		args  []string
		// idle: the first instance writes nothing while idle, so the
		// whole directory must stay the same (else: the lock file).
		idle bool
	}{
		{logCmd, logDir, []string{"log", "serve", "--data", logDir, "--listen", "127.0.0.1:0"}, true},
		{witCmd, witDir, []string{"witness", "serve", "--data", witDir, "--listen", "127.0.0.1:0"}, true},
		{monCmd, monDir, []string{"monitor", "--once", "--log", logURL, "--log-vkey", vkey, "--data", monDir}, false},
	} {
		dirState := dirState
		if !c.idle {
			dirState = func(t *testing.T, dir string) string {
				b, _ := os.ReadFile(filepath.Join(dir, lockFile))
				return string(b)
			}
		}
		before := dirState(t, c.dir)
		stdout, stderr, code := runBin(t, keycommitBin, c.args...)
		if want := fmt.Sprintf("PID %d", c.first.Process.Pid); code == 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, lockFile) {
			t.Errorf("second %v: exit %d, want a refusal naming %s and the lock file\n%s%s", c.args[:2], code, want, stdout, stderr)
		}
		if after := dirState(t, c.dir); after != before {
			t.Errorf("second %v changed %s:\nbefore %s\nafter  %s", c.args[:2], c.dir, before, after)
		}
	}
	// Once the first is gone, the directory is free again.
	logCmd.Process.Kill()
	logCmd.Wait()
	startServe(t, keycommitBin, logDir)
}

// dirState lists the files in dir with their sizes, modification times
// and, for the lock file, contents.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		fmt.Fprintf(&b, "%s %d %s;", path, fi.Size(), fi.ModTime())
		if fi.Name() == lockFile {
			c, _ := os.ReadFile(path)
			fmt.Fprintf(&b, " holds %q;", c)
		}
		return nil
	})
	return b.String()
}

// startMonitor runs `keycommit monitor` with args (including --listen)
// until the test ends and returns it once it listens, with its URL.
func startMonitor(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(keycommitBin, append([]string{"monitor", "--poll", "100ms"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "url=http://"); ok && strings.Contains(sc.Text(), "monitor listening") {
				select {
				case found <- "http://" + strings.Fields(u)[0]:
				default:
				}
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatal("monitor exited before listening")
		}
		return cmd, u
	case <-time.After(time.Minute):
		t.Fatal("monitor did not listen within a minute")
	}
	return nil, ""
}
