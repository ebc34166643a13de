package c2sp

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Signature types of signed-note keys (c2sp.org/signed-note,
// c2sp.org/tlog-cosignature).
const (
	// TypeEd25519 is a plain Ed25519 signature over the note text: the
	// log's checkpoint signatures.
	TypeEd25519 byte = 0x01
	// TypeECDSA is an ASN.1 ECDSA signature over SHA-256 of the note
	// text, with a DER SPKI public key whose key ID is SHA-256(SPKI)[:4]
	// (as github.com/transparency-dev/witness and Rekor sign).
	TypeECDSA byte = 0x02
	// TypeCosignatureV1 is a timestamped Ed25519 witness cosignature
	// (cosignature/v1).
	TypeCosignatureV1 byte = 0x04
	// TypeCosignatureMLDSA44 is a timestamped ML-DSA-44 cosignature. This
	// package does not implement it; a package that does registers it
	// with RegisterVerifier.
	TypeCosignatureMLDSA44 byte = 0x06
)

// Verifier verifies the signatures of one key. Its method set is that of
// golang.org/x/mod/sumdb/note.Verifier, so values convert both ways.
type Verifier interface {
	// Name is the key name on the key's signature lines.
	Name() string
	// KeyHash is the 4-byte key ID that prefixes its signatures.
	KeyHash() uint32
	// Verify reports whether sig (without the key ID) is a valid
	// signature of msg (the note text).
	Verify(msg, sig []byte) bool
}

// Signer signs note texts with one key. Its method set is that of
// golang.org/x/mod/sumdb/note.Signer.
type Signer interface {
	Name() string
	KeyHash() uint32
	// Sign returns the signature of msg (the note text), without the key
	// ID.
	Sign(msg []byte) ([]byte, error)
}

// KeyHash is the signed-note key ID: the first four bytes, big-endian, of
// SHA-256(name ‖ "\n" ‖ type ‖ public key).
func KeyHash(name string, typ byte, key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', typ})
	h.Write(key)
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint32(h.Sum(sum[:0]))
}

// ValidKeyName reports whether name can name a signed-note key: non-empty,
// valid UTF-8, without Unicode spaces, plus signs or control characters.
func ValidKeyName(name string) bool {
	if name == "" || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r == '+' || r < 0x20 || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// VKey is a parsed verifier key `<name>+<hex key ID>+<base64(type ‖ key)>`.
type VKey struct {
	Name string
	Hash uint32
	Type byte
	// Key is the public key material after the type byte.
	Key []byte
}

// maxVKeySize bounds vkeys (an ML-DSA-44 vkey is about 1,800 bytes).
const maxVKeySize = 8 << 10

// ParseVKey parses a vkey strictly: a valid key name, exactly eight
// lowercase or uppercase hex digits, canonical base64 of a type byte and
// at least one byte of key (32 for the Ed25519 types), and a key ID that
// is KeyHash of the rest (for TypeECDSA, SHA-256 of the key, as
// signed-note says).
func ParseVKey(vkey string) (VKey, error) {
	if len(vkey) > maxVKeySize {
		return VKey{}, fmt.Errorf("vkey is %d bytes, over the limit of %d", len(vkey), maxVKeySize)
	}
	name, rest, ok1 := strings.Cut(vkey, "+")
	hexID, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return VKey{}, fmt.Errorf("vkey %q is not name+keyid+key", vkey)
	}
	if !ValidKeyName(name) {
		return VKey{}, fmt.Errorf("vkey %q has an invalid key name", vkey)
	}
	id, err := parseKeyID(hexID)
	if err != nil {
		return VKey{}, fmt.Errorf("vkey %q: %w", vkey, err)
	}
	raw, err := decodeBase64(b64)
	if err != nil {
		return VKey{}, fmt.Errorf("vkey %q: key is not canonical base64", vkey)
	}
	if len(raw) < 2 {
		return VKey{}, fmt.Errorf("vkey %q: key has no type byte and key", vkey)
	}
	k := VKey{Name: name, Hash: id, Type: raw[0], Key: raw[1:]}
	if (k.Type == TypeEd25519 || k.Type == TypeCosignatureV1) && len(k.Key) != ed25519.PublicKeySize {
		return VKey{}, fmt.Errorf("vkey %q: key is %d bytes, want 1 type byte and a %d-byte Ed25519 key", vkey, len(raw), ed25519.PublicKeySize)
	}
	want := KeyHash(name, k.Type, k.Key)
	if k.Type == TypeECDSA {
		sum := sha256.Sum256(k.Key)
		want = binary.BigEndian.Uint32(sum[:])
	}
	if id != want {
		return VKey{}, fmt.Errorf("vkey %q has key ID %08x, want %08x", vkey, id, want)
	}
	return k, nil
}

func parseKeyID(hexID string) (uint32, error) {
	if len(hexID) != 8 {
		return 0, fmt.Errorf("key ID %q is not 8 hex digits", hexID)
	}
	n, err := strconv.ParseUint(hexID, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("key ID %q is not 8 hex digits", hexID)
	}
	return uint32(n), nil
}

// String formats k as a vkey.
func (k VKey) String() string {
	return fmt.Sprintf("%s+%08x+%s", k.Name, k.Hash, base64.StdEncoding.EncodeToString(append([]byte{k.Type}, k.Key...)))
}

// FormatVKey returns the vkey of a key named name of type typ.
func FormatVKey(name string, typ byte, key []byte) string {
	return VKey{Name: name, Hash: KeyHash(name, typ, key), Type: typ, Key: key}.String()
}

// A VerifierFactory makes the Verifier of a key of one signature type
// from the key's name and material (the vkey's bytes after the type
// byte). It must refuse material of the wrong size or shape.
type VerifierFactory func(name string, key []byte) (Verifier, error)

var registry = struct {
	sync.RWMutex
	m map[byte]VerifierFactory
}{m: map[byte]VerifierFactory{}}

// RegisterVerifier makes NewVerifier accept vkeys of signature type typ.
// Ed25519, ECDSA and cosignature/v1 are built in and cannot be replaced; each
// other type can be registered once.
func RegisterVerifier(typ byte, f VerifierFactory) error {
	if f == nil {
		return errors.New("c2sp: nil VerifierFactory")
	}
	if typ == TypeEd25519 || typ == TypeECDSA || typ == TypeCosignatureV1 {
		return fmt.Errorf("c2sp: signature type 0x%02x is built in", typ)
	}
	registry.Lock()
	defer registry.Unlock()
	if _, ok := registry.m[typ]; ok {
		return fmt.Errorf("c2sp: signature type 0x%02x is already registered", typ)
	}
	registry.m[typ] = f
	return nil
}

// NewVerifier returns the verifier of a vkey, by its signature type.
func NewVerifier(vkey string) (Verifier, error) {
	k, err := ParseVKey(vkey)
	if err != nil {
		return nil, err
	}
	return k.Verifier()
}

// Verifier returns the verifier of k, by its signature type.
func (k VKey) Verifier() (Verifier, error) {
	switch k.Type {
	case TypeEd25519, TypeCosignatureV1:
		if len(k.Key) != ed25519.PublicKeySize { // a VKey not from ParseVKey
			return nil, fmt.Errorf("key %s is %d bytes, want a %d-byte Ed25519 key", k.Name, len(k.Key), ed25519.PublicKeySize)
		}
		if k.Type == TypeEd25519 {
			return NewEd25519Verifier(k.Name, k.Key), nil
		}
		return NewCosignatureVerifier(k.Name, k.Key), nil
	}
	if k.Type == TypeECDSA {
		return newECDSAVerifier(k)
	}
	registry.RLock()
	f := registry.m[k.Type]
	registry.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("key %s has unknown signature type 0x%02x", k.Name, k.Type)
	}
	v, err := f(k.Name, k.Key)
	if err != nil {
		return nil, err
	}
	if v.Name() != k.Name || v.KeyHash() != k.Hash {
		return nil, fmt.Errorf("verifier for signature type 0x%02x has another name or key ID than its vkey", k.Type)
	}
	return v, nil
}

type ed25519Verifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

// NewEd25519Verifier returns a verifier of Ed25519 (type 0x01) signatures
// by pub, a 32-byte public key.
func NewEd25519Verifier(name string, pub ed25519.PublicKey) Verifier {
	return &ed25519Verifier{name: name, hash: KeyHash(name, TypeEd25519, pub), pub: pub}
}

func (v *ed25519Verifier) Name() string    { return v.name }
func (v *ed25519Verifier) KeyHash() uint32 { return v.hash }
func (v *ed25519Verifier) Verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && len(v.pub) == ed25519.PublicKeySize && ed25519.Verify(v.pub, msg, sig)
}

type ed25519Signer struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
}

// NewEd25519Signer returns a signer of Ed25519 (type 0x01) signatures.
func NewEd25519Signer(name string, priv ed25519.PrivateKey) Signer {
	return &ed25519Signer{name: name, hash: KeyHash(name, TypeEd25519, priv.Public().(ed25519.PublicKey)), priv: priv}
}

func (s *ed25519Signer) Name() string                    { return s.name }
func (s *ed25519Signer) KeyHash() uint32                 { return s.hash }
func (s *ed25519Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// privateKeyPrefix starts the signed-note private key encoding
// `PRIVATE+KEY+<name>+<hex key ID>+<base64(type ‖ seed)>` that
// golang.org/x/mod/sumdb/note and transparency-dev/formats/note read.
const privateKeyPrefix = "PRIVATE+KEY+"

// GenerateKey makes a new Ed25519 key named name for type TypeEd25519 or
// TypeCosignatureV1, reading randomness from rand, and returns it in the
// private key encoding (see NewSigner) and as a vkey.
func GenerateKey(rand io.Reader, name string, typ byte) (skey, vkey string, err error) {
	if !ValidKeyName(name) {
		return "", "", fmt.Errorf("invalid key name %q", name)
	}
	if typ != TypeEd25519 && typ != TypeCosignatureV1 {
		return "", "", fmt.Errorf("can't generate keys of signature type 0x%02x", typ)
	}
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return "", "", fmt.Errorf("couldn't generate key: %w", err)
	}
	skey = fmt.Sprintf("%s%s+%08x+%s", privateKeyPrefix, name, KeyHash(name, typ, pub),
		base64.StdEncoding.EncodeToString(append([]byte{typ}, priv.Seed()...)))
	return skey, FormatVKey(name, typ, pub), nil
}

// NewSigner reads a private key in the signed-note encoding
// `PRIVATE+KEY+<name>+<hex key ID>+<base64(type ‖ 32-byte seed)>` of type
// TypeEd25519 or TypeCosignatureV1 (whose signatures carry the current
// time), checking that the key ID is the key's. It returns the signer and
// the key's vkey. Errors never contain the key.
func NewSigner(skey string) (Signer, string, error) {
	rest, ok := strings.CutPrefix(skey, privateKeyPrefix)
	name, rest, ok1 := strings.Cut(rest, "+")
	hexID, b64, ok2 := strings.Cut(rest, "+")
	if !ok || !ok1 || !ok2 || !ValidKeyName(name) {
		return nil, "", errors.New("private key is not PRIVATE+KEY+name+keyid+key")
	}
	id, err := parseKeyID(hexID)
	if err != nil {
		return nil, "", fmt.Errorf("private key: %w", err)
	}
	raw, err := decodeBase64(b64)
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return nil, "", fmt.Errorf("private key is not canonical base64 of a type byte and a %d-byte seed", ed25519.SeedSize)
	}
	typ, priv := raw[0], ed25519.NewKeyFromSeed(raw[1:])
	pub := priv.Public().(ed25519.PublicKey)
	if want := KeyHash(name, typ, pub); id != want {
		return nil, "", fmt.Errorf("private key has key ID %08x, but the key's is %08x", id, want)
	}
	switch typ {
	case TypeEd25519:
		return NewEd25519Signer(name, priv), FormatVKey(name, typ, pub), nil
	case TypeCosignatureV1:
		return NewCosignatureSigner(name, priv, nil), FormatVKey(name, typ, pub), nil
	}
	return nil, "", fmt.Errorf("private key has signature type 0x%02x, want 0x%02x or 0x%02x", typ, TypeEd25519, TypeCosignatureV1)
}

type ecdsaVerifier struct {
	name string
	hash uint32
	pub  *ecdsa.PublicKey
}

func newECDSAVerifier(k VKey) (Verifier, error) {
	pub, err := x509.ParsePKIXPublicKey(k.Key)
	if err != nil {
		return nil, fmt.Errorf("key %s is not a DER SPKI public key: %w", k.Name, err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("key %s is a %T, want an ECDSA key", k.Name, pub)
	}
	return &ecdsaVerifier{name: k.Name, hash: k.Hash, pub: ec}, nil
}

func (v *ecdsaVerifier) Name() string    { return v.name }
func (v *ecdsaVerifier) KeyHash() uint32 { return v.hash }
func (v *ecdsaVerifier) Verify(msg, sig []byte) bool {
	d := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(v.pub, d[:], sig)
}
