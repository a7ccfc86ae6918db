// Package config reads Parley's YAML configuration. ${VAR} anywhere in the
// file is replaced by the environment variable VAR before parsing, so
// credentials stay out of the file.
package config

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/tenants"
)

// Config is the whole configuration of one Parley process.
type Config struct {
	HTTP       HTTP       `yaml:"http"`
	Kafka      Kafka      `yaml:"kafka"`
	ClickHouse ClickHouse `yaml:"clickhouse"`
	DataDir    string     `yaml:"data_dir"`
	// NodeID names this process among the nodes of a cluster: in logs,
	// metrics and the ids it gives Kafka (client, transactional).
	// Default: the host name and the process id ("web-3-41278"), so two
	// nodes on one machine never share one; set it to keep the name
	// across restarts.
	NodeID  string           `yaml:"node_id"`
	Tenants []tenants.Tenant `yaml:"tenants"`
	// APIKeys authorise /api/v1 calls, each scoped to tenants and a role.
	APIKeys []apikeys.Key `yaml:"api_keys"`
	// AllowSimulator lets `parley serve` run simulator tenants. The
	// simulator's page is unauthenticated: whoever reaches it posts as any
	// phone and reads the replies, one-time codes included. `parley dev`
	// always runs it; serve refuses simulator tenants unless this is set
	// (a staging node on a closed network).
	AllowSimulator bool `yaml:"allow_simulator"`
}

// HTTP configures the ingress server.
type HTTP struct {
	Addr string `yaml:"addr"`
	// PublicBaseURL is the URL providers call and sign (behind a proxy it
	// differs from the listener's).
	PublicBaseURL string `yaml:"public_base_url"`
	// MaxBodyBytes caps request bodies (Twilio webhooks, the simulator,
	// the API); larger ones get 413. Default 64 KiB.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MetaMaxBodyBytes caps Meta webhook bodies. Meta batches events and
	// documents payloads of up to 3 MB; a lower cap turns a busy moment
	// into 413s that Meta retries for days. Default 3 MiB.
	MetaMaxBodyBytes int `yaml:"meta_max_body_bytes"`
	// ReadTimeout bounds reading one request, headers and body: a client
	// trickling its request is cut off at it. Default 10s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// MaxConnections caps open connections (default 10000) and
	// MaxConnectionsPerIP those of one client address (default 1024).
	MaxConnections      int `yaml:"max_connections"`
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// OperatorAddr, when set, is where /metrics and /readyz with the
	// dependencies' error texts are served, off the public listener
	// (which then answers /metrics 404 and /readyz without error texts).
	// Set it in production to an address only Prometheus and the
	// operators reach.
	OperatorAddr string `yaml:"operator_addr"`
}

// Kafka configures the broker connection.
type Kafka struct {
	// Brokers empty means: embed a broker (parley dev only).
	Brokers []string `yaml:"brokers"`
	// Partitions of the topics Parley creates when they are missing.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor of the topics Parley creates (3 in production).
	ReplicationFactor int `yaml:"replication_factor"`
	// SessionTimeout is how long the consumer groups wait for a silent
	// member (a node killed or cut off) before its partitions move to the
	// others: the floor of failover. Default DefaultSessionTimeout; at
	// least MinSessionTimeout.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// ExpiredSessionRetention is how long a session nobody wrote to is
	// kept (in memory and on the parley.sessions changelog) before its
	// owner erases it and leaves a tombstone. Default 30 days (720h).
	ExpiredSessionRetention time.Duration `yaml:"expired_session_retention"`
	// DisposableSessionRetention is how long a session that holds nothing
	// worth keeping (the customer never signed in) is kept after the
	// customer's last message: anyone can write from any number, and
	// their sessions must not pile up in memory. Default 48h, the
	// provider-id dedupe's memory.
	DisposableSessionRetention time.Duration `yaml:"disposable_session_retention"`
	// TLS and SASL secure every connection to the brokers (producer,
	// consumer groups, the sessions' transactions, topic creation,
	// readiness). Both off: plaintext, as the embedded broker speaks.
	TLS  TLS  `yaml:"tls"`
	SASL SASL `yaml:"sasl"`
}

// DefaultSessionTimeout is the group session timeout unless configured:
// short enough that the customers of a lost node are answered again within
// seconds (Kafka clients default to 30-45 s), long enough that a node
// pausing for a moment (GC, a slow disk) keeps its partitions.
const DefaultSessionTimeout = 10 * time.Second

// MinSessionTimeout is Apache Kafka's default group.min.session.timeout.ms:
// a broker refuses a consumer that asks for less, so a shorter setting
// would only fail later, at the first join, on a production cluster.
const MinSessionTimeout = 6 * time.Second

// ClickHouse configures the analytics store.
type ClickHouse struct {
	// Addr empty means: start a local ClickHouse child process (parley dev only).
	Addr     string         `yaml:"addr"`
	Database string         `yaml:"database"`
	Username string         `yaml:"username"`
	Password tenants.Secret `yaml:"password"`
	// TLS connects over the server's secure native port (9440 usually)
	// instead of the plaintext one.
	TLS TLS `yaml:"tls"`
	// RetentionDays is how many days events are kept (every table but
	// the erasure audit). Default 30; 0 keeps everything.
	RetentionDays *int `yaml:"retention_days"`
	// JanitorEvery is how often the janitor drops expired days, merges
	// closed ones and rolls them up. Default 10m.
	JanitorEvery time.Duration `yaml:"janitor_every"`
}

// DefaultRetentionDays is the retention of message logs unless configured.
const DefaultRetentionDays = 30

// Retention is RetentionDays with its default applied.
func (c ClickHouse) Retention() int {
	if c.RetentionDays == nil {
		return DefaultRetentionDays
	}
	return *c.RetentionDays
}

// Defaults fills what the file left out.
func (c *Config) Defaults() {
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = "127.0.0.1:8080"
	}
	if c.HTTP.PublicBaseURL == "" {
		c.HTTP.PublicBaseURL = "http://" + c.HTTP.Addr
	}
	c.HTTP.PublicBaseURL = strings.TrimRight(c.HTTP.PublicBaseURL, "/")
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = 64 << 10
	}
	if c.HTTP.MetaMaxBodyBytes == 0 {
		c.HTTP.MetaMaxBodyBytes = 3 << 20
	}
	if c.Kafka.Partitions == 0 {
		c.Kafka.Partitions = 8
	}
	if c.Kafka.ReplicationFactor == 0 {
		c.Kafka.ReplicationFactor = 1
	}
	if c.Kafka.SessionTimeout == 0 {
		c.Kafka.SessionTimeout = DefaultSessionTimeout
	}
	if c.Kafka.DisposableSessionRetention == 0 {
		c.Kafka.DisposableSessionRetention = 48 * time.Hour
	}
	if c.Kafka.ExpiredSessionRetention == 0 {
		c.Kafka.ExpiredSessionRetention = 30 * 24 * time.Hour
	}
	if c.ClickHouse.Database == "" {
		c.ClickHouse.Database = "parley"
	}
	if c.ClickHouse.Username == "" {
		c.ClickHouse.Username = "default"
	}
	if c.ClickHouse.JanitorEvery == 0 {
		c.ClickHouse.JanitorEvery = 10 * time.Minute
	}
	if c.DataDir == "" {
		c.DataDir = ".parley"
	}
	if c.NodeID == "" {
		c.NodeID = DefaultNodeID()
	}
}

// DefaultNodeID is the host name and the process id, e.g. "web-3-41278":
// unique among the processes of one machine and readable in logs.
// Characters a node id may not hold are replaced by '-'.
func DefaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "parley"
	}
	id := nodeIDBad.ReplaceAllString(host, "-") + "-" + strconv.Itoa(os.Getpid())
	if len(id) > maxNodeID {
		id = id[len(id)-maxNodeID:]
	}
	return id
}

// A node id goes into Kafka client and transactional ids, file names and
// metric labels: letters, digits, '.', '_' and '-' are safe in all of
// them (Kafka's own rule for client ids).
var (
	nodeIDOK  = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	nodeIDBad = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

const maxNodeID = 100

// Validate reports the first thing wrong.
func (c *Config) Validate() error {
	u, err := url.Parse(c.HTTP.PublicBaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("http.public_base_url %q: want http(s)://host[:port]", c.HTTP.PublicBaseURL)
	}
	if c.HTTP.MaxBodyBytes < 0 || c.HTTP.MetaMaxBodyBytes < 0 {
		return fmt.Errorf("http.max_body_bytes %d, http.meta_max_body_bytes %d: want positive sizes", c.HTTP.MaxBodyBytes, c.HTTP.MetaMaxBodyBytes)
	}
	if c.Kafka.SessionTimeout < MinSessionTimeout {
		return fmt.Errorf("kafka.session_timeout %s: want %s or more (Apache Kafka refuses shorter sessions: group.min.session.timeout.ms defaults to %d)",
			c.Kafka.SessionTimeout, MinSessionTimeout, MinSessionTimeout.Milliseconds())
	}
	if len(c.NodeID) > maxNodeID || !nodeIDOK.MatchString(c.NodeID) {
		return fmt.Errorf("node_id %q: want 1 to %d letters, digits, '.', '_' or '-'", c.NodeID, maxNodeID)
	}
	if err := c.Kafka.SASL.validate(); err != nil {
		return err
	}
	// The TLS files are read now, so a wrong path or a broken file stops
	// the process at start with the setting named, not at the first dial.
	if _, err := c.Kafka.TLS.Build("kafka.tls"); err != nil {
		return err
	}
	if _, err := c.ClickHouse.TLS.Build("clickhouse.tls"); err != nil {
		return err
	}
	if c.ClickHouse.Retention() < 0 {
		return fmt.Errorf("clickhouse.retention_days %d: want 0 (keep everything) or more", c.ClickHouse.Retention())
	}
	if c.ClickHouse.JanitorEvery < time.Second {
		return fmt.Errorf("clickhouse.janitor_every %s: want 1s or more", c.ClickHouse.JanitorEvery)
	}
	reg, err := tenants.NewRegistry(c.Tenants)
	if err != nil {
		return err
	}
	// Meta's one webhook tells numbers apart by phone_number_id.
	if _, err := meta.IndexNumbers(reg); err != nil {
		return err
	}
	_, err = apikeys.New(c.APIKeys)
	return err
}

// Load reads, expands, parses, defaults and validates a config file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}

// Parse is Load on bytes.
func Parse(raw []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var missing []string
	expandScalars(&doc, &missing)
	if len(missing) > 0 {
		return nil, fmt.Errorf("config: environment variables not set: %s", strings.Join(missing, ", "))
	}
	expanded, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err != io.EOF {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &c, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandScalars replaces ${VAR} in every scalar value (not in comments) with
// the variable's value. A reference to an unset variable is an error: a
// silently empty auth token would turn every webhook into a 403 far from its
// cause.
func expandScalars(n *yaml.Node, missing *[]string) {
	if n.Kind == yaml.ScalarNode {
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := envRef.FindStringSubmatch(m)[1]
			v, ok := os.LookupEnv(name)
			if !ok {
				*missing = append(*missing, name)
			}
			return v
		})
	}
	for _, c := range n.Content {
		expandScalars(c, missing)
	}
}
