package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"maps"
	"testing"
	"time"
)

func TestCanonicalEncodingIsUnambiguous(t *testing.T) {
	base := Record{Time: time.UnixMicro(1), ReplicaID: "r", Seq: 1, Action: "ab", KeyID: "c", Result: ResultOK}
	variants := []func(*Record){
		func(r *Record) { r.Action, r.KeyID = "a", "bc" }, // bytes moved across a field boundary
		func(r *Record) { r.Action, r.KeyID = "abc", "" },
		func(r *Record) { r.Details = map[string]string{"ab": ""} },
		func(r *Record) { r.Details = map[string]string{"a": "b"} },
		func(r *Record) { r.Seq = 2 },
		func(r *Record) { r.Time = time.UnixMicro(2) },
		func(r *Record) { r.KeyVersion = 1 },
		func(r *Record) { r.ReplicaID = "r2" },
		func(r *Record) { r.PrevHash = "00" },
		func(r *Record) { r.Hash = "ignored" }, // Hash is not part of its own input
	}
	h := newHasher(bytes.Repeat([]byte{7}, 32))
	want, _ := h.sum(&base, nil)
	for i, v := range variants {
		r := base
		v(&r)
		got, _ := h.sum(&r, nil)
		if same := got == want; same != (i == len(variants)-1) {
			t.Fatalf("variant %d: same hash = %v", i, same)
		}
	}
	// Map iteration order must not matter.
	a := base
	a.Details = map[string]string{"x": "1", "y": "2", "z": "3"}
	first, _ := h.sum(&a, nil)
	for range 20 {
		b := a
		b.Details = maps.Clone(a.Details)
		if got, _ := h.sum(&b, nil); got != first {
			t.Fatal("details order changes the hash")
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	cases := []cursor{
		{timeUS: 0, seq: 1, replica: "r"},
		{timeUS: -5, seq: 1 << 62, replica: "kmsd.a.b"},
		{timeUS: 1763900000000000, seq: 42, replica: "ünï"},
	}
	for _, c := range cases {
		got, err := decodeCursor(c.encode())
		if err != nil || got != c {
			t.Fatalf("%+v: got %+v, %v", c, got, err)
		}
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, bad := range []string{
		"", "v1", b64("v1.1.1"), b64("v2.1.1.r"), b64("v1.01.1.r"), b64("v1.+1.1.r"),
		b64("v1.1.0.r"), b64("v1.1.1."), b64("v1.x.1.r"), b64("v1.1.1.r\x00"), b64("v1.1.1.\xff"),
		cursor{timeUS: 1, seq: 1, replica: "r"}.encode() + "=",
	} {
		if _, err := decodeCursor(bad); !errors.Is(err, ErrInvalidCursor) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(cursor{timeUS: 1, seq: 1, replica: "r"}.encode())
	f.Add("djEuMS4xLg")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("unexpected error type %v", err)
			}
			return
		}
		if c.encode() != s || c.seq < 1 || c.replica == "" {
			t.Fatalf("accepted non-canonical cursor %q -> %+v", s, c)
		}
	})
}

func FuzzDecodeDetails(f *testing.F) {
	f.Add(`{"a":"b"}`)
	f.Add(``)
	f.Add(`null`)
	f.Add(`{"a":1}`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := decodeDetails(s)
		if err != nil {
			return
		}
		enc, err := encodeDetails(d)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		d2, err := decodeDetails(enc)
		if err != nil || !maps.Equal(d, d2) {
			t.Fatalf("round trip %q -> %q: %v", s, enc, err)
		}
		if len(d) == 0 && (d != nil || enc != "") {
			t.Fatalf("empty details not normalised: %#v %q", d, enc)
		}
	})
}
