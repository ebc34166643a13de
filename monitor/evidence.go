package monitor

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/keycommit/keycommit/log/c2sp"
)

// EvidenceType is the type string of a split-view evidence bundle.
const EvidenceType = "keycommit/split-view/v1"

// Evidence is a split-view evidence bundle: two checkpoints signed by the
// same log key that cannot both be views of one append-only log. Anyone
// holding the log's verifier key can check it offline with VerifyEvidence:
// either both checkpoints have the same size and different roots, or Proof
// is a full consistency proof from the smaller checkpoint's size to the
// larger's that reproduces the larger root and not the smaller.
type Evidence struct {
	Type   string `json:"type"`
	Origin string `json:"origin"`
	// VKey is the log's C2SP verifier key (informational: a checker uses
	// the key it trusts).
	VKey string `json:"vkey"`
	// Checkpoints are the two signed notes, the smaller size first.
	Checkpoints [2]string `json:"checkpoints"`
	// Sources say where each checkpoint came from.
	Sources [2]string `json:"sources"`
	// Proof is a full consistency proof (the seed hash first, see
	// rootsFromProof) from the first checkpoint's size to the second's;
	// empty when the sizes are equal.
	Proof  [][]byte  `json:"proof,omitempty"`
	Reason string    `json:"reason"`
	Found  time.Time `json:"found"`
}

// ID returns the evidence's identifier: the hex SHA-256 of the two
// checkpoint bodies (without signatures), so that every monitor that finds
// the same split view names it the same way.
func (e *Evidence) ID() string {
	h := sha256.New()
	for _, c := range e.Checkpoints {
		body, _, _ := strings.Cut(c, "\n\n")
		fmt.Fprintf(h, "%d\n%s", len(body), body)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// newEvidence builds evidence from two checkpoints (in any order) and,
// when their sizes differ, a full consistency proof between them.
func newEvidence(vkey string, a, b *Checkpoint, srcA, srcB string, proof []tlog.Hash, reason string, now time.Time) *Evidence {
	if a.Size > b.Size || a.Size == b.Size && bytes.Compare(a.Note, b.Note) > 0 {
		a, b, srcA, srcB = b, a, srcB, srcA
	}
	e := &Evidence{Type: EvidenceType, Origin: a.Origin, VKey: vkey,
		Checkpoints: [2]string{string(a.Note), string(b.Note)}, Sources: [2]string{srcA, srcB},
		Reason: reason, Found: now.UTC()}
	for _, h := range proof {
		e.Proof = append(e.Proof, append([]byte(nil), h[:]...))
	}
	return e
}

// ErrNotSplitView is returned (wrapped) by VerifyEvidence when the two
// checkpoints verify but do not show a split view.
var ErrNotSplitView = errors.New("evidence does not show a split view")

// VerifyEvidence checks a split-view evidence bundle offline against the
// log verifier key vkey: both checkpoints must carry a valid signature by
// that key for the bundle's origin, and they must be inconsistent (same
// size and different roots, or a proof that reproduces the larger root but
// not the smaller). It returns the parsed bundle.
func VerifyEvidence(data []byte, vkey string) (*Evidence, error) {
	v, err := c2sp.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the log verifier key: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e Evidence
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("malformed evidence: %w", err)
	}
	if e.Type != EvidenceType {
		return nil, fmt.Errorf("evidence type %q, want %q", e.Type, EvidenceType)
	}
	if e.VKey != "" && e.VKey != vkey {
		return nil, fmt.Errorf("evidence is for log key %q, not the key given (%q)", e.VKey, vkey)
	}
	var cps [2]*Checkpoint
	for i, n := range e.Checkpoints {
		cp, err := openCheckpoint([]byte(n), v, e.Origin)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %d of the evidence: %w", i+1, err)
		}
		cps[i] = cp
	}
	a, b := cps[0], cps[1]
	switch {
	case a.Size > b.Size:
		return nil, errors.New("evidence lists the larger checkpoint first")
	case a.Size == b.Size:
		if bytes.Compare([]byte(e.Checkpoints[0]), []byte(e.Checkpoints[1])) > 0 {
			return nil, errors.New("evidence lists checkpoints of equal size out of order")
		}
		if a.Root == b.Root {
			return nil, fmt.Errorf("%w: both checkpoints have size %d and root %s", ErrNotSplitView, a.Size, a.Root)
		}
		if len(e.Proof) != 0 {
			return nil, errors.New("evidence for checkpoints of equal size carries a proof")
		}
		return &e, nil
	case a.Size == 0:
		return nil, fmt.Errorf("%w: every tree extends the empty tree", ErrNotSplitView)
	}
	proof := make([]tlog.Hash, len(e.Proof))
	for i, h := range e.Proof {
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d is %d bytes, want %d", i, len(h), tlog.HashSize)
		}
		copy(proof[i][:], h)
	}
	oldRoot, newRoot, err := rootsFromProof(a.Size, b.Size, proof)
	if err != nil {
		return nil, fmt.Errorf("evidence proof: %w", err)
	}
	if newRoot != b.Root {
		return nil, fmt.Errorf("evidence proof does not reproduce the root of the checkpoint of size %d", b.Size)
	}
	if oldRoot == a.Root {
		return nil, fmt.Errorf("%w: the proof shows the checkpoint of size %d is a prefix of the one of size %d", ErrNotSplitView, a.Size, b.Size)
	}
	return &e, nil
}
