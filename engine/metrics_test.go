package engine

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/parleyhq/parley/deploy/grafana"
)

var (
	promMetric  = regexp.MustCompile(`\bparley_[a-z_]+`)
	promBy      = regexp.MustCompile(`by \(([a-z_, ]+)\)`)
	promMatcher = regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)\s*"`)
)

// exportedSamples runs an engine through a conversation and returns its
// /metrics samples by metric name.
func exportedSamples(t *testing.T) map[string][]string {
	t.Helper()
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
	samples := map[string][]string{}
	for _, line := range strings.Split(exported, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		samples[name] = append(samples[name], line)
	}
	return samples
}

// checkExported fails the test for every metric q names that is not in
// samples, and every label it groups or matches by that the metric lacks.
func checkExported(t *testing.T, where, q string, samples map[string][]string) {
	t.Helper()
	metrics := promMetric.FindAllString(q, -1)
	if len(metrics) == 0 {
		t.Errorf("%s: no Parley metric in %q", where, q)
	}
	var labels []string
	for _, by := range promBy.FindAllStringSubmatch(q, -1) {
		for _, l := range strings.Split(by[1], ",") {
			labels = append(labels, strings.TrimSpace(l))
		}
	}
	for _, m := range promMatcher.FindAllStringSubmatch(q, -1) {
		labels = append(labels, m[1])
	}
	for _, m := range metrics {
		lines := samples[m]
		if len(lines) == 0 {
			t.Errorf("%s: %s is not exported", where, m)
			continue
		}
		for _, label := range labels {
			if label == "le" && strings.HasSuffix(m, "_bucket") {
				continue
			}
			if !strings.Contains(lines[0], label+`="`) {
				t.Errorf("%s: %s has no label %q (%s)", where, m, label, lines[0])
			}
		}
	}
}

// Every metric the "Parley operations" dashboard and the alert rules
// query, and every label they group or match by, is exported by a running
// engine that has handled a conversation: a renamed metric or label fails
// here, not on a dashboard that quietly shows no data or an alert that
// never fires.
func TestOpsDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	samples := exportedSamples(t)
	panels, err := grafana.OpsPanels()
	if err != nil {
		t.Fatal(err)
	}
	if len(panels) < 8 {
		t.Fatalf("%d panels", len(panels))
	}
	for _, p := range panels {
		for _, q := range p.Queries {
			checkExported(t, "panel "+p.Title, q, samples)
		}
	}

	raw, err := os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			checkExported(t, "alert "+r.Alert, r.Expr, samples)
		}
	}
	if n < 5 {
		t.Fatalf("%d alert rules", n)
	}
}

// promtool (Debian's prometheus package; CI installs it) accepts the
// scrape configuration and the alert rules it loads.
func TestPrometheusConfigIsValid(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool: %v: install Debian's prometheus package (apt-get install -y prometheus)", err)
	}
	out, err := exec.Command(promtool, "check", "config", "../deploy/prometheus/prometheus.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "rules found") {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}
