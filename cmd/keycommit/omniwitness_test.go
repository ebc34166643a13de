package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/witness/quorum"
)

// omniwitnessVersion is the github.com/transparency-dev/witness version
// whose omniwitness and generate_keys (with --mldsa) the interop test runs;
// .ci/run installs them into omniwitnessDir.
const omniwitnessVersion = "v0.0.0-20260720115447-2e1c6971d19e"

// omniwitnessBins returns the paths of omniwitness and generate_keys, from
// $KEYCOMMIT_OMNIWITNESS_DIR or ~/.cache/keycommit/omniwitness-<version>
// (where .ci/run installs them with go install). Without them the test is
// skipped, except under CI=true, where it fails.
func omniwitnessBins(t *testing.T) (omni, genKeys string) {
	t.Helper()
	dir := os.Getenv("KEYCOMMIT_OMNIWITNESS_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "keycommit", "omniwitness-"+omniwitnessVersion)
	}
	omni, genKeys = filepath.Join(dir, "omniwitness"), filepath.Join(dir, "generate_keys")
	for _, p := range []string{omni, genKeys} {
		if _, err := os.Stat(p); err != nil {
			msg := fmt.Sprintf("%s not installed; run: GOBIN=%s go install github.com/transparency-dev/witness/cmd/omniwitness@%s github.com/transparency-dev/witness/cmd/generate_keys@%s", p, dir, omniwitnessVersion, omniwitnessVersion)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return omni, genKeys
}

// TestOmniwitnessMLDSACosignsOurLog: a third-party witness, omniwitness
// with a key from `generate_keys --mldsa`, configured for our log, is the
// only witness of `log serve`'s policy. The log's published checkpoint
// carries its ML-DSA-44 cosignature, which our verifier (log/verify,
// through witness/quorum and log/c2sp/mldsa) and formats/note accept.
func TestOmniwitnessMLDSACosignsOurLog(t *testing.T) {
	omni, genKeys := omniwitnessBins(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	origin := "omni.example/log"
	out, err := exec.Command(bin, "log", "init", "--data", logDir, "--origin", origin).CombinedOutput()
	if err != nil {
		t.Fatalf("log init: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	logVKey := lines[len(lines)-1]

	priv, pub := filepath.Join(dir, "omni.key"), filepath.Join(dir, "omni.vkey")
	if out, err := exec.Command(genKeys, "--origin", "omni.example/witness", "--mldsa", "--out_priv", priv, "--out_pub", pub).CombinedOutput(); err != nil {
		t.Fatalf("generate_keys --mldsa: %v\n%s", err, out)
	}
	vb, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	wvkey := strings.TrimSpace(string(vb))
	if k, err := c2sp.ParseVKey(wvkey); err != nil || k.Type != c2sp.TypeCosignatureMLDSA44 {
		t.Fatalf("generate_keys --mldsa made %q (type %#x, %v), want an ML-DSA-44 vkey", wvkey, k.Type, err)
	}
	logs := filepath.Join(dir, "logs.yaml")
	if err := os.WriteFile(logs, []byte(fmt.Sprintf("Logs:\n  - Origin: %s\n    PublicKey: %s\n    URL: http://127.0.0.1/unused\n", origin, logVKey)), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ow := exec.Command(omni, "--listen", addr, "--metrics_listen", freeAddr(t), "--private_key_path", priv,
		"--additional_logs", logs, "--db_file", filepath.Join(dir, "omni.db"), "--logtostderr=false", "--stderrthreshold=ERROR")
	ow.Stderr = os.Stderr
	if err := ow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ow.Process.Kill(); ow.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("omniwitness not listening on %s: %v", addr, err)
		}
	}

	pol := fmt.Sprintf("log %s\nwitness omni %s http://%s\nquorum omni\n", logVKey, wvkey, addr)
	policy := filepath.Join(dir, "policy.txt")
	if err := os.WriteFile(policy, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	qp, err := quorum.Parse([]byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{LogKey: logVKey, Policy: qp})
	if err != nil {
		t.Fatal(err)
	}
	_, logURL := startServe(t, bin, logDir, "--log-level", "warn", "--witness-policy", policy, "--cosign-interval", "1h")
	logURL = strings.TrimSuffix(logURL, "/")

	fv, err := fnote.NewMLDSAVerifier(wvkey)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := note.NewVerifier(logVKey)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		cp, err := get200(t, logURL+"/checkpoint")
		if err == nil {
			vc, verr := v.VerifyCheckpoint([]byte(cp))
			if verr == nil {
				if len(vc.Cosignatures) != 1 || vc.Cosignatures[0].Witness != "omni" {
					t.Fatalf("verified cosignatures %+v, want omni's", vc.Cosignatures)
				}
				n, err := note.Open([]byte(cp), note.VerifierList(lv, fv))
				if err != nil || len(n.Sigs) != 2 {
					t.Fatalf("formats/note: %v\n%s", err, cp)
				}
				return
			}
			last = fmt.Sprintf("%v\n%s", verr, cp)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("/checkpoint not cosigned by omniwitness in time; last: %s", last)
		}
	}
}
