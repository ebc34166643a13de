package schema

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
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
	if n := JSONSchemaNames(); len(n) != 11 {
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
// rewrites them). Every example must still parse strictly.
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
	for name, want := range ex {
		got := readTestdata(t, filepath.Join("examples", name+".json"), want)
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/schema/examples/%s.json is stale; rerun with -update", name)
		}
	}
}
