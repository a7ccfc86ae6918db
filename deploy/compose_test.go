// Package deploy checks the compose cluster (docker-compose.yaml) without a
// container engine, as `docker compose config` would and further: the file
// decodes with no unknown field, every service it needs is there with its
// dependencies, the brokers form one KRaft quorum replicating three ways,
// each Parley node has its own node_id, and the configuration each node
// reads parses with Parley's own parser and names all three brokers.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/parleyhq/parley/config"
)

type compose struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
	// Extension fields (x-…), the anchors the services merge.
	Extensions map[string]any `yaml:",inline"`
}

type service struct {
	Image           string            `yaml:"image"`
	Command         []string          `yaml:"command"`
	Restart         string            `yaml:"restart"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	DependsOn       dependsOn         `yaml:"depends_on"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Ports           []string          `yaml:"ports"`
	Healthcheck     *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Ulimits map[string]any `yaml:"ulimits"`
}

// dependsOn is compose's list or map form: service → condition.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, s := range names {
			(*d)[s] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for s, c := range m {
		(*d)[s] = c.Condition
	}
	return nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// dotenv is .env.example with a value for every variable left empty.
func dotenv(t *testing.T) map[string]string {
	raw, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf(".env.example: %q", l)
		}
		if v == "" {
			v = "test-" + strings.ToLower(k) + "-0123456789"
		}
		env[k] = v
	}
	return env
}

func loadCompose(t *testing.T) (*compose, map[string]string) {
	t.Helper()
	raw, err := os.ReadFile("docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Compose interpolates ${VAR} from .env: every one must be there.
	env := dotenv(t)
	var missing []string
	text := envRef.ReplaceAllStringFunc(string(raw), func(m string) string {
		name := envRef.FindStringSubmatch(m)[1]
		v, ok := env[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		t.Fatalf("docker-compose.yaml uses variables .env.example does not list: %v", missing)
	}
	var c compose
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	for k := range c.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Fatalf("unknown top-level key %q", k)
		}
	}
	return &c, env
}

func TestComposeCluster(t *testing.T) {
	c, _ := loadCompose(t)
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"clickhouse", "grafana", "kafka-1", "kafka-2", "kafka-3", "parley-1", "parley-2", "parley-3", "prometheus"}
	if !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	for name, s := range c.Services {
		if s.Image == "" {
			t.Fatalf("%s: no image", name)
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Fatalf("%s depends on unknown service %s", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Fatalf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Fatalf("%s mounts undeclared volume %s", name, src)
			}
		}
	}

	// Three brokers, one quorum, replication 3.
	var advertised []string
	clusterID := ""
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("kafka-%d", i)
		k := c.Services[name]
		e := k.Environment
		if e["KAFKA_NODE_ID"] != fmt.Sprint(i) || e["KAFKA_PROCESS_ROLES"] != "broker,controller" {
			t.Fatalf("%s: node id %q roles %q", name, e["KAFKA_NODE_ID"], e["KAFKA_PROCESS_ROLES"])
		}
		if e["KAFKA_CONTROLLER_QUORUM_VOTERS"] != "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093" {
			t.Fatalf("%s: voters %q", name, e["KAFKA_CONTROLLER_QUORUM_VOTERS"])
		}
		if clusterID == "" {
			clusterID = e["CLUSTER_ID"]
		}
		if e["CLUSTER_ID"] == "" || e["CLUSTER_ID"] != clusterID {
			t.Fatalf("%s: cluster id %q, others %q", name, e["CLUSTER_ID"], clusterID)
		}
		for key, v := range map[string]string{
			"KAFKA_DEFAULT_REPLICATION_FACTOR":               "3",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "3",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
			"KAFKA_MIN_INSYNC_REPLICAS":                      "2",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "2",
			"KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS":             "6000",
		} {
			if e[key] != v {
				t.Fatalf("%s: %s = %q, want %s", name, key, e[key], v)
			}
		}
		// Clients log in: no plaintext listener without SASL.
		if !strings.Contains(e["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], "INTERNAL:SASL_PLAINTEXT") ||
			!strings.Contains(e["KAFKA_LISTENER_NAME_INTERNAL_PLAIN_SASL_JAAS_CONFIG"], `user_parley="`) {
			t.Fatalf("%s: clients do not log in", name)
		}
		adv := strings.TrimPrefix(e["KAFKA_ADVERTISED_LISTENERS"], "INTERNAL://")
		if adv != name+":9092" {
			t.Fatalf("%s advertises %q", name, e["KAFKA_ADVERTISED_LISTENERS"])
		}
		advertised = append(advertised, adv)
		if k.Healthcheck == nil || len(k.Ports) != 0 {
			t.Fatalf("%s: healthcheck %v, published ports %v (the brokers stay inside the network)", name, k.Healthcheck, k.Ports)
		}
	}

	// Three Parley nodes: distinct node ids, 30 s to stop, waiting for
	// every broker and ClickHouse, each reading a config Parley accepts.
	nodeIDs := map[string]bool{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("parley-%d", i)
		p := c.Services[name]
		if p.StopGracePeriod != "30s" {
			t.Fatalf("%s: stop_grace_period %q", name, p.StopGracePeriod)
		}
		if p.Environment["PARLEY_SECRETS_KEY"] == "" || p.Environment["PARLEY_SECRETS_KEY"] != c.Services["parley-1"].Environment["PARLEY_SECRETS_KEY"] {
			t.Fatalf("%s: PARLEY_SECRETS_KEY unset or not the other nodes' (every node seals with the same key)", name)
		}
		if strings.Join(p.Command, " ") != "serve --config /etc/parley/parley.yaml" || !slices.Contains(p.Volumes, "./parley.yaml:/etc/parley/parley.yaml:ro") {
			t.Fatalf("%s: command %v volumes %v", name, p.Command, p.Volumes)
		}
		for _, dep := range []string{"kafka-1", "kafka-2", "kafka-3", "clickhouse"} {
			if p.DependsOn[dep] != "service_healthy" {
				t.Fatalf("%s: depends on %s %q, want service_healthy", name, dep, p.DependsOn[dep])
			}
		}
		t.Run(name, func(t *testing.T) {
			for k, v := range p.Environment {
				t.Setenv(k, v)
			}
			raw, err := os.ReadFile("parley.yaml")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(raw)
			if err != nil {
				t.Fatalf("the config %s reads: %v", name, err)
			}
			if cfg.NodeID != name || nodeIDs[cfg.NodeID] {
				t.Fatalf("node_id %q (seen: %v)", cfg.NodeID, nodeIDs)
			}
			nodeIDs[cfg.NodeID] = true
			if !slices.Equal(cfg.Kafka.Brokers, advertised) || cfg.Kafka.ReplicationFactor != 3 {
				t.Fatalf("brokers %v (want %v), replication %d", cfg.Kafka.Brokers, advertised, cfg.Kafka.ReplicationFactor)
			}
			jaas := c.Services["kafka-1"].Environment["KAFKA_LISTENER_NAME_INTERNAL_PLAIN_SASL_JAAS_CONFIG"]
			if cfg.Kafka.SASL.Mechanism != config.SASLPlain ||
				!strings.Contains(jaas, fmt.Sprintf("user_%s=%q", cfg.Kafka.SASL.Username, cfg.Kafka.SASL.Password.Reveal())) {
				t.Fatalf("node logs in as %q, which the brokers do not know", cfg.Kafka.SASL.Username)
			}
			if cfg.ClickHouse.Addr != "clickhouse:9000" || cfg.ClickHouse.Password.Reveal() != c.Services["clickhouse"].Environment["CLICKHOUSE_PASSWORD"] ||
				cfg.ClickHouse.Username != c.Services["clickhouse"].Environment["CLICKHOUSE_USER"] {
				t.Fatalf("clickhouse %s as %s: not the compose server's user", cfg.ClickHouse.Addr, cfg.ClickHouse.Username)
			}
		})
	}
	if len(nodeIDs) != 3 {
		t.Fatalf("node ids %v", nodeIDs)
	}

	// Prometheus scrapes all three; Grafana gets both data sources.
	prom, err := os.ReadFile(filepath.Join("prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if !strings.Contains(string(prom), fmt.Sprintf(`"parley-%d:8080"`, i)) {
			t.Fatalf("prometheus.yml does not scrape parley-%d", i)
		}
	}
	g := c.Services["grafana"].Environment
	if g["PARLEY_CLICKHOUSE_HOST"] != "clickhouse" || g["PARLEY_PROMETHEUS_URL"] != "http://prometheus:9090" {
		t.Fatalf("grafana data sources %v", g)
	}
}

// The image builds with the Go the module asks for.
func TestDockerfileGoVersion(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if m == nil || !strings.Contains(string(df), "FROM golang:"+string(m[1])) {
		t.Fatalf("Dockerfile does not build with go %s", m[1])
	}
}
