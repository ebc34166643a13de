package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// TLogProofHeader is the first line of a C2SP tlog-proof.
const TLogProofHeader = "c2sp.org/tlog-proof@v1"

// TLogProof is a C2SP tlog-proof (c2sp.org/tlog-proof): an entry's index,
// its inclusion proof and the checkpoint, with optional extra data. In the
// proofs keycommit serves for an issuer, Extra is the issuer's entry, exactly
// the log leaf, so the proof is self-contained; it is authenticated by the
// inclusion proof, never trusted as is.
type TLogProof struct {
	Extra      []byte // nil when absent
	Index      uint64
	Inclusion  [][]byte
	Checkpoint []byte
}

// Marshal encodes the proof. It refuses a proof that ParseTLogProof would
// refuse.
func (p *TLogProof) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(TLogProofHeader + "\n")
	if p.Extra != nil {
		buf.WriteString("extra " + base64.StdEncoding.EncodeToString(p.Extra) + "\n")
	}
	buf.WriteString("index " + strconv.FormatUint(p.Index, 10) + "\n")
	writeHashes(&buf, p.Inclusion)
	buf.WriteString("\n")
	buf.Write(p.Checkpoint)
	out := buf.Bytes()
	if _, err := ParseTLogProof(out); err != nil {
		return nil, fmt.Errorf("couldn't encode tlog-proof: %w", err)
	}
	return out, nil
}

// ParseTLogProof parses a C2SP tlog-proof strictly (canonical base64 and
// decimals, at most 63 proof hashes, size limits). It verifies nothing.
func ParseTLogProof(raw []byte) (*TLogProof, error) {
	p, err := parseTLogProof(raw)
	if err != nil {
		return nil, failErr(CheckFormat, err)
	}
	return p, nil
}

func parseTLogProof(raw []byte) (*TLogProof, error) {
	if len(raw) > 2*MaxEntrySize+MaxNoteSize+4096 {
		return nil, fmt.Errorf("tlog-proof is %d bytes, too large", len(raw))
	}
	r := lineReader{rest: raw}
	line, ok := r.next()
	if !ok || string(line) != TLogProofHeader {
		return nil, fmt.Errorf("tlog-proof does not start with the line %q", TLogProofHeader)
	}
	p := &TLogProof{}
	if line, ok = r.next(); !ok {
		return nil, errors.New("tlog-proof ends after its header")
	}
	if v, found := bytes.CutPrefix(line, []byte("extra ")); found {
		e, err := base64.StdEncoding.Strict().DecodeString(string(v))
		if err != nil || base64.StdEncoding.EncodeToString(e) != string(v) {
			return nil, errors.New("extra is not canonical base64")
		}
		p.Extra = e
		if line, ok = r.next(); !ok {
			return nil, errors.New("tlog-proof ends after its extra line")
		}
	}
	v, found := bytes.CutPrefix(line, []byte("index "))
	if !found {
		return nil, fmt.Errorf("want an index line, got %.40q", line)
	}
	var err error
	if p.Index, err = parseDecimal(string(v)); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	for {
		if line, ok = r.next(); !ok {
			return nil, errors.New("tlog-proof ends inside the inclusion proof")
		}
		if len(line) == 0 {
			break
		}
		h, err := decodeHash(string(line))
		if err != nil {
			return nil, fmt.Errorf("inclusion proof: %w", err)
		}
		if len(p.Inclusion) == MaxInclusionHashes {
			return nil, fmt.Errorf("inclusion proof has more than %d hashes", MaxInclusionHashes)
		}
		p.Inclusion = append(p.Inclusion, h)
	}
	p.Checkpoint = r.rest
	if len(p.Checkpoint) == 0 {
		return nil, errors.New("tlog-proof has no checkpoint")
	}
	return p, nil
}
