package server

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"reflect"
	"strings"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

func (s *Server) policy(w http.ResponseWriter, r *http.Request) error {
	if err := s.needLog(); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, policy.Publish(s.cfg.Log.Params()))
	return nil
}

// policyPageData fills policyPage.
type policyPageData struct {
	Origin       string
	Requirements []policy.Requirement
	Params       []paramRow
	JSON         string
}

type paramRow struct{ Name, Value string }

// policyPage is GET /v1/policy.html: the requirements for inclusion and
// the parameters they come from, for people; no script, no external
// resource.
var policyPage = template.Must(template.New("policy").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Requirements for inclusion{{with .Origin}} · {{.}}{{end}}</title>
<style>
body{margin:0 auto;max-width:48rem;padding:1rem;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
li{margin-bottom:.5rem}.muted{opacity:.75}
table{border-collapse:collapse}td,th{text-align:left;padding:.25rem .75rem .25rem 0;border-bottom:1px solid #8884}
</style>
</head>
<body>
<h1>Requirements for inclusion{{with .Origin}} in <code>{{.}}</code>{{end}}</h1>
<p>What an issuer must do for this log to admit its entries, generated from the policy parameters in force. The log and every monitor apply exactly these rules; a refused submission names the rule and its numbers. JSON: <a href="{{.JSON}}" rel="alternate" type="application/json">{{.JSON}}</a>.</p>
<ol>
{{range .Requirements}}<li>{{.Text}} <span class="muted">(rule{{if gt (len .Rules) 1}}s{{end}} {{range $i, $r := .Rules}}{{if $i}}, {{end}}<code>{{$r}}</code>{{end}})</span></li>
{{end}}</ol>
<h2>Policy parameters in force</h2>
<p>Durations in seconds; each value is logged in a <code>policy_params</code> entry (or is the default before any).</p>
<table>
<thead><tr><th>parameter</th><th>value</th></tr></thead>
<tbody>
{{range .Params}}<tr><td><code>{{.Name}}</code></td><td>{{.Value}}</td></tr>
{{end}}</tbody>
</table>
</body>
</html>
`))

func (s *Server) policyHTML(w http.ResponseWriter, r *http.Request) error {
	if err := s.needLog(); err != nil {
		return err
	}
	p := s.cfg.Log.Params()
	d := policyPageData{Requirements: policy.Requirements(p), JSON: api.PathPolicy}
	// The log's origin, from its latest checkpoint, when it has one.
	if _, note, err := s.cfg.Reader.Checkpoint(r.Context()); err == nil {
		d.Origin, _, _ = strings.Cut(string(note), "\n")
	}
	d.Params = paramRows(p)
	var b bytes.Buffer
	if err := policyPage.Execute(&b, d); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.Write(b.Bytes())
	return nil
}

// paramRows lists p's members as JSON names them, in their order.
func paramRows(p schema.PolicyParams) []paramRow {
	v := reflect.ValueOf(p)
	var out []paramRow
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		out = append(out, paramRow{Name: name, Value: fmt.Sprint(v.Field(i).Interface())})
	}
	return out
}
