package schema

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// The JSON Schema (draft 2020-12) documents of the wire formats, so that
// issuers' tooling in any language can validate before submitting. They
// describe the structure; the Go code is the reference for what the
// structure cannot say (canonical encoding, valid points, DER keys,
// signatures). Each document's $id is
// https://keycommit.example/schema/v1/<name>.json; they refer to each other
// by relative URL.
//
//go:embed jsonschema/*.json
var jsonSchemas embed.FS

// JSONSchemaNames returns the names of the JSON Schema documents, sorted:
// entry, incident, incident_report, issuer_directory, key_commitment,
// key_set, policy (the answer of GET /v1/policy), policy_params,
// pst_commitment, registration, snapshot, submission.
func JSONSchemaNames() []string {
	ents, err := fs.ReadDir(jsonSchemas, "jsonschema")
	if err != nil {
		panic(err) // embedded at build time
	}
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}

// JSONSchema returns the JSON Schema document called name (see
// JSONSchemaNames).
func JSONSchema(name string) ([]byte, error) {
	b, err := jsonSchemas.ReadFile("jsonschema/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("no JSON Schema named %q", name)
	}
	return b, nil
}
