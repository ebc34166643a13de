package c2sp

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Limits on signed notes. C2SP signed-note asks verifiers to accept at
// least 16 signatures; golang.org/x/mod/sumdb/note accepts 100.
const (
	MaxNoteSize       = 64 << 10
	MaxNoteSignatures = 100
)

// Signature is one signature line of a note: `— <Name> base64(Hash ‖ Sig)`.
type Signature struct {
	Name string
	Hash uint32
	// Sig is the signature after the 4-byte key ID.
	Sig []byte
}

// Line returns the signature line, with its final newline.
func (s Signature) Line() []byte {
	b := make([]byte, 0, len(sigPrefix)+len(s.Name)+1+base64.StdEncoding.EncodedLen(4+len(s.Sig))+1)
	return s.appendLine(b)
}

func (s Signature) appendLine(b []byte) []byte {
	b = append(b, sigPrefix...)
	b = append(b, s.Name...)
	b = append(b, ' ')
	raw := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(s.Sig)), s.Hash)
	b = base64.StdEncoding.AppendEncode(b, append(raw, s.Sig...))
	return append(b, '\n')
}

// Note is a split signed note.
type Note struct {
	// Text is the note text, ending in a newline.
	Text []byte
	// Sigs are the signature lines in order.
	Sigs []Signature
}

// Marshal returns the signed note: the text, a blank line and the
// signature lines.
func (n *Note) Marshal() []byte {
	b := make([]byte, 0, len(n.Text)+1+len(n.Sigs)*128)
	b = append(b, n.Text...)
	b = append(b, '\n')
	for _, s := range n.Sigs {
		b = s.appendLine(b)
	}
	return b
}

var sigPrefix = []byte("\u2014 ")

// ErrUnverified is returned (wrapped) by Open when no signature is from a
// known key.
var ErrUnverified = errors.New("note has no signature from a known key")

// SignatureError is returned by Open when a signature from a known key
// does not verify.
type SignatureError struct {
	Name string
	Hash uint32
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("signature by %s+%08x does not verify", e.Name, e.Hash)
}

// checkText applies the signed-note rules to a whole note or a note text:
// valid UTF-8 without ASCII control characters other than newline.
func checkText(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("note is not valid UTF-8")
	}
	for _, c := range b {
		if c < 0x20 && c != '\n' {
			return fmt.Errorf("note contains control character %#02x", c)
		}
	}
	return nil
}

// SplitNote splits a signed note (c2sp.org/signed-note) into its text and
// signature lines without verifying anything. It is strict: at most
// MaxNoteSize bytes, valid UTF-8 without control characters other than
// newline, a text ending in a newline, then a blank line and between 1 and
// MaxNoteSignatures signature lines `— <name> <base64(keyID ‖ sig)>`, each
// ending in a newline, with a valid key name, canonical base64 and at
// least one byte of signature, and no two lines with the same key name and
// ID, unless the line is repeated verbatim (a repeated line is kept, and
// counts once in Verify).
func SplitNote(msg []byte) (*Note, error) {
	if len(msg) > MaxNoteSize {
		return nil, fmt.Errorf("note is %d bytes, over the limit of %d", len(msg), MaxNoteSize)
	}
	if err := checkText(msg); err != nil {
		return nil, err
	}
	split := bytes.LastIndex(msg, []byte("\n\n"))
	if split < 0 {
		return nil, errors.New("note has no blank line before its signatures")
	}
	text, rest := msg[:split+1], msg[split+2:]
	if len(rest) == 0 {
		return nil, errors.New("note has no signatures")
	}
	if rest[len(rest)-1] != '\n' {
		return nil, errors.New("note's last signature line does not end in a newline")
	}
	type key struct {
		name string
		hash uint32
	}
	n := &Note{Text: text}
	seen := map[key][]byte{}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest[:i]
		rest = rest[i+1:]
		if len(n.Sigs) == MaxNoteSignatures {
			return nil, fmt.Errorf("note has more than %d signatures", MaxNoteSignatures)
		}
		s, err := parseSignatureLine(line)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[key{s.Name, s.Hash}]; ok && !bytes.Equal(prev, s.Sig) {
			return nil, fmt.Errorf("note has two signatures from key %s+%08x", s.Name, s.Hash)
		}
		seen[key{s.Name, s.Hash}] = s.Sig
		n.Sigs = append(n.Sigs, s)
	}
	return n, nil
}

// ParseSignatureLine parses one signature line `— <name> <base64>`, with
// or without its final newline, with the rules of SplitNote.
func ParseSignatureLine(line []byte) (Signature, error) {
	if err := checkText(line); err != nil {
		return Signature{}, err
	}
	return parseSignatureLine(bytes.TrimSuffix(line, []byte("\n")))
}

func parseSignatureLine(line []byte) (Signature, error) {
	rest, ok := bytes.CutPrefix(line, sigPrefix)
	if !ok {
		return Signature{}, fmt.Errorf("signature line %.80q does not start with an em dash and a space", line)
	}
	name, b64, ok := bytes.Cut(rest, []byte(" "))
	if !ok || !ValidKeyName(string(name)) {
		return Signature{}, fmt.Errorf("signature line %.80q has no valid key name", line)
	}
	raw, err := decodeBase64(string(b64))
	if err != nil || len(raw) < 5 {
		return Signature{}, fmt.Errorf("signature line %.80q: signature is not canonical base64 of a key ID and a signature", line)
	}
	return Signature{Name: string(name), Hash: binary.BigEndian.Uint32(raw), Sig: raw[4:]}, nil
}

// Verify checks n's signatures against known keys, as C2SP signed-note
// says: signatures whose key name and ID match no known key are ignored; a
// signature from a known key that does not verify is an error
// (*SignatureError); and at least one must verify (else ErrUnverified). It
// returns the verified signatures, in note order, each key once.
func (n *Note) Verify(known ...Verifier) ([]Signature, error) {
	var verified []Signature
sigs:
	for _, s := range n.Sigs {
		for _, p := range verified {
			if p.Name == s.Name && p.Hash == s.Hash {
				continue sigs // a line repeated verbatim (SplitNote)
			}
		}
		for _, v := range known {
			if v.Name() != s.Name || v.KeyHash() != s.Hash {
				continue
			}
			if !v.Verify(n.Text, s.Sig) {
				return nil, &SignatureError{Name: s.Name, Hash: s.Hash}
			}
			verified = append(verified, s)
			break
		}
	}
	if len(verified) == 0 {
		names := make([]string, len(known))
		for i, v := range known {
			names[i] = fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
		}
		return nil, fmt.Errorf("%w %v", ErrUnverified, names)
	}
	return verified, nil
}

// Open splits msg (SplitNote) and verifies it (Note.Verify).
func Open(msg []byte, known ...Verifier) (*Note, []Signature, error) {
	n, err := SplitNote(msg)
	if err != nil {
		return nil, nil, err
	}
	verified, err := n.Verify(known...)
	if err != nil {
		return nil, nil, err
	}
	return n, verified, nil
}

// Sign signs text, which must be valid note text (valid UTF-8, no control
// characters but newline, ending in a newline), with each signer, and
// returns the signed note. The result must fit in MaxNoteSize.
func Sign(text []byte, signers ...Signer) ([]byte, error) {
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return nil, errors.New("note text does not end in a newline")
	}
	if err := checkText(text); err != nil {
		return nil, err
	}
	if len(signers) == 0 || len(signers) > MaxNoteSignatures {
		return nil, fmt.Errorf("%d signers, want 1 to %d", len(signers), MaxNoteSignatures)
	}
	n := &Note{Text: text}
	for i, s := range signers {
		if !ValidKeyName(s.Name()) {
			return nil, fmt.Errorf("signer has an invalid key name %q", s.Name())
		}
		for _, o := range signers[:i] {
			if o.Name() == s.Name() && o.KeyHash() == s.KeyHash() {
				return nil, fmt.Errorf("key %s+%08x signs twice", s.Name(), s.KeyHash())
			}
		}
		sig, err := s.Sign(text)
		if err != nil {
			return nil, fmt.Errorf("couldn't sign note with %s: %w", s.Name(), err)
		}
		if len(sig) == 0 {
			return nil, fmt.Errorf("signer %s returned an empty signature", s.Name())
		}
		n.Sigs = append(n.Sigs, Signature{Name: s.Name(), Hash: s.KeyHash(), Sig: sig})
	}
	out := n.Marshal()
	if len(out) > MaxNoteSize {
		return nil, fmt.Errorf("signed note is %d bytes, over the limit of %d", len(out), MaxNoteSize)
	}
	return out, nil
}
