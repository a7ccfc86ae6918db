package analytics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/internal/ids"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
)

// ValidPhone reports whether phone is E.164 (+4915112345678 yes,
// 0151/12345678 and +49 (0) 151 12345678 no).
func ValidPhone(phone string) bool { return e164.Valid(phone) }

// ErrInvalidPhone is returned for a phone number that is not E.164.
var ErrInvalidPhone = errors.New("phone number is not E.164 (+ and 7 to 15 digits)")

// Erasure is the outcome of a GDPR erasure.
type Erasure struct {
	AuditID   string            `json:"audit_id"`
	Tenant    string            `json:"tenant"`
	PhoneHash string            `json:"phone_hash"`
	Deleted   map[string]uint64 `json:"deleted"`
	At        time.Time         `json:"at"`
}

// Forget erases one customer of a tenant from ClickHouse: every row in
// every table that holds the phone number, waiting until ClickHouse has
// applied the deletes, and records it in the audit table (who, when,
// tenant, a hash of the phone, rows per table). A failed erasure is
// recorded as failed and can simply be run again. The live session is the
// caller's part (Options.ForgetSession for the API).
func Forget(ctx context.Context, store *chsink.Store, tenant, phone, actor string) error {
	_, err := Erase(ctx, store, tenant, phone, actor)
	return err
}

// Erase is Forget, returning what was deleted.
func Erase(ctx context.Context, store *chsink.Store, tenant, phone, actor string) (*Erasure, error) {
	if tenant == "" {
		return nil, errors.New("analytics: forget: tenant is required")
	}
	if !ValidPhone(phone) {
		return nil, ErrInvalidPhone
	}
	e := &Erasure{AuditID: ids.New(), Tenant: tenant, PhoneHash: chsink.PhoneHash(tenant, phone), At: time.Now().UTC(), Deleted: map[string]uint64{}}
	deleted, err := store.DeleteCustomer(ctx, tenant, phone)
	rec := chsink.AuditRecord{ID: e.AuditID, At: e.At, Action: "forget", Actor: actor, Tenant: tenant,
		PhoneHash: e.PhoneHash, Deleted: deleted, Status: "done"}
	if err != nil {
		rec.Status, rec.Detail = "failed", err.Error()
	}
	// The audit row is written even when the context ended, so a
	// cancelled erasure is on record too.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if aerr := store.WriteAudit(actx, rec); aerr != nil {
		return nil, errors.Join(err, fmt.Errorf("analytics: forget: audit: %w", aerr))
	}
	if err != nil {
		return nil, err
	}
	for _, d := range deleted {
		e.Deleted[d.Table] = d.Rows
	}
	return e, nil
}

// MaskPhone hides a phone number but for its last four digits:
// +447700900123 → +********0123. For callers whose role may not see
// customers' numbers.
func MaskPhone(phone string) string {
	if len(phone) <= 4 {
		return "****"
	}
	b := []byte(phone)
	for i := 0; i < len(b)-4; i++ {
		if b[i] >= '0' && b[i] <= '9' {
			b[i] = '*'
		}
	}
	return string(b)
}
