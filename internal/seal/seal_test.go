package seal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKey(t *testing.T) []byte {
	t.Helper()
	k, err := ParseKey(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	box, _ := New(k1)
	rotated, _ := New(k2, k1) // k2 seals, k1 still opens
	other, _ := New(k2)
	sealed := box.Seal([]byte("Your code is 481516"), []byte("out-1"))
	if bytes.Contains(sealed, []byte("481516")) {
		t.Fatal("the code is readable in the sealed value")
	}
	if again := box.Seal([]byte("Your code is 481516"), []byte("out-1")); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal (nonce reused)")
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name   string
		box    *Box
		sealed []byte
		aad    string
		ok     bool
	}{
		{"same key", box, sealed, "out-1", true},
		{"old key during a rotation", rotated, sealed, "out-1", true},
		{"another record", box, sealed, "out-2", false},
		{"key not configured", other, sealed, "out-1", false},
		{"changed", box, flipped, "out-1", false},
		{"truncated", box, sealed[:10], "out-1", false},
		{"empty", box, nil, "out-1", false},
		{"another version", box, append([]byte{9}, sealed[1:]...), "out-1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain, err := tc.box.Open(tc.sealed, []byte(tc.aad))
			if tc.ok != (err == nil) || (err == nil && string(plain) != "Your code is 481516") || (err != nil && !errors.Is(err, ErrOpen)) {
				t.Fatalf("Open = %q, %v", plain, err)
			}
		})
	}
	if resealed := rotated.Seal([]byte("x"), nil); func() bool { _, err := other.Open(resealed, nil); return err != nil }() {
		t.Fatal("a rotated box does not seal with its new key")
	}
}

func TestFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvKey, "")
	t.Setenv(EnvOldKeys, "")
	if _, err := FromEnv(""); err == nil || !strings.Contains(err.Error(), EnvKey) {
		t.Fatalf("no key outside dev: %v", err)
	}
	dev, err := FromEnv(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "secrets.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev key file: %v %v", fi, err)
	}
	again, _ := FromEnv(dir) // the same key on the next start
	if _, err := again.Open(dev.Seal([]byte("x"), nil), nil); err != nil {
		t.Fatalf("dev key not kept: %v", err)
	}
	t.Setenv(EnvKey, "not a key!")
	if _, err := FromEnv(dir); err == nil || strings.Contains(err.Error(), "not a key!") {
		t.Fatalf("bad key: %v (the error must not echo it)", err)
	}
	t.Setenv(EnvKey, NewKey())
	t.Setenv(EnvOldKeys, NewKey()+", "+NewKey())
	if b, err := FromEnv(""); err != nil || len(b.keys) != 3 {
		t.Fatalf("current and two old keys: %v", err)
	}
}
