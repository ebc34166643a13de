package witness

import (
	"encoding/base64"
	"strings"
)

// The add-checkpoint request itself is parsed by
// c2sp.ParseAddCheckpointRequest; the consistency proof is stored with
// fork evidence as base64 lines.

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
