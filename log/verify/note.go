package verify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on signed notes (C2SP signed-note asks verifiers to accept at least
// 16 signatures; sumdb/note accepts 100).
const (
	MaxNoteSize       = 64 << 10
	MaxNoteSignatures = 100
)

// noteSig is one signature line of a signed note.
type noteSig struct {
	name  string
	keyID uint32
	sig   []byte // without the key ID
}

var sigPrefix = []byte("\u2014 ")

// splitNote splits a C2SP signed note into its text (ending in "\n") and its
// signature lines. It is strict: valid UTF-8, no control characters other
// than newline, a blank line before at least one signature line, each
// signature line `— <name> <base64(keyID ‖ signature)>` in canonical
// (strict, padded) base64, a valid key name, no (name, key ID) twice, and at
// most MaxNoteSignatures lines.
func splitNote(msg []byte) (text []byte, sigs []noteSig, err error) {
	if len(msg) > MaxNoteSize {
		return nil, nil, fmt.Errorf("note is %d bytes, over the limit of %d", len(msg), MaxNoteSize)
	}
	if !utf8.Valid(msg) {
		return nil, nil, errors.New("note is not valid UTF-8")
	}
	for _, c := range msg {
		if c < 0x20 && c != '\n' || c == 0x7f {
			return nil, nil, fmt.Errorf("note contains control character %#02x", c)
		}
	}
	split := bytes.LastIndex(msg, []byte("\n\n"))
	if split < 0 {
		return nil, nil, errors.New("note has no blank line before its signatures")
	}
	text, rest := msg[:split+1], msg[split+2:]
	if len(rest) == 0 {
		return nil, nil, errors.New("note has no signatures")
	}
	if rest[len(rest)-1] != '\n' {
		return nil, nil, errors.New("note's last signature line does not end in a newline")
	}
	type key struct {
		name string
		id   uint32
	}
	seen := map[key]bool{}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest[:i]
		rest = rest[i+1:]
		if !bytes.HasPrefix(line, sigPrefix) {
			return nil, nil, fmt.Errorf("signature line %q does not start with an em dash and a space", line)
		}
		name, b64, ok := strings.Cut(string(line[len(sigPrefix):]), " ")
		if !ok || !validKeyName(name) {
			return nil, nil, fmt.Errorf("signature line %q has no valid key name", line)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || len(raw) < 5 || base64.StdEncoding.EncodeToString(raw) != b64 {
			return nil, nil, fmt.Errorf("signature line %q: signature is not canonical base64 of a key ID and a signature", line)
		}
		if len(sigs) == MaxNoteSignatures {
			return nil, nil, fmt.Errorf("note has more than %d signatures", MaxNoteSignatures)
		}
		s := noteSig{name: name, keyID: binary.BigEndian.Uint32(raw), sig: raw[4:]}
		if seen[key{s.name, s.keyID}] {
			return nil, nil, fmt.Errorf("note has two signatures from key %s+%08x", s.name, s.keyID)
		}
		seen[key{s.name, s.keyID}] = true
		sigs = append(sigs, s)
	}
	return text, sigs, nil
}

func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && !strings.ContainsRune(name, '+') &&
		strings.IndexFunc(name, unicode.IsSpace) < 0
}

// Checkpoint is a parsed C2SP tlog-checkpoint body.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Root       []byte // 32 bytes
	Extensions []string
}

// parseCheckpointText parses a checkpoint body: origin, decimal size,
// base64 root hash, then optional non-empty extension lines.
func parseCheckpointText(text []byte) (*Checkpoint, error) {
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return nil, errors.New("checkpoint body does not end in a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("checkpoint body has %d lines, want at least 3", len(lines))
	}
	cp := &Checkpoint{Origin: lines[0]}
	if cp.Origin == "" {
		return nil, errors.New("checkpoint origin is empty")
	}
	size, err := parseDecimal(lines[1])
	if err != nil {
		return nil, fmt.Errorf("checkpoint size: %w", err)
	}
	cp.Size = size
	if cp.Root, err = decodeHash(lines[2]); err != nil {
		return nil, fmt.Errorf("checkpoint root hash: %w", err)
	}
	for _, l := range lines[3:] {
		if l == "" {
			return nil, errors.New("checkpoint has an empty extension line")
		}
		cp.Extensions = append(cp.Extensions, l)
	}
	return cp, nil
}

// ParseCheckpoint parses a signed checkpoint note without verifying any
// signature: for builders that need its size and root. Verifiers use
// Verifier methods instead.
func ParseCheckpoint(note []byte) (*Checkpoint, error) {
	text, _, err := splitNote(note)
	if err != nil {
		return nil, err
	}
	return parseCheckpointText(text)
}

// parseDecimal parses an ASCII decimal uint64 with no sign and no leading
// zeros (except "0" itself).
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' || s[0] < '0' || s[0] > '9' {
		return 0, fmt.Errorf("%q is not a canonical decimal number", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a canonical decimal number", s)
	}
	return n, nil
}

// decodeHash decodes a canonical standard base64 SHA-256 hash.
func decodeHash(s string) ([]byte, error) {
	if len(s) != 44 {
		return nil, fmt.Errorf("%q is not a base64 SHA-256 hash", s)
	}
	h, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(h) != 32 {
		return nil, fmt.Errorf("%q is not a base64 SHA-256 hash", s)
	}
	return h, nil
}

// verifyLogSignature checks that one of sigs is a valid Ed25519 signature
// over text by the log key (name, keyID, pub). A signature line from the
// log key that does not verify is an error even if another one would.
func verifyLogSignature(text []byte, sigs []noteSig, name string, keyID uint32, pub ed25519.PublicKey) error {
	found := false
	for _, s := range sigs {
		if s.name != name || s.keyID != keyID {
			continue
		}
		if len(s.sig) != ed25519.SignatureSize || !ed25519.Verify(pub, text, s.sig) {
			return fmt.Errorf("signature from log key %s+%08x does not verify", name, keyID)
		}
		found = true
	}
	if !found {
		return fmt.Errorf("checkpoint has no signature from log key %s+%08x", name, keyID)
	}
	return nil
}

// cosignedMessage is what a C2SP tlog-cosignature/v1 signs.
func cosignedMessage(ts uint64, text []byte) []byte {
	msg := make([]byte, 0, 40+len(text))
	msg = append(msg, "cosignature/v1\ntime "...)
	msg = strconv.AppendUint(msg, ts, 10)
	msg = append(msg, '\n')
	return append(msg, text...)
}

// verifyCosignature checks a cosignature/v1 signature (big-endian u64
// timestamp ‖ Ed25519 signature) and returns its timestamp.
func verifyCosignature(pub ed25519.PublicKey, text, sig []byte) (uint64, bool) {
	if len(sig) != 8+ed25519.SignatureSize {
		return 0, false
	}
	ts := binary.BigEndian.Uint64(sig)
	// C2SP tlog-cosignature: the timestamp MUST NOT exceed 2^63-1.
	if ts > 1<<63-1 {
		return 0, false
	}
	return ts, ed25519.Verify(pub, cosignedMessage(ts, text), sig[8:])
}
