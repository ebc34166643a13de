package schema

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/cloudflare/circl/oprf"
)

// Privacy Pass token types (RFC 9578).
const (
	TokenTypeVOPRF     = 0x0001 // VOPRF(P-384, SHA-384); key: compressed point, 49 bytes
	TokenTypeBlindRSA  = 0x0002 // Blind RSA 2048; key: RSASSA-PSS SubjectPublicKeyInfo
	p384CompressedSize = 49
)

// IssuerDirectory is an RFC 9578 issuer directory
// (application/private-token-issuer-directory).
type IssuerDirectory struct {
	IssuerRequestURI string     `json:"issuer-request-uri"`
	TokenKeys        []TokenKey `json:"token-keys"`
}

// TokenKey is one entry of an issuer directory's token-keys.
type TokenKey struct {
	TokenType uint16 `json:"token-type"`
	// TokenKey is the base64url encoding of the public key.
	TokenKey string `json:"token-key"`
	// NotBefore, if set, is when the key may first be used (Unix seconds).
	NotBefore *int64 `json:"not-before,omitempty"`
}

// Validate checks the directory and every key in it.
func (d *IssuerDirectory) Validate() error {
	if strings.TrimSpace(d.IssuerRequestURI) == "" {
		return fmt.Errorf("privacy pass directory: issuer-request-uri is empty")
	}
	if len(d.TokenKeys) == 0 {
		return fmt.Errorf("privacy pass directory: no token-keys")
	}
	for i, k := range d.TokenKeys {
		if _, err := k.Decode(); err != nil {
			return fmt.Errorf("privacy pass directory: token-keys[%d]: %w", i, err)
		}
	}
	return nil
}

// Decode validates the key for its token type and returns its bytes.
func (k TokenKey) Decode() ([]byte, error) {
	b, err := decodeBase64URL(k.TokenKey)
	if err != nil {
		return nil, fmt.Errorf("token-key is not base64url: %v", err)
	}
	if k.NotBefore != nil && *k.NotBefore < 0 {
		return nil, fmt.Errorf("not-before is negative (%d)", *k.NotBefore)
	}
	switch k.TokenType {
	case TokenTypeVOPRF:
		if len(b) != p384CompressedSize {
			return nil, fmt.Errorf("token-type 1 key is %d bytes, want %d (compressed P-384 point)", len(b), p384CompressedSize)
		}
		var pk oprf.PublicKey
		if err := pk.UnmarshalBinary(oprf.SuiteP384, b); err != nil {
			return nil, fmt.Errorf("token-type 1 key: invalid P-384 point: %w", err)
		}
	case TokenTypeBlindRSA:
		if err := validateRSAPSSSPKI(b); err != nil {
			return nil, fmt.Errorf("token-type 2 key: %w", err)
		}
	default:
		return nil, fmt.Errorf("unsupported token-type %d", k.TokenType)
	}
	return b, nil
}

func decodeBase64URL(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.URLEncoding.Strict().DecodeString(s)
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
