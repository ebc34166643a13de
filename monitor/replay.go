package monitor

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// replayer re-runs the policy over a log's entries in order, as the log
// must have, and turns every disagreement into an alert.
type replayer struct {
	origin  string
	st      *policy.State
	keys    *accountKeys // updated with every account key st takes on
	watched func(issuer string, idx int64) bool
	now     func() time.Time
	alerts  []Alert
	seen    map[string]bool // alert keys raised in this batch
}

func (r *replayer) raise(a Alert) {
	a.Log = r.origin
	a.Time = r.now().UTC()
	k := a.key()
	if r.seen[k] {
		return
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[k] = true
	r.alerts = append(r.alerts, a)
}

// takeAlerts returns and forgets the alerts raised so far.
func (r *replayer) takeAlerts() []Alert {
	a := r.alerts
	r.alerts, r.seen = nil, nil
	return a
}

// kindOfRule maps a policy rule to an alert kind.
func kindOfRule(rule string) string {
	switch rule {
	case policy.RuleSnapshot:
		return KindSnapshot
	case policy.RuleTime:
		return KindTimestamp
	}
	return KindPolicy
}

// entry replays entry idx: raw is its bytes, leaf its leaf hash, e, perr
// the result of schema.ParseEntry(raw), and verified the key e's
// signature was already checked under, or nil (see preverify).
func (r *replayer) entry(idx int64, leaf tlog.Hash, e *schema.Entry, perr error, verified ed25519.PublicKey) error {
	if int64(r.st.Size()) != idx {
		return fmt.Errorf("replaying entry %d on a policy state of %d entries", idx, r.st.Size())
	}
	if perr != nil {
		kind, rule := KindMalformed, RuleEntryFormat
		if errors.Is(perr, schema.ErrNotCanonical) {
			kind, rule = KindNonCanonical, RuleCanonical
		}
		r.raise(Alert{Kind: kind, Index: index(idx), Rule: rule,
			Message: fmt.Sprintf("the log admitted entry %d, which is not a valid canonical entry: %v", idx, perr)})
		return r.skip(idx)
	}
	watched := e.Kind.IssuerSigned() && r.watched != nil && r.watched(e.Issuer, idx)
	var before *policy.Issuer
	if e.Kind.IssuerSigned() {
		if lastIdx, lastTime, ok := r.st.LastEntry(e.Issuer); ok && e.Time < lastTime {
			r.raise(Alert{Kind: KindTimestamp, Index: index(idx), Rule: policy.RuleTime, Issuer: e.Issuer,
				Message: fmt.Sprintf("entry %d of %s has log time %s, before that issuer's entry %d at %s",
					idx, e.Issuer, fmtMillis(e.Time), lastIdx, fmtMillis(lastTime))})
		}
		if watched {
			if is, ok := r.st.Issuer(e.Issuer); ok {
				before = &is
			}
		}
	}
	d := policy.EvaluatePreverified(r.st, e, uint64(idx), verified)
	if e.Kind == schema.KindSnapshot && !d.Accept {
		// Evaluate accepts a snapshot only if it is the key set of the
		// entries before it; otherwise say which issuers that key set
		// holds (the policy's own refusal then adds nothing).
		r.checkSnapshot(idx, e)
	}
	if !d.Accept {
		r.raise(Alert{Kind: kindOfRule(d.Rule), Index: index(idx), Rule: d.Rule, Issuer: e.Issuer,
			Message: fmt.Sprintf("the log admitted entry %d (%s) but the policy refuses it: %s", idx, e.Kind, d.Reason)})
	}
	if err := r.st.Apply(e, uint64(idx), leaf); err != nil {
		r.raise(Alert{Kind: KindPolicy, Index: index(idx), Rule: "apply", Issuer: e.Issuer,
			Message: fmt.Sprintf("the log admitted entry %d (%s), which cannot be applied to the state before it: %v", idx, e.Kind, err)})
		return r.skip(idx)
	}
	if e.Kind == schema.KindRegistration && r.keys != nil {
		r.keys.set(e.Issuer, r.st.AccountKey(e.Issuer))
	}
	if watched {
		r.checkWatch(idx, e, before)
	}
	return nil
}

// skip advances the policy state past an entry that cannot be applied, by
// applying an entry that re-states the parameters in force: the entry
// counts as a no-op for every rule.
func (r *replayer) skip(idx int64) error {
	p := r.st.Params()
	e, err := schema.NewLogEntry(schema.KindPolicyParams, 0, &p)
	if err != nil {
		return fmt.Errorf("couldn't step over entry %d: %w", idx, err)
	}
	if err := r.st.Apply(e, uint64(idx), tlog.Hash{}); err != nil {
		return fmt.Errorf("couldn't step over entry %d: %w", idx, err)
	}
	return nil
}

// checkSnapshot recomputes the key set as of the snapshot's time from the
// entries before it.
func (r *replayer) checkSnapshot(idx int64, e *schema.Entry) {
	body, err := e.ParsedBody()
	if err != nil {
		return // reported by Evaluate
	}
	snap := body.(*schema.Snapshot)
	ks := r.st.KeySet(e.Time)
	form, want := snap.Commitment()
	d, err := snap.KeySetCommitment(ks)
	if err != nil {
		r.raise(Alert{Kind: KindSnapshot, Index: index(idx), Rule: policy.RuleSnapshot,
			Message: fmt.Sprintf("couldn't recompute the key set for snapshot %d: %v", idx, err)})
		return
	}
	n := len(ks.PST) + len(ks.PrivacyPass)
	if snap.Issuers == n && bytes.Equal(want, d) {
		return
	}
	var origins []string
	for o := range ks.PST {
		origins = append(origins, o)
	}
	for o := range ks.PrivacyPass {
		origins = append(origins, o)
	}
	sort.Strings(origins)
	list := strings.Join(origins, ", ")
	if len(origins) > 20 {
		list = strings.Join(origins[:20], ", ") + ", …"
	}
	r.raise(Alert{Kind: KindSnapshot, Index: index(idx), Rule: policy.RuleSnapshot,
		Message: fmt.Sprintf("snapshot %d says %d issuers with %s %x; the entries before it give %d issuers (%s) with %s %x",
			idx, snap.Issuers, form, want, n, list, form, d)})
}

// checkWatch raises one alert when the entry changed a watched issuer's
// committed keys or account key (or registered it).
func (r *replayer) checkWatch(idx int64, e *schema.Entry, before *policy.Issuer) {
	after, ok := r.st.Issuer(e.Issuer)
	if !ok {
		return
	}
	switch e.Kind {
	case schema.KindRegistration:
		switch {
		case before != nil && len(after.Reclaims) > len(before.Reclaims):
			rc := after.Reclaims[len(after.Reclaims)-1]
			proof := "no proof of origin control recorded"
			if after.Control != nil {
				proof = fmt.Sprintf("proof of origin control: %s %s checked at %s", after.Control.Method, after.Control.URL, time.UnixMilli(after.Control.Time).UTC().Format(time.RFC3339))
			}
			r.raise(Alert{Kind: KindReclaim, Index: index(idx), Rule: RuleWatch, Issuer: e.Issuer,
				Message: fmt.Sprintf("watched origin %s was RECLAIMED at entry %d by a new account key %x after its registration at entry %d lapsed (previous account key %x; %s)",
					e.Issuer, idx, []byte(after.AccountKey), rc.Lapsed, rc.PreviousKey, proof)})
		case before == nil:
			r.raise(Alert{Kind: KindAccountKeyChange, Index: index(idx), Rule: RuleWatch, Issuer: e.Issuer,
				Message: fmt.Sprintf("watched origin %s was registered at entry %d with account key %x", e.Issuer, idx, []byte(after.AccountKey))})
		case !bytes.Equal(before.AccountKey, after.AccountKey):
			r.raise(Alert{Kind: KindAccountKeyChange, Index: index(idx), Rule: RuleWatch, Issuer: e.Issuer,
				Message: fmt.Sprintf("watched origin %s changed its account key at entry %d from %x to %x", e.Issuer, idx, []byte(before.AccountKey), []byte(after.AccountKey))})
		}
	case schema.KindKeyCommitment:
		var old []schema.CommittedKey
		if before != nil {
			old = before.Keys
		}
		added, removed := diffKeys(old, after.Keys)
		if len(added) == 0 && len(removed) == 0 {
			return
		}
		r.raise(Alert{Kind: KindKeyChange, Index: index(idx), Rule: RuleWatch, Issuer: e.Issuer,
			Message: fmt.Sprintf("watched origin %s changed its keys at entry %d: added [%s], removed [%s]",
				e.Issuer, idx, strings.Join(added, " "), strings.Join(removed, " "))})
	}
}

func diffKeys(old, cur []schema.CommittedKey) (added, removed []string) {
	in := func(ks []schema.CommittedKey, id schema.KeyID) bool {
		for _, k := range ks {
			if k.ID == id {
				return true
			}
		}
		return false
	}
	for _, k := range cur {
		if !in(old, k.ID) {
			added = append(added, k.ID.Short())
		}
	}
	for _, k := range old {
		if !in(cur, k.ID) {
			removed = append(removed, k.ID.Short())
		}
	}
	return added, removed
}

func fmtMillis(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
