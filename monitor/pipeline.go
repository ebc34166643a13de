package monitor

import (
	"crypto/ed25519"
	"sync"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

// accountKeys mirrors the account key each issuer has in the replay's
// policy state, for the fetch workers: they check each entry's signature
// speculatively, against the key the issuer had when they looked, while
// the replay goroutine is still busy with earlier entries. The replay
// passes that key to policy.EvaluatePreverified, which skips its own
// signature check only if the key is exactly the one in force when the
// entry's turn comes, so a stale or wrong key here costs a second check,
// never a missed one.
type accountKeys struct {
	mu sync.RWMutex
	m  map[string]ed25519.PublicKey
}

// newAccountKeys returns the account keys of every issuer in st.
func newAccountKeys(st *policy.State) *accountKeys {
	k := &accountKeys{m: map[string]ed25519.PublicKey{}}
	for _, o := range st.Origins() {
		k.m[o] = st.AccountKey(o)
	}
	return k
}

func (k *accountKeys) get(origin string) ed25519.PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.m[origin]
}

// set records origin's key (a copy the caller no longer changes).
func (k *accountKeys) set(origin string, key ed25519.PublicKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[origin] = key
}

// preverify checks e's issuer signature against the key that will most
// likely have to sign it: the issuer's key in keys, or, for an issuer
// keys does not know, the key its registration registers. It returns the
// key the signature verified under, or nil (a log-written kind, no
// candidate key, or a signature that does not verify under it; the
// replay then checks the signature itself and reports it).
func preverify(keys *accountKeys, e *schema.Entry) ed25519.PublicKey {
	if !e.Kind.IssuerSigned() {
		return nil
	}
	key := keys.get(e.Issuer)
	if key == nil && e.Kind == schema.KindRegistration {
		body, err := e.ParsedBody()
		if err != nil {
			return nil
		}
		if r, ok := body.(*schema.Registration); ok {
			key = r.AccountKey
		}
	}
	if key == nil || e.VerifySignature(key) != nil {
		return nil
	}
	return key
}
