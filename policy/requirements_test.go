package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestRequirementsFollowParams: every policy parameter shows in the
// published requirements (changing any one of them changes the text),
// every requirement names rules that exist, and the numbers of the
// parameters in force are the ones stated.
func TestRequirementsFollowParams(t *testing.T) {
	base := DefaultParams()
	want := RequirementTexts(base)
	joined := strings.Join(want, "\n")
	for _, s := range []string{"at most once every 60 days", "at most 6 keys per PST VOPRF commitment, 3 keys per PST PMB commitment and 6 token-keys", "at most 2 emergencies in any rolling 365 days", "lapses 183 days after", "between 1 and 100", "at most 18 new keys", "at most 365 days after it"} {
		if !strings.Contains(joined, s) {
			t.Errorf("default requirements do not say %q:\n%s", s, joined)
		}
	}
	known := map[string]bool{}
	for _, r := range Rules {
		known[r.Name] = true
	}
	for _, r := range Requirements(base) {
		if len(r.Rules) == 0 {
			t.Errorf("requirement names no rule: %s", r.Text)
		}
		for _, n := range r.Rules {
			if !known[n] {
				t.Errorf("requirement names unknown rule %q: %s", n, r.Text)
			}
		}
	}
	v := reflect.ValueOf(&base).Elem()
	for i := range v.NumField() {
		p := base
		f := reflect.ValueOf(&p).Elem().Field(i)
		switch f.Kind() {
		case reflect.Int, reflect.Int64:
			if f.Int() > 1 {
				f.SetInt(f.Int() - 1)
			} else {
				f.SetInt(f.Int() + 1)
			}
		default:
			t.Fatalf("field %s of kind %s", v.Type().Field(i).Name, f.Kind())
		}
		if err := ValidateParams(p); err != nil {
			t.Fatalf("changed %s: %v", v.Type().Field(i).Name, err)
		}
		if slices.Equal(RequirementTexts(p), want) {
			t.Errorf("changing %s does not change the requirements", v.Type().Field(i).Name)
		}
	}
}

// TestRequirementsEdgeParams: a zero rotation interval and no emergencies
// are stated as such, not as "every 0s" or "at most 0 emergencies".
func TestRequirementsEdgeParams(t *testing.T) {
	p := DefaultParams()
	p.MinRotationInterval, p.MaxEmergencies, p.MaxKeysPMB = 0, 0, 1
	got := strings.Join(RequirementTexts(p), "\n")
	for _, s := range []string{"not rate-limited", "Emergency rotations are not admitted", "1 key per PST PMB commitment"} {
		if !strings.Contains(got, s) {
			t.Errorf("requirements do not say %q:\n%s", s, got)
		}
	}
	for _, s := range []string{"every 0s", "0 emergencies", "once every"} {
		if strings.Contains(got, s) {
			t.Errorf("requirements say %q:\n%s", s, got)
		}
	}
}
