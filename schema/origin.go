package schema

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// NormalizeOrigin returns the canonical form of an issuer's HTTPS origin:
// scheme "https", lower-case host, no default port, no path, query,
// fragment or user information. Anything that is not an HTTPS origin is an
// error that says what is wrong.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("issuer origin %q: %w", s, err)
	}
	switch {
	case !strings.EqualFold(u.Scheme, "https"):
		return "", fmt.Errorf("issuer origin %q: scheme must be https", s)
	case u.Host == "":
		return "", fmt.Errorf("issuer origin %q: no host", s)
	case u.User != nil:
		return "", fmt.Errorf("issuer origin %q: user information is not allowed", s)
	case u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("issuer origin %q: an origin has no path", s)
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("issuer origin %q: an origin has no query", s)
	case u.Fragment != "":
		return "", fmt.Errorf("issuer origin %q: an origin has no fragment", s)
	}
	host := strings.ToLower(u.Hostname())
	if strings.HasSuffix(host, ".") {
		return "", fmt.Errorf("issuer origin %q: host must not end in a dot", s)
	}
	port := u.Port()
	if port == "443" {
		port = ""
	}
	if port != "" {
		return "https://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") { // IPv6 literal
		return "https://[" + host + "]", nil
	}
	return "https://" + host, nil
}

func validateContact(c string) error {
	u, err := url.Parse(c)
	if err != nil || (u.Scheme != "mailto" && u.Scheme != "https") || (u.Opaque == "" && u.Host == "") {
		return fmt.Errorf("contact %q must be a mailto: or https: URI", c)
	}
	return nil
}
