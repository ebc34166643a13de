package c2sp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// HashSize is the size of an RFC 6962 SHA-256 hash.
const HashSize = 32

// decodeBase64 decodes canonical standard base64: padded, no non-zero
// padding bits, no ignored characters.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.StdEncoding.EncodedLen(len(b)) != len(s) {
		return nil, errors.New("not canonical base64")
	}
	return b, nil
}

// ParseDecimal parses an ASCII decimal as the C2SP formats write numbers:
// digits only, no sign, no leading zeros (except "0" itself), at most
// 2^64-1.
func ParseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 20 || len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%.40q is not a canonical decimal number", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%.40q is not a canonical decimal number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%.40q is out of range", s)
	}
	return n, nil
}

// ParseHash decodes a SHA-256 hash in canonical standard base64.
func ParseHash(s string) ([HashSize]byte, error) {
	var h [HashSize]byte
	if len(s) != base64.StdEncoding.EncodedLen(HashSize) {
		return h, fmt.Errorf("%.60q is not a base64 SHA-256 hash", s)
	}
	b, err := decodeBase64(s)
	if err != nil || len(b) != HashSize {
		return h, fmt.Errorf("%.60q is not a base64 SHA-256 hash", s)
	}
	copy(h[:], b)
	return h, nil
}

// appendHashLines appends each hash in base64 and a newline.
func appendHashLines(b []byte, hashes [][]byte) []byte {
	for _, h := range hashes {
		b = base64.StdEncoding.AppendEncode(b, h)
		b = append(b, '\n')
	}
	return b
}

// lines reads "\n"-terminated lines; a final line without a newline is
// not a line.
type lines struct{ rest []byte }

func (r *lines) next() ([]byte, bool) {
	for i, c := range r.rest {
		if c == '\n' {
			line := r.rest[:i]
			r.rest = r.rest[i+1:]
			return line, true
		}
	}
	return nil, false
}

// hashLines reads base64 hash lines up to an empty line, at most max of
// them; what names them in errors.
func (r *lines) hashLines(max int, what string) ([][]byte, error) {
	var out [][]byte
	for {
		line, ok := r.next()
		if !ok {
			return nil, fmt.Errorf("%s is not followed by an empty line", what)
		}
		if len(line) == 0 {
			return out, nil
		}
		if len(out) == max {
			return nil, fmt.Errorf("%s has more than %d hashes", what, max)
		}
		h, err := ParseHash(string(line))
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", what, len(out)+1, err)
		}
		out = append(out, h[:])
	}
}

func appendBase64(b, data []byte) []byte { return base64.StdEncoding.AppendEncode(b, data) }
