package clickhouse

import (
	"fmt"
	"strings"
)

// Table names. Analytics queries them; the writer fills them.
const (
	TableMessages   = "messages"
	TableAuthEvents = "auth_events"
	TableMigrations = "schema_migrations"
)

// The event tables share one design, chosen for an at-least-once pipeline:
//
//   - ENGINE = ReplacingMergeTree keyed by ORDER BY (tenant, at, phone,
//     event_id). A replayed event (the sink re-reads records whose offsets
//     were not committed, a producer retries) carries the same event id,
//     tenant, phone and time, so it lands on the same sorting key in the
//     same partition and collapses into one row when parts merge. Until
//     they merge, readers deduplicate: `FROM messages FINAL`, or
//     uniqExact(event_id) for counts. ClickHouse's own insert deduplication
//     is not enough: it only applies to replicated tables and to
//     byte-identical blocks, and a retried batch is rarely identical.
//   - The sorting key starts with (tenant, at): every analytics query is
//     "this tenant, this time range", which reads a contiguous slice of
//     the index. phone next, so one customer's history in a range is
//     cheap too; event_id last, only to make the key unique.
//   - PARTITION BY toYYYYMMDD(at): small enough to drop a day by hand on
//     servers without TTL (18.16), and FINAL merges within a partition
//     only, which keeps it cheap for recent ranges.
//   - Times: DateTime('UTC') for the second, plus a UInt16 *_ms column for
//     the millisecond within it (0-999). 18.16 has no DateTime64; one
//     schema for every server version keeps queries portable. The exact
//     instant is toUInt64(at) * 1000 + at_ms. The explicit 'UTC' makes
//     toYYYYMMDD and the text form independent of the server's time zone.
//   - tenant, channel, query_type, event: LowCardinality(String) where the
//     server has it (few distinct values, read in every GROUP BY).

// lowCard is the type of low-cardinality string columns on this server.
func lowCard(c Capabilities) string {
	if c.HasLowCardinality {
		return "LowCardinality(String)"
	}
	return "String"
}

// ttlClause is the table TTL for the retention, empty where the server has
// no TTL or nothing should expire.
func ttlClause(c Capabilities, retentionDays int) string {
	if !c.HasTTL || retentionDays <= 0 {
		return ""
	}
	return fmt.Sprintf("\nTTL at + INTERVAL %d DAY", retentionDays)
}

func createMessages(c Capabilities, retentionDays int) string {
	lc := lowCard(c)
	return strings.NewReplacer("{lc}", lc, "{ttl}", ttlClause(c, retentionDays)).Replace(`CREATE TABLE IF NOT EXISTS messages (
    event_id        String,
    tenant          {lc},
    phone           String,
    direction       Enum8('in' = 1, 'out' = 2),
    message_id      String,
    provider_id     String,
    channel         {lc},
    conversation_id String,
    body            String,
    query_type      {lc},
    at              DateTime('UTC'),
    at_ms           UInt16,
    provider_at     DateTime('UTC'),
    provider_at_ms  UInt16,
    inserted_at     DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(at)
ORDER BY (tenant, at, phone, event_id){ttl}`)
}

func createAuthEvents(c Capabilities, retentionDays int) string {
	lc := lowCard(c)
	return strings.NewReplacer("{lc}", lc, "{ttl}", ttlClause(c, retentionDays)).Replace(`CREATE TABLE IF NOT EXISTS auth_events (
    event_id    String,
    tenant      {lc},
    phone       String,
    profile_id  String,
    event       {lc},
    attempt     UInt8,
    at          DateTime('UTC'),
    at_ms       UInt16,
    inserted_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(at)
ORDER BY (tenant, at, phone, event_id){ttl}`)
}

// createMigrations is the ledger of applied migrations. ReplacingMergeTree
// on version: two processes migrating at once both record a version, and
// the ledger still says it once.
const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree()
ORDER BY version`

// Columns written by the writer, in Append order.
const (
	messageColumns = "event_id, tenant, phone, direction, message_id, provider_id, channel, conversation_id, body, query_type, at, at_ms, provider_at, provider_at_ms"
	authColumns    = "event_id, tenant, phone, profile_id, event, attempt, at, at_ms"
)
