package schema

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

var (
	oidRSASSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidSHA384    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidMGF1      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
)

type spki struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

type pssParams struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
	MGF          pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
	SaltLength   int                      `asn1:"explicit,tag:2"`
	TrailerField int                      `asn1:"optional,explicit,tag:3,default:1"`
}

// MarshalRSAPSSSPKI returns the RFC 9578 token-type 2 encoding of pub: a
// DER SubjectPublicKeyInfo with the id-RSASSA-PSS OID and parameters
// SHA-384, MGF1 with SHA-384, salt length 48. pub must be 2048 bits.
func MarshalRSAPSSSPKI(pub *rsa.PublicKey) ([]byte, error) {
	if pub.N.BitLen() != 2048 {
		return nil, fmt.Errorf("RSA modulus is %d bits, want 2048", pub.N.BitLen())
	}
	sha384 := pkix.AlgorithmIdentifier{Algorithm: oidSHA384}
	mgfParams, err := asn1.Marshal(sha384)
	if err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(pssParams{
		Hash:         sha384,
		MGF:          pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: mgfParams}},
		SaltLength:   48,
		TrailerField: 1,
	})
	if err != nil {
		return nil, err
	}
	key := x509.MarshalPKCS1PublicKey(pub)
	return asn1.Marshal(spki{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidRSASSAPSS, Parameters: asn1.RawValue{FullBytes: params}},
		PublicKey: asn1.BitString{Bytes: key, BitLength: 8 * len(key)},
	})
}

// validateRSAPSSSPKI checks an RFC 9578 token-type 2 key: a DER
// SubjectPublicKeyInfo with the id-RSASSA-PSS OID, SHA-384, MGF1 with
// SHA-384, salt length 48, and a 2048-bit RSA modulus. The encoding must
// be DER exactly (re-encoding gives the same bytes), so one key has one
// token_key_id.
func validateRSAPSSSPKI(der []byte) error {
	var s spki
	rest, err := asn1.Unmarshal(der, &s)
	if err != nil {
		return fmt.Errorf("not a DER SubjectPublicKeyInfo: %v", err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("trailing data after SubjectPublicKeyInfo")
	}
	if !s.Algorithm.Algorithm.Equal(oidRSASSAPSS) {
		return fmt.Errorf("algorithm %v is not id-RSASSA-PSS", s.Algorithm.Algorithm)
	}
	var p pssParams
	if rest, err := asn1.Unmarshal(s.Algorithm.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
		return fmt.Errorf("bad RSASSA-PSS parameters")
	}
	if !p.Hash.Algorithm.Equal(oidSHA384) || !p.MGF.Algorithm.Equal(oidMGF1) || p.SaltLength != 48 || p.TrailerField != 1 {
		return fmt.Errorf("RSASSA-PSS parameters must be SHA-384, MGF1-SHA-384, salt 48")
	}
	var mgfHash pkix.AlgorithmIdentifier
	if rest, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mgfHash); err != nil || len(rest) != 0 || !mgfHash.Algorithm.Equal(oidSHA384) {
		return fmt.Errorf("RSASSA-PSS MGF1 hash must be SHA-384")
	}
	if s.PublicKey.BitLength%8 != 0 {
		return fmt.Errorf("subjectPublicKey is not a whole number of bytes")
	}
	pub, err := x509.ParsePKCS1PublicKey(s.PublicKey.RightAlign())
	if err != nil {
		return fmt.Errorf("bad RSA public key: %v", err)
	}
	if pub.N.BitLen() != 2048 {
		return fmt.Errorf("RSA modulus is %d bits, want 2048", pub.N.BitLen())
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return fmt.Errorf("RSA public exponent %d is not an odd number above 2", pub.E)
	}
	re, err := MarshalRSAPSSSPKI(pub)
	if err != nil {
		return err
	}
	if !bytes.Equal(re, der) {
		return fmt.Errorf("SubjectPublicKeyInfo is not in the canonical DER encoding (SHA-384 and MGF1 parameters present, trailer field omitted)")
	}
	return nil
}
