package clickhouse

import (
	"fmt"
	"strings"
)

// Table names. Analytics queries them; the writer fills them.
const (
	TableMessages      = "messages"
	TableAuthEvents    = "auth_events"
	TableToolCalls     = "tool_calls"
	TableUsage         = "usage"
	TableDeliveries    = "deliveries"
	TableConversations = "conversations"
	// TableConversationFirsts is a rollup of messages, one row per
	// conversation and day, filled by a materialized view: the first
	// customer message and the first reply, for first-response times
	// without scanning messages.
	TableConversationFirsts = "conversation_firsts"
	// TableAudit records GDPR erasures (and other administrative acts):
	// who, when, which tenant, a hash of the phone number. It has no
	// retention: the record of an erasure must outlive the data.
	TableAudit      = "audit"
	TableMigrations = "schema_migrations"
)

// EventTables are the tables the sink fills from parley.events, one per
// event kind. Each is a ReplacingMergeTree keyed by event id (see below),
// partitioned by day of `at`, and holds a `phone` column.
var EventTables = []string{TableMessages, TableAuthEvents, TableToolCalls, TableUsage, TableDeliveries, TableConversations}

// CustomerTables are every table that holds a customer's phone number: a
// GDPR erasure deletes from all of them.
var CustomerTables = append(append([]string(nil), EventTables...), TableConversationFirsts)

// retentionTables maps the tables that expire with Config.RetentionDays to
// the Date/DateTime column their age is measured by. The audit table and
// the migration ledger never expire.
var retentionTables = map[string]string{
	TableMessages:           "at",
	TableAuthEvents:         "at",
	TableToolCalls:          "at",
	TableUsage:              "at",
	TableDeliveries:         "at",
	TableConversations:      "at",
	TableConversationFirsts: "day",
}

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
//     Since duplicates can only ever sit in one partition, a partition made
//     of a single merged part (level > 0) holds none: the janitor compacts
//     closed days into that state, and analytics counts those days without
//     FINAL (see Store.PartitionStates).
//   - The sorting key starts with (tenant, at): every analytics query is
//     "this tenant, this time range", which reads a contiguous slice of
//     the index. phone next, so one customer's history in a range is
//     cheap too; event_id last, only to make the key unique.
//   - PARTITION BY toYYYYMMDD(at): small enough to drop a day on servers
//     without TTL (18.16, see the janitor), and FINAL merges within a
//     partition only, which keeps it cheap for recent ranges.
//   - Times: DateTime('UTC') for the second, plus a UInt16 *_ms column for
//     the millisecond within it (0-999). 18.16 has no DateTime64; one
//     schema for every server version keeps queries portable. The exact
//     instant is toUInt64(at) * 1000 + at_ms. The explicit 'UTC' makes
//     toYYYYMMDD and the text form independent of the server's time zone.
//   - tenant, channel, query_type, event, status, metric, ...:
//     LowCardinality(String) where the server has it (few distinct values,
//     read in every GROUP BY).
//   - Booleans are UInt8 (0/1): 18.16 has no Bool.

// lowCard is the type of low-cardinality string columns on this server.
func lowCard(c Capabilities) string {
	if c.HasLowCardinality {
		return "LowCardinality(String)"
	}
	return "String"
}

// ttlClause is the table TTL for the retention, empty where the server has
// no TTL or nothing should expire.
func ttlClause(c Capabilities, column string, retentionDays int) string {
	if !c.HasTTL || retentionDays <= 0 {
		return ""
	}
	return fmt.Sprintf("\nTTL %s + INTERVAL %d DAY", column, retentionDays)
}

// eventTable renders the DDL of an event table from its own columns; the
// shared ones (event_id, tenant, phone first; at, at_ms, inserted_at last)
// and the engine are the same for all.
func eventTable(c Capabilities, retentionDays int, name, columns string) string {
	return strings.NewReplacer("{lc}", lowCard(c), "{ttl}", ttlClause(c, "at", retentionDays), "{name}", name, "{columns}", columns).Replace(`CREATE TABLE IF NOT EXISTS {name} (
    event_id        String,
    tenant          {lc},
    phone           String,
{columns}
    at              DateTime('UTC'),
    at_ms           UInt16,
    inserted_at     DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(at)
ORDER BY (tenant, at, phone, event_id){ttl}`)
}

func createMessages(c Capabilities, retentionDays int) string {
	lc := lowCard(c)
	return strings.NewReplacer("{lc}", lc, "{ttl}", ttlClause(c, "at", retentionDays)).Replace(`CREATE TABLE IF NOT EXISTS messages (
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
	return strings.NewReplacer("{lc}", lc, "{ttl}", ttlClause(c, "at", retentionDays)).Replace(`CREATE TABLE IF NOT EXISTS auth_events (
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

func createToolCalls(c Capabilities, retentionDays int) string {
	return eventTable(c, retentionDays, TableToolCalls, strings.ReplaceAll(`    conversation_id String,
    tool            {lc},
    ok              UInt8,
    latency_us      UInt64,
    error           {lc},`, "{lc}", lowCard(c)))
}

func createUsage(c Capabilities, retentionDays int) string {
	return eventTable(c, retentionDays, TableUsage, strings.ReplaceAll(`    metric          {lc},
    value           Int64,
    model           {lc},`, "{lc}", lowCard(c)))
}

func createDeliveries(c Capabilities, retentionDays int) string {
	return eventTable(c, retentionDays, TableDeliveries, strings.ReplaceAll(`    message_id      String,
    provider_id     String,
    status          {lc},
    error_code      {lc},
    channel         {lc},`, "{lc}", lowCard(c)))
}

func createConversations(c Capabilities, retentionDays int) string {
	return eventTable(c, retentionDays, TableConversations, strings.ReplaceAll(`    conversation_id String,
    change          {lc},
    status          {lc},
    ai_enabled      UInt8,
    operator        String,
    summary         String,
    by_customer     UInt8,`, "{lc}", lowCard(c)))
}

// noTime is the sentinel of conversation_firsts for "no such message":
// min() of it and a real time is the real time.
const noTime = "toUInt64(18446744073709551615)"

// createConversationFirsts is the first-response rollup. min is the only
// aggregate, and min is idempotent: a replayed message, counted twice by
// the materialized view, changes nothing. That is what lets a rollup sit
// on an at-least-once pipeline without a dedupe step. One row per
// (conversation, day) until merged; a conversation spanning days keeps a
// row per day, and readers take min over them.
func createConversationFirsts(c Capabilities, retentionDays int) string {
	return strings.NewReplacer("{lc}", lowCard(c), "{ttl}", ttlClause(c, "day", retentionDays)).Replace(`CREATE TABLE IF NOT EXISTS conversation_firsts (
    tenant          {lc},
    day             Date,
    conversation_id String,
    phone           String,
    first_in_ms     AggregateFunction(min, UInt64),
    first_out_ms    AggregateFunction(min, UInt64)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(day)
ORDER BY (tenant, conversation_id, day){ttl}`)
}

// conversationFirstsSelect aggregates message rows into conversation_firsts
// rows: the view runs it on every inserted block, the migration once over
// what messages already held. A customer message counts from when the
// ingress accepted it (provider_at) when known, so queueing before the
// session counts against the response time.
const conversationFirstsSelect = `SELECT
    tenant,
    toDate(at) AS day,
    conversation_id,
    any(phone) AS phone,
    minState(if(direction = 'in',
        if(provider_at > toDateTime(0), toUInt64(provider_at) * 1000 + provider_at_ms, toUInt64(at) * 1000 + at_ms),
        ` + noTime + `)) AS first_in_ms,
    minState(if(direction = 'out', toUInt64(at) * 1000 + at_ms, ` + noTime + `)) AS first_out_ms
FROM messages
WHERE conversation_id != ''
GROUP BY tenant, day, conversation_id`

const createConversationFirstsView = `CREATE MATERIALIZED VIEW IF NOT EXISTS conversation_firsts_mv TO conversation_firsts AS ` + conversationFirstsSelect

// backfillConversationFirsts fills the rollup from the messages stored
// before the view existed. Running it twice is harmless (min).
const backfillConversationFirsts = `INSERT INTO conversation_firsts (tenant, day, conversation_id, phone, first_in_ms, first_out_ms) ` + conversationFirstsSelect

// createAudit: a plain MergeTree, append-only. phone_hash is
// hex(SHA-256("parley-forget-v1|" + tenant + "|" + phone)): enough to answer
// "was this number erased, and when" by recomputing it, without keeping
// the number. tables and rows_deleted are parallel arrays.
func createAudit(c Capabilities) string {
	return strings.ReplaceAll(`CREATE TABLE IF NOT EXISTS audit (
    id           String,
    at           DateTime('UTC'),
    at_ms        UInt16,
    action       {lc},
    actor        String,
    tenant       {lc},
    phone_hash   String,
    tables       Array(String),
    rows_deleted Array(UInt64),
    status       {lc},
    detail       String
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (tenant, at, id)`, "{lc}", lowCard(c))
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
	messageColumns      = "event_id, tenant, phone, direction, message_id, provider_id, channel, conversation_id, body, query_type, at, at_ms, provider_at, provider_at_ms"
	authColumns         = "event_id, tenant, phone, profile_id, event, attempt, at, at_ms"
	toolCallColumns     = "event_id, tenant, phone, conversation_id, tool, ok, latency_us, error, at, at_ms"
	usageColumns        = "event_id, tenant, phone, metric, value, model, at, at_ms"
	deliveryColumns     = "event_id, tenant, phone, message_id, provider_id, status, error_code, channel, at, at_ms"
	conversationColumns = "event_id, tenant, phone, conversation_id, change, status, ai_enabled, operator, summary, by_customer, at, at_ms"
	auditColumns        = "id, at, at_ms, action, actor, tenant, phone_hash, tables, rows_deleted, status, detail"
)
