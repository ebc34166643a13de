package policy

import (
	"crypto/ed25519"

	"github.com/keycommit/keycommit/schema"
)

// Evaluate decides whether e may be appended at index idx, at the time
// e.Time, under the parameters in force in st. It does not change st.
func Evaluate(st *State, e *schema.Entry, idx uint64) Decision {
	return evaluate(st, e, idx, nil)
}

// EvaluatePreverified is Evaluate for an entry whose issuer signature the
// caller has already checked, with e.VerifySignature(verified) or
// e.Submission().Verify(verified), over exactly the Kind, Issuer, Prev,
// Body and Sig that e carries now. The signature check is skipped only
// when verified is exactly the key that must sign e in st; otherwise
// (verified is nil, or the account key changed since) the signature is
// checked as Evaluate does. A log uses it to verify signatures in
// parallel before it sequences; replaying a log uses Evaluate.
func EvaluatePreverified(st *State, e *schema.Entry, idx uint64, verified ed25519.PublicKey) Decision {
	return evaluate(st, e, idx, verified)
}

// SigningKey returns the account key that must have signed e if it were
// evaluated against st now: the key of e's issuer in force, or, for the
// first registration of an origin or a registration after its lapse (at
// e.Time), the key that registration carries. It
// returns nil when no key applies (a log-written kind, an unregistered
// issuer's other entries, a body that does not parse). The result is a
// copy; the state may change afterwards, so pass the key to
// EvaluatePreverified, which checks it is still the one in force.
func SigningKey(st *State, e *schema.Entry) ed25519.PublicKey {
	if !e.Kind.IssuerSigned() {
		return nil
	}
	if e.Kind == schema.KindRegistration {
		body, err := e.ParsedBody()
		if err != nil {
			return nil
		}
		if claimOf(st, e, body) != claimNone {
			return append(ed25519.PublicKey(nil), body.(*schema.Registration).AccountKey...)
		}
	}
	if is := st.issuers[e.Issuer]; is != nil {
		return append(ed25519.PublicKey(nil), is.AccountKey...)
	}
	return nil
}
