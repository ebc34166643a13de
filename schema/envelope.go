package schema

import (
	"fmt"
	"strings"
)

// submissionMembers are the members a submission may have, spelled
// exactly so.
var submissionMembers = []string{"kind", "log", "issuer", "prev", "body", "dry_run", "sig"}

// checkMembers refuses b unless it is one JSON object whose member names
// are all among names, spelled exactly so, each at most once, and no
// object inside it has a member twice. encoding/json alone would match
// "KIND" to kind and let the last of two "kind" members win, so two
// readers of the same bytes could see different statements.
func checkMembers(b []byte, names []string) error {
	v, err := parseJSONTree(b)
	if err != nil {
		return err
	}
	if v.kind != 'o' {
		return fmt.Errorf("want a JSON object, got %s", v.typeName())
	}
	for _, m := range v.obj {
		known := false
		for _, n := range names {
			if m.name == n {
				known = true
				break
			}
			if strings.EqualFold(m.name, n) {
				return fmt.Errorf("member %q: member names are case-sensitive; want %q", m.name, n)
			}
		}
		if !known {
			return fmt.Errorf("unknown member %q (want %s)", m.name, strings.Join(names, ", "))
		}
	}
	return nil
}
