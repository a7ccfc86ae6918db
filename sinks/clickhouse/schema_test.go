package clickhouse

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/wire"
)

func TestParseVersion(t *testing.T) {
	cases := []struct {
		in           string
		major, minor int
		bad          bool
	}{
		{"18.16.1", 18, 16, false},
		{"24.8.4.13", 24, 8, false},
		{"24.3.2.23-lts", 24, 3, false},
		{"25.1", 25, 1, false},
		{"", 0, 0, true},
		{"x.y", 0, 0, true},
	}
	for _, c := range cases {
		major, minor, err := parseVersion(c.in)
		if (err != nil) != c.bad || major != c.major || minor != c.minor {
			t.Errorf("parseVersion(%q) = %d, %d, %v", c.in, major, minor, err)
		}
	}
}

// The DDL differs by server; only 18.16 runs here, so what a current
// server gets is checked as text.
func TestDDLFollowsCapabilities(t *testing.T) {
	old := Capabilities{Version: "18.16.1", Major: 18, Minor: 16, HasLowCardinality: true}
	current := Capabilities{Version: "24.8.4.13", Major: 24, Minor: 8, HasLowCardinality: true, HasTTL: true, HasDateTime64: true}
	ancient := Capabilities{Version: "18.1.0", Major: 18, Minor: 1}
	cases := []struct {
		name      string
		caps      Capabilities
		retention int
		want      []string
		notWant   []string
	}{
		{"18.16 with retention: no TTL", old, 30, []string{"tenant LowCardinality(String)", "ReplacingMergeTree", "ORDER BY (tenant, at, phone, event_id)"}, []string{"TTL"}},
		{"24.x with retention: TTL", current, 30, []string{"TTL at + INTERVAL 30 DAY", "LowCardinality(String)"}, nil},
		{"24.x without retention", current, 0, nil, []string{"TTL"}},
		{"no LowCardinality: String", ancient, 0, []string{"tenant String,"}, []string{"LowCardinality", "TTL"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Whitespace is normalised: column alignment differs by table.
			squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
			for _, ddl := range []string{createMessages(c.caps, c.retention), createAuthEvents(c.caps, c.retention),
				createToolCalls(c.caps, c.retention), createUsage(c.caps, c.retention),
				createDeliveries(c.caps, c.retention), createConversations(c.caps, c.retention)} {
				ddl = squash(ddl)
				for _, w := range c.want {
					if !strings.Contains(ddl, squash(w)) {
						t.Errorf("want %q in\n%s", w, ddl)
					}
				}
				for _, nw := range c.notWant {
					if strings.Contains(ddl, nw) {
						t.Errorf("do not want %q in\n%s", nw, ddl)
					}
				}
			}
		})
	}
}

func TestHasRetention(t *testing.T) {
	cases := []struct {
		engineFull string
		days       int
		want       bool
	}{
		{"ReplacingMergeTree PARTITION BY toYYYYMMDD(at) ORDER BY (tenant, at, phone, event_id) TTL at + toIntervalDay(30) SETTINGS index_granularity = 8192", 30, true},
		{"ReplacingMergeTree PARTITION BY toYYYYMMDD(at) ORDER BY (tenant, at, phone, event_id) TTL at + toIntervalDay(7) SETTINGS index_granularity = 8192", 30, false},
		{"ReplacingMergeTree PARTITION BY toYYYYMMDD(at) ORDER BY (tenant, at, phone, event_id) SETTINGS index_granularity = 8192", 30, false},
	}
	for _, c := range cases {
		if got := hasRetention(c.engineFull, "at", c.days); got != c.want {
			t.Errorf("hasRetention(%q, %d) = %v", c.engineFull, c.days, got)
		}
	}
}

func TestCheckEvent(t *testing.T) {
	msg := func(m *wire.MessageLog) *wire.Event {
		return &wire.Event{Id: "e", AtMs: 1, Kind: &wire.Event_Message{Message: m}}
	}
	cases := []struct {
		name string
		ev   *wire.Event
		ok   bool
	}{
		{"message", msg(&wire.MessageLog{Direction: "in"}), true},
		{"auth", &wire.Event{Id: "e", Kind: &wire.Event_Auth{Auth: &wire.AuthEvent{Event: "code_sent"}}}, true},
		{"nil", nil, false},
		{"no id", &wire.Event{Kind: &wire.Event_Auth{Auth: &wire.AuthEvent{}}}, false},
		{"no kind", &wire.Event{Id: "e"}, false},
		{"empty message", msg(nil), false},
		{"bad direction", msg(&wire.MessageLog{Direction: "sideways"}), false},
		{"negative time", &wire.Event{Id: "e", AtMs: -1, Kind: &wire.Event_Auth{Auth: &wire.AuthEvent{}}}, false},
		{"after 2106", &wire.Event{Id: "e", AtMs: maxDateTimeMs + 1, Kind: &wire.Event_Auth{Auth: &wire.AuthEvent{}}}, false},
		{"last DateTime ms", &wire.Event{Id: "e", AtMs: maxDateTimeMs, Kind: &wire.Event_Auth{Auth: &wire.AuthEvent{}}}, true},
		{"bad provider time", msg(&wire.MessageLog{Direction: "out", ProviderAtMs: -5}), false},
		{"tool call", &wire.Event{Id: "e", Kind: &wire.Event_ToolCall{ToolCall: &wire.ToolCall{Tool: "t", LatencyUs: 5}}}, true},
		{"negative latency", &wire.Event{Id: "e", Kind: &wire.Event_ToolCall{ToolCall: &wire.ToolCall{Tool: "t", LatencyUs: -1}}}, false},
		{"usage", &wire.Event{Id: "e", Kind: &wire.Event_Usage{Usage: &wire.Usage{Metric: "codes_sent", Value: 1}}}, true},
		{"usage without metric", &wire.Event{Id: "e", Kind: &wire.Event_Usage{Usage: &wire.Usage{Value: 1}}}, false},
		{"delivery", &wire.Event{Id: "e", Kind: &wire.Event_Delivery{Delivery: &wire.DeliveryReport{Status: "read"}}}, true},
		{"empty delivery", &wire.Event{Id: "e", Kind: &wire.Event_Delivery{}}, false},
		{"conversation", &wire.Event{Id: "e", Kind: &wire.Event_Conversation{Conversation: &wire.ConversationChange{Change: "started"}}}, true},
		{"empty conversation", &wire.Event{Id: "e", Kind: &wire.Event_Conversation{}}, false},
	}
	for _, c := range cases {
		err := CheckEvent(c.ev)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalidEvent)) {
			t.Errorf("%s: CheckEvent = %v", c.name, err)
		}
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	s := openStore(t) // Open migrated once
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A second store on the same database migrates again at Open.
	again, err := Open(ctx, s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = again.Close()

	applied, err := s.AppliedMigrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(migrations) || applied[len(applied)-1] != SchemaVersion() {
		t.Fatalf("applied %v, want 1..%d", applied, SchemaVersion())
	}
	var ledger uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM schema_migrations FINAL").Scan(&ledger); err != nil {
		t.Fatal(err)
	}
	if ledger != uint64(len(migrations)) {
		t.Fatalf("schema_migrations holds %d versions, want %d", ledger, len(migrations))
	}

	// The tables carry the types this server supports.
	caps := s.Capabilities()
	if caps.HasTTL != caps.AtLeast(19, 6) || caps.Version == "" {
		t.Fatalf("capabilities %+v", caps)
	}
	var tenantType string
	if err := s.Conn().QueryRow(ctx, "SELECT type FROM system.columns WHERE database = currentDatabase() AND table = 'messages' AND name = 'tenant'").Scan(&tenantType); err != nil {
		t.Fatal(err)
	}
	if tenantType != lowCard(caps) {
		t.Fatalf("tenant is %s on %s, want %s", tenantType, caps.Version, lowCard(caps))
	}
}

func TestRetentionOnlyWhereTTLExists(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	withRetention, err := Open(ctx, Config{Addr: s.cfg.Addr, Database: s.cfg.Database, RetentionDays: 90})
	if err != nil {
		t.Fatalf("open with retention on %s: %v", s.Capabilities().Version, err)
	}
	defer withRetention.Close()
	var engineFull string
	if err := s.Conn().QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'messages'").Scan(&engineFull); err != nil {
		t.Fatal(err)
	}
	if got := hasRetention(engineFull, "at", 90); got != s.Capabilities().HasTTL {
		t.Fatalf("TTL set = %v on a server with TTL = %v: %s", got, s.Capabilities().HasTTL, engineFull)
	}
}

func TestOpenRejectsBadDatabaseName(t *testing.T) {
	_, err := Open(context.Background(), Config{Addr: "127.0.0.1:1", Database: "x; DROP TABLE y"})
	if err == nil || !strings.Contains(err.Error(), "database name") {
		t.Fatalf("err = %v", err)
	}
}

// A database migrated by an older build (up to migration 8, with the
// first conversation_firsts) upgrades in place: the rollup is rebuilt in
// its new shape from the events already stored.
func TestMigrateUpgradesConversationFirsts(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Back to an empty database, then the history up to migration 8.
	rows, err := s.Conn().Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY engine LIKE '%View' DESC")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	for _, name := range tables {
		if err := s.Conn().Exec(ctx, "DROP TABLE "+name); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.migrate(ctx, migrations[:8]); err != nil {
		t.Fatal(err)
	}
	// This build's writer also needs the columns of migrations 11 and 12.
	for _, c := range []addColumn{messagesReplyID, messagesMedia} {
		if err := s.addColumn(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	const at = baseMs + 7_000
	evs := kindEvents("u", "acme", "+447700900001", at)
	start := &wire.Event{Id: "u-start", Tenant: "acme", Phone: "+447700900001", AtMs: at - 10,
		Kind: &wire.Event_Conversation{Conversation: &wire.ConversationChange{ConversationId: "c-u", Change: "started"}}}
	if err := s.WriteEvents(ctx, append(evs, start)); err != nil {
		t.Fatal(err)
	}
	var oldIn uint64
	if err := s.Conn().QueryRow(ctx, "SELECT minMerge(first_in_ms) FROM conversation_firsts WHERE conversation_id = 'c-u'").Scan(&oldIn); err != nil {
		t.Fatalf("the old rollup: %v", err)
	}
	if oldIn != at-40 {
		t.Fatalf("old rollup: first in %d, want %d", oldIn, at-40)
	}

	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var started, firstIn, firstOut uint64
	if err := s.Conn().QueryRow(ctx, "SELECT min(started_ms), min(first_in_ms), min(first_out_ms) FROM conversation_firsts WHERE conversation_id = 'c-u'").Scan(&started, &firstIn, &firstOut); err != nil {
		t.Fatal(err)
	}
	if started != at-10 || firstIn != at-40 || firstOut != at {
		t.Errorf("after the upgrade: started %d, first in %d, first out %d; want %d, %d, %d", started, firstIn, firstOut, at-10, at-40, at)
	}
	// The new views feed it from now on; the old one is gone.
	next := kindEvents("v", "acme", "+447700900002", at)
	if err := s.WriteEvents(ctx, next); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().QueryRow(ctx, "SELECT min(first_in_ms) FROM conversation_firsts WHERE conversation_id = 'c-v'").Scan(&firstIn); err != nil {
		t.Fatal(err)
	}
	if firstIn != at-40 {
		t.Errorf("after the upgrade, a new message: first in %d, want %d", firstIn, at-40)
	}
	var views uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'conversation_firsts_mv'").Scan(&views); err != nil {
		t.Fatal(err)
	}
	if views != 0 {
		t.Error("the old view is still there")
	}
}
