package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/tenants"
)

// devKeyFile is where `parley dev` without a file keeps its development
// admin key, inside the data directory: the same key across restarts, so
// a dashboard tab that holds it keeps working.
const devKeyFile = "dev-admin-key"

// devAdminKey returns the development admin key kept in dataDir, creating
// a random one (readable by the owner only) on first use. It is for the
// first look at `parley dev`: a configuration file states its own keys.
func devAdminKey(dataDir string) (apikeys.Key, error) {
	path := filepath.Join(dataDir, devKeyFile)
	raw, err := os.ReadFile(path)
	secret := strings.TrimSpace(string(raw))
	switch {
	case err == nil && len(secret) >= apikeys.MinKeyLength:
	case err == nil || errors.Is(err, fs.ErrNotExist):
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return apikeys.Key{}, err
		}
		secret = "dev_" + base64.RawURLEncoding.EncodeToString(b)
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return apikeys.Key{}, err
		}
		if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
			return apikeys.Key{}, fmt.Errorf("development key: %w", err)
		}
	default:
		return apikeys.Key{}, fmt.Errorf("development key: %w", err)
	}
	return apikeys.Key{Key: tenants.Secret(secret), Tenants: []string{apikeys.AllTenants}, Role: apikeys.RoleAdmin, Name: "dev-admin"}, nil
}
