package c2sp

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxCosignatureTimestamp is the largest timestamp a cosignature may carry
// (c2sp.org/tlog-cosignature: "It MUST NOT exceed 2^63 - 1").
const MaxCosignatureTimestamp = 1<<63 - 1

// cosignatureV1Header starts the message a cosignature/v1 signs.
const cosignatureV1Header = "cosignature/v1\ntime "

// CosignedMessage returns what a cosignature/v1 with timestamp ts signs
// for a checkpoint body text: "cosignature/v1\ntime <ts>\n" ‖ text. It
// refuses a timestamp above MaxCosignatureTimestamp.
func CosignedMessage(ts uint64, text []byte) ([]byte, error) {
	if ts > MaxCosignatureTimestamp {
		return nil, fmt.Errorf("cosignature timestamp %d is above 2^63-1", ts)
	}
	msg := make([]byte, 0, len(cosignatureV1Header)+21+len(text))
	msg = append(msg, cosignatureV1Header...)
	msg = strconv.AppendUint(msg, ts, 10)
	msg = append(msg, '\n')
	return append(msg, text...), nil
}

// CosignatureTimestamp returns the timestamp of a timestamped cosignature
// signature (the bytes after the key ID: a big-endian u64 and the
// signature proper, cosignature/v1 or ML-DSA-44 alike). It refuses a
// signature too short to hold one and a timestamp above
// MaxCosignatureTimestamp. It verifies nothing.
func CosignatureTimestamp(sig []byte) (uint64, error) {
	if len(sig) < 8 {
		return 0, errors.New("cosignature is too short to hold a timestamp")
	}
	ts := binary.BigEndian.Uint64(sig)
	if ts > MaxCosignatureTimestamp {
		return 0, fmt.Errorf("cosignature timestamp %d is above 2^63-1", ts)
	}
	return ts, nil
}

type cosignatureVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

// NewCosignatureVerifier returns a verifier of cosignature/v1 (type 0x04)
// signatures by pub: an 8-byte timestamp no larger than
// MaxCosignatureTimestamp and an Ed25519 signature of CosignedMessage.
func NewCosignatureVerifier(name string, pub ed25519.PublicKey) Verifier {
	return &cosignatureVerifier{name: name, hash: KeyHash(name, TypeCosignatureV1, pub), pub: pub}
}

func (v *cosignatureVerifier) Name() string    { return v.name }
func (v *cosignatureVerifier) KeyHash() uint32 { return v.hash }
func (v *cosignatureVerifier) Verify(text, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize || len(v.pub) != ed25519.PublicKeySize {
		return false
	}
	ts, err := CosignatureTimestamp(sig)
	if err != nil {
		return false
	}
	msg, err := CosignedMessage(ts, text)
	return err == nil && ed25519.Verify(v.pub, msg, sig[8:])
}

type cosignatureSigner struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
	now  func() time.Time
}

// NewCosignatureSigner returns a signer of cosignature/v1 (type 0x04)
// signatures timestamped with now() (time.Now if nil), in whole seconds.
func NewCosignatureSigner(name string, priv ed25519.PrivateKey, now func() time.Time) Signer {
	if now == nil {
		now = time.Now
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &cosignatureSigner{name: name, hash: KeyHash(name, TypeCosignatureV1, pub), priv: priv, now: now}
}

func (s *cosignatureSigner) Name() string    { return s.name }
func (s *cosignatureSigner) KeyHash() uint32 { return s.hash }
func (s *cosignatureSigner) Sign(text []byte) ([]byte, error) {
	t := s.now().Unix()
	if t < 0 {
		return nil, fmt.Errorf("clock reads %d, before 1970", t)
	}
	msg, err := CosignedMessage(uint64(t), text)
	if err != nil {
		return nil, err
	}
	sig := binary.BigEndian.AppendUint64(make([]byte, 0, 8+ed25519.SignatureSize), uint64(t))
	return append(sig, ed25519.Sign(s.priv, msg)...), nil
}
