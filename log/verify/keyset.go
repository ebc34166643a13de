package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// KeySet is the complete key set a bundle carries, in the shape of
// schema.KeySet (this package does not import schema, which pulls in
// elliptic-curve code a verifier does not need; a test keeps the two
// encodings identical). PST has exactly the shape of the file Chrome's
// component ships to browsers; PrivacyPass maps origins to RFC 9578 issuer
// directories.
type KeySet struct {
	PST         map[string]PSTCommitment   `json:"pst"`
	PrivacyPass map[string]IssuerDirectory `json:"privacy_pass"`
}

// PSTCommitment is an issuer's PST key commitment: protocol version ->
// commitment.
type PSTCommitment map[string]PSTVersionCommitment

// PSTVersionCommitment is the commitment for one PST protocol version.
type PSTVersionCommitment struct {
	ProtocolVersion string            `json:"protocol_version"`
	ID              uint32            `json:"id"`
	BatchSize       int               `json:"batchsize"`
	Keys            map[string]PSTKey `json:"keys"`
}

// PSTKey is one PST key: Y is standard base64 of the key bytes (key id ‖
// point(s)), Expiry microseconds since the epoch in decimal.
type PSTKey struct {
	Y      string `json:"Y"`
	Expiry string `json:"expiry"`
}

// IssuerDirectory is an RFC 9578 issuer directory.
type IssuerDirectory struct {
	IssuerRequestURI string     `json:"issuer-request-uri"`
	TokenKeys        []TokenKey `json:"token-keys"`
}

// TokenKey is one key of an issuer directory; TokenKey is base64url.
type TokenKey struct {
	TokenType uint16 `json:"token-type"`
	TokenKey  string `json:"token-key"`
	NotBefore *int64 `json:"not-before,omitempty"`
}

// ParseKeySet parses a key set strictly: no unknown members, no trailing
// data, and the input must be the canonical encoding (the encoding
// schema.KeySet.Marshal produces), so it has exactly one meaning for every
// parser, duplicate members included.
func ParseKeySet(b []byte) (*KeySet, error) {
	return parseKeySetFast(b, nil)
}

// Marshal returns the canonical encoding of k: compact JSON, members in
// declaration order, map keys sorted, no HTML escaping, empty maps as {}.
func (k *KeySet) Marshal() ([]byte, error) {
	c := *k
	if c.PST == nil {
		c.PST = map[string]PSTCommitment{}
	}
	if c.PrivacyPass == nil {
		c.PrivacyPass = map[string]IssuerDirectory{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("couldn't encode key set: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Issuers returns the sorted origins that have keys in k.
func (k *KeySet) Issuers() []string {
	set := map[string]bool{}
	for o := range k.PST {
		set[o] = true
	}
	for o := range k.PrivacyPass {
		set[o] = true
	}
	out := make([]string, 0, len(set))
	for o := range set {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

// PSTKey returns the key bytes (4-byte key id ‖ point(s)) of the issuer's
// PST key with the given label under protocol version, if the key set has
// it.
func (k *KeySet) PSTKey(issuer, version, label string) ([]byte, bool) {
	c, ok := k.PST[issuer][version]
	if !ok {
		return nil, false
	}
	key, ok := c.Keys[label]
	if !ok {
		return nil, false
	}
	y, err := base64.StdEncoding.Strict().DecodeString(key.Y)
	if err != nil {
		return nil, false
	}
	return y, true
}

// HasPSTKey reports whether the issuer committed a PST key with exactly
// the bytes y (key id ‖ point(s)) under protocol version.
func (k *KeySet) HasPSTKey(issuer, version string, y []byte) bool {
	c, ok := k.PST[issuer][version]
	if !ok {
		return false
	}
	for _, key := range c.Keys {
		if b, err := base64.StdEncoding.Strict().DecodeString(key.Y); err == nil && bytes.Equal(b, y) {
			return true
		}
	}
	return false
}

// HasTokenKey reports whether the issuer's Privacy Pass directory lists a
// key of tokenType with exactly the bytes key.
func (k *KeySet) HasTokenKey(issuer string, tokenType uint16, key []byte) bool {
	d, ok := k.PrivacyPass[issuer]
	if !ok {
		return false
	}
	for _, tk := range d.TokenKeys {
		if tk.TokenType != tokenType {
			continue
		}
		if b, err := decodeBase64URL(tk.TokenKey); err == nil && bytes.Equal(b, key) {
			return true
		}
	}
	return false
}

func decodeBase64URL(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.URLEncoding.Strict().DecodeString(s)
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// Change is one issuer whose keys differ between two key sets.
type Change struct {
	Issuer string
	// Part is "pst" or "privacy_pass".
	Part string
	// Op is "added", "removed" or "changed".
	Op string
}

func (c Change) String() string { return c.Issuer + " " + c.Part + " " + c.Op }

// Diff returns the issuers whose keys differ from old to new, sorted by
// issuer then part.
func Diff(old, new *KeySet) []Change {
	var out []Change
	out = diffPart(out, "pst", old.PST, new.PST)
	out = diffPart(out, "privacy_pass", old.PrivacyPass, new.PrivacyPass)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Issuer != out[j].Issuer {
			return out[i].Issuer < out[j].Issuer
		}
		return out[i].Part < out[j].Part
	})
	return out
}

func diffPart[V any](out []Change, part string, old, new map[string]V) []Change {
	for o, nv := range new {
		ov, ok := old[o]
		switch {
		case !ok:
			out = append(out, Change{Issuer: o, Part: part, Op: "added"})
		case !reflect.DeepEqual(ov, nv):
			out = append(out, Change{Issuer: o, Part: part, Op: "changed"})
		}
	}
	for o := range old {
		if _, ok := new[o]; !ok {
			out = append(out, Change{Issuer: o, Part: part, Op: "removed"})
		}
	}
	return out
}
