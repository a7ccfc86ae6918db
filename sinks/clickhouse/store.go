// Package clickhouse is Parley's analytics store and owns everything of
// ClickHouse: the schema and its migrations, the batched writer of
// wire.Events, the Sink that moves parley.events from Kafka into ClickHouse
// with offsets committed only after ClickHouse accepted the rows, the
// janitor and its rollups, the exact reads analytics composes its figures
// from (read*.go: rollups where still valid, the events elsewhere), and
// the GDPR erasure of a customer's rows (Forget, erase.go).
//
// It talks the native protocol (clickhouse-go/v2) and works against
// ClickHouse 18.16 (Debian's package, what `parley dev` and the tests run)
// as well as current releases: it probes the server at Open and uses the
// newer features (TTL) only where the server has them. Rules that keep it
// working on 18.16:
//   - every insert is a PrepareBatch with an explicit column list; 18.16
//     rejects a batch without one, and Exec("INSERT … VALUES") hangs;
//   - per-query settings are integers;
//   - no DateTime64: times are DateTime plus a milliseconds column.
package clickhouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where the store lives.
type Config struct {
	// Addr is the native protocol address, host:port (port 9000 usually).
	Addr string
	// Database is created if missing. Default "parley".
	Database string
	Username string
	Password string
	// TLS, when set, connects over TLS (the server's secure native port,
	// 9440 usually): RootCAs, an optional client certificate, ServerName.
	TLS *tls.Config
	// RetentionDays, when positive, deletes events (every table but the
	// audit) older than that many days: by TTL on servers that have it
	// (19.6 and later), and on every server by the janitor, which drops
	// whole expired daily partitions (RunJanitor). Zero keeps everything.
	RetentionDays int
	Logger        *slog.Logger
}

// Store is a connection pool to ClickHouse with the schema in place.
type Store struct {
	cfg  Config
	conn driver.Conn
	caps Capabilities
	log  *slog.Logger
}

// identifier is what Parley accepts as a database name: it is spliced into
// DDL, where ClickHouse has no bind parameters.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Open connects, creates the database if it is missing, probes what the
// server supports and applies the migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Addr == "" {
		return nil, errors.New("clickhouse: Config.Addr is empty")
	}
	if cfg.Database == "" {
		cfg.Database = "parley"
	}
	if !identifier.MatchString(cfg.Database) {
		return nil, fmt.Errorf("clickhouse: database name %q: use letters, digits and _", cfg.Database)
	}
	if cfg.Username == "" {
		cfg.Username = "default"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	// The database must exist before a connection can name it in the
	// handshake, so create it over a connection to the default one.
	boot, err := connect(ctx, cfg, "")
	if err != nil {
		return nil, err
	}
	err = boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+cfg.Database+"`")
	_ = boot.Close()
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: create database %s: %w", cfg.Addr, cfg.Database, err)
	}

	conn, err := connect(ctx, cfg, cfg.Database)
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, conn: conn, log: cfg.Logger}
	if s.caps, err = probe(ctx, conn); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse %s: probe server: %w", cfg.Addr, err)
	}
	s.log.Debug("clickhouse connected", "addr", cfg.Addr, "database", cfg.Database, "version", s.caps.Version,
		"ttl", s.caps.HasTTL, "low_cardinality", s.caps.HasLowCardinality)
	if err := s.Migrate(ctx); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return s, nil
}

func connect(ctx context.Context, cfg Config, database string) (driver.Conn, error) {
	conn, err := ch.Open(&ch.Options{
		Addr: []string{cfg.Addr},
		Auth: ch.Auth{Database: database, Username: cfg.Username, Password: cfg.Password},
		TLS:  cfg.TLS,
		// Short dial timeout: a sink retrying against a server that is
		// down should fail fast and back off, not hang for 30s.
		DialTimeout: 5 * time.Second,
		ReadTimeout: time.Minute,
		Compression: &ch.Compression{Method: ch.CompressionLZ4},
		ClientInfo:  ch.ClientInfo{Products: []struct{ Name, Version string }{{Name: "parley", Version: "1"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

// Ping reports whether the server answers: the readiness check.
func (s *Store) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// Close closes the connection pool.
func (s *Store) Close() error { return s.conn.Close() }

// Conn is the underlying connection pool, for tests and tools (bench).
func (s *Store) Conn() driver.Conn { return s.conn }

// Database is the database the tables live in.
func (s *Store) Database() string { return s.cfg.Database }

// Capabilities are what the server was found to support at Open.
func (s *Store) Capabilities() Capabilities { return s.caps }
