package providertest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
)

// Fake is what every provider's fake shares: a real HTTP server on a
// loopback port, the Log of what it accepted (and of the failures it was
// told to answer with), and the customers' files it serves. A fake embeds
// a *Fake, so that its URL, Close, Messages, Attempts, Wait, Since,
// WaitFor and Reset are the Fake's.
type Fake[M, F any] struct {
	*Log[M, F]
	srv *httptest.Server

	mu    sync.Mutex
	files map[string]File
}

// File is a customer's file a fake serves.
type File struct {
	ContentType string
	Data        []byte
}

// NewFake starts a fake whose requests serve answers; clone is the Log's.
func NewFake[M, F any](clone func(M) M, serve http.HandlerFunc) *Fake[M, F] {
	return &Fake[M, F]{Log: NewLog[M, F](clone), srv: httptest.NewServer(serve), files: map[string]File{}}
}

// URL is the server's base URL, e.g. "http://127.0.0.1:41234".
func (f *Fake[M, F]) URL() string { return f.srv.URL }

// Close shuts the server down, waiting for requests in flight.
func (f *Fake[M, F]) Close() { f.srv.Close() }

// StoreFile keeps a copy of data under key.
func (f *Fake[M, F]) StoreFile(key, contentType string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[key] = File{contentType, append([]byte(nil), data...)}
}

// File is the file stored under key.
func (f *Fake[M, F]) File(key string) (File, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files[key]
	return file, ok
}

// ServeFile answers with the file's bytes, its type and length.
func ServeFile(w http.ResponseWriter, file File) {
	w.Header().Set("Content-Type", file.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(file.Data)))
	_, _ = w.Write(file.Data)
}

// WriteJSON answers status with v as JSON of contentType.
func WriteJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client hung up; nothing to do
}

// RandomBytes are n random bytes, for the ids a fake hands out.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	return b
}

// SameSecret compares a credential a client sent with the fake's in
// constant time.
func SameSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
