package schema

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestJSONSchemaMatchesGoTypes: every Go field of a wire type is a property
// of its JSON Schema document and every property is a Go field; the
// required properties are the fields without omitempty; objects allow no
// other members.
func TestJSONSchemaMatchesGoTypes(t *testing.T) {
	for _, c := range []struct {
		doc  string
		path []string // to the object schema inside the document
		typ  reflect.Type
	}{
		{"entry", nil, reflect.TypeFor[Entry]()},
		{"submission", nil, reflect.TypeFor[Submission]()},
		{"registration", nil, reflect.TypeFor[Registration]()},
		{"key_commitment", nil, reflect.TypeFor[KeyCommitment]()},
		{"incident_report", nil, reflect.TypeFor[IncidentFinal]()},
		{"incident", nil, reflect.TypeFor[IncidentReport]()},
		{"policy_params", nil, reflect.TypeFor[PolicyParams]()},
		{"snapshot", nil, reflect.TypeFor[Snapshot]()},
		{"key_set", nil, reflect.TypeFor[KeySet]()},
		{"issuer_directory", nil, reflect.TypeFor[IssuerDirectory]()},
		{"issuer_directory", []string{"properties", "token-keys", "items"}, reflect.TypeFor[TokenKey]()},
		{"pst_commitment", []string{"$defs", "version"}, reflect.TypeFor[PSTVersionCommitment]()},
		{"pst_commitment", []string{"$defs", "key"}, reflect.TypeFor[PSTKey]()},
	} {
		b, err := JSONSchema(c.doc)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", c.doc, err)
		}
		if doc["$id"] != "https://keycommit.example/schema/v1/"+c.doc+".json" {
			t.Errorf("%s: $id %v", c.doc, doc["$id"])
		}
		obj := doc
		for _, p := range c.path {
			obj = obj[p].(map[string]any)
		}
		props := obj["properties"].(map[string]any)
		var gotProps, wantProps, gotReq, wantReq []string
		for p := range props {
			gotProps = append(gotProps, p)
		}
		if r, ok := obj["required"].([]any); ok {
			for _, p := range r {
				gotReq = append(gotReq, p.(string))
			}
		}
		for name, omit := range jsonFields(c.typ) {
			wantProps = append(wantProps, name)
			if !omit {
				wantReq = append(wantReq, name)
			}
		}
		sort.Strings(gotProps)
		sort.Strings(wantProps)
		sort.Strings(gotReq)
		sort.Strings(wantReq)
		if !reflect.DeepEqual(gotProps, wantProps) {
			t.Errorf("%s %v: properties %v, Go fields %v", c.doc, c.path, gotProps, wantProps)
		}
		if c.typ != reflect.TypeFor[KeyCommitment]() && !reflect.DeepEqual(gotReq, wantReq) {
			t.Errorf("%s %v: required %v, Go fields without omitempty %v", c.doc, c.path, gotReq, wantReq)
		}
		if obj["additionalProperties"] != false {
			t.Errorf("%s %v: additionalProperties is not false", c.doc, c.path)
		}
	}
	if n := JSONSchemaNames(); len(n) != 12 {
		t.Errorf("JSONSchemaNames() = %v", n)
	}
	if _, err := JSONSchema("nope"); err == nil {
		t.Error("JSONSchema of an unknown name")
	}
}

// jsonFields returns the JSON member names of t's exported fields (embedded
// structs flattened) and whether each is omitempty.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		if f.Anonymous {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		out[name] = strings.Contains(opts, "omitempty")
	}
	return out
}

// TestJSONSchemaExamples keeps testdata/schema/examples in step with the
// code: one entry of every kind, the submission of every issuer-signed
// one, and a key set, each named <schema>-<what>.json for validators in
// other languages (go test ./schema -run TestJSONSchemaExamples -update
// rewrites them). Every example must still parse strictly and be valid
// under the JSON Schema its name starts with (draft 2020-12, checked by
// santhosh-tekuri/jsonschema with formats asserted); and each example
// broken two ways (a member the schema does not know added, a required
// member removed) must fail that schema, so the validation can fail.
func TestJSONSchemaExamples(t *testing.T) {
	ex := map[string][]byte{}
	for name, b := range testEntries(t) {
		e, err := ParseEntry(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ex["entry-"+name] = b
		if e.Kind.IssuerSigned() {
			sb, err := canonicalJSON(e.Submission())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseSubmission(sb); err != nil {
				t.Fatalf("%s submission: %v", name, err)
			}
			ex["submission-"+name] = sb
		}
	}
	ks := &KeySet{PST: map[string]PSTCommitment{"https://a.example": testPST()}, PrivacyPass: map[string]IssuerDirectory{"https://b.example": *testDirectory()}}
	kb, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseKeySet(kb); err != nil {
		t.Fatal(err)
	}
	ex["key_set-example"] = kb
	compile := compileJSONSchemas(t)
	for name, want := range ex {
		got := readTestdata(t, filepath.Join("examples", name+".json"), want)
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/schema/examples/%s.json is stale; rerun with -update", name)
		}
		doc, _, _ := strings.Cut(name, "-")
		sch := compile(doc)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(got))
		if err != nil {
			t.Fatalf("testdata/schema/examples/%s.json: %v", name, err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("testdata/schema/examples/%s.json is not valid under %s.json: %v", name, doc, err)
		}
		obj := inst.(map[string]any)
		for what, broken := range map[string]map[string]any{
			"an unknown member added":   with(obj, "not-in-the-schema", true),
			"a required member removed": without(obj, requiredMember(t, doc)),
		} {
			if err := sch.Validate(broken); err == nil {
				t.Errorf("%s.json with %s is valid under %s.json", name, what, doc)
			}
		}
	}
}

// compileJSONSchemas loads every schema document (they refer to each
// other by relative URL) and returns a compiler of one by name.
func compileJSONSchemas(t *testing.T) func(name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const base = "https://keycommit.example/schema/v1/"
	for _, name := range JSONSchemaNames() {
		b, err := JSONSchema(name)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s.json: %v", name, err)
		}
		if err := c.AddResource(base+name+".json", doc); err != nil {
			t.Fatalf("%s.json: %v", name, err)
		}
	}
	return func(name string) *jsonschema.Schema {
		t.Helper()
		s, err := c.Compile(base + name + ".json")
		if err != nil {
			t.Fatalf("JSON Schema %s.json: %v", name, err)
		}
		return s
	}
}

// requiredMember returns the first required member of schema doc's top
// level object.
func requiredMember(t *testing.T, doc string) string {
	t.Helper()
	b, err := JSONSchema(doc)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(b, &s); err != nil || len(s.Required) == 0 {
		t.Fatalf("%s.json: no required members (%v)", doc, err)
	}
	return s.Required[0]
}

func with(obj map[string]any, k string, v any) map[string]any {
	out := map[string]any{k: v}
	for k, v := range obj {
		out[k] = v
	}
	return out
}

func without(obj map[string]any, k string) map[string]any {
	out := map[string]any{}
	for kk, v := range obj {
		if kk != k {
			out[kk] = v
		}
	}
	return out
}
