package providertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
)

// TestdataFiles are the names of the webhook payloads in the calling
// package's testdata/*.json, in the provider's documented shapes; it fails
// t when there are none.
func TestdataFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	return files
}

// CheckDownload checks what a provider's FetchMedia returned: no error,
// the bytes want, of contentType, with their size. It closes body.
func CheckDownload(t testing.TB, want []byte, contentType string, body io.ReadCloser, ct string, size int64, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(body)
	body.Close()
	if !bytes.Equal(got, want) || ct != contentType || size != int64(len(want)) {
		t.Fatalf("got %d bytes of %s (size %d), want %d of %s", len(got), ct, size, len(want), contentType)
	}
}

// DoJSON makes req to a fake and decodes its JSON answer, failing t when
// the request fails or the answer is not a JSON object.
func DoJSON(t testing.TB, req *http.Request) (status int, header http.Header, body map[string]any) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", req.Method, req.URL.Path, err)
	}
	return res.StatusCode, res.Header, body
}
