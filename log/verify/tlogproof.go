package verify

import "github.com/keycommit/keycommit/log/c2sp"

// TLogProofHeader is the first line of a C2SP tlog-proof.
const TLogProofHeader = c2sp.ProofHeader

// TLogProof is a C2SP tlog-proof (c2sp.org/tlog-proof): an entry's index,
// its inclusion proof and the checkpoint, with optional extra data. In the
// proofs keycommit serves for an issuer, Extra is the issuer's entry, exactly
// the log leaf, so the proof is self-contained; it is authenticated by the
// inclusion proof, never trusted as is.
type TLogProof = c2sp.Proof

// ParseTLogProof parses a C2SP tlog-proof strictly (c2sp.ParseProof). It
// verifies nothing. Errors are *Error with Check CheckFormat.
func ParseTLogProof(raw []byte) (*TLogProof, error) {
	p, err := c2sp.ParseProof(raw)
	if err != nil {
		return nil, failErr(CheckFormat, err)
	}
	return p, nil
}

// Checkpoint is a parsed C2SP tlog-checkpoint body.
type Checkpoint = c2sp.Checkpoint

// Limits on signed notes (C2SP signed-note asks verifiers to accept at least
// 16 signatures; sumdb/note accepts 100).
const (
	MaxNoteSize       = c2sp.MaxNoteSize
	MaxNoteSignatures = c2sp.MaxNoteSignatures
)

// ParseCheckpoint parses a signed checkpoint note without verifying any
// signature: for builders that need its size and root. Verifiers use
// Verifier methods instead.
func ParseCheckpoint(note []byte) (*Checkpoint, error) {
	n, err := c2sp.SplitNote(note)
	if err != nil {
		return nil, err
	}
	c, err := c2sp.ParseCheckpoint(n.Text)
	if err != nil {
		return nil, err
	}
	return &c, nil
}
