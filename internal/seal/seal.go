// Package seal encrypts the few values Parley must carry through Kafka or
// keep at rest but must not show to whoever reads them there: a one-time
// code on its way to the customer, a tenant's channel secrets. AES-256-GCM
// with a key every node shares (PARLEY_SECRETS_KEY), and older keys kept
// for opening only, so the key can be rotated without losing what was
// sealed before.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// Environment variables holding the keys, base64 (standard or URL
// encoding): the current key seals and opens; the old ones, separated by
// commas, only open (set them while a rotation is under way).
const (
	EnvKey     = "PARLEY_SECRETS_KEY"
	EnvOldKeys = "PARLEY_SECRETS_OLD_KEYS"
)

// version is the first byte of a sealed value.
const version = 1

// ErrOpen is returned for a value no key opens: sealed with a key that is
// not configured, or changed.
var ErrOpen = errors.New("seal: cannot open (wrong key, or the value was changed)")

// Box seals with its first key and opens with any of its keys.
type Box struct {
	keys []key
}

type key struct {
	id   [4]byte // the first bytes of SHA-256 of the key: which key sealed
	aead cipher.AEAD
}

// New makes a box of keys: the first seals, all open.
func New(keys ...[]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no key")
	}
	b := &Box{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("seal: key %d has %d bytes, want %d", i, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(k)
		b.keys = append(b.keys, key{id: [4]byte(sum[:4]), aead: aead})
	}
	return b, nil
}

// Seal encrypts plain, bound to aad (what the value belongs to, e.g. the
// record's id: a sealed value moved to another record does not open).
// The result is version | key id (4) | nonce (12) | ciphertext and tag.
func (b *Box) Seal(plain, aad []byte) []byte {
	k := b.keys[0]
	out := make([]byte, 1+4+k.aead.NonceSize(), 1+4+k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	out[0] = version
	copy(out[1:5], k.id[:])
	if _, err := rand.Read(out[5:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return k.aead.Seal(out, out[5:], plain, aad)
}

// Open decrypts what Seal made with any of the box's keys.
func (b *Box) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 5 || sealed[0] != version {
		return nil, ErrOpen
	}
	for _, k := range b.keys {
		if [4]byte(sealed[1:5]) != k.id {
			continue
		}
		n := k.aead.NonceSize()
		if len(sealed) < 5+n {
			return nil, ErrOpen
		}
		plain, err := k.aead.Open(nil, sealed[5:5+n], sealed[5+n:], aad)
		if err != nil {
			return nil, ErrOpen
		}
		return plain, nil
	}
	return nil, ErrOpen
}

// NewKey makes a random key, base64 as EnvKey wants it (`parley keygen`).
func NewKey() string {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// ParseKey reads a base64 key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("seal: the key has %d bytes, want %d (`parley keygen` makes one)", len(k), KeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("seal: the key is not base64 (`parley keygen` makes one)")
}

// FromEnv is the box of EnvKey and EnvOldKeys. Without EnvKey, devDir
// (parley dev's data directory) holds a key made on first use; with
// devDir "" the key is required, since every node of a cluster must share
// it. The error never contains a key.
func FromEnv(devDir string) (*Box, error) {
	cur := os.Getenv(EnvKey)
	if cur == "" {
		if devDir == "" {
			return nil, fmt.Errorf("%s is not set: every node needs the same 32-byte key, base64 (`parley keygen` prints one)", EnvKey)
		}
		var err error
		if cur, err = devKey(filepath.Join(devDir, "secrets.key")); err != nil {
			return nil, err
		}
	}
	k, err := ParseKey(cur)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvKey, err)
	}
	keys := [][]byte{k}
	for _, s := range strings.Split(os.Getenv(EnvOldKeys), ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		old, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvOldKeys, err)
		}
		keys = append(keys, old)
	}
	return New(keys...)
}

// devKey reads the development key at path, making it the first time.
func devKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return string(b), nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	k := NewKey()
	if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
		return "", err
	}
	return k, nil
}
