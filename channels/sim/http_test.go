package sim

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/internal/e164"
)

// FuzzParseSend: the page's JSON either becomes a record that encodes
// (valid UTF-8, an E.164 phone, a tenant, text within the cap) or is
// refused with ErrBadMessage; nothing panics.
func FuzzParseSend(f *testing.F) {
	for _, s := range []string{
		`{"tenant":"demo","phone":"+447700900456","text":"hi"}`,
		`{"tenant":"demo","phone":" +447700900456 ","text":"\u00bfQu\u00e9?"}`,
		`{"tenant":"","phone":"+447700900456","text":"hi"}`,
		`{"tenant":"demo","phone":"447700900456","text":"hi"}`,
		`{"tenant":"demo","phone":"+447700900456","text":"\xff\xfe"}`,
		`{"tenant":"demo","phone":"+447700900456","text":"   "}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := ParseSend(body, "id1", time.Unix(1_700_000_000, 0))
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		if in.Tenant == "" || !e164.Valid(in.Phone) || len(in.GetMessage().GetText()) > 4096 {
			t.Fatalf("accepted %+v", in)
		}
		if _, err := proto.Marshal(in); err != nil {
			t.Fatalf("accepted a record that does not encode: %v", err)
		}
	})
}
