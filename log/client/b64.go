package client

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
)

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// marshal encodes v without HTML escaping, so that raw JSON bodies
// (already canonical) travel byte for byte.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
