package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// migration is one versioned schema step. Its statements must be
// idempotent (IF NOT EXISTS and the like): a process can die between
// running them and recording the version, and two processes can migrate at
// once; running a step again must then be harmless.
type migration struct {
	version uint32
	name    string
	up      func(c Capabilities, cfg Config) []string
}

// migrations are applied in order; append, never edit or renumber one that
// has shipped.
var migrations = []migration{
	{1, "messages", func(c Capabilities, cfg Config) []string {
		return []string{createMessages(c, cfg.RetentionDays)}
	}},
	{2, "auth_events", func(c Capabilities, cfg Config) []string {
		return []string{createAuthEvents(c, cfg.RetentionDays)}
	}},
}

// Migrate brings the schema up to date: the migrations not yet recorded in
// schema_migrations run and are recorded. Running it again is a no-op.
func (s *Store) Migrate(ctx context.Context) error {
	ctx = s.ddlContext(ctx)
	if err := s.conn.Exec(ctx, createMigrations); err != nil {
		return fmt.Errorf("clickhouse: create %s: %w", TableMigrations, err)
	}
	applied, err := s.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	done := map[uint32]bool{}
	for _, v := range applied {
		done[v] = true
	}
	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		for _, stmt := range m.up(s.caps, s.cfg) {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("clickhouse: migration %d (%s): %w", m.version, m.name, err)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return err
		}
		s.log.Info("clickhouse migration applied", "database", s.cfg.Database, "version", m.version, "name", m.name)
	}
	return s.applyRetention(ctx)
}

// AppliedMigrations are the versions recorded in schema_migrations, in
// order.
func (s *Store) AppliedMigrations(ctx context.Context) ([]uint32, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read %s: %w", TableMigrations, err)
	}
	defer rows.Close()
	var vs []uint32
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}

// SchemaVersion is the latest migration this build knows.
func SchemaVersion() uint32 { return migrations[len(migrations)-1].version }

func (s *Store) recordMigration(ctx context.Context, m migration) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at)")
	if err != nil {
		return fmt.Errorf("clickhouse: record migration %d: %w", m.version, err)
	}
	if err := b.Append(m.version, m.name, time.Now().UTC()); err != nil {
		_ = b.Abort()
		return fmt.Errorf("clickhouse: record migration %d: %w", m.version, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: record migration %d: %w", m.version, err)
	}
	return nil
}

// ddlContext turns on LowCardinality for DDL on servers where it is still
// experimental and off for this user (18.x outside Parley's own local
// server). The value is an int: 18.16 rejects bool query settings.
func (s *Store) ddlContext(ctx context.Context) context.Context {
	if !s.caps.LowCardinalityNeedsSetting {
		return ctx
	}
	return ch.Context(ctx, ch.WithSettings(ch.Settings{"allow_experimental_low_cardinality_type": 1}))
}

// applyRetention makes the tables' TTL follow Config.RetentionDays on a
// server with TTL: a table created before the retention was set, or with
// another one, is altered. It is not a numbered migration because it is
// configuration, not schema history. A zero retention leaves an existing
// TTL alone: removing one is a deliberate act for an operator.
func (s *Store) applyRetention(ctx context.Context) error {
	days := s.cfg.RetentionDays
	if days <= 0 {
		return nil
	}
	if !s.caps.HasTTL {
		s.log.Warn("clickhouse retention not enforced: this server has no TTL; drop old daily partitions by hand",
			"version", s.caps.Version, "retention_days", days)
		return nil
	}
	for _, table := range []string{TableMessages, TableAuthEvents} {
		var engineFull string
		if err := s.conn.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = ?", table).Scan(&engineFull); err != nil {
			return fmt.Errorf("clickhouse: read %s definition: %w", table, err)
		}
		if hasRetention(engineFull, days) {
			continue
		}
		if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s MODIFY TTL at + INTERVAL %d DAY", table, days)); err != nil {
			return fmt.Errorf("clickhouse: set %s retention: %w", table, err)
		}
		s.log.Info("clickhouse retention set", "table", table, "days", days)
	}
	return nil
}

// hasRetention reports whether a table's engine_full already carries the
// TTL for days. Servers print `INTERVAL n DAY` back as toIntervalDay(n).
func hasRetention(engineFull string, days int) bool {
	return strings.Contains(engineFull, fmt.Sprintf("TTL at + toIntervalDay(%d)", days)) ||
		strings.Contains(engineFull, fmt.Sprintf("TTL at + INTERVAL %d DAY", days))
}
