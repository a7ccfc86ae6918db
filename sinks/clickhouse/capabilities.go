package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Capabilities are the server features the schema and the writer depend
// on, probed once at Open.
type Capabilities struct {
	Version      string // as SELECT version() says, e.g. "18.16.1"
	Major, Minor int
	// HasLowCardinality: the LowCardinality type exists (18.12+). Without
	// it the low-cardinality columns are plain String.
	HasLowCardinality bool
	// LowCardinalityNeedsSetting: the server has the experimental switch
	// allow_experimental_low_cardinality_type and it is off for this
	// user, so DDL that uses the type must turn it on per query.
	LowCardinalityNeedsSetting bool
	// HasDateTime64 (20.1+). The schema does not use it, so that one
	// schema serves every server; recorded for queries that might.
	HasDateTime64 bool
	// HasTTL: table TTL (19.6+). Only used for Config.RetentionDays.
	HasTTL bool
	// HasAsyncInsert (21.11+). Not used: the sink batches already.
	HasAsyncInsert bool
}

// AtLeast reports whether the server version is major.minor or newer.
func (c Capabilities) AtLeast(major, minor int) bool {
	return c.Major > major || (c.Major == major && c.Minor >= minor)
}

// probe asks the server what it is and what it has. system.data_type_families
// and system.settings say it directly; TTL is neither a type nor a setting,
// so it goes by version.
func probe(ctx context.Context, conn driver.Conn) (Capabilities, error) {
	var c Capabilities
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&c.Version); err != nil {
		return c, fmt.Errorf("version: %w", err)
	}
	var err error
	if c.Major, c.Minor, err = parseVersion(c.Version); err != nil {
		return c, err
	}
	c.HasTTL = c.AtLeast(19, 6)

	types, err := stringSet(ctx, conn, "SELECT name FROM system.data_type_families")
	if err != nil {
		return c, fmt.Errorf("data types: %w", err)
	}
	c.HasLowCardinality = types["LowCardinality"]
	c.HasDateTime64 = types["DateTime64"]

	rows, err := conn.Query(ctx, "SELECT name, value FROM system.settings WHERE name IN ('allow_experimental_low_cardinality_type', 'async_insert')")
	if err != nil {
		return c, fmt.Errorf("settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return c, fmt.Errorf("settings: %w", err)
		}
		switch name {
		case "allow_experimental_low_cardinality_type":
			c.LowCardinalityNeedsSetting = value == "0"
		case "async_insert":
			c.HasAsyncInsert = true
		}
	}
	return c, rows.Err()
}

// parseVersion reads major and minor from "18.16.1", "24.8.4.13" or
// "24.3.2.23-lts".
func parseVersion(v string) (major, minor int, err error) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("unrecognised server version %q", v)
	}
	if major, err = strconv.Atoi(parts[0]); err != nil {
		return 0, 0, fmt.Errorf("unrecognised server version %q", v)
	}
	if minor, err = strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })); err != nil {
		return 0, 0, fmt.Errorf("unrecognised server version %q", v)
	}
	return major, minor, nil
}

func stringSet(ctx context.Context, conn driver.Conn, query string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	set := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		set[s] = true
	}
	return set, rows.Err()
}
