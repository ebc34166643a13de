package main

import (
	"bufio"
	"bytes"
	"encoding/json"
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
	// The printed commands work as printed, among them a one-line verify.
	verified := false
	for _, line := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(line, "  keycommit ") {
			continue
		}
		line = strings.TrimSpace(line)
		args := strings.Fields(line)[1:]
		if o, err := exec.Command(keycommitBin, args...).CombinedOutput(); err != nil {
			t.Errorf("printed command %q failed: %v\n%s", line, err, o)
		} else if args[0] == "verify" {
			verified = true
		}
	}
	if !verified {
		t.Errorf("keycommit dev printed no keycommit verify command that succeeds:\n%s", out)
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
	_, info2, _ := startDev(t, dir)
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
