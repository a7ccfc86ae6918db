package grafana

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed dashboards/parley.json
var dashboardJSON []byte

// Panel is one panel of the provisioned dashboard: its title and the SQL
// of its queries, with Grafana's macros unexpanded.
type Panel struct {
	Title   string
	Queries []string
}

// Panels are the panels of dashboards/parley.json, for tests that run
// their SQL.
func Panels() ([]Panel, error) {
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct {
				RawSQL string `json:"rawSql"`
			}
		}
	}
	if err := json.Unmarshal(dashboardJSON, &dash); err != nil {
		return nil, fmt.Errorf("grafana: dashboards/parley.json: %w", err)
	}
	out := make([]Panel, len(dash.Panels))
	for i, p := range dash.Panels {
		out[i].Title = p.Title
		for _, t := range p.Targets {
			out[i].Queries = append(out[i].Queries, t.RawSQL)
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
