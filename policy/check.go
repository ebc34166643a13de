package policy

import "github.com/keycommit/keycommit/schema"

// CheckCommitment applies the key commitment rules to c as if the issuer
// origin submitted it at time at (ms since the epoch), and returns every
// refusal in rule order; none means acceptable. It checks everything
// Evaluate checks for a commitment except what belongs to the signed
// statement (prev, signature, the issuer's entry times), so it needs no
// account key: `keycommit policy check` uses it. An origin not registered
// in st is judged as a newly registered issuer's first commitment.
func CheckCommitment(st *State, origin string, c *schema.KeyCommitment, at int64) []Decision {
	is := st.issuers[origin]
	if is == nil {
		is = &Issuer{Origin: origin, Expires: at + st.params.RegistrationLifetime*1000, IDs: map[string]CommitmentID{}}
	}
	return commitmentProblems(st, is, origin, at, c, true)
}
