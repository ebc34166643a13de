package c2sp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// MaxConsistencyProofLines is the most consistency proof lines an
// add-checkpoint request carries (c2sp.org/tlog-witness).
const MaxConsistencyProofLines = 63

// AddCheckpointRequest is the body of a tlog-witness add-checkpoint
// request: `old <N>`, the consistency proof, an empty line and the signed
// checkpoint.
type AddCheckpointRequest struct {
	OldSize uint64
	Proof   [][]byte
	// Checkpoint is the signed checkpoint note, as sent.
	Checkpoint []byte
}

// Marshal returns the request body. It refuses a request that
// ParseAddCheckpointRequest would refuse.
func (r *AddCheckpointRequest) Marshal() ([]byte, error) {
	b := make([]byte, 0, 32+45*len(r.Proof)+len(r.Checkpoint))
	b = append(b, "old "...)
	b = strconv.AppendUint(b, r.OldSize, 10)
	b = append(b, '\n')
	b = appendHashLines(b, r.Proof)
	b = append(b, '\n')
	b = append(b, r.Checkpoint...)
	if _, err := ParseAddCheckpointRequest(b); err != nil {
		return nil, fmt.Errorf("couldn't encode add-checkpoint request: %w", err)
	}
	return b, nil
}

// ParseAddCheckpointRequest parses an add-checkpoint request body: a
// canonical decimal old size, at most MaxConsistencyProofLines canonical
// base64 32-byte hashes, an empty line, then a non-empty checkpoint of at
// most MaxNoteSize bytes. It checks syntax only: the checkpoint is neither
// split nor verified (see OpenCheckpoint).
func ParseAddCheckpointRequest(body []byte) (*AddCheckpointRequest, error) {
	r := lines{rest: body}
	line, ok := r.next()
	if !ok {
		return nil, errors.New("request body has no old size line")
	}
	v, found := bytes.CutPrefix(line, []byte("old "))
	if !found {
		return nil, fmt.Errorf("first line %.64q is not `old <size>`", line)
	}
	old, err := ParseDecimal(string(v))
	if err != nil {
		return nil, fmt.Errorf("old size: %w", err)
	}
	req := &AddCheckpointRequest{OldSize: old}
	if req.Proof, err = r.hashLines(MaxConsistencyProofLines, "consistency proof"); err != nil {
		return nil, err
	}
	if len(r.rest) == 0 {
		return nil, errors.New("request body has no checkpoint")
	}
	if len(r.rest) > MaxNoteSize {
		return nil, fmt.Errorf("checkpoint is %d bytes, over the limit of %d", len(r.rest), MaxNoteSize)
	}
	req.Checkpoint = r.rest
	return req, nil
}

// CheckpointOrigin returns the first line of a signed checkpoint, without
// verifying anything, to pick the log and keys it claims to be from.
func CheckpointOrigin(msg []byte) (string, error) {
	i := bytes.IndexByte(msg, '\n')
	if i <= 0 {
		return "", errors.New("checkpoint has no origin line")
	}
	return string(msg[:i]), nil
}
