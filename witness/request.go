package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxProofLines is the most consistency proof lines a request may carry
// (C2SP tlog-witness).
const MaxProofLines = 63

// hashSize is the size of an RFC 6962 SHA-256 hash.
const hashSize = 32

// addRequest is a parsed add-checkpoint request body.
type addRequest struct {
	oldSize    uint64
	proof      [][]byte
	checkpoint []byte // the signed note, as sent
	origin     string // first line of the checkpoint, not yet authenticated
}

// parseAddRequest parses `old N\n`, up to 63 base64 hash lines, an empty
// line, then a checkpoint note. It checks syntax only; nothing in it is
// authenticated yet.
func parseAddRequest(body []byte) (*addRequest, error) {
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return nil, errors.New("request body has no old size line")
	}
	numStr, found := strings.CutPrefix(string(line), "old ")
	if !found {
		return nil, fmt.Errorf("first line %q is not `old <size>`", truncate(line))
	}
	old, err := parseDecimal(numStr)
	if err != nil {
		return nil, fmt.Errorf("old size %q: %w", truncate([]byte(numStr)), err)
	}
	r := &addRequest{oldSize: old}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, errors.New("request body has no empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(r.proof) == MaxProofLines {
			return nil, fmt.Errorf("more than %d consistency proof lines", MaxProofLines)
		}
		h, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil {
			return nil, fmt.Errorf("consistency proof line %d is not base64: %w", len(r.proof)+1, err)
		}
		if len(h) != hashSize {
			return nil, fmt.Errorf("consistency proof line %d is %d bytes, want %d", len(r.proof)+1, len(h), hashSize)
		}
		r.proof = append(r.proof, h)
	}
	if len(rest) == 0 {
		return nil, errors.New("request body has no checkpoint")
	}
	r.checkpoint = rest
	origin, _, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || len(origin) == 0 {
		return nil, errors.New("checkpoint has no origin line")
	}
	r.origin = string(origin)
	return r, nil
}

// parseDecimal parses an ASCII decimal with no sign and no leading zeros
// (except "0" itself).
func parseDecimal(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("not a decimal without leading zeros")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a decimal without leading zeros")
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return n, nil
}

func truncate(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

func encodeProofLines(proof [][]byte) string {
	var sb strings.Builder
	for _, h := range proof {
		sb.WriteString(base64.StdEncoding.EncodeToString(h))
		sb.WriteByte('\n')
	}
	return sb.String()
}

func decodeProofLines(s string) ([][]byte, error) {
	out := [][]byte{}
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if l == "" {
			continue
		}
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}
