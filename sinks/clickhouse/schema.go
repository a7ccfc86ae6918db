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
	// TableHourly holds, per closed day, exact hourly counts and sums of
	// the event tables, computed by the janitor from compacted days;
	// TableFirstResponses the first-response samples of the
	// conversations started on a day, once final; TableRollupRuns which
	// run of either is valid for a day, and from which source parts.
	TableHourly         = "hourly_rollup"
	TableFirstResponses = "first_responses"
	TableRollupRuns     = "rollup_runs"
)

// EventTables are the tables the sink fills from parley.events, one per
// event kind. Each is a ReplacingMergeTree keyed by event id (see below),
// partitioned by day of `at`, and holds a `phone` column.
var EventTables = []string{TableMessages, TableAuthEvents, TableToolCalls, TableUsage, TableDeliveries, TableConversations}

// CustomerTables are every table that holds a customer's phone number: a
// GDPR erasure deletes from all of them. (hourly_rollup holds only counts;
// it is recomputed, since an erasure changes its source parts.)
var CustomerTables = append(append([]string(nil), EventTables...), TableConversationFirsts, TableFirstResponses)

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
	TableHourly:             "day",
	TableFirstResponses:     "day",
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

// createConversationFirsts is the first-response rollup: per conversation
// and day, the earliest start (conversation event "started"), customer
// message and reply, each a Unix millisecond time or noTime. Readers take
// min() per conversation over its rows.
//
// min is the only aggregate, and min is idempotent: a replayed event,
// rolled up twice, changes nothing. That is what lets a rollup sit on an
// at-least-once pipeline without a dedupe step. It is a plain MergeTree
// with plain UInt64 columns rather than an AggregatingMergeTree of
// minState: one schema for every server (SimpleAggregateFunction is
// 19.8+), and min over plain columns reads several times faster than
// minMerge on 18.16. The price is a row per conversation, day and insert
// (block) instead of one per conversation and day.
func createConversationFirsts(c Capabilities, retentionDays int) string {
	return strings.NewReplacer("{lc}", lowCard(c), "{ttl}", ttlClause(c, "day", retentionDays)).Replace(`CREATE TABLE IF NOT EXISTS conversation_firsts (
    tenant          {lc},
    day             Date,
    conversation_id String,
    phone           String,
    started_ms      UInt64,
    first_in_ms     UInt64,
    first_out_ms    UInt64
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(day)
ORDER BY (tenant, conversation_id, day){ttl}`)
}

// conversationFirstsFromMessages and conversationFirstsFromConversations
// roll up inserted blocks: the views run them on every block, the
// migration once over what the tables already held. A customer message
// counts from when the ingress accepted it (provider_at) when known, so
// queueing before the session counts against the response time.
const conversationFirstsFromMessages = `SELECT
    tenant,
    toDate(at) AS day,
    conversation_id,
    any(phone) AS phone,
    ` + noTime + ` AS started_ms,
    min(if(direction = 'in',
        if(provider_at > toDateTime(0), toUInt64(provider_at) * 1000 + provider_at_ms, toUInt64(at) * 1000 + at_ms),
        ` + noTime + `)) AS first_in_ms,
    min(if(direction = 'out', toUInt64(at) * 1000 + at_ms, ` + noTime + `)) AS first_out_ms
FROM messages
WHERE conversation_id != ''
GROUP BY tenant, day, conversation_id`

const conversationFirstsFromConversations = `SELECT
    tenant,
    toDate(at) AS day,
    conversation_id,
    any(phone) AS phone,
    min(toUInt64(at) * 1000 + at_ms) AS started_ms,
    ` + noTime + ` AS first_in_ms,
    ` + noTime + ` AS first_out_ms
FROM conversations
WHERE change = 'started' AND conversation_id != ''
GROUP BY tenant, day, conversation_id`

const conversationFirstsColumns = "tenant, day, conversation_id, phone, started_ms, first_in_ms, first_out_ms"

// The views, then the backfills: an event inserted in between reaches
// the rollup twice, which min() makes harmless; the other order could
// miss it.
//
// Migration 9 replaced migration 7's AggregatingMergeTree (which had no
// started_ms) by this table: it drops the old view and table, whatever
// exists of its own, and rebuilds everything from the event tables, so
// running it again is harmless too.
var conversationFirstsDDL = []string{
	`DROP TABLE IF EXISTS conversation_firsts_mv`,
	`DROP TABLE IF EXISTS conversation_firsts_from_messages`,
	`DROP TABLE IF EXISTS conversation_firsts_from_conversations`,
	`DROP TABLE IF EXISTS conversation_firsts`,
	`{create}`,
	`CREATE MATERIALIZED VIEW IF NOT EXISTS conversation_firsts_from_messages TO conversation_firsts AS ` + conversationFirstsFromMessages,
	`CREATE MATERIALIZED VIEW IF NOT EXISTS conversation_firsts_from_conversations TO conversation_firsts AS ` + conversationFirstsFromConversations,
	`INSERT INTO conversation_firsts (` + conversationFirstsColumns + `) ` + conversationFirstsFromMessages,
	`INSERT INTO conversation_firsts (` + conversationFirstsColumns + `) ` + conversationFirstsFromConversations,
}

// rebuildConversationFirsts is migration 9: conversationFirstsDDL with
// the table's CREATE in its place.
func rebuildConversationFirsts(c Capabilities, retentionDays int) []string {
	out := make([]string, len(conversationFirstsDDL))
	for i, stmt := range conversationFirstsDDL {
		if stmt == "{create}" {
			stmt = createConversationFirsts(c, retentionDays)
		}
		out[i] = stmt
	}
	return out
}

// conversationFirstsBackfills are the two backfill statements of
// conversationFirstsDDL.
var conversationFirstsBackfills = conversationFirstsDDL[len(conversationFirstsDDL)-2:]

// The first version of conversation_firsts (migration 7, shipped; kept
// as it ran so that the history replays the same on a new server): an
// AggregatingMergeTree of minState, customer messages and replies only.
func createConversationFirstsV7(c Capabilities, retentionDays int) string {
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

const conversationFirstsSelectV7 = `SELECT
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

func conversationFirstsV7(c Capabilities, retentionDays int) []string {
	return []string{
		createConversationFirstsV7(c, retentionDays),
		`CREATE MATERIALIZED VIEW IF NOT EXISTS conversation_firsts_mv TO conversation_firsts AS ` + conversationFirstsSelectV7,
		`INSERT INTO conversation_firsts (tenant, day, conversation_id, phone, first_in_ms, first_out_ms) ` + conversationFirstsSelectV7,
	}
}

// createHourly is the hourly rollup: exact counts and sums per tenant and
// hour of the closed days and of today's hours that have ended. dim says what the value counts:
// messages "in/<query type>" and "out/<query type>", usage the usage
// metric (value is the sum), conversations the change, auth the event.
// Rows belong to a run (run_id); only the run recorded in rollup_runs for
// the day is read, so a half-written or superseded run is never counted.
func createHourly(c Capabilities, retentionDays int) string {
	return strings.NewReplacer("{lc}", lowCard(c), "{ttl}", ttlClause(c, "day", retentionDays)).Replace(`CREATE TABLE IF NOT EXISTS hourly_rollup (
    tenant  {lc},
    day     Date,
    hour    DateTime('UTC'),
    metric  {lc},
    dim     String,
    value   Int64,
    run_id  String
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(day)
ORDER BY (tenant, metric, hour, dim){ttl}`)
}

// createFirstResponses holds, per day, the conversations started that day
// with their first customer message and first reply (min over
// conversation_firsts), once the day is final: replies count within 24
// hours, so a day is final when the next one has ended.
func createFirstResponses(c Capabilities, retentionDays int) string {
	return strings.NewReplacer("{lc}", lowCard(c), "{ttl}", ttlClause(c, "day", retentionDays)).Replace(`CREATE TABLE IF NOT EXISTS first_responses (
    tenant          {lc},
    day             Date,
    conversation_id String,
    phone           String,
    started_ms      UInt64,
    first_in_ms     UInt64,
    first_out_ms    UInt64,
    run_id          String
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(day)
ORDER BY (tenant, started_ms){ttl}`)
}

// createRollupRuns records the latest run of each rollup kind and day:
// the source parts it was computed from, and until when (an hourly run of
// today covers the hours before until).
const createRollupRuns = `CREATE TABLE IF NOT EXISTS rollup_runs (
    kind      String,
    day       Date,
    source    String,
    until     DateTime('UTC'),
    run_id    String,
    rolled_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(rolled_at)
ORDER BY (kind, day)`

// messagesReplyID is migration 11: the id of the reply button or list row
// a customer chose (empty for everything else).
var messagesReplyID = addColumn{TableMessages, "reply_id", "String DEFAULT '' AFTER query_type"}

// messagesMedia is migration 12: an inbound message's attachments, one
// reference per line (see wire.MessageLog.Media).
var messagesMedia = addColumn{TableMessages, "media", "String DEFAULT '' AFTER reply_id"}

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
	messageColumns      = "event_id, tenant, phone, direction, message_id, provider_id, channel, conversation_id, body, query_type, at, at_ms, provider_at, provider_at_ms, reply_id, media"
	authColumns         = "event_id, tenant, phone, profile_id, event, attempt, at, at_ms"
	toolCallColumns     = "event_id, tenant, phone, conversation_id, tool, ok, latency_us, error, at, at_ms"
	usageColumns        = "event_id, tenant, phone, metric, value, model, at, at_ms"
	deliveryColumns     = "event_id, tenant, phone, message_id, provider_id, status, error_code, channel, at, at_ms"
	conversationColumns = "event_id, tenant, phone, conversation_id, change, status, ai_enabled, operator, summary, by_customer, at, at_ms"
	auditColumns        = "id, at, at_ms, action, actor, tenant, phone_hash, tables, rows_deleted, status, detail"
)
