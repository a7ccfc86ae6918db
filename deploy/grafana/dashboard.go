package grafana

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed dashboards/parley.json
var analyticsJSON []byte

//go:embed dashboards/parley-ops.json
var opsJSON []byte

// Panel is one panel of a provisioned dashboard: its title and its
// queries (ClickHouse SQL with Grafana's macros unexpanded, or PromQL).
type Panel struct {
	Title   string
	Queries []string
}

// Panels are the panels of dashboards/parley.json ("Parley analytics",
// ClickHouse), for tests that run their SQL.
func Panels() ([]Panel, error) { return panelsOf("parley.json", analyticsJSON) }

// OpsPanels are the panels of dashboards/parley-ops.json ("Parley
// operations", Prometheus), for tests that check their metrics exist.
func OpsPanels() ([]Panel, error) { return panelsOf("parley-ops.json", opsJSON) }

func panelsOf(name string, raw []byte) ([]Panel, error) {
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct {
				RawSQL string `json:"rawSql"`
				Expr   string `json:"expr"`
			}
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		return nil, fmt.Errorf("grafana: dashboards/%s: %w", name, err)
	}
	out := make([]Panel, len(dash.Panels))
	for i, p := range dash.Panels {
		out[i].Title = p.Title
		for _, t := range p.Targets {
			out[i].Queries = append(out[i].Queries, t.RawSQL+t.Expr)
		}
	}
	return out, nil
}

// Macros expands what the panels use of Grafana's variables and the
// ClickHouse plugin's macros, as the plugin does: ${tenant:sqlstring} and
// ${phone:sqlstring} to the given SQL literals, $__timeFilter(at) to a
// closed range on at, $__fromTime and $__toTime to DateTimes.
func Macros(tenant, phone string, from, to int64) *strings.Replacer {
	return strings.NewReplacer(
		"${tenant:sqlstring}", tenant,
		"${phone:sqlstring}", phone,
		"$__timeFilter(at)", fmt.Sprintf("at >= toDateTime(%d) AND at <= toDateTime(%d)", from, to),
		"$__fromTime", fmt.Sprintf("toDateTime(%d)", from),
		"$__toTime", fmt.Sprintf("toDateTime(%d)", to),
	)
}
