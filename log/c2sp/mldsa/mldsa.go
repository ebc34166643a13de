// Package mldsa implements the ML-DSA-44 cosignatures of C2SP
// tlog-cosignature (signature type 0x06, "subtree/v1") on top of
// github.com/cloudflare/circl's ML-DSA-44, so that log/c2sp stays standard
// library only.
//
// A cosignature is a signed-note signature whose bytes after the key ID are
// a big-endian u64 timestamp and a 2,420-byte ML-DSA-44 signature (pure
// ML-DSA, empty context) of the cosigned_message structure:
//
//	"subtree/v1\n\x00" ‖ u8 len ‖ cosigner name ‖ u64 timestamp ‖
//	u8 len ‖ log origin ‖ u64 start ‖ u64 end ‖ 32-byte root hash
//
// A checkpoint cosignature is the subtree [0, size) of the checkpoint; its
// extension lines are not signed. The key ID is
// SHA-256(name ‖ "\n" ‖ 0x06 ‖ 1,312-byte public key)[:4], as for any
// signed-note key. Private keys use the signed-note private key encoding
// `PRIVATE+KEY+<name>+<hex key ID>+base64(0x06 ‖ 32-byte seed)`, the one
// github.com/transparency-dev/formats/note reads and writes.
package mldsa

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"

	"github.com/keycommit/keycommit/log/c2sp"
)

// Sizes of ML-DSA-44 material.
const (
	PublicKeySize = mldsa44.PublicKeySize // 1,312 bytes
	SignatureSize = mldsa44.SignatureSize // 2,420 bytes
	SeedSize      = mldsa44.SeedSize      // 32 bytes
	// CosignatureSize is the size of a cosignature after its key ID: the
	// timestamp and the signature.
	CosignatureSize = 8 + SignatureSize
)

// label starts every cosigned_message.
const label = "subtree/v1\n\x00"

// Message returns the cosigned_message an ML-DSA-44 cosignature by the
// cosigner named name signs for the subtree [start, end) of the log origin
// with root hash hash, at timestamp ts. It refuses names and origins that
// are empty or longer than 255 bytes, a timestamp above 2^63-1, a non-zero
// timestamp with a non-zero start, and start > end.
func Message(name string, ts uint64, origin string, start, end uint64, hash [c2sp.HashSize]byte) ([]byte, error) {
	switch {
	case len(name) == 0 || len(name) > 255:
		return nil, fmt.Errorf("cosigner name is %d bytes, want 1 to 255", len(name))
	case len(origin) == 0 || len(origin) > 255:
		return nil, fmt.Errorf("log origin is %d bytes, want 1 to 255", len(origin))
	case ts > c2sp.MaxCosignatureTimestamp:
		return nil, fmt.Errorf("cosignature timestamp %d is above 2^63-1", ts)
	case start != 0 && ts != 0:
		return nil, fmt.Errorf("subtree starting at %d has timestamp %d, want 0", start, ts)
	case start > end:
		return nil, fmt.Errorf("subtree [%d, %d) starts after its end", start, end)
	}
	m := make([]byte, 0, len(label)+1+len(name)+8+1+len(origin)+8+8+c2sp.HashSize)
	m = append(m, label...)
	m = append(m, byte(len(name)))
	m = append(m, name...)
	m = binary.BigEndian.AppendUint64(m, ts)
	m = append(m, byte(len(origin)))
	m = append(m, origin...)
	m = binary.BigEndian.AppendUint64(m, start)
	m = binary.BigEndian.AppendUint64(m, end)
	return append(m, hash[:]...), nil
}

// Verifier verifies the ML-DSA-44 cosignatures of one cosigner. It is a
// c2sp.Verifier of checkpoint cosignatures and also verifies subtree
// cosignatures.
type Verifier struct {
	name string
	hash uint32
	pub  *mldsa44.PublicKey
}

// NewVerifier returns the verifier of the cosigner named name whose
// ML-DSA-44 public key is pub (1,312 bytes). It has the signature of a
// c2sp.VerifierFactory.
func NewVerifier(name string, pub []byte) (*Verifier, error) {
	if !c2sp.ValidKeyName(name) || len(name) > 255 {
		return nil, fmt.Errorf("invalid ML-DSA-44 cosigner name %q", name)
	}
	if len(pub) != PublicKeySize {
		return nil, fmt.Errorf("ML-DSA-44 key of %s is %d bytes, want %d", name, len(pub), PublicKeySize)
	}
	pk := new(mldsa44.PublicKey)
	if err := pk.UnmarshalBinary(pub); err != nil {
		return nil, fmt.Errorf("ML-DSA-44 key of %s: %w", name, err)
	}
	return &Verifier{name: name, hash: c2sp.KeyHash(name, c2sp.TypeCosignatureMLDSA44, pub), pub: pk}, nil
}

// Factory is NewVerifier as a c2sp.VerifierFactory, for
// c2sp.RegisterVerifier.
func Factory(name string, pub []byte) (c2sp.Verifier, error) { return NewVerifier(name, pub) }

// Name is the cosigner name.
func (v *Verifier) Name() string { return v.name }

// KeyHash is the key ID, computed with signature type 0x06.
func (v *Verifier) KeyHash() uint32 { return v.hash }

// Verify reports whether sig (without the key ID) is a valid ML-DSA-44
// cosignature of the checkpoint whose body is text: the subtree
// [0, size) of its origin and root hash.
func (v *Verifier) Verify(text, sig []byte) bool {
	c, err := c2sp.ParseCheckpoint(text)
	if err != nil {
		return false
	}
	return v.VerifySubtree(c.Origin, 0, c.Size, c.Hash, sig)
}

// VerifySubtree reports whether sig (without the key ID) is a valid
// ML-DSA-44 cosignature of the subtree [start, end) of origin with root
// hash hash.
func (v *Verifier) VerifySubtree(origin string, start, end uint64, hash [c2sp.HashSize]byte, sig []byte) bool {
	if len(sig) != CosignatureSize {
		return false
	}
	m, err := Message(v.name, binary.BigEndian.Uint64(sig), origin, start, end, hash)
	if err != nil {
		return false
	}
	return mldsa44.Verify(v.pub, m, nil, sig[8:])
}

// Signer makes ML-DSA-44 cosignatures. It is a c2sp.Signer of checkpoint
// cosignatures (timestamped with its clock) and also signs subtrees.
type Signer struct {
	name string
	hash uint32
	priv *mldsa44.PrivateKey
	pub  []byte
	now  func() time.Time
}

const privateKeyPrefix = "PRIVATE+KEY+"

// GenerateKey makes a new ML-DSA-44 cosigner key named name from a 32-byte
// seed read from rand, and returns it in the private key encoding (see
// NewSigner) and as a vkey of type 0x06.
func GenerateKey(rand io.Reader, name string) (skey, vkey string, err error) {
	if !c2sp.ValidKeyName(name) || len(name) > 255 {
		return "", "", fmt.Errorf("invalid key name %q", name)
	}
	var seed [SeedSize]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return "", "", fmt.Errorf("couldn't generate ML-DSA-44 key: %w", err)
	}
	pk, _ := mldsa44.NewKeyFromSeed(&seed)
	pub := pk.Bytes()
	id := c2sp.KeyHash(name, c2sp.TypeCosignatureMLDSA44, pub)
	skey = fmt.Sprintf("%s%s+%08x+%s", privateKeyPrefix, name, id,
		base64.StdEncoding.EncodeToString(append([]byte{c2sp.TypeCosignatureMLDSA44}, seed[:]...)))
	return skey, c2sp.FormatVKey(name, c2sp.TypeCosignatureMLDSA44, pub), nil
}

// IsPrivateKey reports whether skey is in the private key encoding with
// signature type 0x06 (without checking the rest).
func IsPrivateKey(skey string) bool {
	parts := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(parts) != 5 || parts[0]+"+"+parts[1]+"+" != privateKeyPrefix {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	return err == nil && len(raw) > 0 && raw[0] == c2sp.TypeCosignatureMLDSA44
}

// NewSigner reads an ML-DSA-44 private key
// `PRIVATE+KEY+<name>+<hex key ID>+base64(0x06 ‖ 32-byte seed)`, checking
// that the key ID is the key's, and returns a signer whose cosignatures
// carry now() (time.Now if nil) in whole seconds, and the key's vkey.
// Errors never contain the key.
func NewSigner(skey string, now func() time.Time) (*Signer, string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(skey), privateKeyPrefix)
	name, rest, ok1 := strings.Cut(rest, "+")
	hexID, b64, ok2 := strings.Cut(rest, "+")
	if !ok || !ok1 || !ok2 || !c2sp.ValidKeyName(name) || len(name) > 255 {
		return nil, "", errors.New("private key is not PRIVATE+KEY+name+keyid+key")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != 1+SeedSize || base64.StdEncoding.EncodeToString(raw) != b64 {
		return nil, "", fmt.Errorf("private key is not canonical base64 of a type byte and a %d-byte seed", SeedSize)
	}
	if raw[0] != c2sp.TypeCosignatureMLDSA44 {
		return nil, "", fmt.Errorf("private key has signature type 0x%02x, want 0x%02x (ML-DSA-44)", raw[0], c2sp.TypeCosignatureMLDSA44)
	}
	var seed [SeedSize]byte
	copy(seed[:], raw[1:])
	pk, sk := mldsa44.NewKeyFromSeed(&seed)
	pub := pk.Bytes()
	hash := c2sp.KeyHash(name, c2sp.TypeCosignatureMLDSA44, pub)
	if len(hexID) != 8 || fmt.Sprintf("%08x", hash) != strings.ToLower(hexID) {
		return nil, "", fmt.Errorf("private key has key ID %q, but the key's is %08x", hexID, hash)
	}
	if now == nil {
		now = time.Now
	}
	s := &Signer{name: name, hash: hash, priv: sk, pub: pub, now: now}
	return s, c2sp.FormatVKey(name, c2sp.TypeCosignatureMLDSA44, pub), nil
}

// Name is the cosigner name.
func (s *Signer) Name() string { return s.name }

// KeyHash is the key ID, computed with signature type 0x06.
func (s *Signer) KeyHash() uint32 { return s.hash }

// Verifier returns the verifier of s's cosignatures.
func (s *Signer) Verifier() *Verifier {
	v, _ := NewVerifier(s.name, s.pub) // the key and name were checked
	return v
}

// Sign returns the ML-DSA-44 cosignature (without the key ID) of the
// checkpoint whose body is text, timestamped with the signer's clock.
func (s *Signer) Sign(text []byte) ([]byte, error) {
	c, err := c2sp.ParseCheckpoint(text)
	if err != nil {
		return nil, err
	}
	t := s.now().Unix()
	if t < 0 {
		return nil, fmt.Errorf("clock reads %d, before 1970", t)
	}
	return s.SignSubtree(uint64(t), c.Origin, 0, c.Size, c.Hash)
}

// SignSubtree returns the ML-DSA-44 cosignature (without the key ID) of
// the subtree [start, end) of origin with root hash hash at timestamp ts
// (which must be zero when start is not; see Message). Signing is hedged
// (randomized), as FIPS 204 recommends.
func (s *Signer) SignSubtree(ts uint64, origin string, start, end uint64, hash [c2sp.HashSize]byte) ([]byte, error) {
	m, err := Message(s.name, ts, origin, start, end, hash)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, CosignatureSize)
	binary.BigEndian.PutUint64(sig, ts)
	if err := mldsa44.SignTo(s.priv, m, nil, true, sig[8:]); err != nil {
		return nil, fmt.Errorf("couldn't sign with ML-DSA-44: %w", err)
	}
	return sig, nil
}

var (
	_ c2sp.Verifier = (*Verifier)(nil)
	_ c2sp.Signer   = (*Signer)(nil)
)
