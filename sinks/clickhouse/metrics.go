package clickhouse

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	rowsInserted = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_clickhouse_rows_inserted_total",
		Help: "Rows ClickHouse accepted, per table (replays included: they collapse in the table).",
	}, []string{"table"})
	insertSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_clickhouse_insert_seconds",
		Help:    "Time of one successful batch insert, per table.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"table"})
	insertErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_clickhouse_insert_errors_total",
		Help: "Failed batch inserts, per table. The sink retries them.",
	}, []string{"table"})
	sinkSkipped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_clickhouse_sink_skipped_total",
		Help: "Records the sink skipped because they can never be stored, per reason (decode, invalid).",
	}, []string{"reason"})
	sinkRetrying = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "parley_clickhouse_sink_retrying",
		Help: "1 while the sink is retrying a failed batch, else 0.",
	})
)

// The error and skip counters are exported from the start, at 0, so that
// dashboards and alerts on them see 0 rather than no data.
func init() {
	for _, t := range EventTables {
		insertErrors.WithLabelValues(t)
	}
	for _, r := range []string{"decode", "invalid"} {
		sinkSkipped.WithLabelValues(r)
	}
}
