package schema

import (
	"fmt"
	"net/url"
	"strings"
)

// IncidentReport describes why an issuer needed an emergency rotation. A
// preliminary report travels with the emergency commitment; the final
// report is logged later as its own incident_report entry.
type IncidentReport struct {
	Summary string `json:"summary"`
	// Discovered is when the issuer discovered the incident, in
	// milliseconds since the Unix epoch.
	Discovered  int64  `json:"discovered"`
	Impact      string `json:"impact"`
	RootCause   string `json:"root_cause"`
	Remediation string `json:"remediation"`
	// URL is where the report is published (https).
	URL string `json:"url"`
}

// Validate checks that every field is present and the URL is https.
func (r *IncidentReport) Validate() error {
	for name, v := range map[string]string{"summary": r.Summary, "impact": r.Impact,
		"root_cause": r.RootCause, "remediation": r.Remediation} {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("incident report: %s is empty", name)
		}
	}
	if r.Discovered <= 0 {
		return fmt.Errorf("incident report: discovered must be a positive time in milliseconds")
	}
	u, err := url.Parse(r.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("incident report: url %q must be an https URL where the report is published", r.URL)
	}
	return nil
}
