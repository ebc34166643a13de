package policy

import (
	"fmt"

	"github.com/keycommit/keycommit/schema"
)

// Requirement is one published requirement for inclusion: what an issuer
// must do for the log to admit its entries, as a sentence with the
// numbers of the parameters in force, and the rules that enforce it.
type Requirement struct {
	// Rules are the names of the rules (see Rules) that refuse an entry
	// breaking the requirement.
	Rules []string
	// Text is the requirement as one English sentence.
	Text string
}

// Requirements returns the log's requirements for inclusion (the PST
// privacy framework's "published requirements for inclusion") under the
// parameters p: what Evaluate checks, stated for issuers, with p's
// numbers. They depend on p only; two logs with the same parameters
// publish the same requirements.
func Requirements(p schema.PolicyParams) []Requirement {
	var out []Requirement
	add := func(text string, rules ...string) {
		out = append(out, Requirement{Rules: rules, Text: text})
	}
	add(fmt.Sprintf("Register the issuer's origin (an HTTPS origin in its canonical spelling: lower case, IDNA A-labels, default port elided) with an Ed25519 account key before submitting anything else for it; the registration lapses %s after it is logged unless a new registration entry renews it, and no key commitment is admitted while it has lapsed.",
		fmtSeconds(p.RegistrationLifetime)), RuleRegistration, RuleMalformed)
	add(fmt.Sprintf("Prove control of the origin for a first registration and for a registration after a lapse: serve the challenge that binds this log, the origin and the account key at https://<origin>%s<hex SHA-256 of the challenge>; the log fetches it over HTTPS, and the registration is admitted only with the log's record of that check from at most %s before it.",
		schema.ChallengePath, fmtDuration(MaxControlAge)), RuleOriginControl)
	add("Sign every statement with the account key in force (a first registration with the key it registers), name this log in it, and name as prev the leaf hash of the issuer's latest entry; a statement signed for another log or for a dry run is never admitted, and changing the account key needs a proof of possession of the new key.",
		RuleSignature, RuleLogBinding, RulePrev, RuleRegistration)
	add(fmt.Sprintf("Submit either a PST key commitment exactly as Chrome parses it, with keys valid for their protocol (VOPRF: a 4-byte key id and an uncompressed P-384 point; PMB: a key id and three points), or an RFC 9578 issuer directory; a PST batchsize must be between %d and %d, and each PST commitment id must be above the issuer's previous id for that protocol version.",
		p.MinBatchSize, p.MaxBatchSize), RuleMalformed, RuleBatchSize, RuleCommitmentID)
	add(fmt.Sprintf("Commit at most %s per PST VOPRF commitment, %s per PST PMB commitment and %s per Privacy Pass issuer directory.",
		plural(p.MaxKeysVOPRF, "key"), plural(p.MaxKeysPMB, "key"), plural(p.MaxKeysPrivacyPass, "token-key")), RuleKeyCount)
	add(fmt.Sprintf("Add at most %s not in the issuer's previous commitment in any rolling %s.",
		plural(p.MaxKeysPerWindow, "new key"), fmtSeconds(p.KeyWindow)), RuleKeyWindow)
	add(fmt.Sprintf("Give every PST key an expiry after the entry's time and at most %s after it; a Privacy Pass key's not-before, when given, must be at most %s after the entry's time.",
		fmtSeconds(p.MaxKeyLifetime), fmtSeconds(p.MaxKeyLifetime)), RuleExpiry)
	add("Never commit a key another issuer has committed, nor bring back a key the issuer itself dropped from an earlier commitment.",
		RuleKeyReuse, RuleRetiredKey)
	if p.MinRotationInterval > 0 {
		add(fmt.Sprintf("Rotate (submit a commitment that adds a key) at most once every %s; the issuer's first commitment counts as a rotation, and a commitment that only removes keys is not one.",
			fmtSeconds(p.MinRotationInterval)), RuleRotation)
	} else {
		add("Rotations (commitments that add a key) are not rate-limited: min_rotation_interval is 0.", RuleRotation)
	}
	if p.MaxEmergencies > 0 {
		faster := "A rotation sooner than that"
		if p.MinRotationInterval == 0 {
			faster = "A rotation"
		}
		add(fmt.Sprintf("%s is admitted only as an emergency, with a preliminary incident report attached (summary, discovery time not after the entry, impact, root cause, remediation and the URL of the public report); at most %s in any rolling %s, and none while the issuer's previous emergency has no final report (an incident_report entry answering it).",
			faster, plural(p.MaxEmergencies, "emergency"), fmtSeconds(p.EmergencyWindow)), RuleIncidentReport, RuleOpenIncident, RuleEmergencyRate)
	} else {
		add("Emergency rotations are not admitted (max_emergencies is 0), so no rotation is admitted sooner than the minimum interval.", RuleEmergencyRate)
	}
	return out
}

// Published is what a log publishes at GET /v1/policy: the members of
// the policy parameters in force (as in a policy_params entry) and
// Requirements, RequirementTexts of them. Requirements is absent from logs
// older than it.
type Published struct {
	schema.PolicyParams
	Requirements []string `json:"requirements"`
}

// Publish returns the published form of p.
func Publish(p schema.PolicyParams) Published {
	return Published{PolicyParams: p, Requirements: RequirementTexts(p)}
}

// RequirementTexts returns the sentences of Requirements(p).
func RequirementTexts(p schema.PolicyParams) []string {
	rs := Requirements(p)
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Text
	}
	return out
}

// plural says n things ("1 key", "6 keys", "2 emergencies").
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	if thing == "emergency" {
		return fmt.Sprintf("%d emergencies", n)
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
