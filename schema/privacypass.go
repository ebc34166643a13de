package schema

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Privacy Pass token types (RFC 9578).
const (
	TokenTypeVOPRF     = 0x0001 // VOPRF(P-384, SHA-384); key: compressed point, 49 bytes
	TokenTypeBlindRSA  = 0x0002 // Blind RSA 2048; key: RSASSA-PSS SubjectPublicKeyInfo
	p384CompressedSize = 49
)

// MediaTypeIssuerDirectory is the media type of an RFC 9578 issuer
// directory, served at /.well-known/private-token-issuer-directory.
const MediaTypeIssuerDirectory = "application/private-token-issuer-directory"

// IssuerDirectory is an RFC 9578 issuer directory
// (application/private-token-issuer-directory).
type IssuerDirectory struct {
	// IssuerRequestURI is where token requests go: an absolute https URL,
	// or a URL relative to the directory's.
	IssuerRequestURI string     `json:"issuer-request-uri"`
	TokenKeys        []TokenKey `json:"token-keys"`
}

// TokenKey is one entry of an issuer directory's token-keys.
type TokenKey struct {
	TokenType uint16 `json:"token-type"`
	// TokenKey is the base64url encoding of the public key, with padding
	// (RFC 9578 section 4).
	TokenKey string `json:"token-key"`
	// NotBefore, if set, is when the key may first be used (Unix seconds).
	NotBefore *int64 `json:"not-before,omitempty"`
}

// Validate checks the directory and every key in it.
func (d *IssuerDirectory) Validate() error {
	_, err := d.parseKeys()
	return err
}

func (d *IssuerDirectory) parseKeys() ([]CommittedKey, error) {
	if err := validateRequestURI(d.IssuerRequestURI); err != nil {
		return nil, fmt.Errorf("privacy pass directory: %w", err)
	}
	if len(d.TokenKeys) == 0 {
		return nil, fmt.Errorf("privacy pass directory: no token-keys")
	}
	out := make([]CommittedKey, 0, len(d.TokenKeys))
	seen := map[KeyID]int{}
	for i, k := range d.TokenKeys {
		id, err := k.KeyID()
		if err != nil {
			return nil, fmt.Errorf("privacy pass directory: token-keys[%d]: %w", i, err)
		}
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("privacy pass directory: token-keys[%d] and [%d] are the same key", j, i)
		}
		seen[id] = i
		proto := ProtocolPrivacyPassVOPRF
		if k.TokenType == TokenTypeBlindRSA {
			proto = ProtocolPrivacyPassBlindRSA
		}
		out = append(out, CommittedKey{ID: id, Protocol: proto, Label: strconv.Itoa(i), label: uint32(i), NotBefore: k.NotBefore})
	}
	return out, nil
}

func validateRequestURI(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("issuer-request-uri is empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("issuer-request-uri %q: %v", s, err)
	}
	if u.IsAbs() && (u.Scheme != "https" || u.Host == "") {
		return fmt.Errorf("issuer-request-uri %q: an absolute issuer-request-uri must be an https URL", s)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("issuer-request-uri %q: no user information or fragment allowed", s)
	}
	return nil
}

// KeyID validates the key and returns its RFC 9578 token_key_id:
// SHA-256 of the key bytes.
func (k TokenKey) KeyID() (KeyID, error) {
	b, err := k.Decode()
	if err != nil {
		return KeyID{}, err
	}
	return sha256.Sum256(b), nil
}

// Decode validates the key for its token type and returns its bytes.
func (k TokenKey) Decode() ([]byte, error) {
	b, err := base64.URLEncoding.Strict().DecodeString(k.TokenKey)
	if err != nil {
		return nil, fmt.Errorf("token-key is not canonical padded base64url: %v", err)
	}
	if k.NotBefore != nil && *k.NotBefore < 0 {
		return nil, fmt.Errorf("not-before is negative (%d)", *k.NotBefore)
	}
	switch k.TokenType {
	case TokenTypeVOPRF:
		if len(b) != p384CompressedSize {
			return nil, fmt.Errorf("token-type 1 key is %d bytes, want %d (compressed P-384 point)", len(b), p384CompressedSize)
		}
		if b[0] != 0x02 && b[0] != 0x03 {
			return nil, fmt.Errorf("token-type 1 key is not a compressed P-384 point (first byte 0x%02x, want 0x02 or 0x03)", b[0])
		}
		if _, err := p384Point(b); err != nil {
			return nil, fmt.Errorf("token-type 1 key: %w", err)
		}
	case TokenTypeBlindRSA:
		if err := validateRSAPSSSPKI(b); err != nil {
			return nil, fmt.Errorf("token-type 2 key: %w", err)
		}
	default:
		return nil, fmt.Errorf("unsupported token-type %d (want 1, VOPRF P-384, or 2, Blind RSA 2048)", k.TokenType)
	}
	return b, nil
}
