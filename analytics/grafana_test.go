package analytics

import (
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/parleyhq/parley/deploy/grafana"
)

// The Grafana dashboard (deploy/grafana) reads the event tables with its
// own SQL; on the data set, its figures must be the API's.
func TestGrafanaPanelsAgreeWithTheAPI(t *testing.T) {
	s := openDataset(t)
	panels, err := grafana.Panels()
	if err != nil {
		t.Fatal(err)
	}
	expand := grafana.Macros("'acme'", "''", dsFrom.Unix(), dsNow.Unix())
	panel := func(title string) map[string]float64 {
		t.Helper()
		for _, p := range panels {
			if p.Title != title {
				continue
			}
			rows, err := s.Conn().Query(context.Background(), expand.Replace(p.Queries[0]))
			if err != nil {
				t.Fatalf("panel %q: %v", title, err)
			}
			defer rows.Close()
			if !rows.Next() {
				t.Fatalf("panel %q: no row", title)
			}
			types := rows.ColumnTypes()
			vals := make([]any, len(types))
			for i, c := range types {
				vals[i] = reflect.New(c.ScanType()).Interface()
			}
			if err := rows.Scan(vals...); err != nil {
				t.Fatalf("panel %q: %v", title, err)
			}
			out := map[string]float64{}
			for i, c := range types {
				v := reflect.ValueOf(vals[i]).Elem()
				switch v.Kind() {
				case reflect.Float32, reflect.Float64:
					out[c.Name()] = v.Float()
				case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
					out[c.Name()] = float64(v.Int())
				default:
					out[c.Name()] = float64(v.Uint())
				}
			}
			return out
		}
		t.Fatalf("no panel %q", title)
		return nil
	}
	api, err := querier(s, false).Summary(context.Background(), "acme", dsR, defaultRules)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: Grafana %v, API %v", what, got, want)
		}
	}
	check("conversations", panel("Conversations")["conversations"], float64(api.Conversations))
	check("messages in", panel("Messages received")["received"], float64(api.MessagesIn))
	check("messages out", panel("Messages sent")["sent"], float64(api.MessagesOut))
	check("active sessions", panel("Active sessions (at the end of the range)")["active_sessions"], float64(api.ActiveSessions))
	auth := panel("Auth success rate")
	check("codes sent", auth["codes_sent"], float64(api.CodesSent))
	check("codes verified", auth["codes_verified"], float64(api.CodesVerified))
	check("auth success rate", auth["auth_success_rate"], *api.AuthSuccessRate)
	frt := panel("First response p50 / p95")
	check("first response p50", frt["p50_ms"], float64(*api.FirstResponseP50))
	check("first response p95", frt["p95_ms"], float64(*api.FirstResponseP95))
	check("first response samples", frt["conversations"], float64(api.FirstResponseSamples))
	check("handoffs", panel("Handoffs")["handoffs"], float64(api.Handoffs))
	check("llm tokens", panel("LLM tokens")["llm_tokens"], float64(api.LLMTokens))
}
