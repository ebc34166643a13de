package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/monitor"
	"github.com/keycommit/keycommit/witness/quorum"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// startDev runs `keycommit dev` on free ports (with the extra flags) and
// returns it with its dev.json once it says it is running.
func startDev(t *testing.T, dir string, flags ...string) (*exec.Cmd, *devInfo, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(keycommitBin, append([]string{"dev", "--data", dir, "--base-port", "0"}, flags...)...)
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
	// One log: logs holds it, the top level is it, and the trust file
	// names it.
	if len(info.Logs) != 1 || !reflect.DeepEqual(info.Logs[0], info.devLog) {
		t.Errorf("dev.json logs = %+v, want the one log of the top level %+v", info.Logs, info.devLog)
	}
	checkDevTrust(t, info, 1)
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
	before := snapshotFiles(t, dir, devJSONFile, devPolicyFile, devTrustFile)
	o2, e2, code := runBin(t, keycommitBin, "dev", "--data", dir, "--base-port", "0")
	if code == 0 || !strings.Contains(e2, fmt.Sprintf("PID %d", cmd.Process.Pid)) {
		t.Errorf("second dev on the same directory: exit %d, want a refusal naming PID %d\n%s%s", code, cmd.Process.Pid, o2, e2)
	}
	if after := snapshotFiles(t, dir, devJSONFile, devPolicyFile, devTrustFile); !maps.Equal(before, after) {
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
		case strings.Contains(c, " verify --trust "):
			if !strings.Contains(string(o), "issuer "+info.Issuer.Origin+": accepted") {
				t.Errorf("%q printed %s, want the demo issuer accepted", c, o)
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

// TestDevRefusesBadFlagsBeforeCreatingState: a port out of range (for
// the number of logs) or a number of logs out of range is an error before
// the data directory is made.
func TestDevRefusesBadFlagsBeforeCreatingState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	for _, c := range [][]string{{"--base-port", "70000"}, {"--base-port", "65532"}, {"--base-port", "-1"}, {"--base-port", "65513", "--logs", "2"}, {"--base-port", "65505", "--logs", "4"}} {
		_, stderr, code := runBin(t, keycommitBin, append([]string{"dev", "--data", dir}, c...)...)
		if code == 0 || !strings.Contains(stderr, "--base-port "+c[1]+" is out of range") {
			t.Errorf("dev %v: exit %d, %s", c, code, stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("dev %v created %s", c, dir)
		}
	}
	for _, n := range []string{"0", "5", "-1"} {
		_, stderr, code := runBin(t, keycommitBin, "dev", "--data", dir, "--logs", n)
		if code == 0 || !strings.Contains(stderr, "--logs "+n+" is out of range") {
			t.Errorf("dev --logs %s: exit %d, %s", n, code, stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("dev --logs %s created %s", n, dir)
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

// TestDevPorts: with the default base, the first log keeps 7370 to 7374
// and the other logs take 7390 to 7401, clear of the ports the docs give
// `log serve` and `witness serve` (7380 to 7383); all are distinct.
func TestDevPorts(t *testing.T) {
	c := devConfig{BasePort: devDefaultPorts}
	seen := map[string]string{}
	for n := 1; n <= devMaxLogs; n++ {
		last := 3
		if n == 1 {
			last = 4
		}
		for i := 0; i <= last; i++ {
			a := c.devAddr(n, i)
			if prev, ok := seen[a]; ok {
				t.Errorf("log %d component %d and %s share %s", n, i, prev, a)
			}
			seen[a] = fmt.Sprintf("log %d component %d", n, i)
			var port int
			fmt.Sscanf(a, devListenHost+":%d", &port)
			if (port >= 7375 && port < 7390) || port > devDefaultPorts+devLastPort(devMaxLogs) {
				t.Errorf("log %d component %d listens on %s", n, i, a)
			}
		}
	}
	if got := c.devAddr(2, 0); got != "127.0.0.1:7390" {
		t.Errorf("second log at %s, want 127.0.0.1:7390", got)
	}
}

// checkDevTrust: dev.json's trust file parses with log/verify and names
// every log of dev.json, in order, with its vkey, bundle URL and witness
// policy file; min-logs is 2 (1 for one log).
func checkDevTrust(t *testing.T, info *devInfo, n int) {
	t.Helper()
	tr, err := verify.ReadTrustFile(info.TrustFile)
	if err != nil {
		t.Fatalf("dev's trust file: %v", err)
	}
	if len(tr.Logs) != n || len(info.Logs) != n || tr.MinLogs != min(2, n) || tr.Grace != verify.DefaultGrace {
		t.Fatalf("trust file names %d logs with min-logs %d, grace %v; want %d logs, min-logs %d", len(tr.Logs), tr.MinLogs, tr.Grace, n, min(2, n))
	}
	for i, l := range tr.Logs {
		want := info.Logs[i]
		if l.VKey != want.LogVKey || l.Bundle != want.LogURL+verify.BundleSuffix || l.PolicyFile != want.WitnessPolicy || l.Name != want.LogOrigin {
			t.Errorf("trust file log %d = %s %s %s (%s), want %s %s %s (%s)", i, l.VKey, l.Bundle, l.PolicyFile, l.Name,
				want.LogVKey, want.LogURL+verify.BundleSuffix, want.WitnessPolicy, want.LogOrigin)
		}
	}
}

// TestDevLogs runs `dev --logs 2`: two independent logs (own keys, own
// origins, own witnesses and witness policies, own ports), each serving a
// keys bundle that verifies with its own vkey and witness policy and holds
// the demo issuer with the same commitment in both; dev.json's logs and
// trust file name both, the top level is the first; the printed next
// steps end with verify --trust; the monitor follows both logs.
func TestDevLogs(t *testing.T) {
	dir := t.TempDir()
	_, info, out := startDev(t, dir, "--logs", "2")
	if len(info.Logs) != 2 || !reflect.DeepEqual(info.Logs[0], info.devLog) {
		t.Fatalf("dev.json logs = %+v, top level %+v", info.Logs, info.devLog)
	}
	checkDevTrust(t, info, 2)
	a, b := info.Logs[0], info.Logs[1]
	if a.LogVKey == b.LogVKey || a.LogOrigin == b.LogOrigin || a.LogURL == b.LogURL || a.WitnessPolicy == b.WitnessPolicy {
		t.Errorf("the two logs are not independent:\n%+v\n%+v", a, b)
	}
	witnessKeys := map[string]bool{}
	for _, l := range info.Logs {
		for _, w := range l.Witnesses {
			if witnessKeys[w.VKey] {
				t.Errorf("witness %s serves two logs", w.Name)
			}
			witnessKeys[w.VKey] = true
		}
	}
	var commitments []string
	for _, l := range info.Logs {
		pol, err := os.ReadFile(l.WitnessPolicy)
		if err != nil {
			t.Fatal(err)
		}
		p, err := quorum.Parse(pol)
		if err != nil {
			t.Fatalf("%s: %v", l.WitnessPolicy, err)
		}
		v, err := verify.New(verify.Config{LogKey: l.LogVKey, Policy: p})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(l.LogURL + verify.BundleSuffix)
		if err != nil {
			t.Fatal(err)
		}
		bundle, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s bundle: %s %v", l.LogOrigin, resp.Status, err)
		}
		vb, err := v.Verify(bundle, nil)
		if err != nil {
			t.Fatalf("%s's bundle does not verify with its vkey and witness policy: %v", l.LogOrigin, err)
		}
		ks, err := vb.KeySet()
		if err != nil {
			t.Fatal(err)
		}
		c, ok := ks.PST(info.Issuer.Origin)
		if !ok {
			t.Fatalf("%s's bundle does not hold the demo issuer: %s", l.LogOrigin, ks.PSTJSON())
		}
		cb, _ := json.Marshal(c)
		commitments = append(commitments, string(cb))
		// The other log's key does not verify this log's bundle.
		other := info.Logs[0]
		if l.LogVKey == other.LogVKey {
			other = info.Logs[1]
		}
		if ov, err := verify.New(verify.Config{LogKey: other.LogVKey, Policy: p}); err == nil {
			if _, err := ov.Verify(bundle, nil); err == nil {
				t.Errorf("%s's bundle verifies with %s's key", l.LogOrigin, other.LogOrigin)
			}
		}
	}
	if commitments[0] != commitments[1] {
		t.Errorf("the logs hold different demo commitments:\n%s\n%s", commitments[0], commitments[1])
	}
	cmds := printedCommands(out.String())
	if len(cmds) == 0 || cmds[len(cmds)-1] != keycommitBin+" verify --trust "+shellQuote(info.TrustFile) {
		t.Errorf("the printed next steps do not end with verify --trust %s: %q", info.TrustFile, cmds)
	}
	// verify --trust accepts the demo issuer: both logs hold its commitment.
	if o, e, code := runBin(t, keycommitBin, "verify", "--trust", info.TrustFile); code != 0 || !strings.Contains(o, "issuer "+info.Issuer.Origin+": accepted: 2 of 2 logs") {
		t.Errorf("verify --trust %s: exit %d\n%s%s", info.TrustFile, code, o, e)
	}
	for _, l := range info.Logs {
		if !strings.Contains(out.String(), "  log      "+l.LogURL+"   (origin "+l.LogOrigin+")") {
			t.Errorf("the summary does not name log %s:\n%s", l.LogOrigin, out)
		}
	}
	// The monitor follows both logs.
	resp, err := http.Get(info.MonitorURL + "/v1/checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	var st []monitor.LogStatus
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var origins []string
	for _, s := range st {
		origins = append(origins, s.Origin)
	}
	if len(origins) != 2 || origins[0] != a.LogOrigin || origins[1] != b.LogOrigin {
		t.Errorf("the monitor follows %v, want %s and %s", origins, a.LogOrigin, b.LogOrigin)
	}
}

// TestDevLogsAddedLater: a single-log deployment run again with --logs 2
// resumes its log as it was (the same key, no new commitment) and gives
// the new second log the demo commitment the first already holds, so that
// verify --trust accepts the demo issuer in both.
func TestDevLogsAddedLater(t *testing.T) {
	dir := t.TempDir()
	cmd, info, _ := startDev(t, dir)
	c, err := client.New(info.LogURL, info.LogVKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Issuer(t.Context(), info.Issuer.Origin)
	if err != nil || st.Status.Commitment == nil {
		t.Fatalf("demo issuer has no commitment: %v", err)
	}
	first := *st.Status.Commitment
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("keycommit dev exited with %v after SIGINT", err)
	}

	_, info2, out := startDev(t, dir, "--logs", "2")
	if info2.LogVKey != info.LogVKey || len(info2.Logs) != 2 || !strings.Contains(out.String(), "resumed log at size") || !strings.Contains(out.String(), "created a new log in "+filepath.Join(dir, "log-2")) {
		t.Fatalf("dev --logs 2 over a one-log deployment:\n%s\n%+v", out, info2)
	}
	c1, err := client.New(info2.LogURL, info2.LogVKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c1.Issuer(t.Context(), info.Issuer.Origin); err != nil || st.Status.Commitment == nil || *st.Status.Commitment != first {
		t.Errorf("the first log's demo commitment moved from index %d: %+v %v", first, st, err)
	}
	if o, e, code := runBin(t, keycommitBin, "verify", "--trust", info2.TrustFile); code != 0 || !strings.Contains(o, "issuer "+info.Issuer.Origin+": accepted: 2 of 2 logs") {
		t.Errorf("verify --trust %s: exit %d\n%s%s", info2.TrustFile, code, o, e)
	}
}
