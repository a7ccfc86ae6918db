package engine

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/deploy/grafana"
)

var (
	promMetric = regexp.MustCompile(`\bparley_[a-z_]+`)
	promBy     = regexp.MustCompile(`by \(([a-z_, ]+)\)`)
)

// Every metric the "Parley operations" dashboard queries, and every label
// it groups by, is exported by a running engine that has handled a
// conversation: a renamed metric or label fails here, not on a
// dashboard that quietly shows no data.
func TestOpsDashboardMetricsAreExported(t *testing.T) {
	h := startHarness(t)
	h.sendWhatsApp(t, "SM0123456789abcdef0123456789abcd99", "+447700900456", "Hello")
	h.twilio.WaitFor(1, 30*time.Second)
	var exported string
	eventually(t, 30*time.Second, func() error {
		res, err := http.Get(h.engine.URL() + "/metrics")
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		exported = string(b)
		// The sink's first insert and a sweep have happened.
		for _, want := range []string{"parley_clickhouse_rows_inserted_total{", "parley_sessions{", "parley_outbound_total{"} {
			if !strings.Contains(exported, want) {
				return io.ErrUnexpectedEOF
			}
		}
		return nil
	})
	// name → the lines of its samples
	samples := map[string][]string{}
	for _, line := range strings.Split(exported, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		samples[name] = append(samples[name], line)
	}
	panels, err := grafana.OpsPanels()
	if err != nil {
		t.Fatal(err)
	}
	if len(panels) < 8 {
		t.Fatalf("%d panels", len(panels))
	}
	for _, p := range panels {
		for _, q := range p.Queries {
			metrics := promMetric.FindAllString(q, -1)
			if len(metrics) == 0 {
				t.Errorf("panel %q: no Parley metric in %q", p.Title, q)
			}
			for _, m := range metrics {
				lines := samples[m]
				if len(lines) == 0 {
					t.Errorf("panel %q: %s is not exported", p.Title, m)
					continue
				}
				for _, by := range promBy.FindAllStringSubmatch(q, -1) {
					for _, label := range strings.Split(by[1], ",") {
						label = strings.TrimSpace(label)
						if label == "le" && strings.HasSuffix(m, "_bucket") {
							continue
						}
						if !strings.Contains(lines[0], label+`="`) {
							t.Errorf("panel %q: %s has no label %q (%s)", p.Title, m, label, lines[0])
						}
					}
				}
			}
		}
	}
}
