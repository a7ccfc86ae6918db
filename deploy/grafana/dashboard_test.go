package grafana

import (
	"context"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/parleyhq/parley/internal/chtest"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// TestDashboardQueriesRun expands Grafana's macros and runs every panel's
// SQL against the real server with Parley's schema applied.
func TestDashboardQueriesRun(t *testing.T) {
	for _, f := range []string{"provisioning/datasources/clickhouse.yaml", "provisioning/dashboards/parley.yaml"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	panels, err := Panels()
	if err != nil {
		t.Fatal(err)
	}
	addr := chtest.ForTest(t)
	db := chtest.Database(t, addr)
	ctx := context.Background()
	store, err := chsink.Open(ctx, chsink.Config{Addr: addr, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	expand := Macros("'acme'", "''", 1700000000, 2000000000)
	if len(panels) < 8 {
		t.Fatalf("%d panels", len(panels))
	}
	// The example SQL of docs/analytics.md runs too.
	doc, err := os.ReadFile("../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := 0
	for _, block := range strings.Split(string(doc), "```sql")[1:] {
		block = strings.Split(block, "```")[0]
		for _, q := range strings.Split(block, ";") {
			if strings.TrimSpace(stripComments(q)) == "" {
				continue
			}
			examples++
			rows, err := store.Conn().Query(ctx, q)
			if err != nil {
				t.Errorf("docs example %q: %v", q, err)
				continue
			}
			rows.Close()
		}
	}
	if examples < 5 {
		t.Fatalf("%d examples in docs/analytics.md", examples)
	}
	for _, p := range panels {
		for _, q := range p.Queries {
			rows, err := store.Conn().Query(ctx, expand.Replace(q))
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
				continue
			}
			rows.Close()
		}
	}
}

func stripComments(q string) string {
	var out []string
	for _, l := range strings.Split(q, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
