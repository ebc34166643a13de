// Package policy decides which entries the log admits.
//
// Evaluate is a pure, deterministic function of the log state built from
// the entries before a candidate, the candidate entry itself, and the
// parameters in force. The design's Evaluate(state, candidate, time,
// params) maps onto this API as follows:
//
//   - state: a *State, built by calling Apply on every admitted entry in
//     log order (NewState is the state of an empty log);
//   - candidate: the *schema.Entry and the index idx it would take;
//   - time: the entry's Time, assigned by the log (milliseconds since the
//     Unix epoch; never taken from the client);
//   - params: the parameters in force in the state, State.Params(): the
//     body of the latest policy_params entry applied, or DefaultParams
//     before any.
//
// The log runs Evaluate in log order before it appends; every monitor runs
// the same code over the same entries and must reach the same decisions.
// No I/O, no clock, no randomness, and no output depends on map iteration
// order. A State's memory is bounded by the number of issuers and keys,
// not by the number of entries: rolling-window rules keep only the events
// of the last MaxWindow.
//
// Every rule has a name (the Rule constants, listed with their parameters
// in Rules) and every rejection names its rule and its numbers: indexes,
// times, limits and the earliest time the entry would be allowed.
package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/keycommit/keycommit/schema"
)

const day = 24 * 60 * 60

// MaxWindow is the longest rolling window (emergency_window, key_window),
// in seconds, that policy parameters may set. The state remembers
// emergencies and key introductions for that long, so a later change of
// the parameters never needs events it has forgotten.
const MaxWindow = 2 * 365 * day

// DefaultParams returns the parameters in force until a policy_params
// entry says otherwise. Durations are in seconds.
func DefaultParams() schema.PolicyParams {
	return schema.PolicyParams{
		MinRotationInterval:  60 * day,
		EmergencyWindow:      365 * day,
		MaxEmergencies:       2,
		MaxKeysVOPRF:         schema.ChromeMaxKeysVOPRF,
		MaxKeysPMB:           schema.ChromeMaxKeysPMB,
		MaxKeysPrivacyPass:   6,
		KeyWindow:            60 * day,
		MaxKeysPerWindow:     18,
		MaxKeyLifetime:       365 * day,
		MinBatchSize:         1,
		MaxBatchSize:         schema.ChromeMaxBatchSize,
		RegistrationLifetime: 183 * day,
	}
}

// Rule names, as they appear in rejections.
const (
	RuleMalformed      = "malformed"
	RuleLogBinding     = "log-binding"
	RuleOriginControl  = "origin-control"
	RuleSignature      = "signature"
	RulePrev           = "prev"
	RuleTime           = "time"
	RuleRegistration   = "registration"
	RuleBatchSize      = "batch-size"
	RuleKeyCount       = "key-count"
	RuleCommitmentID   = "commitment-id"
	RuleExpiry         = "expiry"
	RuleKeyReuse       = "key-reuse"
	RuleRetiredKey     = "retired-key"
	RuleIncidentReport = "incident-report"
	RuleOpenIncident   = "open-incident"
	RuleEmergencyRate  = "emergency-rate"
	RuleRotation       = "rotation"
	RuleKeyWindow      = "key-window"
	RuleParams         = "params"
	RuleSnapshot       = "snapshot"
)

// RuleInfo describes one rule.
type RuleInfo struct {
	Name string
	// Params are the policy_params members the rule uses.
	Params []string
	// Description says what the rule refuses.
	Description string
}

// Rules lists every rule in the order Evaluate checks them: an entry that
// breaks several rules is refused by the first.
var Rules = []RuleInfo{
	{RuleMalformed, nil, "the entry does not parse, is not canonical, names an origin in a non-canonical spelling, is evaluated at the wrong index, or goes back to entry version 1 after version 2"},
	{RuleLogBinding, nil, "the statement is signed for another log, names no log, or was signed for a dry run (POST /v1/check) and so can never be logged"},
	{RulePrev, nil, "prev is not the leaf hash of the issuer's latest entry (empty for a first registration)"},
	{RuleSignature, nil, "the statement is not signed by the issuer's account key in force (a first registration: by the key it registers)"},
	{RuleTime, nil, "the entry's time is before the issuer's latest entry"},
	{RuleOriginControl, nil, "the first registration of an origin, or a registration after its registration lapsed (a reclaim), without the log's record of a proof of origin control (the HTTPS challenge for this log, origin and account key, checked at most MaxControlAge before the entry)"},
	{RuleRegistration, []string{"registration_lifetime"}, "the issuer is not registered, its registration has lapsed, or an account key change lacks a valid key_proof"},
	{RuleBatchSize, []string{"min_batch_size", "max_batch_size"}, "a PST batchsize outside [min_batch_size, max_batch_size]"},
	{RuleKeyCount, []string{"max_keys_voprf", "max_keys_pmb", "max_keys_privacy_pass"}, "more keys in one commitment than the protocol allows"},
	{RuleCommitmentID, nil, "a PST commitment id not above the issuer's previous id for that protocol version"},
	{RuleExpiry, []string{"max_key_lifetime"}, "a key that has expired, expires more than max_key_lifetime ahead, or (Privacy Pass) starts more than max_key_lifetime ahead"},
	{RuleKeyReuse, nil, "a key already committed by another issuer"},
	{RuleRetiredKey, nil, "a key the issuer committed before and later dropped"},
	{RuleIncidentReport, nil, "an incident report discovered in the future, or a final report that does not answer the issuer's open emergency"},
	{RuleOpenIncident, nil, "an emergency while the issuer's previous emergency has no final report"},
	{RuleEmergencyRate, []string{"max_emergencies", "emergency_window"}, "more than max_emergencies emergencies in a rolling emergency_window"},
	{RuleRotation, []string{"min_rotation_interval"}, "a rotation (a commitment adding a key) less than min_rotation_interval after the previous one, unless an emergency"},
	{RuleKeyWindow, []string{"max_keys_per_window", "key_window"}, "more than max_keys_per_window distinct new keys for one issuer in a rolling key_window"},
	{RuleParams, nil, "policy parameters that are out of range"},
	{RuleSnapshot, nil, "a snapshot whose digest or issuer count differs from the key set of the entries before it"},
}

// Decision is the outcome of Evaluate.
type Decision struct {
	Accept bool
	// Rule names the rule that refused the entry ("" when accepted).
	Rule string
	// Reason says why, with the numbers (indexes, times, limits).
	Reason string
}

func accept() Decision { return Decision{Accept: true} }

func reject(rule, format string, args ...any) Decision {
	return Decision{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Err returns nil for an accepting decision, and an error naming the rule
// and the reason otherwise.
func (d Decision) Err() error {
	if d.Accept {
		return nil
	}
	return &RejectError{Rule: d.Rule, Reason: d.Reason}
}

// RejectError is a refusal by the policy.
type RejectError struct{ Rule, Reason string }

func (e *RejectError) Error() string { return fmt.Sprintf("policy rule %s: %s", e.Rule, e.Reason) }

// ValidateParams checks policy parameters: windows within MaxWindow, key
// and batch limits within what Chrome accepts, lifetimes positive.
func ValidateParams(p schema.PolicyParams) error {
	var errs []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	check(p.MinRotationInterval >= 0, "min_rotation_interval %d is negative", p.MinRotationInterval)
	check(p.EmergencyWindow > 0 && p.EmergencyWindow <= MaxWindow, "emergency_window %d is not in 1..%d seconds", p.EmergencyWindow, MaxWindow)
	check(p.MaxEmergencies >= 0, "max_emergencies %d is negative", p.MaxEmergencies)
	check(p.MaxKeysVOPRF >= 1 && p.MaxKeysVOPRF <= schema.ChromeMaxKeysVOPRF, "max_keys_voprf %d is not in 1..%d (Chrome uses at most %d)", p.MaxKeysVOPRF, schema.ChromeMaxKeysVOPRF, schema.ChromeMaxKeysVOPRF)
	check(p.MaxKeysPMB >= 1 && p.MaxKeysPMB <= schema.ChromeMaxKeysPMB, "max_keys_pmb %d is not in 1..%d (Chrome uses at most %d)", p.MaxKeysPMB, schema.ChromeMaxKeysPMB, schema.ChromeMaxKeysPMB)
	check(p.MaxKeysPrivacyPass >= 1, "max_keys_privacy_pass %d is below 1", p.MaxKeysPrivacyPass)
	check(p.KeyWindow > 0 && p.KeyWindow <= MaxWindow, "key_window %d is not in 1..%d seconds", p.KeyWindow, MaxWindow)
	check(p.MaxKeysPerWindow >= 1, "max_keys_per_window %d is below 1", p.MaxKeysPerWindow)
	check(p.MaxKeyLifetime > 0, "max_key_lifetime %d is not positive", p.MaxKeyLifetime)
	check(p.MinBatchSize >= 1 && p.MinBatchSize <= p.MaxBatchSize && p.MaxBatchSize <= schema.ChromeMaxBatchSize,
		"batch size bounds [%d, %d] are not within [1, %d] (Chrome's maximum)", p.MinBatchSize, p.MaxBatchSize, schema.ChromeMaxBatchSize)
	check(p.RegistrationLifetime > 0, "registration_lifetime %d is not positive", p.RegistrationLifetime)
	// Bound every duration so that times in milliseconds cannot overflow.
	const maxDuration = 100 * 365 * day
	check(p.MinRotationInterval <= maxDuration && p.MaxKeyLifetime <= maxDuration && p.RegistrationLifetime <= maxDuration,
		"durations must be at most %d seconds (100 years)", int64(maxDuration))
	if len(errs) != 0 {
		return fmt.Errorf("invalid policy parameters: %s", strings.Join(errs, "; "))
	}
	return nil
}

// fmtMillis formats a log time (ms since the epoch) in RFC 3339, UTC,
// with milliseconds only when there are any, so that an "allowed from"
// time is never rounded down.
func fmtMillis(ms int64) string {
	t := time.UnixMilli(ms).UTC()
	if ms%1000 != 0 {
		return t.Format("2006-01-02T15:04:05.000Z07:00")
	}
	return t.Format(time.RFC3339)
}

// fmtMicros formats a PST expiry (µs since the epoch).
func fmtMicros(us uint64) string {
	if us > uint64(1<<62) {
		return fmt.Sprintf("%d µs since the epoch", us)
	}
	t := time.UnixMicro(int64(us)).UTC()
	if us%1_000_000 != 0 {
		return t.Format(time.RFC3339Nano)
	}
	return t.Format(time.RFC3339)
}

// fmtDuration formats a duration in milliseconds as days plus the rest:
// "12 days", "59 days 23h59m59s", "1 day", "5h0m0s".
func fmtDuration(ms int64) string {
	neg := ""
	if ms < 0 {
		neg, ms = "-", -ms
	}
	d, rest := ms/(day*1000), ms%(day*1000)
	var parts []string
	switch d {
	case 0:
	case 1:
		parts = append(parts, "1 day")
	default:
		parts = append(parts, fmt.Sprintf("%d days", d))
	}
	if rest != 0 || d == 0 {
		parts = append(parts, (time.Duration(rest) * time.Millisecond).String())
	}
	return neg + strings.Join(parts, " ")
}

// fmtSeconds formats a parameter duration given in seconds.
func fmtSeconds(s int64) string { return fmtDuration(s * 1000) }

func itoa(n int) string     { return fmt.Sprint(n) }
func uitoa(n uint64) string { return fmt.Sprint(n) }
