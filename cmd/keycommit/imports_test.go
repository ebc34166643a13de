// Package keycommit_test holds the tests that look at the module as a
// whole.
package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"
)

const module = "github.com/keycommit/keycommit"

// importRule is one row of the import rules table in docs/DEVELOPING.md.
type importRule struct {
	pkg              string   // package path below the module
	own              []string // keycommit packages it may import; nil with anyOwn
	other            []string // other module path prefixes it may import; nil with anyOther
	anyOwn, anyOther bool
	line             int
}

// readImportRules parses the table under the "## Import rules" heading of
// docs/DEVELOPING.md: | `pkg` | `a`, `b` or — or any | `mod`, … or — or any |.
func readImportRules(t *testing.T) []importRule {
	t.Helper()
	f, err := os.Open("../../docs/DEVELOPING.md") // the module root, two levels up
	if err != nil {
		t.Fatalf("couldn't open the developers' guide: %v", err)
	}
	defer f.Close()
	var rules []importRule
	in, header := false, 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "## "):
			in = l == "## Import rules"
			continue
		case !in || !strings.HasPrefix(l, "|"):
			continue
		}
		if header < 2 { // the header row and the |---| row
			header++
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		if len(cells) != 3 {
			t.Fatalf("docs/DEVELOPING.md:%d: an import rule has 3 cells (package, keycommit imports, other modules), not %d", n, len(cells))
		}
		pkgs := list(cells[0])
		if len(pkgs) != 1 {
			t.Fatalf("docs/DEVELOPING.md:%d: the first cell names one package in backquotes, not %q", n, cells[0])
		}
		r := importRule{pkg: pkgs[0], line: n, own: list(cells[1]), other: list(cells[2])}
		r.anyOwn = strings.TrimSpace(cells[1]) == "any"
		r.anyOther = strings.TrimSpace(cells[2]) == "any"
		rules = append(rules, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rules) == 0 {
		t.Fatal(`docs/DEVELOPING.md has no "## Import rules" table`)
	}
	return rules
}

// list returns the backquoted words of a cell.
func list(cell string) []string {
	var out []string
	for parts := strings.Split(cell, "`"); len(parts) >= 3; parts = parts[2:] {
		out = append(out, parts[1])
	}
	return out
}

type goPackage struct {
	ImportPath                                  string
	GoFiles, Imports, TestImports, XTestImports []string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,GoFiles,Imports,TestImports,XTestImports", "./...")
	cmd.Dir = "../.." // the module root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	for d := json.NewDecoder(strings.NewReader(string(out))); d.More(); {
		var p goPackage
		if err := d.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// isTestHelper reports whether a keycommit package is a test helper
// package: Go's xxxtest convention (net/http/httptest).
func isTestHelper(pkg string) bool {
	return strings.HasSuffix(path.Base(pkg), "test")
}

func isStandard(imp string) bool {
	return !strings.Contains(strings.Split(imp, "/")[0], ".")
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func underAny(imp string, prefixes []string) bool {
	for _, p := range prefixes {
		if imp == p || strings.HasPrefix(imp, p+"/") {
			return true
		}
	}
	return false
}

// TestImportRules enforces the import rules of docs/DEVELOPING.md: every
// package has a row, its non-test files import only the keycommit
// packages and other modules the row names, test helper packages are
// imported only by tests and other test helpers, and nothing imports cmd.
func TestImportRules(t *testing.T) {
	rules := readImportRules(t)
	byPkg := map[string]importRule{}
	for _, r := range rules {
		if _, dup := byPkg[r.pkg]; dup {
			t.Errorf("docs/DEVELOPING.md:%d: a second import rule for %s", r.line, r.pkg)
		}
		byPkg[r.pkg] = r
	}
	seen := map[string]bool{}
	for _, p := range listPackages(t) {
		pkg := strings.TrimPrefix(p.ImportPath, module+"/")
		if len(p.GoFiles) == 0 {
			continue // tests only (this package): nothing can import it
		}
		seen[pkg] = true
		r, ok := byPkg[pkg]
		if !ok {
			t.Errorf("package %s has no row in the import rules table of docs/DEVELOPING.md: add one saying what it may import", pkg)
			continue
		}
		for _, imp := range p.Imports {
			switch own, isOwn := strings.CutPrefix(imp, module+"/"); {
			case isStandard(imp):
			case isOwn && isTestHelper(own) && !isTestHelper(pkg):
				t.Errorf("%s imports the test helper package %s outside its tests", pkg, own)
			case isOwn && (!r.anyOwn && !contains(r.own, own) || strings.HasPrefix(own, "cmd/")):
				t.Errorf("%s imports %s, which docs/DEVELOPING.md:%d does not allow", pkg, own, r.line)
			case !isOwn && !r.anyOther && !underAny(imp, r.other):
				t.Errorf("%s imports %s, from a module docs/DEVELOPING.md:%d does not allow", pkg, imp, r.line)
			}
		}
		for _, imp := range append(p.TestImports, p.XTestImports...) {
			if own, ok := strings.CutPrefix(imp, module+"/"); ok && strings.HasPrefix(own, "cmd/") && !strings.HasPrefix(pkg, own) {
				t.Errorf("the tests of %s import %s: nothing imports cmd", pkg, own)
			}
		}
	}
	for _, r := range rules {
		if !seen[r.pkg] {
			t.Errorf("docs/DEVELOPING.md:%d: an import rule for %s, which is not a package of the module", r.line, r.pkg)
		}
	}
}
