package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/bundle/bundletest"
)

// runBin runs the binary and returns its stdout, stderr and exit code.
func runBin(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	default:
		t.Fatalf("running %v: %v", args, err)
		return "", "", -1
	}
}

// TestVerifyCommand runs `keycommit verify` (the real binary) on a bundle
// of 1,000 issuers with 6 keys each, then on a newer bundle served over
// HTTP against the saved one, and on failing bundles.
func TestVerifyCommand(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	now := time.Now()
	l := bundletest.NewLog("keycommit.example/log/cli")
	ws := []*bundletest.Witness{bundletest.NewWitness("w1.example"), bundletest.NewWitness("w2.example"), bundletest.NewWitness("w3.example")}
	policy := filepath.Join(dir, "witness-policy.txt")
	if err := os.WriteFile(policy, []byte(bundletest.Policy(l.VKey, 2, ws...)), 0o644); err != nil {
		t.Fatal(err)
	}
	ks, err := bundletest.KeySet(1000, 6, now.Add(60*24*time.Hour), "cli")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		l.Append([]byte(fmt.Sprint("entry ", i)))
	}
	if _, err := l.AppendSnapshot(ks, now); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Publish(now, ws[0], ws[2]); err != nil {
		t.Fatal(err)
	}
	raw, err := l.Bundle(0)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "keys.bundle")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(dir, "saved.bundle")
	args := []string{"verify", "--bundle", file, "--log-vkey", l.VKey, "--witness-policy", policy}

	out, errOut, code := runBin(t, bin, append(args, "--save", saved)...)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "1000 PST and 0 Privacy Pass issuers") || !strings.Contains(out, "w1 at") || !strings.Contains(out, "w3 at") {
		t.Errorf("unexpected report:\n%s", out)
	}
	if b, err := os.ReadFile(saved); err != nil || !bytes.Equal(b, raw) {
		t.Fatalf("--save did not keep the bundle: %v", err)
	}

	// The log moves on: one issuer rotates, one is added; the bundle is
	// served over HTTP and fetched with ?old=<saved size>.
	ks.PST["https://issuer-7.example"] = ks.PST["https://issuer-8.example"]
	ks2, _ := bundletest.KeySet(1, 6, now.Add(60*24*time.Hour), "cli-new")
	ks.PST["https://new-issuer.example"] = ks2.PST["https://issuer-0.example"]
	for i := 0; i < 37; i++ {
		l.Append([]byte(fmt.Sprint("more ", i)))
	}
	if _, err := l.AppendSnapshot(ks, now); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Publish(now, ws[1], ws[2]); err != nil {
		t.Fatal(err)
	}
	// A log that no longer holds the key set of the saved bundle (a log
	// keeps only its last storage.KeySetHistory snapshots' key sets).
	h, err := bundle.NewHandler(bundle.Config{Source: forgetfulSource{l, 101}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + bundle.BundlePath
	urlArgs := []string{"verify", "--bundle", url, "--log-vkey", l.VKey, "--witness-policy", policy, "--previous", saved}
	out, errOut, code = runBin(t, bin, urlArgs...)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"consistent with the previous bundle (tree size 101", "changed: https://issuer-7.example pst changed", "changed: https://new-issuer.example pst added"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "changed: ") != 2 {
		t.Errorf("want exactly 2 changes:\n%s", out)
	}
	// The log no longer holds the saved bundle's key set: no delta, the
	// full bundle instead.
	if !strings.Contains(out, "delta not used (404 Not Found") {
		t.Errorf("report does not say the delta was not used:\n%s", out)
	}

	// From a bundle the handler served, the next refresh is a delta.
	held := filepath.Join(dir, "held.bundle")
	if out, errOut, code := runBin(t, bin, append(urlArgs, "--save", held)...); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	ks.PST["https://issuer-3.example"] = ks.PST["https://issuer-4.example"]
	l.Append([]byte("rotation"))
	if _, err := l.AppendSnapshot(ks, now); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Publish(now, ws[1], ws[2]); err != nil {
		t.Fatal(err)
	}
	deltaArgs := []string{"verify", "--bundle", url, "--log-vkey", l.VKey, "--witness-policy", policy, "--previous", held}
	out, errOut, code = runBin(t, bin, deltaArgs...)
	if code != 0 || !strings.Contains(out, "applied a delta of ") || !strings.Contains(out, "changed: https://issuer-3.example pst changed") ||
		strings.Count(out, "changed: ") != 1 {
		t.Fatalf("delta refresh: exit %d\n%s%s", code, out, errOut)
	}
	if out, _, code := runBin(t, bin, append(deltaArgs, "--no-delta")...); code != 0 || strings.Contains(out, "delta") {
		t.Errorf("--no-delta: exit %d\n%s", code, out)
	}

	// Failures: exit 2, and stderr names the check.
	tampered := filepath.Join(dir, "tampered.bundle")
	bad := bytes.Replace(raw, []byte("issuer-5.example"), []byte("issuer-X.example"), 1)
	os.WriteFile(tampered, bad, 0o644)
	// The checkpoint's size changed: the log's signature breaks (the
	// inclusion proof, checked first because it is cheaper, too).
	sizeTampered := filepath.Join(dir, "size-tampered.bundle")
	cpLine := regexp.MustCompile(`\nkeycommit\.example/log/cli\n(\d+)\n`)
	m := cpLine.FindSubmatch(raw)
	if m == nil {
		t.Fatalf("no checkpoint in the bundle")
	}
	n, _ := strconv.Atoi(string(m[1]))
	os.WriteFile(sizeTampered, cpLine.ReplaceAll(raw, []byte("\nkeycommit.example/log/cli\n"+strconv.Itoa(n+1)+"\n")), 0o644)
	stalePolicy := append([]string{}, args...)
	// A snapshot dated 61 days after its cosignatures (the clock-lie story).
	liar := bundletest.NewLog("keycommit.example/log/cli")
	liar.Append([]byte("entry"))
	if _, err := liar.AppendSnapshot(ks, now.Add(1465*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := liar.Publish(now, ws[0], ws[1]); err != nil {
		t.Fatal(err)
	}
	future := filepath.Join(dir, "future.bundle")
	if b, err := liar.Bundle(0); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(future, b, 0o644); err != nil {
		t.Fatal(err)
	}
	liarPolicy := filepath.Join(dir, "liar-policy.txt")
	if err := os.WriteFile(liarPolicy, []byte(bundletest.Policy(liar.VKey, 2, ws...)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		check string
	}{
		{"tampered key set", []string{"verify", "--bundle", tampered, "--log-vkey", l.VKey, "--witness-policy", policy}, 2, "digest"},
		{"tampered checkpoint size", []string{"verify", "--bundle", sizeTampered, "--log-vkey", l.VKey, "--witness-policy", policy}, 2, "log-signature check failed"},
		{"stale", append(stalePolicy, "--max-age", "1ns"), 2, "freshness"},
		{"snapshot dated after its cosignatures", []string{"verify", "--bundle", future, "--log-vkey", liar.VKey, "--witness-policy", liarPolicy}, 2, "time check failed"},
		{"rollback", []string{"verify", "--bundle", file, "--log-vkey", l.VKey, "--witness-policy", policy, "--previous", mustSaveURL(t, bin, urlArgs, dir)}, 2, "rollback"},
		{"missing flag", []string{"verify", "--bundle", file, "--witness-policy", policy}, 1, "--log-vkey"},
		{"missing file", []string{"verify", "--bundle", filepath.Join(dir, "nope"), "--log-vkey", l.VKey, "--witness-policy", policy}, 1, "couldn't read the bundle"},
		{"wrong log key", []string{"verify", "--bundle", file, "--log-vkey", bundletest.NewLog("keycommit.example/log/cli").VKey + "x", "--witness-policy", policy}, 1, "log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runBin(t, bin, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.check) {
				t.Errorf("exit %d stderr %q, want exit %d naming %q (stdout %q)", code, errOut, tc.code, tc.check, out)
			}
			if goBytes.MatchString(errOut) {
				t.Errorf("stderr prints a Go byte slice: %s", errOut)
			}
		})
	}
}

// goBytes matches a Go byte slice printed with %v ("[35 229 127").
var goBytes = regexp.MustCompile(`\[\d{1,3} \d{1,3} \d{1,3}`)

// mustSaveURL verifies the served bundle with --save and returns the
// saved file.
func mustSaveURL(t *testing.T, bin string, args []string, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "newer.bundle")
	if out, errOut, code := runBin(t, bin, append(args, "--save", p)...); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	return p
}

// forgetfulSource is a bundle source that no longer holds the snapshots
// of trees up to size forgot, as a log that kept only its latest key sets.
type forgetfulSource struct {
	*bundletest.Log
	forgot uint64
}

func (f forgetfulSource) LatestSnapshot(ctx context.Context, treeSize uint64) (uint64, []byte, []byte, error) {
	if treeSize <= f.forgot {
		return 0, nil, nil, bundle.ErrNotLogged
	}
	return f.Log.LatestSnapshot(ctx, treeSize)
}
