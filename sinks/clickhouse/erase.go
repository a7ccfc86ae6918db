package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/internal/ids"
)

// ErrInvalidPhone is returned for a phone number that is not E.164.
var ErrInvalidPhone = errors.New("phone number is not E.164 (+ and 7 to 15 digits)")

// ErrSessionKept is Forget's error when the customer's live session could
// not be erased: nothing was deleted, and the erasure can be repeated.
var ErrSessionKept = errors.New("clickhouse: forget: the customer's live session was not erased; nothing was deleted")

// Erasure is the outcome of a GDPR erasure.
type Erasure struct {
	AuditID   string            `json:"audit_id"`
	Tenant    string            `json:"tenant"`
	PhoneHash string            `json:"phone_hash"`
	Deleted   map[string]uint64 `json:"deleted"`
	At        time.Time         `json:"at"`
}

// Forget is the GDPR erasure of one customer of a tenant, the one flow
// the API's DELETE .../customers/{phone} and `parley forget` share:
//
//  1. forgetSession empties the customer's live session through its own
//     command (Command_Forget on parley.inbound, so the session's owner
//     drops it and tombstones the changelog). An error stops here with
//     ErrSessionKept: nothing is deleted or audited. Nil skips the step.
//  2. Every row of the customer in every table that holds the phone
//     number is deleted, waiting until ClickHouse applied the deletes
//     (DeleteCustomer).
//  3. The erasure is recorded in the audit table (who, when, tenant, a
//     hash of the phone, rows per table), as done or failed; a failed
//     erasure can simply be run again.
func (s *Store) Forget(ctx context.Context, tenant, phone, actor string, forgetSession func(context.Context) error) (*Erasure, error) {
	if tenant == "" {
		return nil, errors.New("clickhouse: forget: tenant is required")
	}
	if !e164.Valid(phone) {
		return nil, ErrInvalidPhone
	}
	if forgetSession != nil {
		if err := forgetSession(ctx); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSessionKept, err)
		}
	}
	e := &Erasure{AuditID: ids.New(), Tenant: tenant, PhoneHash: PhoneHash(tenant, phone), At: time.Now().UTC(), Deleted: map[string]uint64{}}
	deleted, err := s.DeleteCustomer(ctx, tenant, phone)
	rec := AuditRecord{ID: e.AuditID, At: e.At, Action: "forget", Actor: actor, Tenant: tenant,
		PhoneHash: e.PhoneHash, Deleted: deleted, Status: "done"}
	if err != nil {
		rec.Status, rec.Detail = "failed", err.Error()
	}
	// The audit row is written even when the context ended, so a
	// cancelled erasure is on record too.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if aerr := s.WriteAudit(actx, rec); aerr != nil {
		return nil, errors.Join(err, fmt.Errorf("clickhouse: forget: audit: %w", aerr))
	}
	if err != nil {
		return nil, err
	}
	for _, d := range deleted {
		e.Deleted[d.Table] = d.Rows
	}
	return e, nil
}
