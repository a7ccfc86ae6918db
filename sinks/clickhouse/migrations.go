package clickhouse

import (
	"context"
	"fmt"
	"sort"
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
	// columns are added after up's statements, each only if missing: 18.16
	// has no ADD COLUMN IF NOT EXISTS.
	columns []addColumn
}

// addColumn is one ALTER TABLE table ADD COLUMN column def.
type addColumn struct{ table, column, def string }

// migrations are applied in order; append, never edit or renumber one that
// has shipped.
var migrations = []migration{
	{1, "messages", func(c Capabilities, cfg Config) []string {
		return []string{createMessages(c, cfg.RetentionDays)}
	}, nil},
	{2, "auth_events", func(c Capabilities, cfg Config) []string {
		return []string{createAuthEvents(c, cfg.RetentionDays)}
	}, nil},
	{3, "tool_calls", func(c Capabilities, cfg Config) []string {
		return []string{createToolCalls(c, cfg.RetentionDays)}
	}, nil},
	{4, "usage", func(c Capabilities, cfg Config) []string {
		return []string{createUsage(c, cfg.RetentionDays)}
	}, nil},
	{5, "deliveries", func(c Capabilities, cfg Config) []string {
		return []string{createDeliveries(c, cfg.RetentionDays)}
	}, nil},
	{6, "conversations", func(c Capabilities, cfg Config) []string {
		return []string{createConversations(c, cfg.RetentionDays)}
	}, nil},
	{7, "conversation_firsts", func(c Capabilities, cfg Config) []string {
		return conversationFirstsV7(c, cfg.RetentionDays)
	}, nil},
	{8, "audit", func(c Capabilities, cfg Config) []string {
		return []string{createAudit(c)}
	}, nil},
	{9, "conversation_firsts with starts, plain MergeTree", func(c Capabilities, cfg Config) []string {
		return rebuildConversationFirsts(c, cfg.RetentionDays)
	}, nil},
	{10, "rollups", func(c Capabilities, cfg Config) []string {
		return []string{createHourly(c, cfg.RetentionDays), createFirstResponses(c, cfg.RetentionDays), createRollupRuns}
	}, nil},
	{11, "messages.reply_id", nil, []addColumn{messagesReplyID}},
	{12, "messages.media", nil, []addColumn{messagesMedia}},
}

// Migrate brings the schema up to date: the migrations not yet recorded in
// schema_migrations run and are recorded. Running it again is a no-op.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.migrate(ctx, migrations); err != nil {
		return err
	}
	return s.applyRetention(ctx)
}

// migrate applies the steps of list not yet recorded.
func (s *Store) migrate(ctx context.Context, list []migration) error {
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
	for _, m := range list {
		if done[m.version] {
			continue
		}
		var stmts []string
		if m.up != nil {
			stmts = m.up(s.caps, s.cfg)
		}
		for _, stmt := range stmts {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("clickhouse: migration %d (%s): %w", m.version, m.name, err)
			}
		}
		for _, c := range m.columns {
			if err := s.addColumn(ctx, c); err != nil {
				return fmt.Errorf("clickhouse: migration %d (%s): %w", m.version, m.name, err)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return err
		}
		s.log.Info("clickhouse migration applied", "database", s.cfg.Database, "version", m.version, "name", m.name)
	}
	return nil
}

// addColumn adds a column unless the table has it. Two processes
// migrating at once may both try; the loser's error is moot if the column
// is there afterwards.
func (s *Store) addColumn(ctx context.Context, c addColumn) error {
	exists := func() (bool, error) {
		var n uint64
		err := s.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = ? AND name = ?", c.table, c.column).Scan(&n)
		return n > 0, err
	}
	if ok, err := exists(); err != nil || ok {
		return err
	}
	if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", c.table, c.column, c.def)); err != nil {
		if ok, _ := exists(); ok {
			return nil
		}
		return fmt.Errorf("add column %s.%s: %w", c.table, c.column, err)
	}
	return nil
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
		s.log.Info("clickhouse server has no TTL: retention is enforced by the janitor dropping expired daily partitions",
			"version", s.caps.Version, "retention_days", days)
		return nil
	}
	for _, table := range sortedKeys(retentionTables) {
		column := retentionTables[table]
		var engineFull string
		if err := s.conn.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = ?", table).Scan(&engineFull); err != nil {
			return fmt.Errorf("clickhouse: read %s definition: %w", table, err)
		}
		if hasRetention(engineFull, column, days) {
			continue
		}
		if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s MODIFY TTL %s + INTERVAL %d DAY", table, column, days)); err != nil {
			return fmt.Errorf("clickhouse: set %s retention: %w", table, err)
		}
		s.log.Info("clickhouse retention set", "table", table, "days", days)
	}
	return nil
}

// hasRetention reports whether a table's engine_full already carries the
// TTL of column for days. Servers print `INTERVAL n DAY` back as
// toIntervalDay(n).
func hasRetention(engineFull, column string, days int) bool {
	return strings.Contains(engineFull, fmt.Sprintf("TTL %s + toIntervalDay(%d)", column, days)) ||
		strings.Contains(engineFull, fmt.Sprintf("TTL %s + INTERVAL %d DAY", column, days))
}

// sortedKeys gives the map's keys in order, so DDL runs in the same order
// every time.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
