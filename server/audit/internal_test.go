package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

// TestRecordMACMatchesHasher: the writer's reusable MAC gives hasher.sum's
// hash for every record, in any order of reuse, for any key length.
func TestRecordMACMatchesHasher(t *testing.T) {
	recs := []Record{
		{ReplicaID: "r1", Seq: 1, Time: time.UnixMicro(1), Action: "Encrypt", Result: ResultOK},
		{ReplicaID: "r1", Seq: 2, Time: time.UnixMicro(99), AccessKeyID: "AK", Action: "Decrypt", KeyID: "k",
			KeyVersion: 3, Result: ResultError, ReasonCode: "x", RequestID: "id", SourceAddr: "127.0.0.1",
			Details: map[string]string{"method": "POST", "path": "/v1/decrypt", "status": "400"}, PrevHash: "ab"},
		{ReplicaID: "r2", Seq: 1 << 40, Action: "日本", Result: ResultOK, Details: map[string]string{"ü": "\u2028<&>"}},
	}
	for _, n := range []int{32, 63, 64, 65, 200} {
		key := make([]byte, n)
		for i := range key {
			key[i] = byte(i*7 + n)
		}
		h := hasher{key: key}
		m := newRecordMAC(key)
		var buf []byte
		for range 3 {
			for i := range recs {
				want, _ := h.sum(&recs[i], nil)
				var got string
				got, buf = m.hash(&recs[i], buf)
				if got != want {
					t.Fatalf("key %d bytes, record %d: %s, want %s", n, i, got, want)
				}
			}
		}
		m.wipe()
		if m.ipad != [64]byte{} || m.opad != [64]byte{} {
			t.Fatal("wipe left the pads")
		}
	}
}

// TestEncodeDetailsMatchesJSON: the reflection-free path writes exactly
// what json.Marshal writes, and leaves every other map to it.
func TestEncodeDetailsMatchesJSON(t *testing.T) {
	many := map[string]string{}
	for i := range 17 {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	cases := []struct {
		d    map[string]string
		fast bool
	}{
		{map[string]string{"method": "POST", "path": "/v1/encrypt", "status": "200", "resources": "key/abc,alias/x"}, true},
		{map[string]string{"b": "", "a": " ~!#$%'()*+,-./:;=?@[]^_`{|}"}, true},
		{map[string]string{"a": `q"uote`}, false},
		{map[string]string{"a": `back\slash`}, false},
		{map[string]string{"a": "<script>&"}, false},
		{map[string]string{"a": "tab\there"}, false},
		{map[string]string{"a": "caf\u00e9"}, false},
		{map[string]string{"a": "\u2028"}, false},
		{map[string]string{"\x7f": "del"}, false},
		{many, false},
	}
	for i, c := range cases {
		want, err := json.Marshal(c.d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeDetails(c.d)
		if err != nil || got != string(want) {
			t.Fatalf("case %d: %q (%v), want %q", i, got, err, want)
		}
		if _, fast := encodeSafeDetails(c.d); fast != c.fast {
			t.Fatalf("case %d: fast path %v, want %v", i, fast, c.fast)
		}
	}
}

// FuzzEncodeDetails: encodeDetails equals json.Marshal for any map.
func FuzzEncodeDetails(f *testing.F) {
	f.Add("method", "POST", "path", "/v1/keys/a b", "status", "200")
	f.Add("a", "<&>", "", "", "\"", "\\")
	f.Add("é", "\x01", "\u2028", "x", "k", "\xff")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		d := map[string]string{k1: v1, k2: v2, k3: v3}
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeDetails(d)
		if err != nil || got != string(want) {
			t.Fatalf("%q (%v), want %q", got, err, want)
		}
	})
}
