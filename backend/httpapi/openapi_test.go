package httpapi_test

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/httpapi"
)

// TestOpenAPI keeps the written contract and the code from drifting apart:
// the file parses, its operations are exactly the ones the Handler serves,
// every $ref resolves, and each schema's properties are the JSON names of
// the Go type it describes.
func TestOpenAPI(t *testing.T) {
	raw, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml is not YAML: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Errorf("openapi version %q, want 3.0.x", v)
	}

	t.Run("operations", func(t *testing.T) {
		paths, _ := doc["paths"].(map[string]any)
		var inFile, served []string
		for p, item := range paths {
			for method, op := range item.(map[string]any) {
				if method == "parameters" {
					continue
				}
				inFile = append(inFile, strings.ToUpper(method)+" "+p)
				if _, ok := op.(map[string]any)["responses"]; !ok {
					t.Errorf("%s %s has no responses", method, p)
				}
			}
		}
		for _, r := range httpapi.Routes() {
			served = append(served, r.Method+" "+r.Path)
		}
		slices.Sort(inFile)
		slices.Sort(served)
		if !slices.Equal(inFile, served) {
			t.Errorf("openapi.yaml has\n  %s\nthe Handler serves\n  %s", strings.Join(inFile, "\n  "), strings.Join(served, "\n  "))
		}
	})

	t.Run("refs resolve", func(t *testing.T) {
		var walk func(any)
		walk = func(n any) {
			switch n := n.(type) {
			case map[string]any:
				if ref, ok := n["$ref"].(string); ok {
					if resolve(doc, ref) == nil {
						t.Errorf("unresolved $ref %s", ref)
					}
				}
				for _, v := range n {
					walk(v)
				}
			case []any:
				for _, v := range n {
					walk(v)
				}
			}
		}
		walk(doc)
	})

	t.Run("schemas match the Go types", func(t *testing.T) {
		for name, v := range map[string]any{
			"Profile":      backend.Profile{},
			"Service":      backend.Service{},
			"Slot":         backend.Slot{},
			"Booking":      backend.Booking{},
			"CancelResult": backend.CancelResult{},
			"Account":      backend.Account{},
			"Subscription": backend.Subscription{},
		} {
			schema, _ := resolve(doc, "#/components/schemas/"+name).(map[string]any)
			if schema == nil {
				t.Errorf("no schema %s", name)
				continue
			}
			props, _ := schema["properties"].(map[string]any)
			var inFile []string
			for p := range props {
				inFile = append(inFile, p)
			}
			want := jsonNames(reflect.TypeOf(v))
			slices.Sort(inFile)
			if !slices.Equal(inFile, want) {
				t.Errorf("%s: schema has %v, Go type has %v", name, inFile, want)
			}
			req, _ := schema["required"].([]any)
			for _, r := range req {
				if _, ok := props[r.(string)]; !ok {
					t.Errorf("%s requires %v, which it does not define", name, r)
				}
			}
		}
	})
}

// resolve follows a local reference such as #/components/schemas/Booking.
func resolve(doc map[string]any, ref string) any {
	var n any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := n.(map[string]any)
		if !ok {
			return nil
		}
		n = m[part]
	}
	return n
}

// jsonNames lists the JSON names of a struct's fields, sorted.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
