package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// TestIssuerRoundTrip goes through the real binary: keygen, register,
// submit; the inclusion proof the log returns for each submission verifies
// against the checkpoint it returns, checked here with
// transparency-dev/merkle/proof and formats/log, independently of
// keycommit's own client.
func TestIssuerRoundTrip(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	out, err := exec.Command(keycommitBin, "log", "init", "--data", logDir, "--origin", "roundtrip.example/log").CombinedOutput()
	if err != nil {
		t.Fatalf("log init: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	vkey := lines[len(lines)-1]
	web := startStoryOrigin(t, dir, "roundtrip.example")
	_, url := startServe(t, keycommitBin, logDir, append(web.serveArgs(), "--log-level", "warn")...)
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(keycommitBin, args...)
		cmd.Env = append(os.Environ(), "KEYCOMMIT_LOG="+strings.TrimSuffix(url, "/"), "KEYCOMMIT_LOG_VKEY="+vkey)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("keycommit %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	key := filepath.Join(dir, "issuer.key")
	run("issuer", "keygen", "--out", key)
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("account key file: %v, mode %v; want mode 0600", err, fi.Mode().Perm())
	}
	commitment := filepath.Join(dir, "commitment.json")
	run("issuer", "gen-commitment", "--out", commitment, "--keys-out", filepath.Join(dir, "keys.json"))
	origin := "https://roundtrip.example"
	web.serveChallengeFor(t, "roundtrip.example/log", origin, key)
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"issuer", "register", "--key", key, "--origin", origin, "--contact", "mailto:keys@roundtrip.example", "--json"},
		{"issuer", "submit", "--key", key, "--origin", origin, "--commitment", commitment, "--json"},
	} {
		var res api.SubmitResult
		if err := json.Unmarshal(run(args...), &res); err != nil {
			t.Fatalf("%s: output is not a submit result: %v", args[1], err)
		}
		n, err := note.Open([]byte(res.Checkpoint), note.VerifierList(verifier))
		if err != nil {
			t.Fatalf("%s: checkpoint does not verify under the log's key: %v", args[1], err)
		}
		cp, _, _, err := flog.ParseCheckpoint([]byte(res.Checkpoint), "roundtrip.example/log", verifier)
		if err != nil {
			t.Fatalf("%s: formats/log does not parse the checkpoint: %v", args[1], err)
		}
		if n.Text == "" || cp.Size != res.TreeSize || res.Index >= cp.Size {
			t.Fatalf("%s: checkpoint size %d, result says tree size %d index %d", args[1], cp.Size, res.TreeSize, res.Index)
		}
		leaf := rfc6962.DefaultHasher.HashLeaf(res.Entry)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, res.Index, cp.Size, leaf, res.InclusionProof, cp.Hash); err != nil {
			t.Errorf("%s: inclusion proof does not verify: %v", args[1], err)
		}
		// A flipped byte anywhere in the proof is caught.
		if len(res.InclusionProof) > 0 {
			res.InclusionProof[0][0] ^= 1
			if proof.VerifyInclusion(rfc6962.DefaultHasher, res.Index, cp.Size, leaf, res.InclusionProof, cp.Hash) == nil {
				t.Errorf("%s: a corrupted proof verifies", args[1])
			}
		}
	}
}
