package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/bundle"
)

// allowed are the methods of every route, by path (a path ending in /
// covers the paths below it): any other method gets 405 with an Allow
// header and a JSON body, not the 404 of unknown paths.
var allowed = map[string]string{
	api.PathCheckpoint:       "GET, HEAD",
	"/tile/":                 "GET, HEAD",
	api.PathInclusionProof:   "GET, HEAD",
	api.PathConsistencyProof: "GET, HEAD",
	api.PathEntries:          "GET, HEAD",
	api.PathIssuers:          "GET, HEAD",
	api.PathKeys:             "GET, HEAD",
	api.PathPolicy:           "GET, HEAD",
	api.PathPolicyPage:       "GET, HEAD",
	api.PathSubmit:           "POST",
	api.PathCheck:            "POST",
	api.PathForward:          "POST",
	api.PathVersion:          "GET, HEAD",
	api.PathMetrics:          "GET, HEAD",
	bundle.BundlePath:        "GET, HEAD",
	bundle.DeltaPath:         "GET, HEAD",
	bundle.IssuerProofPath:   "GET, HEAD",
}

// mountMethodNotAllowed mounts, for each route, the method-less pattern
// that answers the methods the route does not allow (a pattern with a
// method wins over one without).
func (s *Server) mountMethodNotAllowed() {
	for path, methods := range allowed {
		if path == api.PathMetrics && s.cfg.Gatherer == nil {
			continue
		}
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s is not allowed on %s: use %s", r.Method, path, methods))
			s.metrics.requests.WithLabelValues("method", "405").Inc()
		})
	}
}

// issuerPath lets GET /v1/issuers/https://issuer.example through as
// written: ServeMux would clean the origin's "//" and redirect to
// https:/issuer.example. Such a request is routed by the path-escaped
// form of the origin (/v1/issuers/https:%2F%2Fissuer.example, as
// log/client sends it), which names the same origin.
func issuerPath(r *http.Request) *http.Request {
	rest, ok := strings.CutPrefix(r.URL.Path, api.PathIssuers)
	if !ok || !strings.Contains(rest, "//") {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.RawPath = api.PathIssuers + url.PathEscape(rest)
	r2.URL = &u
	return r2
}
