package main

// --json: every command that prints a result can print it as one JSON
// object instead, of a documented shape (a JSON Schema under
// schema/jsonschema/cli/, named by the command's "json-schema"
// annotation). A command that fails under --json prints a cli/error
// object on stdout (and its message on stderr, as without --json) and
// exits with the same code as without it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/spf13/cobra"
)

// jsonSchemaAnnotation names, on a command with --json, the JSON Schema
// (schema/jsonschema/cli/<name>.json) its output follows.
const jsonSchemaAnnotation = "json-schema"

// addJSONFlag adds --json to cmd, whose output follows the JSON Schema
// schema/jsonschema/cli/<schema>.json.
func addJSONFlag(cmd *cobra.Command, p *bool, schema string) {
	cmd.Flags().BoolVar(p, "json", false, "print the result as one JSON object (schema/jsonschema/cli/"+schema+".json); errors too (cli/error.json), with the same exit codes")
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[jsonSchemaAnnotation] = schema
}

// writeJSONOut writes v as indented JSON and a newline.
func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonError is what a command run with --json prints on stdout when it
// fails (schema/jsonschema/cli/error.json).
type jsonError struct {
	// Error is the message also printed on stderr.
	Error string `json:"error"`
	// ExitCode is the process's exit code.
	ExitCode int `json:"exit_code"`
	// Rule and Reason are set when the log's policy refused a submission.
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Check names the failed verification check (keycommit verify).
	Check string `json:"check,omitempty"`
}

// newJSONError describes err, the error a command returned.
func newJSONError(err error) *jsonError {
	je := &jsonError{Error: err.Error(), ExitCode: exitCode(err)}
	if rej, ok := client.Reject(err); ok {
		je.Rule, je.Reason = rej.Rule, rej.Reason
	}
	var re *refusedError
	if errors.As(err, &re) {
		je.Rule, je.Reason = re.rule, re.reason
	}
	je.Check = string(verify.CheckOf(err))
	return je
}

// refusedError is a policy refusal (exit code 3) with its rule.
type refusedError struct {
	msg, rule, reason string
}

func (e *refusedError) Error() string { return e.msg }

// wantsJSON reports whether cmd was run with --json.
func wantsJSON(cmd *cobra.Command) bool {
	if cmd == nil {
		return false
	}
	f := cmd.Flags().Lookup("json")
	return f != nil && f.Value.String() == "true"
}

// printed marks an error whose result the command already printed as
// JSON (e.g. a policy check's problems): main prints no error object.
type printed struct{ error }

func (p printed) Unwrap() error { return p.error }

// humanSeconds writes a duration of s seconds for people: "365 days",
// "1 day", "12 hours", "90 minutes", "45 seconds" (the largest unit that
// divides it), never Go's "8760h0m0s".
func humanSeconds(s int64) string {
	for _, u := range []struct {
		n    int64
		name string
	}{{24 * 3600, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}} {
		if s%u.n == 0 {
			n := s / u.n
			if n == 1 || n == -1 {
				return fmt.Sprintf("%d %s", n, u.name)
			}
			return fmt.Sprintf("%d %ss", n, u.name)
		}
	}
	return fmt.Sprintf("%d seconds", s)
}
