package dialect

import (
	"encoding/json"
	"net/http"
	"testing"
)

// Every dialect of the list is routable and documented: a unique name,
// patterns a ServeMux accepts without clashing with another dialect's, and
// an OpenAPI document that is JSON.
func TestAll(t *testing.T) {
	mux := http.NewServeMux()
	names := map[string]bool{}
	for _, d := range All {
		if d.Name == "" || names[d.Name] {
			t.Errorf("dialect name %q is empty or taken twice", d.Name)
		}
		names[d.Name] = true
		if d.New == nil || d.OpenAPI == nil || len(d.Patterns) == 0 || d.Endpoints == "" {
			t.Errorf("%s: every field is required", d.Name)
		}
		var doc map[string]any
		if err := json.Unmarshal(d.OpenAPI(), &doc); err != nil || doc["openapi"] == nil {
			t.Errorf("%s: OpenAPI document is not an OpenAPI JSON document: %v", d.Name, err)
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: patterns %v: %v", d.Name, d.Patterns, p)
				}
			}()
			for _, p := range append(d.Patterns, "GET "+d.DocumentPath()) {
				mux.Handle(p, http.NotFoundHandler())
			}
		}()
	}
	if got := DocumentPaths(); len(got) != len(All) {
		t.Errorf("DocumentPaths = %v", got)
	}
}
