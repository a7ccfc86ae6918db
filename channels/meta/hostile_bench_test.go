package meta_test

import (
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/meta"
)

// BenchmarkHostilePayload: what an unsigned 2.6 MB body naming 20,000
// numbers costs. "refused" is the route's path since the signature is
// checked first (one HMAC per app secret); "parsed" is the parse and the
// bounded scan of its numbers that a signed body of that shape would get.
//
//	go test -run '^$' -bench BenchmarkHostilePayload ./channels/meta
func BenchmarkHostilePayload(b *testing.B) {
	body := manyNumbers(20000)
	forged := "sha256=" + strings.Repeat("0", 64)
	b.Run("refused", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if meta.SignedByAny(body, forged, []string{acmeSecret, betaSecret}) {
				b.Fatal("verified")
			}
		}
	})
	b.Run("parsed", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		lookup := func(string) (meta.Number, bool) { return meta.Number{}, false }
		for b.Loop() {
			if _, err := meta.Accept(body, "sha256=00", lookup, time.Now(), func() string { return "id" }); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}
