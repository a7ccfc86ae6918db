package clickhouse

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/e164"
)

func TestDeleteCustomerEverywhere(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const gone, kept = "+447700900001", "+447700900002"
	for _, batch := range [][]string{{"a", gone, "acme"}, {"b", kept, "acme"}, {"c", gone, "other"}, {"d", gone, "acme"}} {
		if err := s.WriteEvents(ctx, kindEvents(batch[0], batch[2], batch[1], baseMs)); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := s.DeleteCustomer(ctx, "acme", gone)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != len(CustomerTables) {
		t.Fatalf("deleted %v", deleted)
	}
	for _, d := range deleted {
		want := uint64(2) // batches a and d
		if d.Table == TableMessages {
			want = 4
		}
		if d.Table == TableConversationFirsts {
			want = 2 // one per conversation
		}
		if d.Table == TableFirstResponses {
			want = 0 // nothing rolled up
		}
		if d.Rows != want {
			t.Errorf("%s: %d rows deleted, want %d", d.Table, d.Rows, want)
		}
	}
	for _, table := range CustomerTables {
		var mine, others uint64
		if err := s.Conn().QueryRow(ctx, "SELECT countIf(tenant = 'acme' AND phone = ?), countIf(NOT (tenant = 'acme' AND phone = ?)) FROM "+table, gone, gone).Scan(&mine, &others); err != nil {
			t.Fatal(err)
		}
		if mine != 0 {
			t.Errorf("%s still holds %d rows of the customer", table, mine)
		}
		// The same number at another tenant, and another customer, stay.
		want := uint64(2)
		switch table {
		case TableMessages:
			want = 4
		case TableFirstResponses:
			want = 0
		}
		if others != want {
			t.Errorf("%s: %d other rows left, want %d", table, others, want)
		}
	}
	// Nothing left: a second erasure deletes nothing and succeeds.
	again, err := s.DeleteCustomer(ctx, "acme", gone)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range again {
		if d.Rows != 0 {
			t.Errorf("second erasure found %d rows in %s", d.Rows, d.Table)
		}
	}
	// Quotes in the input are data, not SQL.
	if _, err := s.DeleteCustomer(ctx, "acme", "' OR 1=1 OR phone = '"); err != nil {
		t.Fatal(err)
	}
	var left uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM messages").Scan(&left); err != nil || left != 4 {
		t.Fatalf("after an injection attempt: %d message rows (%v), want 4", left, err)
	}
}

func TestWriteAudit(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at := time.Date(2024, 5, 1, 12, 0, 0, 250e6, time.UTC)
	rec := AuditRecord{ID: "x1", At: at, Action: "forget", Actor: "cli:ops", Tenant: "acme",
		PhoneHash: PhoneHash("acme", "+447700900001"), Deleted: []TableRows{{"messages", 4}, {"usage", 1}}, Status: "done"}
	if err := s.WriteAudit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	var (
		actor, hash string
		tables      []string
		rows        []uint64
		ms          uint64
	)
	if err := s.Conn().QueryRow(ctx, "SELECT actor, phone_hash, tables, rows_deleted, toUInt64(at) * 1000 + at_ms FROM audit").Scan(&actor, &hash, &tables, &rows, &ms); err != nil {
		t.Fatal(err)
	}
	if actor != "cli:ops" || hash != rec.PhoneHash || len(hash) != 64 || len(tables) != 2 || rows[0] != 4 || int64(ms) != at.UnixMilli() {
		t.Fatalf("audit row: %s %s %v %v %d", actor, hash, tables, rows, ms)
	}
	if PhoneHash("acme", "+447700900001") == PhoneHash("other", "+447700900001") {
		t.Fatal("phone hash does not depend on the tenant")
	}
}

func TestForgetValidates(t *testing.T) {
	s := openStore(t)
	if _, err := s.Forget(context.Background(), "acme", "+49 (0) 151 12345678", "test", nil); !errors.Is(err, ErrInvalidPhone) {
		t.Fatalf("err %v", err)
	}
	for _, c := range []struct {
		phone string
		ok    bool
	}{{"+4915112345678", true}, {"0151/12345678", false}, {"+49 (0) 151 12345678", false}, {"+0151", false}, {"+123456", false}, {"+1234567", true}, {"+1234567890123456", false}} {
		if e164.Valid(c.phone) != c.ok {
			t.Errorf("e164.Valid(%q) = %v", c.phone, !c.ok)
		}
	}
}

// The live session goes first: when it cannot be erased, no row is
// deleted and nothing is audited; the erasure can be repeated.
func TestForgetStopsWhenTheSessionStays(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const phone = "+447700900003"
	if err := s.WriteEvents(ctx, kindEvents("k", "acme", phone, baseMs)); err != nil {
		t.Fatal(err)
	}
	var order []string
	_, err := s.Forget(ctx, "acme", phone, "test", func(context.Context) error {
		order = append(order, "session")
		return errors.New("actor unreachable")
	})
	if !errors.Is(err, ErrSessionKept) {
		t.Fatalf("err %v", err)
	}
	var rows, audits uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM messages WHERE tenant = 'acme' AND phone = ?", phone).Scan(&rows); err != nil || rows == 0 {
		t.Fatalf("rows %d after a refused erasure, %v", rows, err)
	}
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM audit").Scan(&audits); err != nil || audits != 0 {
		t.Fatalf("audit rows %d, %v", audits, err)
	}
	e, err := s.Forget(ctx, "acme", phone, "test", func(context.Context) error {
		order = append(order, "session")
		return nil
	})
	if err != nil || e.Deleted[TableMessages] == 0 || len(order) != 2 {
		t.Fatalf("erasure %+v, %v, session steps %v", e, err, order)
	}
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM audit").Scan(&audits); err != nil || audits != 1 {
		t.Fatalf("audit rows %d, %v", audits, err)
	}
}
