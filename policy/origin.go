package policy

import (
	"bytes"

	"github.com/keycommit/keycommit/schema"
)

// MaxControlAge is how long before an entry's time the log's check of
// the proof of origin control may be (ms): the log checks it while it
// admits the registration, so minutes at most; an hour allows for a
// queue.
const MaxControlAge = 60 * 60 * 1000

// claim says whether a registration entry claims its origin afresh.
type claim int

const (
	claimNone    claim = iota
	claimFirst         // the first registration of the origin
	claimLapsed        // a registration, with the key in force, after the registration lapsed
	claimReclaim       // a registration with a new key after the registration lapsed
)

// claimOf says whether e claims its origin in st: a first registration
// or, for entries of version 2, a registration at or after the lapse of
// the registration in force. Version 1 entries (logs made before proofs
// of origin control) only claim by first registration; a lapsed origin
// was renewed by its key in force.
func claimOf(st *State, e *schema.Entry, body any) claim {
	r, ok := body.(*schema.Registration)
	if !ok {
		return claimNone
	}
	is := st.issuers[e.Issuer]
	switch {
	case is == nil:
		return claimFirst
	case e.V < schema.Version || e.Time < is.Expires:
		return claimNone
	case bytes.Equal(r.AccountKey, is.AccountKey):
		return claimLapsed
	}
	return claimReclaim
}

// NeedsOriginControl reports whether e, evaluated against st at e.Time,
// needs the log's proof of origin control: the first registration of an
// origin, and any registration after the origin's registration lapsed.
// The log fetches the challenge (schema.ChallengeURL) before it submits
// such an entry and records the result in e.Control.
func NeedsOriginControl(st *State, e *schema.Entry) bool {
	if e.Kind != schema.KindRegistration || e.V < schema.Version {
		return false
	}
	body, err := e.ParsedBody()
	if err != nil {
		return false
	}
	return claimOf(st, e, body) != claimNone
}

// checkVersion refuses an entry of an unknown version, and a legacy
// (version 1) entry after the log wrote a version 2 entry: a log that was
// upgraded never goes back to statements that name no log.
func checkVersion(st *State, e *schema.Entry) (Decision, bool) {
	switch {
	case e.V != schema.Version && e.V != schema.VersionLegacy:
		return reject(RuleMalformed, "entry schema version %d, want %d", e.V, schema.Version), false
	case e.V < st.version:
		return reject(RuleMalformed, "entry schema version %d after version %d entries: an upgraded log never writes legacy entries", e.V, st.version), false
	}
	return Decision{}, true
}

// checkBinding refuses a version 2 statement that is not for the log st
// is bound to, and an origin not in its canonical spelling.
func checkBinding(st *State, e *schema.Entry) (Decision, bool) {
	if e.V < schema.Version {
		return Decision{}, true
	}
	if n, err := schema.NormalizeOrigin(e.Issuer); err != nil {
		return reject(RuleMalformed, "%v", err), false
	} else if n != e.Issuer {
		return reject(RuleMalformed, "issuer %q is not in its canonical spelling %q", e.Issuer, n), false
	}
	switch {
	case e.Log == "":
		return reject(RuleLogBinding, "the %s statement for %s names no log; sign it for this log (%s)", e.Kind, e.Issuer, st.log), false
	case st.log == "":
		return reject(RuleLogBinding, "the policy state is bound to no log, so the statement for log %q cannot be judged (use NewLogState)", e.Log), false
	case e.Log != st.log:
		return reject(RuleLogBinding, "the %s statement for %s is signed for log %q, not for this log %q", e.Kind, e.Issuer, e.Log, st.log), false
	}
	return Decision{}, true
}

// checkControl refuses a claim of an origin without the log's record of
// the proof of control that this log, origin and account key need.
func checkControl(is *Issuer, e *schema.Entry, r *schema.Registration, c claim) (Decision, bool) {
	if e.V < schema.Version {
		return Decision{}, true
	}
	what := "the first registration of " + e.Issuer
	if c != claimFirst {
		what = "a registration of " + e.Issuer + " after its registration (index " + uitoa(is.Registered) + ") lapsed at " + fmtMillis(is.Expires)
	}
	want := schema.ChallengeURL(e.Log, e.Issuer, r.AccountKey)
	ctl := e.Control
	switch {
	case ctl == nil:
		return reject(RuleOriginControl, "%s needs proof of control of the origin, and the log recorded none; serve the challenge at %s", what, want), false
	case ctl.Method != schema.ControlHTTPS || ctl.URL != want:
		return reject(RuleOriginControl, "%s: the log's record is of %s %s, want %s %s", what, ctl.Method, ctl.URL, schema.ControlHTTPS, want), false
	case ctl.Time > e.Time || e.Time-ctl.Time > MaxControlAge:
		return reject(RuleOriginControl, "%s: the proof of control was checked at %s, not within %s before the entry time %s", what, fmtMillis(ctl.Time), fmtDuration(MaxControlAge), fmtMillis(e.Time)), false
	}
	return Decision{}, true
}
