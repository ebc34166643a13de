package verify

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the verifier small enough to embed in a user
// agent: besides the standard library it may import only
// transparency-dev/merkle, log/c2sp and witness/quorum (both standard
// library only, which their own tests check).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := []string{
		"github.com/keycommit/keycommit/log/verify",
		"github.com/keycommit/keycommit/log/c2sp",
		"github.com/keycommit/keycommit/witness/quorum",
		"github.com/transparency-dev/merkle",
	}
	for _, dep := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			if dep == a || strings.HasPrefix(dep, a+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("log/verify depends on %s, outside the standard library, merkle, log/c2sp and witness/quorum", dep)
		}
	}
}
