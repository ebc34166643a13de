package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/witness/quorum"
)

// TestVerifyCommandMLDSA: `keycommit verify` counts ML-DSA-44 witness
// cosignatures (C2SP tlog-cosignature type 0x06) toward a 2-of-3 quorum
// whose group mixes one Ed25519 and two ML-DSA-44 witnesses, and refuses
// the bundle when only one ML-DSA-44 witness cosigned.
func TestVerifyCommandMLDSA(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	now := time.Now()
	l := bundletest.NewLog("keycommit.example/log/pq")
	ws := []*bundletest.Witness{bundletest.NewWitness("w1.example"), bundletest.NewMLDSAWitness("w2.example"), bundletest.NewMLDSAWitness("w3.example")}
	policy := filepath.Join(dir, "witness-policy.txt")
	if err := os.WriteFile(policy, []byte(bundletest.Policy(l.VKey, 2, ws...)), 0o644); err != nil {
		t.Fatal(err)
	}
	ks, err := bundletest.KeySet(10, 2, now.Add(60*24*time.Hour), "pq")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		l.Append([]byte(fmt.Sprint("entry ", i)))
	}
	if _, err := l.AppendSnapshot(ks, now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cosign  []*bundletest.Witness
		wantOK  bool
		reports []string
	}{
		{"two ML-DSA-44", []*bundletest.Witness{ws[1], ws[2]}, true, []string{"w2 at", "w3 at"}},
		{"mixed", []*bundletest.Witness{ws[0], ws[2]}, true, []string{"w1 at", "w3 at"}},
		{"one ML-DSA-44", []*bundletest.Witness{ws[2]}, false, []string{"quorum"}},
	} {
		if _, err := l.Publish(now, tc.cosign...); err != nil {
			t.Fatal(err)
		}
		raw, err := l.Bundle(0)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".bundle")
		if err := os.WriteFile(file, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runBin(t, bin, "verify", "--bundle", file, "--log-vkey", l.VKey, "--witness-policy", policy)
		if (code == 0) != tc.wantOK {
			t.Fatalf("%s: exit %d\n%s%s", tc.name, code, out, errOut)
		}
		for _, want := range tc.reports {
			if !strings.Contains(out+errOut, want) {
				t.Errorf("%s: output lacks %q:\n%s%s", tc.name, want, out, errOut)
			}
		}
	}
}

// TestWitnessInitMLDSA: `witness init --mldsa --ed25519=false` makes an
// ML-DSA-44-only witness (one type 0x06 vkey), `--mldsa` one with both
// keys, and the key file is mode 0600.
func TestWitnessInitMLDSA(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		args  []string
		types []byte
	}{
		{[]string{"--mldsa", "--ed25519=false"}, []byte{c2sp.TypeCosignatureMLDSA44}},
		{[]string{"--mldsa"}, []byte{c2sp.TypeCosignatureV1, c2sp.TypeCosignatureMLDSA44}},
		{[]string{"--ed25519=false"}, nil},
	} {
		dir := filepath.Join(t.TempDir(), "w")
		out, errOut, code := runBin(t, bin, append([]string{"witness", "init", "--data", dir, "--name", "pq.example/w", "--json"}, tc.args...)...)
		if tc.types == nil {
			if code == 0 || !strings.Contains(errOut, "ML-DSA-44") {
				t.Errorf("%v: exit %d, %s", tc.args, code, errOut)
			}
			continue
		}
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", tc.args, code, errOut)
		}
		var res witnessInitResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if len(res.VKeys) != len(tc.types) || res.VKey != res.VKeys[0] {
			t.Fatalf("%v: vkeys %v", tc.args, res.VKeys)
		}
		for i, vk := range res.VKeys {
			if k, err := c2sp.ParseVKey(vk); err != nil || k.Type != tc.types[i] {
				t.Errorf("%v: vkey %d has type %#x (%v), want %#x", tc.args, i, k.Type, err, tc.types[i])
			}
		}
		if fi, err := os.Stat(filepath.Join(dir, "witness.key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%v: key file %v %v", tc.args, fi.Mode(), err)
		}
	}
}

// TestLogServeMLDSAWitnesses: `log serve` starts with a witness policy of
// two ML-DSA-44-only witnesses of ours (`witness init --mldsa
// --ed25519=false`, `witness serve`), 2 of 2, and publishes a checkpoint
// that both cosigned, which log/verify accepts.
func TestLogServeMLDSAWitnesses(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	origin := "pq.example/log"
	out, err := exec.Command(bin, "log", "init", "--data", logDir, "--origin", origin).CombinedOutput()
	if err != nil {
		t.Fatalf("log init: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	logVKey := lines[len(lines)-1]
	var pol strings.Builder
	fmt.Fprintf(&pol, "log %s\n", logVKey)
	for i := 1; i <= 2; i++ {
		wdir := filepath.Join(dir, fmt.Sprintf("w%d", i))
		out, err := witRun(t, bin, "witness", "init", "--data", wdir, "--name", fmt.Sprintf("w%d.pq.example", i), "--mldsa", "--ed25519=false")
		if err != nil {
			t.Fatalf("witness init: %v\n%s", err, out)
		}
		ls := strings.Split(strings.TrimSpace(out), "\n")
		if out, err := witRun(t, bin, "witness", "add-log", "--data", wdir, "--origin", origin, "--vkey", logVKey); err != nil {
			t.Fatalf("witness add-log: %v\n%s", err, out)
		}
		_, url := witServe(t, bin, wdir)
		fmt.Fprintf(&pol, "witness w%d %s %s\n", i, ls[len(ls)-1], url)
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
	_, logURL := startServe(t, bin, logDir, "--log-level", "warn", "--witness-policy", policy, "--cosign-interval", "1h")
	var last string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cp, err := get200(t, strings.TrimSuffix(logURL, "/")+"/checkpoint")
		if err == nil {
			vc, verr := v.VerifyCheckpoint([]byte(cp))
			if verr == nil {
				if len(vc.Cosignatures) != 2 {
					t.Fatalf("verified cosignatures %+v, want w1 and w2", vc.Cosignatures)
				}
				return
			}
			last = fmt.Sprintf("%v\n%s", verr, cp)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("/checkpoint not cosigned by both ML-DSA-44 witnesses in time; last: %s", last)
		}
	}
}
