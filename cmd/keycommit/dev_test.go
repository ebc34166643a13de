package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/witness/quorum"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// startDev runs `keycommit dev` on free ports and returns it with its
// dev.json once it says it is running.
func startDev(t *testing.T, dir string) (*exec.Cmd, *devInfo, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(keycommitBin, "dev", "--data", dir, "--base-port", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := &bytes.Buffer{}
	sc := bufio.NewScanner(stdout)
	running := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "keycommit dev is running") {
			running = true
		}
		if running && strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
			break
		}
	}
	if !running {
		t.Fatalf("keycommit dev did not start:\n%s\n%s", out, stderr.String())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	b, err := os.ReadFile(filepath.Join(dir, devJSONFile))
	if err != nil {
		t.Fatalf("dev.json: %v", err)
	}
	var info devInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatalf("dev.json: %v", err)
	}
	return cmd, &info, out
}

// TestDev runs the README's first command for real: a log, three
// witnesses and a monitor, a demo issuer with a first commitment, a
// checkpoint cosigned 2-of-3, dev.json, and a clean stop on SIGINT; run
// again over the same directory it picks up the same log.
func TestDev(t *testing.T) {
	dir := t.TempDir()
	cmd, info, out := startDev(t, dir)

	if len(info.Witnesses) != 3 || info.LogURL == "" || info.LogVKey == "" || info.MonitorURL == "" {
		t.Fatalf("dev.json is incomplete: %+v", info)
	}
	// The checkpoint the log serves opens with the log's key and carries
	// cosignatures from at least two of the three witnesses, each checked
	// with formats/note's cosignature verifier.
	c, err := client.New(info.LogURL, info.LogVKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, raw, err := c.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size < 3 {
		t.Errorf("log has %d entries, want the params, the demo registration and its commitment at least", cp.Size)
	}
	logV, err := note.NewVerifier(info.LogVKey)
	if err != nil {
		t.Fatal(err)
	}
	vs := []note.Verifier{logV}
	for _, w := range info.Witnesses {
		v, err := fnote.NewVerifierForCosignatureV1(w.VKey)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(raw, note.VerifierList(vs...))
	if err != nil {
		t.Fatalf("checkpoint does not open: %v\n%s", err, raw)
	}
	if cosigned := len(n.Sigs) - 1; cosigned < 2 {
		t.Errorf("checkpoint has %d valid witness cosignatures, want at least 2:\n%s", cosigned, raw)
	}
	pol, err := os.ReadFile(info.WitnessPolicy)
	if err != nil {
		t.Fatal(err)
	}
	p, err := quorum.Parse(pol)
	if err != nil {
		t.Fatalf("witness policy: %v", err)
	}
	if _, err := p.Verify(raw); err != nil {
		t.Errorf("checkpoint does not meet the dev witness policy: %v", err)
	}
	st, err := c.Issuer(t.Context(), info.Issuer.Origin)
	if err != nil || st.Status.Commitment == nil {
		t.Fatalf("demo issuer has no commitment: %v", err)
	}
	// Every command it printed runs as printed, in a newcomer's shell.
	runPrintedCommands(t, out.String(), info)

	// A second instance on the same directory refuses, naming the first
	// one's PID, and rewrites nothing.
	before := snapshotFiles(t, dir, devJSONFile, devPolicyFile)
	o2, e2, code := runBin(t, keycommitBin, "dev", "--data", dir, "--base-port", "0")
	if code == 0 || !strings.Contains(e2, fmt.Sprintf("PID %d", cmd.Process.Pid)) {
		t.Errorf("second dev on the same directory: exit %d, want a refusal naming PID %d\n%s%s", code, cmd.Process.Pid, o2, e2)
	}
	if after := snapshotFiles(t, dir, devJSONFile, devPolicyFile); !maps.Equal(before, after) {
		t.Errorf("second dev rewrote %v", after)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("keycommit dev exited with %v after SIGINT", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("keycommit dev did not stop after SIGINT")
	}

	// Again over the same directory: the same log, not a new one.
	_, info2, out2 := startDev(t, dir)
	if want := fmt.Sprintf("resumed log at size %d", cp.Size); !strings.Contains(out2.String(), want) {
		t.Errorf("restarted dev does not say %q:\n%s", want, out2)
	}
	if info2.LogVKey != info.LogVKey {
		t.Errorf("second run made a new log: %s, was %s", info2.LogVKey, info.LogVKey)
	}
	c2, err := client.New(info2.LogURL, info2.LogVKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp2, _, err := c2.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cp2.Size < cp.Size {
		t.Errorf("second run's log has %d entries, first had %d", cp2.Size, cp.Size)
	}
}

// snapshotFiles returns the contents and modification times of files in
// dir.
func snapshotFiles(t *testing.T, dir string, files ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, f))
		m[f] = fi.ModTime().String() + "\n" + string(b)
	}
	return m
}

// printedCommands returns the commands between dev's "Try next" line and
// "Press Ctrl-C", without their indentation.
func printedCommands(out string) []string {
	_, rest, ok := strings.Cut(out, "Try next")
	if !ok {
		return nil
	}
	rest, _, _ = strings.Cut(rest, "Press Ctrl-C")
	var cmds []string
	for _, line := range strings.Split(rest, "\n")[1:] {
		if l := strings.TrimSpace(line); l != "" {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// runPrintedCommands runs the commands dev printed, exactly as printed,
// one after the other in one POSIX shell (as typed into a terminal), with
// only what a newcomer has: PATH with go and the base system, HOME and the
// working directory a fresh empty directory, no other variables.
func runPrintedCommands(t *testing.T, out string, info *devInfo) {
	t.Helper()
	cmds := printedCommands(out)
	if len(cmds) < 5 || !strings.HasPrefix(cmds[0], "export KEYCOMMIT_LOG=") || !strings.Contains(cmds[0], "KEYCOMMIT_LOG_VKEY=") {
		t.Fatalf("dev printed no export line and commands to try:\n%s", out)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Dir(goBin) + ":/usr/local/bin:/usr/bin:/bin"
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is not installed; dev prints curl commands")
		}
		t.Skip("curl is not installed; skipping dev's printed commands")
	}
	home := t.TempDir()
	for i, c := range cmds {
		// Each prefix, so that a failing command is named.
		sh := exec.Command("/bin/sh", "-e", "-c", strings.Join(cmds[:i+1], "\n"))
		sh.Dir = home
		sh.Env = []string{"PATH=" + path, "HOME=" + home}
		o, err := sh.CombinedOutput()
		if err != nil {
			t.Fatalf("printed command %q failed: %v\n%s", c, err, o)
		}
		switch {
		case strings.Contains(c, "/checkpoint"):
			if !strings.HasPrefix(string(o), info.LogOrigin+"\n") {
				t.Errorf("%q printed %q, want the checkpoint", c, o)
			}
		case strings.Contains(c, "/v1/issuers/"):
			if !strings.Contains(string(o), `"origin":"`+info.Issuer.Origin+`"`) {
				t.Errorf("%q printed %s, want the demo issuer's status", c, o)
			}
		case strings.Contains(c, " verify "):
			if !strings.Contains(string(o), "verified keys bundle") {
				t.Errorf("%q printed %s", c, o)
			}
		case strings.Contains(c, " monitor --once"):
			if !strings.Contains(string(o), "ok: ") {
				t.Errorf("%q printed %s", c, o)
			}
		}
	}
}

// TestDevRefusesBadFlagsBeforeCreatingState: a port out of range is an
// error before the data directory is made.
func TestDevRefusesBadFlagsBeforeCreatingState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	for _, port := range []string{"70000", "65532", "-1"} {
		_, stderr, code := runBin(t, keycommitBin, "dev", "--data", dir, "--base-port", port)
		if code == 0 || !strings.Contains(stderr, "--base-port "+port+" is out of range") {
			t.Errorf("dev --base-port %s: exit %d, %s", port, code, stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("dev --base-port %s created %s", port, dir)
		}
	}
	if _, stderr, code := runBin(t, keycommitBin, "dev", "--data", dir, "--log-level", "loud"); code == 0 || !strings.Contains(stderr, "--log-level") {
		t.Errorf("dev --log-level loud: exit %d, %s", code, stderr)
	} else if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dev --log-level loud created %s", dir)
	}
}

// TestSelfCommand: dev's printed commands name this binary by its
// absolute path, or go -C ROOT run ./cmd/keycommit when it is a go run
// build.
func TestSelfCommand(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "go.mod"), []byte("module github.com/keycommit/keycommit\n\ngo 1.26\n"), 0o644)
	sub := filepath.Join(root, "cmd", "keycommit")
	os.MkdirAll(sub, 0o755)
	for _, c := range []struct{ exe, cwd, want string }{
		{"/work/main/bin/keycommit", root, "/work/main/bin/keycommit"},
		{"/home/a b/keycommit", root, "'/home/a b/keycommit'"},
		{"/tmp/go-build123/b001/exe/keycommit", root, "go -C " + root + " run ./cmd/keycommit"},
		{"/tmp/go-build123/b001/exe/keycommit", sub, "go -C " + root + " run ./cmd/keycommit"},
		{"/tmp/go-build123/b001/exe/keycommit", "/", "/tmp/go-build123/b001/exe/keycommit"},
	} {
		if got := selfCommand(c.exe, c.cwd); got != c.want {
			t.Errorf("selfCommand(%q, %q) = %q, want %q", c.exe, c.cwd, got, c.want)
		}
	}
	if got := shellQuote("it's"); got != `'it'\''s'` {
		t.Errorf("shellQuote = %s", got)
	}
}
