package apikeys

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStoredKeysAddRotateAndRevoke(t *testing.T) {
	s, err := New([]Key{{Key: "configured-admin-key-0001", Tenants: []string{"*"}, Role: RoleAdmin, Name: "ops"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	secret, st, err := Generate("acme-bot", RoleAgent, []string{"acme"}, "ops", now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, KeyPrefix) || len(secret) < 40 || strings.Contains(st.Digest, secret) || st.Hint != secret[len(secret)-4:] {
		t.Fatalf("generated %q / %+v", secret, st)
	}
	if _, err := s.Identify("Bearer " + secret); !errors.Is(err, ErrBadKey) {
		t.Fatalf("before Put: %v", err)
	}
	if err := s.Put(st); err != nil {
		t.Fatal(err)
	}
	k, err := s.Authorize("Bearer "+secret, "acme", MessagesSend)
	if err != nil || k.ID != st.ID || k.Label() != "acme-bot" {
		t.Fatalf("after Put: %+v %v", k, err)
	}
	if _, err := s.Authorize("Bearer "+secret, "globex", MessagesSend); !errors.Is(err, ErrTenant) {
		t.Fatalf("other tenant: %v", err)
	}
	dup := st
	dup.ID = NewID()
	if err := s.Put(dup); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("same digest under another id: %v", err)
	}

	// Rotation: the old key expires after the overlap.
	st.ExpiresAt = now.Add(time.Hour)
	if err := s.Put(st); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identify("Bearer " + secret); err != nil {
		t.Fatalf("inside the overlap: %v", err)
	}
	now = now.Add(time.Hour)
	if _, err := s.Identify("Bearer " + secret); !errors.Is(err, ErrExpiredKey) {
		t.Fatalf("after the overlap: %v", err)
	}

	list := s.List(&Key{Tenants: []string{"*"}, Role: RoleAdmin})
	if len(list) != 2 || list[0].Name != "acme-bot" || list[0].Key != "****"+st.Hint || list[0].Source != "api" ||
		list[0].LastUsedAt == nil || list[1].Name != "ops" || list[1].Source != "config" || list[1].Key != "****0001" {
		t.Fatalf("list: %+v", list)
	}
	if l := s.List(&Key{Tenants: []string{"acme"}, Role: RoleAdmin}); len(l) != 1 || l[0].ID != st.ID {
		t.Fatalf("a tenant admin sees its tenant's keys only, not agency-wide ones: %+v", l)
	}
	if l := s.List(&Key{Tenants: []string{"globex"}, Role: RoleAdmin}); len(l) != 0 {
		t.Fatalf("another tenant's admin: %+v", l)
	}

	if !s.Remove(st.ID) || s.Remove(st.ID) {
		t.Fatal("Remove")
	}
	if _, err := s.Identify("Bearer " + secret); !errors.Is(err, ErrBadKey) {
		t.Fatalf("revoked: %v", err)
	}
	if _, err := s.Identify("Bearer configured-admin-key-0001"); err != nil {
		t.Fatalf("the configured key: %v", err)
	}
}

func TestStoredCheck(t *testing.T) {
	_, good, err := Generate("", RoleAnalyst, []string{"acme"}, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Stored){
		"bad id":       func(s *Stored) { s.ID = "key/../x" },
		"bad digest":   func(s *Stored) { s.Digest = "abc" },
		"bad role":     func(s *Stored) { s.Role = "root" },
		"no tenants":   func(s *Stored) { s.Tenants = nil },
		"empty tenant": func(s *Stored) { s.Tenants = []string{""} },
	} {
		st := good
		change(&st)
		if err := st.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Generate("", "root", []string{"acme"}, "", time.Now()); err == nil {
		t.Fatal("Generate took an unknown role")
	}
}

// TestUsesSeenAcrossNodes: a key's last use is the latest any node
// reported, even one reported before the key itself arrived.
func TestUsesSeenAcrossNodes(t *testing.T) {
	s, _ := New(nil)
	_, st, err := Generate("bot", RoleAgent, []string{"acme"}, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	s.SeenUse(st.ID, at) // before the key: kept
	if err := s.Put(st); err != nil {
		t.Fatal(err)
	}
	s.SeenUse(st.ID, at.Add(-time.Hour)) // older: ignored
	list := s.List(&Key{Tenants: []string{"*"}, Role: RoleAdmin})
	if len(list) != 1 || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(at) {
		t.Fatalf("list: %+v", list)
	}
	if u := s.UsedSince(time.Time{}); len(u) != 0 {
		t.Fatalf("uses this node did not see are not its to tell: %+v", u)
	}
}
