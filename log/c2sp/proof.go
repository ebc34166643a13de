package c2sp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// ProofHeader is the first line of a C2SP tlog-proof.
const ProofHeader = "c2sp.org/tlog-proof@v1"

// Limits on tlog-proofs.
const (
	// MaxInclusionHashes bounds the inclusion proof (a tree of up to
	// 2^63 leaves needs at most 63).
	MaxInclusionHashes = 63
	// MaxProofExtra bounds the extra data.
	MaxProofExtra = 64 << 10
	// MaxProofSize bounds a whole tlog-proof: the extra data in base64,
	// the proof lines and a checkpoint.
	MaxProofSize = 4*MaxProofExtra/3 + 4 + MaxNoteSize + 4096
)

// Proof is a C2SP tlog-proof (c2sp.org/tlog-proof): an entry's index, its
// inclusion proof and the checkpoint, with optional extra data (which is
// not authenticated).
type Proof struct {
	Extra      []byte // nil when absent
	Index      uint64
	Inclusion  [][]byte
	Checkpoint []byte
}

// Marshal encodes the proof. It refuses a proof that ParseProof would
// refuse.
func (p *Proof) Marshal() ([]byte, error) {
	b := make([]byte, 0, len(ProofHeader)+2*len(p.Extra)+45*len(p.Inclusion)+len(p.Checkpoint)+64)
	b = append(b, ProofHeader+"\n"...)
	if p.Extra != nil {
		b = append(b, "extra "...)
		b = appendBase64(b, p.Extra)
		b = append(b, '\n')
	}
	b = append(b, "index "...)
	b = strconv.AppendUint(b, p.Index, 10)
	b = append(b, '\n')
	b = appendHashLines(b, p.Inclusion)
	b = append(b, '\n')
	b = append(b, p.Checkpoint...)
	if _, err := ParseProof(b); err != nil {
		return nil, fmt.Errorf("couldn't encode tlog-proof: %w", err)
	}
	return b, nil
}

// ParseProof parses a tlog-proof strictly (canonical base64 and decimals,
// at most MaxInclusionHashes hashes, MaxProofExtra bytes of extra data,
// MaxProofSize in all, a non-empty checkpoint). It verifies nothing.
func ParseProof(raw []byte) (*Proof, error) {
	if len(raw) > MaxProofSize {
		return nil, fmt.Errorf("tlog-proof is %d bytes, over the limit of %d", len(raw), MaxProofSize)
	}
	r := lines{rest: raw}
	line, ok := r.next()
	if !ok || string(line) != ProofHeader {
		return nil, fmt.Errorf("tlog-proof does not start with the line %q", ProofHeader)
	}
	p := &Proof{}
	if line, ok = r.next(); !ok {
		return nil, errors.New("tlog-proof ends after its header")
	}
	if v, found := bytes.CutPrefix(line, []byte("extra ")); found {
		e, err := decodeBase64(string(v))
		if err != nil {
			return nil, errors.New("tlog-proof extra is not canonical base64")
		}
		if len(e) > MaxProofExtra {
			return nil, fmt.Errorf("tlog-proof extra is %d bytes, over the limit of %d", len(e), MaxProofExtra)
		}
		p.Extra = e
		if line, ok = r.next(); !ok {
			return nil, errors.New("tlog-proof ends after its extra line")
		}
	}
	v, found := bytes.CutPrefix(line, []byte("index "))
	if !found {
		return nil, fmt.Errorf("tlog-proof: want an index line, got %.40q", line)
	}
	var err error
	if p.Index, err = ParseDecimal(string(v)); err != nil {
		return nil, fmt.Errorf("tlog-proof index: %w", err)
	}
	if p.Inclusion, err = r.hashLines(MaxInclusionHashes, "inclusion proof"); err != nil {
		return nil, err
	}
	if len(r.rest) == 0 {
		return nil, errors.New("tlog-proof has no checkpoint")
	}
	p.Checkpoint = r.rest
	return p, nil
}
