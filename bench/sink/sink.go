package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
	"github.com/parleyhq/parley/wire"
)

// benchEvents makes n events in the proportions a conversation produces
// them, per 10: 4 message log lines (in and out), 2 usage (prompt and
// completion tokens), 1 delivery report, 1 sign-in event, 1 tool call, 1
// conversation change. 4 tenants, 50,000 phones, one day.
func benchEvents(n int) []*wire.Event {
	start := time.Now().UTC().Truncate(24 * time.Hour).Add(time.Hour).UnixMilli()
	evs := make([]*wire.Event, n)
	for i := range n {
		ev := &wire.Event{
			Id:     fmt.Sprintf("bench-%09d", i),
			Tenant: fmt.Sprintf("tenant-%d", i%4),
			Phone:  fmt.Sprintf("+4479%08d", (i/10)%50000),
			AtMs:   start + int64(i)*40, // 25 events/s for a day at 1M
		}
		conv := fmt.Sprintf("conv-%07d", i/40)
		switch i % 10 {
		case 0, 1, 2, 3:
			dir := "in"
			if i%2 == 1 {
				dir = "out"
			}
			ev.Kind = &wire.Event_Message{Message: &wire.MessageLog{Direction: dir, MessageId: "m-" + ev.Id, ProviderId: "SM" + ev.Id,
				Channel: "twilio", Body: "Hi, can I move my Thursday cleaning to Friday morning?", ConversationId: conv, QueryType: "booking",
				ProviderAtMs: ev.AtMs - 30}}
		case 4, 5:
			metric, v := "llm_prompt_tokens", int64(850)
			if i%10 == 5 {
				metric, v = "llm_completion_tokens", 60
			}
			ev.Kind = &wire.Event_Usage{Usage: &wire.Usage{Metric: metric, Value: v, Model: "gpt-4o-mini"}}
		case 6:
			ev.Kind = &wire.Event_Delivery{Delivery: &wire.DeliveryReport{MessageId: "m-x", ProviderId: "SMx" + ev.Id, Status: "delivered", Channel: "twilio"}}
		case 7:
			ev.Kind = &wire.Event_Auth{Auth: &wire.AuthEvent{Event: "code_sent", ProfileId: "prof-1", Attempt: 0}}
		case 8:
			ev.Kind = &wire.Event_ToolCall{ToolCall: &wire.ToolCall{Tool: "list_bookings", Ok: true, LatencyUs: 23000, ConversationId: conv}}
		case 9:
			ev.Kind = &wire.Event_Conversation{Conversation: &wire.ConversationChange{ConversationId: conv, Change: "status", Status: "active", AiEnabled: true}}
		}
		evs[i] = ev
	}
	return evs
}

func benchSink(ctx context.Context, addr string, o options) error {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sinkDB, err := chsink.Open(ctx, chsink.Config{Addr: addr, Database: "bench_sink", Logger: quiet})
	if err != nil {
		return err
	}
	defer sinkDB.Close()
	rawDB, err := chsink.Open(ctx, chsink.Config{Addr: addr, Database: "bench_raw", Logger: quiet})
	if err != nil {
		return err
	}
	defer rawDB.Close()
	if !o.keep {
		defer dropDB(sinkDB, "bench_sink")
		defer dropDB(rawDB, "bench_raw")
	}

	sopts := chsink.SinkOptions{BatchSize: o.batch, FlushEvery: o.flush, Logger: quiet}
	batch := chsink.NewSink(sinkDB, bus.ConsumerOptions{}, sopts).Options().BatchSize
	ceilingBatch := o.ceilingSize
	if ceilingBatch <= 0 {
		ceilingBatch = batch
	}

	fmt.Printf("\n## sink: %d events -> ClickHouse (sink batch %d, ceiling batch %d)\n", o.events, batch, ceilingBatch)
	evs := benchEvents(o.events)
	values := make([][]byte, len(evs))
	var bytes int
	for i, ev := range evs {
		if values[i], err = proto.Marshal(ev); err != nil {
			return err
		}
		bytes += len(values[i])
	}
	fmt.Printf("events: %d, %.0f bytes each on the wire (protobuf)\n", len(evs), float64(bytes)/float64(len(evs)))

	dir, err := os.MkdirTemp("", "parley-bench-kafka-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	broker, err := bus.StartEmbedded(dir, 0)
	if err != nil {
		return err
	}
	defer broker.Close()
	if err := bus.EnsureTopics(ctx, broker.Addrs(), o.partitions, 1, wire.TopicEvents); err != nil {
		return err
	}
	start := time.Now()
	if err := produceAll(ctx, broker.Addrs(), evs, values); err != nil {
		return err
	}
	fmt.Printf("produced to %s (%d partitions) in %s\n", wire.TopicEvents, o.partitions, time.Since(start).Round(time.Millisecond))

	var ceil, sink, steady, ratio []float64
	// The two runs of a round alternate in order, so that neither always
	// runs on the state the other left (merges settle in between, but the
	// page cache and the Go heap do not).
	// Round 0 warms up (ClickHouse's caches and allocator, the Go heap)
	// and is not counted: the first runs were consistently slower.
	for round := 0; round <= o.rounds; round++ {
		var c, full, st float64
		runCeiling := func() error {
			if err := truncate(ctx, rawDB); err != nil {
				return err
			}
			settle(ctx, rawDB)
			d, err := ceiling(ctx, rawDB, evs, ceilingBatch)
			c = float64(len(evs)) / d.Seconds()
			return err
		}
		runTheSink := func() error {
			if err := truncate(ctx, sinkDB); err != nil {
				return err
			}
			settle(ctx, sinkDB)
			stopProfile := startProfile(o.cpuprofile, round)
			defer stopProfile()
			d, steadyRate, err := runSink(ctx, sinkDB, broker.Addrs(), fmt.Sprintf("bench-sink-%d-%d", time.Now().UnixNano(), round), sopts, len(evs))
			full, st = float64(len(evs))/d.Seconds(), steadyRate
			return err
		}
		order := []func() error{runCeiling, runTheSink}
		if round%2 == 0 {
			order = []func() error{runTheSink, runCeiling}
		}
		for _, run := range order {
			if err := run(); err != nil {
				return err
			}
		}
		if round == 0 {
			fmt.Printf("warm-up: ceiling %8.0f rows/s   sink %8.0f rows/s (not counted)\n", c, st)
			continue
		}
		ceil, sink, steady, ratio = append(ceil, c), append(sink, full), append(steady, st), append(ratio, st/c)
		fmt.Printf("round %d: ceiling %8.0f rows/s   sink %8.0f rows/s (%8.0f including the group join)   ratio %.2f\n", round, c, st, full, st/c)
	}
	fmt.Printf("median:  ceiling %8.0f rows/s   sink %8.0f rows/s (%8.0f including the group join)   ratio %.2f (median of the rounds' ratios; goal >= 0.80)\n",
		median(ceil), median(steady), median(sink), median(ratio))
	return nil
}

// produceAll writes the events keyed by session, as the actors do.
func produceAll(ctx context.Context, brokers []string, evs []*wire.Event, values [][]byte) error {
	p := bus.NewProducer(brokers, bus.ProducerOptions{BatchSize: 2000, BatchTimeout: 5 * time.Millisecond})
	defer p.Close()
	const chunk = 20000
	for i := 0; i < len(evs); i += chunk {
		end := min(i+chunk, len(evs))
		msgs := make([]kafka.Message, 0, end-i)
		for j := i; j < end; j++ {
			msgs = append(msgs, kafka.Message{Topic: wire.TopicEvents, Key: wire.Key(evs[j].Tenant, evs[j].Phone), Value: values[j]})
		}
		if err := p.Produce(ctx, msgs...); err != nil {
			return err
		}
	}
	return nil
}

// runSink runs a sink with a fresh consumer group until all n rows are in
// ClickHouse. It returns the time from start to the last row, and the
// steady-state rate: rows inserted after the first ones were seen, over
// the time since then, which leaves out the consumer group's join (about
// a second with kafka-go, paid once per process, not per row).
func runSink(ctx context.Context, store *chsink.Store, brokers []string, group string, o chsink.SinkOptions, n int) (time.Duration, float64, error) {
	sink := chsink.NewSink(store, bus.ConsumerOptions{Brokers: brokers, Group: group, Logger: o.Logger}, o)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- sink.Run(sctx) }()
	defer func() { cancel(); <-done }()
	var (
		first     time.Time
		firstRows uint64
	)
	for {
		rows, err := totalRows(ctx, store)
		if err != nil {
			return 0, 0, err
		}
		if rows > 0 && first.IsZero() {
			first, firstRows = time.Now(), rows
		}
		if rows >= uint64(n) {
			end := time.Now()
			steady := float64(rows-firstRows) / end.Sub(first).Seconds()
			return end.Sub(start), steady, nil
		}
		select {
		case err := <-done:
			return 0, 0, fmt.Errorf("sink stopped: %v", err)
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func totalRows(ctx context.Context, s *chsink.Store) (uint64, error) {
	var total uint64
	for _, t := range chsink.EventTables {
		var n uint64
		if err := s.Conn().QueryRow(ctx, "SELECT count() FROM "+t).Scan(&n); err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func truncate(ctx context.Context, s *chsink.Store) error {
	for _, t := range append(chsink.CustomerTables, chsink.TableHourly, chsink.TableRollupRuns) {
		if err := s.Conn().Exec(ctx, "TRUNCATE TABLE "+t); err != nil {
			return err
		}
	}
	return nil
}

func dropDB(s *chsink.Store, name string) {
	_ = s.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ceiling inserts the events with clickhouse-go directly: the rows are
// already decoded and in memory; each chunk of batch events is split by
// table and every table's share is one PrepareBatch with whole columns
// appended (the fastest way clickhouse-go offers), sent in turn. It
// returns the time taken.
func ceiling(ctx context.Context, s *chsink.Store, evs []*wire.Event, batch int) (time.Duration, error) {
	conn := s.Conn()
	start := time.Now()
	for i := 0; i < len(evs); i += batch {
		for _, t := range split(evs[i:min(i+batch, len(evs))]) {
			if t.n == 0 {
				continue
			}
			b, err := conn.PrepareBatch(ctx, "INSERT INTO "+t.table+" ("+t.columns+")")
			if err != nil {
				return 0, err
			}
			for c, col := range t.cols {
				if err := b.Column(c).Append(col); err != nil {
					return 0, fmt.Errorf("%s column %d: %w", t.table, c, err)
				}
			}
			if err := b.Send(); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}

type tableCols struct {
	table, columns string
	n              int
	cols           []any
}

// split turns events into whole columns per table, in the tables' column
// order.
func split(evs []*wire.Event) []tableCols {
	type common struct {
		id, tenant, phone []string
		at                []time.Time
		ms                []uint16
	}
	add := func(c *common, ev *wire.Event) {
		c.id, c.tenant, c.phone = append(c.id, ev.Id), append(c.tenant, ev.Tenant), append(c.phone, ev.Phone)
		c.at, c.ms = append(c.at, time.Unix(ev.AtMs/1000, 0).UTC()), append(c.ms, uint16(ev.AtMs%1000))
	}
	var (
		mc, ac, tc, uc, dc, cc                       common
		mDir, mMsg, mProv, mChan, mConv, mBody, mQT  []string
		mPAt                                         []time.Time
		mPMs                                         []uint16
		aProf, aEvent                                []string
		aAttempt                                     []uint8
		tConv, tTool, tErr                           []string
		tOK                                          []uint8
		tLat                                         []uint64
		uMetric, uModel                              []string
		uValue                                       []int64
		dMsg, dProv, dStatus, dCode, dChan           []string
		cConv, cChange, cStatus, cOperator, cSummary []string
		cAI, cByCustomer                             []uint8
	)
	b := func(v bool) uint8 {
		if v {
			return 1
		}
		return 0
	}
	for _, ev := range evs {
		switch k := ev.Kind.(type) {
		case *wire.Event_Message:
			m := k.Message
			add(&mc, ev)
			mDir, mMsg, mProv, mChan = append(mDir, m.Direction), append(mMsg, m.MessageId), append(mProv, m.ProviderId), append(mChan, m.Channel)
			mConv, mBody, mQT = append(mConv, m.ConversationId), append(mBody, m.Body), append(mQT, m.QueryType)
			mPAt, mPMs = append(mPAt, time.Unix(m.ProviderAtMs/1000, 0).UTC()), append(mPMs, uint16(m.ProviderAtMs%1000))
		case *wire.Event_Auth:
			add(&ac, ev)
			aProf, aEvent, aAttempt = append(aProf, k.Auth.ProfileId), append(aEvent, k.Auth.Event), append(aAttempt, uint8(k.Auth.Attempt))
		case *wire.Event_ToolCall:
			add(&tc, ev)
			t := k.ToolCall
			tConv, tTool, tOK, tLat, tErr = append(tConv, t.ConversationId), append(tTool, t.Tool), append(tOK, b(t.Ok)), append(tLat, uint64(t.LatencyUs)), append(tErr, t.Error)
		case *wire.Event_Usage:
			add(&uc, ev)
			uMetric, uValue, uModel = append(uMetric, k.Usage.Metric), append(uValue, k.Usage.Value), append(uModel, k.Usage.Model)
		case *wire.Event_Delivery:
			add(&dc, ev)
			d := k.Delivery
			dMsg, dProv, dStatus, dCode, dChan = append(dMsg, d.MessageId), append(dProv, d.ProviderId), append(dStatus, d.Status), append(dCode, d.ErrorCode), append(dChan, d.Channel)
		case *wire.Event_Conversation:
			add(&cc, ev)
			c := k.Conversation
			cConv, cChange, cStatus, cAI = append(cConv, c.ConversationId), append(cChange, c.Change), append(cStatus, c.Status), append(cAI, b(c.AiEnabled))
			cOperator, cSummary, cByCustomer = append(cOperator, c.Operator), append(cSummary, c.Summary), append(cByCustomer, b(c.ByCustomer))
		}
	}
	return []tableCols{
		{"messages", "event_id, tenant, phone, direction, message_id, provider_id, channel, conversation_id, body, query_type, at, at_ms, provider_at, provider_at_ms",
			len(mc.id), []any{mc.id, mc.tenant, mc.phone, mDir, mMsg, mProv, mChan, mConv, mBody, mQT, mc.at, mc.ms, mPAt, mPMs}},
		{"auth_events", "event_id, tenant, phone, profile_id, event, attempt, at, at_ms",
			len(ac.id), []any{ac.id, ac.tenant, ac.phone, aProf, aEvent, aAttempt, ac.at, ac.ms}},
		{"tool_calls", "event_id, tenant, phone, conversation_id, tool, ok, latency_us, error, at, at_ms",
			len(tc.id), []any{tc.id, tc.tenant, tc.phone, tConv, tTool, tOK, tLat, tErr, tc.at, tc.ms}},
		{"usage", "event_id, tenant, phone, metric, value, model, at, at_ms",
			len(uc.id), []any{uc.id, uc.tenant, uc.phone, uMetric, uValue, uModel, uc.at, uc.ms}},
		{"deliveries", "event_id, tenant, phone, message_id, provider_id, status, error_code, channel, at, at_ms",
			len(dc.id), []any{dc.id, dc.tenant, dc.phone, dMsg, dProv, dStatus, dCode, dChan, dc.at, dc.ms}},
		{"conversations", "event_id, tenant, phone, conversation_id, change, status, ai_enabled, operator, summary, by_customer, at, at_ms",
			len(cc.id), []any{cc.id, cc.tenant, cc.phone, cConv, cChange, cStatus, cAI, cOperator, cSummary, cByCustomer, cc.at, cc.ms}},
	}
}

// startProfile profiles this process (the sink's side) during one run.
func startProfile(path string, round int) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, round))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpuprofile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "cpuprofile:", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// settle waits (up to 30 s) until the server runs no merges, so that one
// run does not pay for the parts the previous one left.
func settle(ctx context.Context, s *chsink.Store) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n uint64
		if err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&n); err != nil || n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
}
