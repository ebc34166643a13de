package monitor

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/monitor/monitortest"
	"golang.org/x/mod/sumdb/tlog"
)

var update = flag.Bool("update", false, "regenerate testdata/monitor/evidence")

const evidenceDir = "../testdata/monitor/evidence"

// evidenceCase is one test vector: an evidence file and the error it must
// give (empty: valid).
type evidenceCase struct {
	File        string `json:"file"`
	Description string `json:"description"`
	WantError   string `json:"want_error"`
}

// makeEvidenceVectors writes the test vectors: valid evidence of both
// kinds and hostile variants.
func makeEvidenceVectors(t *testing.T) {
	la, lb, vkey := splitLog(t, 10, 13)
	cpA10 := must[*Checkpoint](t)(openCheckpoint(must[[]byte](t)(la.CheckpointAt(10)), mustVerifier(t, vkey), la.Origin()))
	cpB10 := must[*Checkpoint](t)(openCheckpoint(must[[]byte](t)(lb.CheckpointAt(10)), mustVerifier(t, vkey), la.Origin()))
	cpB13 := must[*Checkpoint](t)(openCheckpoint(must[[]byte](t)(lb.CheckpointAt(13)), mustVerifier(t, vkey), la.Origin()))
	cpA9 := must[*Checkpoint](t)(openCheckpoint(must[[]byte](t)(la.CheckpointAt(9)), mustVerifier(t, vkey), la.Origin()))
	proofB := func(m int64) []tlog.Hash {
		tr := &memTree{}
		for i := int64(0); i < lb.Size(); i++ {
			hs := must[[]tlog.Hash](t)(tlog.StoredHashes(i, lb.Entry(i), tr))
			tr.hashes = append(tr.hashes, hs...)
		}
		thr := tlog.TileHashReader(tlog.Tree{N: 13, Hash: cpB13.Root}, memTileReader{tr})
		return must[[]tlog.Hash](t)(proveFromTiles(thr, m, 13))
	}
	found := time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	write := func(name string, e *Evidence) {
		b, _ := json.MarshalIndent(e, "", "  ")
		if err := os.WriteFile(filepath.Join(evidenceDir, name), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sameSize := newEvidence(vkey, cpA10, cpB10, "monitor A", "monitor B", nil, "same size, different roots", found)
	write("same-size.json", sameSize)
	withProof := newEvidence(vkey, cpA10, cpB13, "monitor A", "monitor B", proofB(10), "proof from 10 to 13", found)
	write("proof.json", withProof)
	// Hostile and non-evidence variants.
	consistent := newEvidence(vkey, cpA9, cpA10, "a", "b", nil, "", found)
	tr := &memTree{}
	for i := int64(0); i < 10; i++ {
		tr.hashes = append(tr.hashes, must[[]tlog.Hash](t)(tlog.StoredHashes(i, la.Entry(i), tr))...)
	}
	consistent.Proof = nil
	for _, h := range must[[]tlog.Hash](t)(proveFromTiles(tr, 9, 10)) {
		consistent.Proof = append(consistent.Proof, h[:])
	}
	write("consistent.json", consistent)
	badSig := *withProof
	badSig.Checkpoints[1] = flipInSignature(badSig.Checkpoints[1])
	write("bad-signature.json", &badSig)
	badProof := *withProof
	badProof.Proof = append([][]byte(nil), withProof.Proof...)
	badProof.Proof[1] = append([]byte(nil), badProof.Proof[1]...)
	badProof.Proof[1][0] ^= 1
	write("bad-proof.json", &badProof)
	short := *withProof
	short.Proof = withProof.Proof[:len(withProof.Proof)-1]
	write("truncated-proof.json", &short)
	swapped := *withProof
	swapped.Checkpoints[0], swapped.Checkpoints[1] = withProof.Checkpoints[1], withProof.Checkpoints[0]
	write("larger-first.json", &swapped)
	noProof := *withProof
	noProof.Proof = nil
	write("no-proof.json", &noProof)
	otherLog, _, _ := monitortest.NewWithKey(la.Origin())
	otherLog.Append(la.Entry(0))
	foreign := *sameSize
	foreign.Checkpoints[1] = string(must[[]byte](t)(otherLog.Checkpoint()))
	write("foreign-key.json", &foreign)
	cases := []evidenceCase{
		{"same-size.json", "two checkpoints of size 10 with different roots", ""},
		{"proof.json", "checkpoints of sizes 10 and 13 and a proof reproducing the 13 root but not the 10 root", ""},
		{"consistent.json", "sizes 9 and 10 of one history with a valid consistency proof", "does not show a split view"},
		{"bad-signature.json", "a flipped bit in the log signature of the second checkpoint", "checkpoint 2 of the evidence"},
		{"bad-proof.json", "a flipped bit in the proof", "does not reproduce the root"},
		{"truncated-proof.json", "the proof's last hash removed", "evidence proof"},
		{"larger-first.json", "the larger checkpoint listed first", "larger checkpoint first"},
		{"no-proof.json", "checkpoints of different sizes without a proof", "evidence proof"},
		{"foreign-key.json", "the second checkpoint signed by another key with the same name", "checkpoint 2 of the evidence"},
	}
	b, _ := json.MarshalIndent(cases, "", "  ")
	os.WriteFile(filepath.Join(evidenceDir, "cases.json"), append(b, '\n'), 0o644)
	os.WriteFile(filepath.Join(evidenceDir, "vkey"), []byte(vkey+"\n"), 0o644)
}

type memTileReader struct{ tr *memTree }

func (memTileReader) Height() int { return tileHeight }
func (r memTileReader) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	var out [][]byte
	for _, t := range ts {
		b, err := tlog.ReadTileData(t, r.tr)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
func (memTileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func flipInSignature(n string) string {
	i := strings.LastIndex(n, " ") + 5
	b := []byte(n)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestEvidenceVectors checks VerifyEvidence against the vectors in
// testdata/monitor/evidence (regenerate with go test -run
// TestEvidenceVectors -update).
func TestEvidenceVectors(t *testing.T) {
	if *update {
		makeEvidenceVectors(t)
	}
	vkey := strings.TrimSpace(string(must[[]byte](t)(os.ReadFile(filepath.Join(evidenceDir, "vkey")))))
	var cases []evidenceCase
	if err := json.Unmarshal(must[[]byte](t)(os.ReadFile(filepath.Join(evidenceDir, "cases.json"))), &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 9 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		data := must[[]byte](t)(os.ReadFile(filepath.Join(evidenceDir, c.File)))
		_, err := VerifyEvidence(data, vkey)
		switch {
		case c.WantError == "" && err != nil:
			t.Errorf("%s (%s): %v", c.File, c.Description, err)
		case c.WantError != "" && (err == nil || !strings.Contains(err.Error(), c.WantError)):
			t.Errorf("%s (%s): got error %v, want one containing %q", c.File, c.Description, err, c.WantError)
		}
		if c.File == "consistent.json" && !errors.Is(err, ErrNotSplitView) {
			t.Errorf("consistent checkpoints: error %v is not ErrNotSplitView", err)
		}
	}
}

// TestEvidenceMangling: every single-byte change to the checkpoints or the
// proof of valid evidence makes it fail to verify.
func TestEvidenceMangling(t *testing.T) {
	vkey := strings.TrimSpace(string(must[[]byte](t)(os.ReadFile(filepath.Join(evidenceDir, "vkey")))))
	for _, f := range []string{"same-size.json", "proof.json"} {
		var e Evidence
		if err := json.Unmarshal(must[[]byte](t)(os.ReadFile(filepath.Join(evidenceDir, f))), &e); err != nil {
			t.Fatal(err)
		}
		check := func(what string, m Evidence) {
			t.Helper()
			b, _ := json.Marshal(m)
			if _, err := VerifyEvidence(b, vkey); err == nil {
				t.Errorf("%s: %s still verifies", f, what)
			}
		}
		for k := range 2 {
			for i := range len(e.Checkpoints[k]) {
				m := e
				b := []byte(m.Checkpoints[k])
				b[i] ^= 0x01
				m.Checkpoints[k] = string(b)
				check(fmt.Sprintf("checkpoint %d byte %d", k+1, i), m)
			}
		}
		for i := range e.Proof {
			for j := range e.Proof[i] {
				m := e
				m.Proof = append([][]byte(nil), e.Proof...)
				m.Proof[i] = append([]byte(nil), e.Proof[i]...)
				m.Proof[i][j] ^= 0x80
				check(fmt.Sprintf("proof hash %d byte %d", i, j), m)
			}
		}
	}
}
