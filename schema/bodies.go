package schema

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/keycommit/keycommit/log/keysetroot"
)

// Registration is the body of a registration entry. The origin is the
// statement's Issuer. The registration lapses after the policy's
// registration lifetime unless renewed by a later registration entry.
type Registration struct {
	// Contact is how the log operator and the public reach the issuer
	// (a mailto: or https: URI).
	Contact string `json:"contact"`
	// AccountKey is the Ed25519 public key (32 bytes) that must sign every
	// later statement for this origin.
	AccountKey []byte `json:"account_key"`
	// KeyProof proves possession of AccountKey when a registration
	// changes the account key: the new key's Ed25519 signature over
	// KeyPossessionMessage. The statement itself is signed by the key in
	// force. A first registration needs no proof (its statement is signed
	// by the key it registers); a renewal keeping the key needs none.
	KeyProof []byte `json:"key_proof,omitempty"`
}

// KeyCommitment is the body of a key commitment entry: exactly one of PST
// and PrivacyPass, and, for an emergency rotation, the preliminary incident
// report.
type KeyCommitment struct {
	// PST is the issuer's Private State Token key commitment exactly as
	// Chrome consumes it: protocol version -> commitment.
	PST PSTCommitment `json:"pst,omitempty"`
	// PrivacyPass is the issuer's RFC 9578 issuer directory.
	PrivacyPass *IssuerDirectory `json:"privacy_pass,omitempty"`
	// Emergency, when present, marks this commitment as an emergency
	// rotation and carries its preliminary incident report.
	Emergency *IncidentReport `json:"emergency,omitempty"`

	// keys caches the validated keys of a commitment returned by
	// ParseBody, so the policy does not validate every point twice.
	keys []CommittedKey
}

// IncidentFinal is the body of an incident report entry: the final report
// for the emergency rotation recorded at log index Emergency.
type IncidentFinal struct {
	Emergency uint64         `json:"emergency"`
	Report    IncidentReport `json:"report"`
}

// PolicyParams is the body of a policy parameters entry. Durations are in
// seconds. The meaning of each field, and its default, is defined by
// package policy.
type PolicyParams struct {
	MinRotationInterval  int64 `json:"min_rotation_interval"`
	EmergencyWindow      int64 `json:"emergency_window"`
	MaxEmergencies       int   `json:"max_emergencies"`
	MaxKeysVOPRF         int   `json:"max_keys_voprf"`
	MaxKeysPMB           int   `json:"max_keys_pmb"`
	MaxKeysPrivacyPass   int   `json:"max_keys_privacy_pass"`
	KeyWindow            int64 `json:"key_window"`
	MaxKeysPerWindow     int   `json:"max_keys_per_window"`
	MaxKeyLifetime       int64 `json:"max_key_lifetime"`
	MinBatchSize         int   `json:"min_batch_size"`
	MaxBatchSize         int   `json:"max_batch_size"`
	RegistrationLifetime int64 `json:"registration_lifetime"`
}

// Snapshot is the body of a snapshot entry: the commitment to the complete
// key set (every issuer's latest accepted commitment whose registration has
// not lapsed) as of the snapshot entry's time, computed from the entries
// before it. It has exactly one of Root (what the log writes: the key set
// root, package log/keysetroot) and Digest (snapshots of logs made before
// the root: SHA-256 of the key set's canonical encoding); docs/entries.md.
type Snapshot struct {
	Issuers int    `json:"issuers"`
	Digest  []byte `json:"digest,omitempty"`
	Root    []byte `json:"root,omitempty"`
}

// NewSnapshot returns the snapshot body the log writes for ks: its issuer
// count and its key set root.
func NewSnapshot(ks *KeySet) (*Snapshot, error) {
	r, err := ks.Root()
	if err != nil {
		return nil, err
	}
	return &Snapshot{Issuers: len(ks.PST) + len(ks.PrivacyPass), Root: r}, nil
}

// Commitment returns which commitment s carries ("root" or "digest") and
// its value.
func (s *Snapshot) Commitment() (form string, value []byte) {
	if s.Root != nil {
		return "root", s.Root
	}
	return "digest", s.Digest
}

// KeySetCommitment returns ks's commitment in the form s carries: its
// root, or its digest for a digest-form snapshot.
func (s *Snapshot) KeySetCommitment(ks *KeySet) ([]byte, error) {
	if s.Root != nil {
		return ks.Root()
	}
	return ks.Digest()
}

// CommitsTo reports whether s commits to the key set whose canonical
// encoding is keySet (it does not parse the key set: see keysetroot.Split),
// and returns the key set's commitment in s's form.
func (s *Snapshot) CommitsTo(keySet []byte) (bool, []byte) {
	return keysetroot.CommitsTo(keySet, s.Root, s.Digest)
}

// KeySet is the complete current key set. Its PST member has exactly the
// shape of the file Chrome's component ships to browsers
// ({ "<issuer origin>": <key commitment> }); PrivacyPass maps origins to
// RFC 9578 issuer directories.
type KeySet struct {
	PST         map[string]PSTCommitment   `json:"pst"`
	PrivacyPass map[string]IssuerDirectory `json:"privacy_pass"`
}

// Marshal returns the canonical encoding of the key set (empty maps are
// encoded as {}).
func (k *KeySet) Marshal() ([]byte, error) {
	c := *k
	if c.PST == nil {
		c.PST = map[string]PSTCommitment{}
	}
	if c.PrivacyPass == nil {
		c.PrivacyPass = map[string]IssuerDirectory{}
	}
	return canonicalJSON(&c)
}

// Digest returns SHA-256 of the key set's canonical encoding.
func (k *KeySet) Digest() ([]byte, error) {
	b, err := k.Marshal()
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256(b)
	return d[:], nil
}

// Root returns the key set root (package log/keysetroot) of the key set's
// canonical encoding.
func (k *KeySet) Root() ([]byte, error) {
	b, err := k.Marshal()
	if err != nil {
		return nil, err
	}
	r, err := keysetroot.OfKeySet(b)
	if err != nil {
		return nil, err
	}
	return r[:], nil
}

// ParseKeySet parses a canonical key set.
func ParseKeySet(b []byte) (*KeySet, error) {
	var k KeySet
	if err := strictUnmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("malformed key set: %w", err)
	}
	re, err := k.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(re, b) {
		return nil, fmt.Errorf("key set: %w", ErrNotCanonical)
	}
	return &k, nil
}

// ParseBody parses the body of an entry of kind k strictly, checks that it
// is canonical and well-formed, and returns a pointer to its typed value
// (*Registration, *KeyCommitment, *IncidentFinal, *PolicyParams or
// *Snapshot).
func ParseBody(k Kind, raw []byte) (any, error) {
	v, err := newBody(k)
	if err != nil {
		return nil, err
	}
	if err := strictUnmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("malformed %s body: %w", k, err)
	}
	re, err := canonicalJSON(v)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(re, raw) {
		return nil, fmt.Errorf("%s body: %w", k, ErrNotCanonical)
	}
	if err := v.validate(); err != nil {
		return nil, fmt.Errorf("invalid %s body: %w", k, err)
	}
	return v, nil
}

// newBody returns a new zero value of the body type of kind k.
func newBody(k Kind) (interface{ validate() error }, error) {
	switch k {
	case KindRegistration:
		return new(Registration), nil
	case KindKeyCommitment:
		return new(KeyCommitment), nil
	case KindIncidentReport:
		return new(IncidentFinal), nil
	case KindPolicyParams:
		return new(PolicyParams), nil
	case KindSnapshot:
		return new(Snapshot), nil
	}
	return nil, fmt.Errorf("unknown entry kind %q", k)
}

// CanonicalizeBody re-encodes body (any JSON encoding of a body of kind k,
// or a Go value of its type) canonically, for clients about to sign.
func CanonicalizeBody(k Kind, body any) ([]byte, error) {
	var raw []byte
	switch b := body.(type) {
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = canonicalJSON(body); err != nil {
			return nil, err
		}
	}
	// Decode into the typed value (accepting any whitespace and member
	// order), then encode canonically and validate.
	if !k.IssuerSigned() {
		return nil, fmt.Errorf("entry kind %q is not submitted by issuers", k)
	}
	v, err := newBody(k)
	if err != nil {
		return nil, err
	}
	if err := strictUnmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("malformed %s body: %w", k, err)
	}
	c, err := canonicalJSON(v)
	if err != nil {
		return nil, err
	}
	if _, err := ParseBody(k, c); err != nil {
		return nil, err
	}
	return c, nil
}

func (r *Registration) validate() error {
	if len(r.AccountKey) != 32 {
		return fmt.Errorf("account_key is %d bytes, want 32 (Ed25519)", len(r.AccountKey))
	}
	if r.KeyProof != nil && len(r.KeyProof) != 64 {
		return fmt.Errorf("key_proof is %d bytes, want 64 (Ed25519 signature)", len(r.KeyProof))
	}
	return validateContact(r.Contact)
}

func (c *KeyCommitment) validate() error {
	switch {
	case len(c.PST) == 0 && c.PrivacyPass == nil:
		return fmt.Errorf("key commitment has neither pst nor privacy_pass")
	case len(c.PST) != 0 && c.PrivacyPass != nil:
		return fmt.Errorf("key commitment has both pst and privacy_pass; submit them separately")
	}
	keys, err := c.Keys()
	if err != nil {
		return err
	}
	if c.Emergency != nil {
		if err := c.Emergency.Validate(); err != nil {
			return fmt.Errorf("emergency incident report: %w", err)
		}
	}
	c.keys = keys
	return nil
}

func (f *IncidentFinal) validate() error { return f.Report.Validate() }

func (p *PolicyParams) validate() error {
	for name, v := range map[string]int64{
		"min_rotation_interval": p.MinRotationInterval, "emergency_window": p.EmergencyWindow,
		"max_emergencies": int64(p.MaxEmergencies), "max_keys_voprf": int64(p.MaxKeysVOPRF),
		"max_keys_pmb": int64(p.MaxKeysPMB), "max_keys_privacy_pass": int64(p.MaxKeysPrivacyPass),
		"key_window": p.KeyWindow, "max_keys_per_window": int64(p.MaxKeysPerWindow),
		"max_key_lifetime": p.MaxKeyLifetime, "min_batch_size": int64(p.MinBatchSize),
		"max_batch_size": int64(p.MaxBatchSize), "registration_lifetime": p.RegistrationLifetime,
	} {
		if v < 0 {
			return fmt.Errorf("%s is negative (%d)", name, v)
		}
	}
	if p.MinBatchSize > p.MaxBatchSize {
		return fmt.Errorf("min_batch_size %d is above max_batch_size %d", p.MinBatchSize, p.MaxBatchSize)
	}
	return nil
}

func (s *Snapshot) validate() error {
	switch {
	case s.Root != nil && s.Digest != nil:
		return errors.New("snapshot has both a root and a digest; want exactly one")
	case s.Root == nil && s.Digest == nil:
		return errors.New("snapshot has neither a root nor a digest; want exactly one")
	}
	if form, v := s.Commitment(); len(v) != sha256.Size {
		return fmt.Errorf("%s is %d bytes, want %d", form, len(v), sha256.Size)
	}
	if s.Issuers < 0 {
		return fmt.Errorf("issuers is negative (%d)", s.Issuers)
	}
	return nil
}
