package policy

import "crypto/ed25519"

// LastEntry returns the index and time (ms) of the latest entry of the
// issuer with the given origin, without copying the issuer's state (which
// Issuer does).
func (s *State) LastEntry(origin string) (idx uint64, timeMillis int64, ok bool) {
	is := s.issuers[origin]
	if is == nil {
		return 0, 0, false
	}
	return is.LastIndex, is.LastTime, true
}

// AccountKey returns a copy of the account key in force for origin, or
// nil when origin is not registered.
func (s *State) AccountKey(origin string) ed25519.PublicKey {
	is := s.issuers[origin]
	if is == nil {
		return nil
	}
	return append(ed25519.PublicKey(nil), is.AccountKey...)
}
