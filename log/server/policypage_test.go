package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/log/server"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// paramsLog is a server.Log that only answers its policy parameters.
type paramsLog struct{ p schema.PolicyParams }

func (l paramsLog) Submit(context.Context, *schema.Submission) (*sequencer.Result, error) {
	panic("not used")
}
func (l paramsLog) Check(context.Context, *schema.Submission) policy.Decision { panic("not used") }
func (l paramsLog) Status(string) (*policy.IssuerStatus, bool)                { return nil, false }
func (l paramsLog) Params() schema.PolicyParams                               { return l.p }

func policyServer(t *testing.T, p schema.PolicyParams) string {
	t.Helper()
	s, err := server.New(server.Config{Reader: storage.NewMemory(), Log: paramsLog{p}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestPolicyRequirements: two logs with different policy parameters
// serve, at GET /v1/policy, their parameters and the requirements for
// inclusion generated from them, valid under schema/jsonschema/policy.json;
// GET /v1/policy.html shows the same requirements as a page; the two
// logs' requirements and pages differ where their parameters do.
// log/client reads the parameters and requirements, and refuses an answer
// missing a parameter.
func TestPolicyRequirements(t *testing.T) {
	a := policy.DefaultParams()
	b := policy.DefaultParams()
	b.MinRotationInterval, b.MaxKeysVOPRF, b.MaxEmergencies = 30*24*3600, 4, 1
	sch := policySchema(t)
	var pages [][]byte
	var reqs [][]string
	for _, p := range []schema.PolicyParams{a, b} {
		base := policyServer(t, p)
		resp, body := getBody(t, base+api.PathPolicy)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("GET %s: %s %v", api.PathPolicy, resp.Status, resp.Header)
		}
		var got api.Policy
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.PolicyParams != p || !slices.Equal(got.Requirements, policy.RequirementTexts(p)) {
			t.Errorf("GET %s = %s, want the parameters and their requirements", api.PathPolicy, body)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("GET %s is not valid under policy.json: %v", api.PathPolicy, err)
		}
		for _, broken := range []map[string]any{with(inst, "not-in-the-schema", 1), without(inst, "requirements"), without(inst, "max_keys_pmb")} {
			if sch.Validate(broken) == nil {
				t.Errorf("policy.json accepts a broken body %v", broken)
			}
		}
		c, err := client.New(base, testVKey(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := c.PolicyDocument(t.Context())
		if err != nil || doc.PolicyParams != p || !slices.Equal(doc.Requirements, got.Requirements) {
			t.Errorf("client PolicyDocument = %+v, %v", doc, err)
		}
		if pp, err := c.Policy(t.Context()); err != nil || *pp != p {
			t.Errorf("client Policy = %+v, %v", pp, err)
		}

		resp, page := getBody(t, base+api.PathPolicyPage)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("GET %s: %s %v", api.PathPolicyPage, resp.Status, resp.Header)
		}
		for _, r := range policy.Requirements(p) {
			if !bytes.Contains(page, []byte(template.HTMLEscapeString(r.Text))) {
				t.Errorf("GET %s does not show %q", api.PathPolicyPage, r.Text)
			}
		}
		if !bytes.Contains(page, []byte(`href="/v1/policy"`)) {
			t.Errorf("GET %s does not link %s", api.PathPolicyPage, api.PathPolicy)
		}
		pages, reqs = append(pages, page), append(reqs, got.Requirements)
	}
	for _, s := range []string{"at most once every 60 days", "at most 6 keys per PST VOPRF", "at most 2 emergencies"} {
		if !strings.Contains(strings.Join(reqs[0], " "), s) || !bytes.Contains(pages[0], []byte(s)) {
			t.Errorf("the default log does not say %q", s)
		}
	}
	for _, s := range []string{"at most once every 30 days", "at most 4 keys per PST VOPRF", "at most 1 emergency in"} {
		if !strings.Contains(strings.Join(reqs[1], " "), s) || !bytes.Contains(pages[1], []byte(s)) {
			t.Errorf("the second log does not say %q", s)
		}
	}
	if bytes.Equal(pages[0], pages[1]) || slices.Equal(reqs[0], reqs[1]) {
		t.Error("logs with different parameters publish the same requirements")
	}
}

// TestPolicyClientCompatibility: log/client reads the answer of a log
// older than the requirements (parameters only) and ignores members it
// does not know, but refuses an answer missing a parameter.
func TestPolicyClientCompatibility(t *testing.T) {
	p := policy.DefaultParams()
	full, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(full, &m); err != nil {
		t.Fatal(err)
	}
	later, _ := json.Marshal(with(m, "something_new", []int{1}))
	missing, _ := json.Marshal(without(m, "key_window"))
	for _, c := range []struct {
		name string
		body []byte
		ok   bool
	}{
		{"an older log", full, true},
		{"a later log", later, true},
		{"a parameter missing", missing, false},
		{"requirements not strings", []byte(strings.TrimSuffix(string(full), "}") + `,"requirements":[1]}`), false},
	} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(c.body)
		}))
		cl, err := client.New(ts.URL, testVKey(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cl.Policy(t.Context())
		ts.Close()
		if c.ok && (err != nil || *got != p) {
			t.Errorf("%s: Policy = %+v, %v", c.name, got, err)
		}
		if !c.ok && err == nil {
			t.Errorf("%s: Policy accepted %s", c.name, c.body)
		}
	}
}

func testVKey(t *testing.T) string {
	t.Helper()
	_, vkey, err := checkpoint.GenerateKey("keycommit.example/policy-test")
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// policySchema compiles schema/jsonschema/policy.json (and the documents
// it refers to).
func policySchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	const base = "https://keycommit.example/schema/v1/"
	for _, name := range schema.JSONSchemaNames() {
		b, err := schema.JSONSchema(name)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(base+name+".json", doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile(base + "policy.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func with(v any, k string, x any) map[string]any {
	out := map[string]any{k: x}
	for kk, vv := range v.(map[string]any) {
		out[kk] = vv
	}
	return out
}

func without(v any, k string) map[string]any {
	out := map[string]any{}
	for kk, vv := range v.(map[string]any) {
		if kk != k {
			out[kk] = vv
		}
	}
	return out
}
