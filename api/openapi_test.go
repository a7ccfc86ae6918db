package api

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"

	"github.com/parleyhq/parley/apikeys"
)

// noAnalytics is Analytics doing nothing: only its routes matter here.
type noAnalytics struct{}

func (noAnalytics) Tenants(*fasthttp.RequestCtx, Call)    {}
func (noAnalytics) Summary(*fasthttp.RequestCtx, Call)    {}
func (noAnalytics) Timeseries(*fasthttp.RequestCtx, Call) {}
func (noAnalytics) PowerUsers(*fasthttp.RequestCtx, Call) {}
func (noAnalytics) Messages(*fasthttp.RequestCtx, Call)   {}
func (noAnalytics) Media(*fasthttp.RequestCtx, Call)      {}
func (noAnalytics) Forget(*fasthttp.RequestCtx, Call)     {}

// openAPI is the part of an OpenAPI document the test reads.
type openAPI struct {
	OpenAPI string `yaml:"openapi"`
	Servers []struct {
		URL string `yaml:"url"`
	} `yaml:"servers"`
	Security []map[string][]string `yaml:"security"`
	Paths    map[string]pathItem   `yaml:"paths"`

	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `yaml:"type"`
			Scheme string `yaml:"scheme"`
		} `yaml:"securitySchemes"`
		Parameters map[string]parameter `yaml:"parameters"`
		Responses  map[string]response  `yaml:"responses"`
		Schemas    map[string]yaml.Node `yaml:"schemas"`
	} `yaml:"components"`
}

// pathItem is one entry of paths: its operations by upper-case method.
type pathItem struct {
	Parameters []parameter
	Operations map[string]operation
}

// methods are the operations a path item may hold.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func (p *pathItem) UnmarshalYAML(n *yaml.Node) error {
	var fields map[string]yaml.Node
	if err := n.Decode(&fields); err != nil {
		return err
	}
	p.Operations = map[string]operation{}
	for name, v := range fields {
		switch {
		case name == "parameters":
			if err := v.Decode(&p.Parameters); err != nil {
				return err
			}
		case slices.Contains(methods, name):
			var op operation
			if err := v.Decode(&op); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			p.Operations[strings.ToUpper(name)] = op
		case name == "summary" || name == "description" || name == "servers":
		default:
			// $ref among them: the test would not see what it refers to.
			return fmt.Errorf("path item field %q: want operations, parameters, summary, description or servers", name)
		}
	}
	return nil
}

type operation struct {
	OperationID string              `yaml:"operationId"`
	Summary     string              `yaml:"summary"`
	Description string              `yaml:"description"`
	Permission  string              `yaml:"x-permission"`
	Parameters  []parameter         `yaml:"parameters"`
	Responses   map[string]response `yaml:"responses"`
}

type parameter struct {
	Ref      string `yaml:"$ref"`
	Name     string `yaml:"name"`
	In       string `yaml:"in"`
	Required bool   `yaml:"required"`
}

type response struct {
	Ref     string `yaml:"$ref"`
	Content map[string]struct {
		Schema struct {
			Ref string `yaml:"$ref"`
		} `yaml:"schema"`
	} `yaml:"content"`
}

// parameter resolves p if it is a reference to components/parameters.
func (d *openAPI) parameter(p parameter) (parameter, error) {
	if p.Ref == "" {
		return p, nil
	}
	name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
	q, found := d.Components.Parameters[name]
	if !ok || !found {
		return p, fmt.Errorf("parameter $ref %q: no such components/parameters entry", p.Ref)
	}
	return q, nil
}

// response resolves r if it is a reference to components/responses.
func (d *openAPI) response(r response) (response, error) {
	if r.Ref == "" {
		return r, nil
	}
	name, ok := strings.CutPrefix(r.Ref, "#/components/responses/")
	q, found := d.Components.Responses[name]
	if !ok || !found {
		return r, fmt.Errorf("response $ref %q: no such components/responses entry", r.Ref)
	}
	return q, nil
}

// described is one operation of the document, its path item's parameters
// and its own merged (resolved; the operation's win).
type described struct {
	operation
	params []parameter
}

// operations are the document's operations by "METHOD /path".
func (d *openAPI) operations(t *testing.T) map[string]described {
	t.Helper()
	out := map[string]described{}
	for path, item := range d.Paths {
		for method, op := range item.Operations {
			var params []parameter
			for _, list := range [][]parameter{item.Parameters, op.Parameters} {
				for _, p := range list {
					p, err := d.parameter(p)
					if err != nil {
						t.Errorf("%s %s: %v", method, path, err)
						continue
					}
					params = slices.DeleteFunc(params, func(q parameter) bool { return q.Name == p.Name && q.In == p.In })
					params = append(params, p)
				}
			}
			out[method+" "+path] = described{op, params}
		}
	}
	return out
}

// need is how an operation's description names the permission its key
// needs, with the roles that have it: "Needs `analytics:read` (admin,
// analyst)", or "Any key".
func need(p apikeys.Permission) string {
	if p == "" {
		return "Any key"
	}
	var roles []string
	for _, role := range []string{apikeys.RoleAdmin, apikeys.RoleAgent, apikeys.RoleAnalyst} {
		if (&apikeys.Key{Role: role}).Can(p) {
			roles = append(roles, role)
		}
	}
	return fmt.Sprintf("Needs `%s` (%s)", p, strings.Join(roles, ", "))
}

var pathParam = regexp.MustCompile(`\{([^{}]+)\}`)

// TestOpenAPIDescribesEveryRoute holds openapi.yaml to Routes: each route
// is one operation (METHOD /pattern) and each operation a route, with its
// path parameters declared, a unique operationId, the route's permission
// and the router's errors.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc openAPI
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	routes := map[string]Route{}
	for _, r := range Routes(&API{}, noAnalytics{}) {
		key := r.Method + " /" + r.Pattern
		if _, dup := routes[key]; dup {
			t.Errorf("Routes lists %s twice", key)
		}
		routes[key] = r
	}
	ops := doc.operations(t)
	opKeys := slices.Sorted(maps.Keys(ops))

	t.Run("document", func(t *testing.T) {
		if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
			t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
		}
		if want := strings.TrimSuffix(Prefix, "/"); len(doc.Servers) != 1 || doc.Servers[0].URL != want {
			t.Errorf("servers %+v, want one, %s", doc.Servers, want)
		}
		if len(doc.Security) != 1 || len(doc.Security[0]) != 1 {
			t.Fatalf("security %v, want one scheme, applied to every operation", doc.Security)
		}
		for name := range doc.Security[0] {
			if s := doc.Components.SecuritySchemes[name]; s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
				t.Errorf("security scheme %q is %+v, want http bearer", name, s)
			}
		}
		if _, ok := doc.Components.Schemas["Error"]; !ok {
			t.Error("components/schemas has no Error")
		}
	})

	t.Run("routes and operations", func(t *testing.T) {
		var missing, extra []string
		for _, key := range slices.Sorted(maps.Keys(routes)) {
			if _, ok := ops[key]; !ok {
				missing = append(missing, key)
			}
		}
		for _, key := range opKeys {
			if _, ok := routes[key]; ok {
				continue
			}
			// A GET route answers HEAD too; the document may say so.
			if path, ok := strings.CutPrefix(key, "HEAD "); ok {
				if _, get := routes["GET "+path]; get {
					continue
				}
			}
			extra = append(extra, key)
		}
		if len(missing) > 0 {
			t.Errorf("routes missing from openapi.yaml:\n\t%s", strings.Join(missing, "\n\t"))
		}
		if len(extra) > 0 {
			t.Errorf("operations in openapi.yaml that are no route:\n\t%s", strings.Join(extra, "\n\t"))
		}
	})

	t.Run("path parameters", func(t *testing.T) {
		for _, key := range opKeys {
			op := ops[key]
			_, path, _ := strings.Cut(key, " ")
			inPath := map[string]bool{}
			for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
				inPath[m[1]] = true
				i := slices.IndexFunc(op.params, func(p parameter) bool { return p.Name == m[1] && p.In == "path" })
				switch {
				case i < 0:
					t.Errorf("%s: {%s} is not declared as a path parameter", key, m[1])
				case !op.params[i].Required:
					t.Errorf("%s: path parameter %s is not required: true", key, m[1])
				}
			}
			for _, p := range op.params {
				if p.In == "path" && !inPath[p.Name] {
					t.Errorf("%s: path parameter %s is not in the path", key, p.Name)
				}
			}
		}
	})

	t.Run("operation ids and summaries", func(t *testing.T) {
		seen := map[string]string{}
		for _, key := range opKeys {
			op := ops[key]
			if op.Summary == "" {
				t.Errorf("%s has no summary", key)
			}
			switch prev, dup := seen[op.OperationID]; {
			case op.OperationID == "":
				t.Errorf("%s has no operationId", key)
			case dup:
				t.Errorf("%s and %s are both operationId %s", prev, key, op.OperationID)
			}
			seen[op.OperationID] = key
		}
	})

	for _, key := range opKeys {
		r, ok := routes[key]
		if !ok {
			continue // reported above
		}
		op := ops[key]
		t.Run(key, func(t *testing.T) {
			if op.Permission != string(r.Need) {
				t.Errorf("x-permission %q, want %q", op.Permission, r.Need)
			}
			if want := need(r.Need); !strings.Contains(op.Description, want) {
				t.Errorf("the description does not say %q", want)
			}
			// What the router answers before the handler (router.go).
			wantStatus := []string{"401"}
			if r.Need != "" || strings.Contains(r.Pattern, "{tenant}") {
				wantStatus = append(wantStatus, "403")
			}
			if strings.Contains(r.Pattern, "{tenant}") {
				wantStatus = append(wantStatus, "404")
			}
			success := false
			for status := range op.Responses {
				success = success || status[0] == '2'
			}
			if !success {
				t.Error("no 2xx response")
			}
			for _, status := range wantStatus {
				if _, ok := op.Responses[status]; !ok {
					t.Errorf("no %s response", status)
				}
			}
			// Every JSON error is the one Error schema.
			for status, resp := range op.Responses {
				if code, err := strconv.Atoi(status); err != nil || code < 400 {
					continue
				}
				resp, err := doc.response(resp)
				if err != nil {
					t.Errorf("%s: %v", status, err)
					continue
				}
				for ct, c := range resp.Content {
					if strings.Contains(ct, "json") && c.Schema.Ref != "#/components/schemas/Error" {
						t.Errorf("%s %s: schema $ref %q, want #/components/schemas/Error", status, ct, c.Schema.Ref)
					}
				}
			}
		})
	}
}
