package clickhouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// TableRows is how many rows one table held for something.
type TableRows struct {
	Table string
	Rows  uint64
}

// DeleteCustomer deletes every row of one customer (tenant and phone) from
// every table that holds phone numbers (CustomerTables), and returns once
// ClickHouse has applied the deletes, with the rows each table held.
//
// ALTER TABLE … DELETE is the one delete that works from 18.16 to current
// releases (lightweight DELETE is 22.8+). It is a mutation: accepted at
// once, applied in the background by rewriting the parts concerned, so
// this waits for system.mutations to report it done. Rows that arrive
// while it runs (the sink inserting events still in Kafka) are caught by
// a second round: the loop ends when every table reads zero rows.
func (s *Store) DeleteCustomer(ctx context.Context, tenant, phone string) ([]TableRows, error) {
	if tenant == "" || phone == "" {
		return nil, fmt.Errorf("clickhouse: delete customer: tenant and phone are required")
	}
	total := map[string]uint64{}
	for round := 0; ; round++ {
		var pending []string
		for _, table := range CustomerTables {
			var n uint64
			if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+table+" WHERE tenant = ? AND phone = ?", tenant, phone).Scan(&n); err != nil {
				return nil, fmt.Errorf("clickhouse: count %s rows of the customer: %w", table, err)
			}
			if n == 0 {
				continue
			}
			total[table] += n
			// Bound by the client-side binding of clickhouse-go, which
			// quotes and escapes the strings; 18.16 has no server-side
			// parameters.
			if err := s.conn.Exec(ctx, "ALTER TABLE "+table+" DELETE WHERE tenant = ? AND phone = ?", tenant, phone); err != nil {
				return nil, fmt.Errorf("clickhouse: delete from %s: %w", table, err)
			}
			pending = append(pending, table)
		}
		if len(pending) == 0 {
			break
		}
		if round == 4 {
			return nil, fmt.Errorf("clickhouse: rows of the customer keep arriving in %v", pending)
		}
		if err := s.waitMutations(ctx, pending); err != nil {
			return nil, err
		}
	}
	out := make([]TableRows, 0, len(CustomerTables))
	for _, table := range CustomerTables {
		out = append(out, TableRows{Table: table, Rows: total[table]})
	}
	return out, nil
}

// waitMutations polls system.mutations until no mutation of the tables is
// still running, or ctx ends. It waits for other mutations of those tables
// too: they cannot be told apart on 18.16 (no mutation id is returned),
// and waiting a little longer is harmless.
func (s *Store) waitMutations(ctx context.Context, tables []string) error {
	delay := 20 * time.Millisecond
	for {
		var running uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND has(?, table) AND is_done = 0", tables).Scan(&running); err != nil {
			return fmt.Errorf("clickhouse: read mutations: %w", err)
		}
		if running == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clickhouse: deletes still running in %v: %w", tables, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// PhoneHash is what the audit keeps instead of a phone number: hex
// SHA-256 of a fixed prefix, the tenant and the phone. Anyone holding a
// number can check whether it was erased; the table alone does not list
// numbers. (E.164 numbers are few enough to enumerate, so this is a
// pseudonym, not anonymity; the audit table's access should be limited
// like the rest.)
func PhoneHash(tenant, phone string) string {
	sum := sha256.Sum256([]byte("parley-forget-v1|" + tenant + "|" + phone))
	return hex.EncodeToString(sum[:])
}

// AuditRecord is one row of the audit table.
type AuditRecord struct {
	ID        string
	At        time.Time
	Action    string // forget; tenant.create, number.update, key.revoke, ... (the admin routes)
	Actor     string // who asked: an API key's name, an operator, a CLI user
	Tenant    string
	PhoneHash string
	Deleted   []TableRows
	Status    string // done | failed
	Detail    string
}

// WriteAudit appends a record to the audit table.
func (s *Store) WriteAudit(ctx context.Context, r AuditRecord) error {
	at, atMs := splitMs(r.At.UnixMilli())
	tables := make([]string, len(r.Deleted))
	counts := make([]uint64, len(r.Deleted))
	for i, d := range r.Deleted {
		tables[i], counts[i] = d.Table, d.Rows
	}
	return s.insert(ctx, TableAudit, auditColumns, 1, func(b driver.Batch) error {
		return b.Append(r.ID, at, atMs, r.Action, r.Actor, r.Tenant, r.PhoneHash, tables, counts, r.Status, r.Detail)
	})
}
