package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/witness/quorum"
)

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// get200 is httpGet with an error for a status other than 200.
func get200(t *testing.T, url string) (string, error) {
	t.Helper()
	res, body := httpGet(t, url)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %s", url, res.StatusCode, body)
	}
	return body, nil
}

// TestWitnessBackAfterPublication: with real processes (log serve and two
// witness serve, quorum 2 of 2), a witness is down when a checkpoint is
// published; once it is back, the log's retries get the checkpoint
// cosigned by the quorum within the retry cap, although the re-cosign
// interval is an hour. Mutations caught: no retry of a failed witness
// (the next chance would be an hour later), retries that stop, a retry
// backoff not capped by --cosign-retry-max.
func TestWitnessBackAfterPublication(t *testing.T) {
	const retryMax = 500 * time.Millisecond
	bin := buildBinary(t)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	origin := "cosign.example/log"
	out, err := exec.Command(bin, "log", "init", "--data", logDir, "--origin", origin).CombinedOutput()
	if err != nil {
		t.Fatalf("log init: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	logVKey := lines[len(lines)-1]

	type wit struct {
		dir, addr, url string
		cmd            *exec.Cmd
	}
	var ws []*wit
	var pol strings.Builder
	fmt.Fprintf(&pol, "log %s\n", logVKey)
	for i := 1; i <= 2; i++ {
		w := &wit{dir: filepath.Join(dir, fmt.Sprintf("w%d", i)), addr: freeAddr(t)}
		out, err := witRun(t, bin, "witness", "init", "--data", w.dir, "--name", fmt.Sprintf("w%d.cosign.example", i))
		if err != nil {
			t.Fatalf("witness init: %v\n%s", err, out)
		}
		ls := strings.Split(strings.TrimSpace(out), "\n")
		if out, err := witRun(t, bin, "witness", "add-log", "--data", w.dir, "--origin", origin, "--vkey", logVKey); err != nil {
			t.Fatalf("witness add-log: %v\n%s", err, out)
		}
		w.cmd, w.url = witServeOn(t, bin, w.dir, w.addr)
		fmt.Fprintf(&pol, "witness w%d %s %s\n", i, ls[len(ls)-1], w.url)
		ws = append(ws, w)
	}
	pol.WriteString("group both 2 w1 w2\nquorum both\n")
	policy := filepath.Join(dir, "policy.txt")
	if err := os.WriteFile(policy, []byte(pol.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	qp, err := quorum.Parse([]byte(pol.String()))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{LogKey: logVKey, Policy: qp})
	if err != nil {
		t.Fatal(err)
	}
	web := startStoryOrigin(t, dir, "issuer.cosign.example")
	_, logURL := startServe(t, bin, logDir, append(web.serveArgs(), "--log-level", "warn", "--witness-policy", policy,
		"--cosign-interval", "1h", "--cosign-retry-max", retryMax.String())...)
	logURL = strings.TrimSuffix(logURL, "/")

	// waitCosigned polls /checkpoint until it verifies (quorum, fresh)
	// at a size of at least size, by deadline.
	waitCosigned := func(size uint64, deadline time.Time, what string) {
		t.Helper()
		var last string
		for {
			cp, err := get200(t, logURL+"/checkpoint")
			if err == nil {
				vc, verr := v.VerifyCheckpoint([]byte(cp))
				if verr == nil && vc.Checkpoint.Size >= size {
					return
				}
				last = fmt.Sprintf("%v\n%s", verr, cp)
			} else {
				last = err.Error()
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /checkpoint not cosigned by the quorum at size >= %d in time; last: %s", what, size, last)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCosigned(1, time.Now().Add(30*time.Second), "at startup")

	// w2 goes down; an issuer registers: the new checkpoint is published
	// while w2 is down.
	ws[1].cmd.Process.Signal(os.Interrupt)
	ws[1].cmd.Wait()
	key := filepath.Join(dir, "issuer.key")
	env := append(os.Environ(), "KEYCOMMIT_LOG="+logURL, "KEYCOMMIT_LOG_VKEY="+logVKey)
	for i, args := range [][]string{{"issuer", "keygen", "--out", key},
		{"issuer", "register", "--key", key, "--origin", "https://issuer.cosign.example", "--contact", "mailto:keys@issuer.cosign.example"}} {
		if i == 1 { // the origin serves the challenge for the new key
			web.serveChallengeFor(t, origin, "https://issuer.cosign.example", key)
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("keycommit %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	cp, err := get200(t, logURL+"/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	size := uint64(0)
	fmt.Sscanf(strings.Split(cp, "\n")[1], "%d", &size)
	if size < 2 {
		t.Fatalf("checkpoint after the registration has size %d", size)
	}
	// The log has asked w2 and failed at least once (so the checkpoint
	// was published while it was down), and it is not cosigned.
	failures := regexp.MustCompile(`keycommit_log_cosign_failures_total\{witness="w2"\} (\d+)`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m, err := get200(t, logURL+"/metrics")
		if err == nil && failures.MatchString(m) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log never reported a failure of w2: %v", err)
		}
	}
	if _, err := v.VerifyCheckpoint([]byte(cp)); err == nil {
		t.Fatalf("checkpoint of size %d verifies with w2 down:\n%s", size, cp)
	}

	// w2 comes back on the same address: within the retry cap (plus the
	// time to start it and for one round), the quorum cosigns again.
	ws[1].cmd, _ = witServeOn(t, bin, ws[1].dir, ws[1].addr)
	back := time.Now()
	waitCosigned(size, back.Add(10*time.Second+4*retryMax), "after w2 came back")
	t.Logf("cosigned by the quorum %v after w2 was back", time.Since(back).Round(time.Millisecond))
}

// TestCosignFlagsRefuseNegative: a negative --cosign-interval or
// --cosign-retry-max is refused with the flag's name, not silently
// replaced by the default.
func TestCosignFlagsRefuseNegative(t *testing.T) {
	bin := buildBinary(t)
	for _, flag := range []string{"--cosign-interval", "--cosign-retry-max"} {
		out, err := exec.Command(bin, "log", "serve", "--data", t.TempDir(), flag, "-1h").CombinedOutput()
		if err == nil || !strings.Contains(string(out), flag) || !strings.Contains(string(out), "negative") {
			t.Errorf("log serve %s -1h: %v\n%s", flag, err, out)
		}
	}
}
