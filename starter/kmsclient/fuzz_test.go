package kmsclient

import (
	"encoding/json"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecodeAPIError: any status and body yield an *APIError with the
// status kept, bounded fields, and the documented fields when the body has
// the documented shape.
func FuzzDecodeAPIError(f *testing.F) {
	f.Add(404, []byte(`{"error":{"code":"NotFound","message":"no key","request_id":"r1"}}`))
	f.Add(503, []byte(``))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := decodeAPIError(status, "hdr", body)
		if e.StatusCode != status {
			t.Fatalf("status %d became %d", status, e.StatusCode)
		}
		if len(e.Code) > 64+len("…") || len(e.Message) > maxMessageLen+len("…") || len(e.RequestID) > 128+len("…") {
			t.Fatalf("unbounded fields: %d %d %d", len(e.Code), len(e.Message), len(e.RequestID))
		}
		if utf8.Valid(body) && !utf8.ValidString(e.Message) {
			t.Fatalf("truncation broke UTF-8: %q", e.Message)
		}
		var b kmsapi.ErrorResponse
		if json.Unmarshal(body, &b) == nil && len(b.Error.Message) <= maxMessageLen {
			if e.Message != b.Error.Message {
				t.Fatalf("message %q, want %q", e.Message, b.Error.Message)
			}
		}
		_ = e.Error()
		_ = IsRetryable(e)
	})
}

// FuzzParseRetryAfter: the wait is never negative nor above MaxRetryAfter.
func FuzzParseRetryAfter(f *testing.F) {
	f.Add("5")
	f.Add("Mon, 23 Nov 2026 12:00:10 GMT")
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 || d > MaxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v", v, d)
		}
		if strings.TrimSpace(v) == "" && d != 0 {
			t.Fatalf("empty header gave %v", d)
		}
	})
}

// FuzzAuditPage: the audit page and verify decoders never panic, and a
// page that decodes re-encodes to JSON that decodes to the same page.
func FuzzAuditPage(f *testing.F) {
	f.Add([]byte(`{"records":[{"seq":1}],"next":"2"}`))
	f.Add([]byte(`{"ok":false,"checked":3,"first_broken":{"replica":7,"seq":2,"reason":"x"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var v AuditVerifyResult
		_ = json.Unmarshal(body, &v)
		var p AuditPage
		if json.Unmarshal(body, &p) != nil {
			return
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var q AuditPage
		if err := json.Unmarshal(out, &q); err != nil {
			t.Fatalf("round trip: %v (%s)", err, out)
		}
		if q.Next != p.Next || len(q.Records) != len(p.Records) {
			t.Fatalf("round trip changed the page: %+v vs %+v", p, q)
		}
	})
}
