package ciphertext_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"testing"

	"github.com/kmsgo/kmsgo/server/internal/ciphertext"
)

func sample() ciphertext.Blob {
	return ciphertext.Blob{
		KeyID:      "0f8e2c1a-1111-4222-8333-444455556666",
		KeyVersion: 7,
		IV:         bytes.Repeat([]byte{0xAA}, ciphertext.IVSize),
		Sealed:     bytes.Repeat([]byte{0xBB}, 48),
	}
}

func TestRoundTrip(t *testing.T) {
	b := sample()
	raw, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if raw[0] != ciphertext.FormatV1 || int(raw[1]) != len(b.KeyID) {
		t.Fatalf("header = % x", raw[:2])
	}
	got, err := ciphertext.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyID != b.KeyID || got.KeyVersion != b.KeyVersion || !bytes.Equal(got.IV, b.IV) || !bytes.Equal(got.Sealed, b.Sealed) {
		t.Fatalf("got %+v", got)
	}
	if !bytes.Equal(got.Header(), raw[:len(raw)-ciphertext.IVSize-48]) {
		t.Fatal("header bytes differ from the encoded prefix")
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := sample().Encode()
	mod := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	big := sample()
	big.Sealed = make([]byte, ciphertext.MaxSealedLen+1)
	bigRaw := append(big.Header(), big.IV...)
	bigRaw = append(bigRaw, big.Sealed...)
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, ciphertext.ErrMalformed},
		{"format 0", mod(func(b []byte) []byte { b[0] = 0; return b }), ciphertext.ErrUnknownFormat},
		{"format 2", mod(func(b []byte) []byte { b[0] = 2; return b }), ciphertext.ErrUnknownFormat},
		{"only format", good[:1], ciphertext.ErrMalformed},
		{"id length 0", mod(func(b []byte) []byte { b[1] = 0; return b }), ciphertext.ErrMalformed},
		{"id length too long", mod(func(b []byte) []byte { b[1] = 200; return b }), ciphertext.ErrMalformed},
		{"upper-case id", mod(func(b []byte) []byte { b[2] = 'A'; return b }), ciphertext.ErrMalformed},
		{"version 0", mod(func(b []byte) []byte { copy(b[2+36:], []byte{0, 0, 0, 0}); return b }), ciphertext.ErrMalformed},
		{"truncated in iv", good[:2+36+4+5], ciphertext.ErrMalformed},
		{"tag too short", good[:2+36+4+12+15], ciphertext.ErrMalformed},
		{"oversized sealed", bigRaw, ciphertext.ErrMalformed},
		{"oversized blob", append(bytes.Clone(good), make([]byte, ciphertext.MaxBlobLen)...), ciphertext.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ciphertext.Parse(c.raw); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestEncodeValidates(t *testing.T) {
	for name, f := range map[string]func(*ciphertext.Blob){
		"bad id":     func(b *ciphertext.Blob) { b.KeyID = "Key/1" },
		"version 0":  func(b *ciphertext.Blob) { b.KeyVersion = 0 },
		"short iv":   func(b *ciphertext.Blob) { b.IV = b.IV[:8] },
		"no tag":     func(b *ciphertext.Blob) { b.Sealed = b.Sealed[:3] },
		"long id":    func(b *ciphertext.Blob) { b.KeyID = string(bytes.Repeat([]byte("a"), 65)) },
		"empty id":   func(b *ciphertext.Blob) { b.KeyID = "" },
		"too sealed": func(b *ciphertext.Blob) { b.Sealed = make([]byte, ciphertext.MaxSealedLen+1) },
	} {
		b := sample()
		f(&b)
		if _, err := b.Encode(); !errors.Is(err, ciphertext.ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestCanonicalContext(t *testing.T) {
	base := map[string]string{"tenant": "acme", "table": "orders"}
	enc := func(m map[string]string) []byte {
		t.Helper()
		b, err := ciphertext.CanonicalContext(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := enc(base)
	if !bytes.Equal(enc(map[string]string{"table": "orders", "tenant": "acme"}), want) {
		t.Fatal("order changed the encoding")
	}
	if !bytes.Equal(enc(nil), enc(map[string]string{})) || !bytes.Equal(enc(nil), []byte{0, 0, 0, 0}) {
		t.Fatal("nil and empty differ")
	}
	for name, m := range map[string]map[string]string{
		"value":      {"tenant": "acme2", "table": "orders"},
		"value case": {"tenant": "ACME", "table": "orders"},
		"key case":   {"Tenant": "acme", "table": "orders"},
		"missing":    {"tenant": "acme"},
		"extra":      {"tenant": "acme", "table": "orders", "x": ""},
		"shifted":    {"tenant": "acmeta", "ble": "orders"},
		"empty":      nil,
	} {
		if bytes.Equal(enc(m), want) {
			t.Errorf("%s: same encoding as base", name)
		}
	}
	for name, m := range map[string]map[string]string{
		"empty key": {"": "v"},
		"bad utf8":  {"k": "\xff"},
		"too large": {"k": string(make([]byte, ciphertext.MaxContextLen))},
	} {
		if _, err := ciphertext.CanonicalContext(m); !errors.Is(err, ciphertext.ErrInvalidContext) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	good, _ := sample().Encode()
	f.Add(good)
	f.Add([]byte{1})
	f.Add([]byte{2, 3, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := ciphertext.Parse(raw)
		if err != nil {
			if !errors.Is(err, ciphertext.ErrMalformed) && !errors.Is(err, ciphertext.ErrUnknownFormat) {
				t.Fatalf("Parse failed with an unexpected error kind: %v", err)
			}
			return
		}
		if len(raw) > ciphertext.MaxBlobLen || raw[0] != ciphertext.FormatV1 {
			t.Fatalf("accepted a %d-byte blob with format %#x", len(raw), raw[0])
		}
		again, err := b.Encode()
		if err != nil {
			t.Fatalf("parsed blob does not encode: %v", err)
		}
		if !bytes.Equal(again, raw) {
			t.Fatalf("re-encoding differs:\n% x\n% x", raw, again)
		}
	})
}

func FuzzCanonicalContext(f *testing.F) {
	f.Add("a", "1", "b", "2")
	f.Add("k", "", "K", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m1 := map[string]string{k1: v1, k2: v2}
		e1, err := ciphertext.CanonicalContext(m1)
		if err != nil {
			return
		}
		m2 := map[string]string{k2: v2, k1: v1}
		if k1 == k2 {
			m2 = map[string]string{k1: m1[k1]}
		}
		e2, err := ciphertext.CanonicalContext(m2)
		if err != nil || !bytes.Equal(e1, e2) {
			t.Fatalf("not canonical: %v", err)
		}
		// Injective: the encoding decodes back to exactly the map, so two
		// different contexts can never share an encoding (and an AAD).
		if got := decodeContext(t, e1); !maps.Equal(got, m1) {
			t.Fatalf("encoding of %q decodes to %q", m1, got)
		}
	})
}

// decodeContext reverses CanonicalContext, failing t on any irregularity
// (trailing bytes, unsorted or repeated keys).
func decodeContext(t *testing.T, b []byte) map[string]string {
	t.Helper()
	next := func() []byte {
		if len(b) < 4 {
			t.Fatalf("truncated encoding")
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(len(b)-4) < uint64(n) {
			t.Fatalf("length %d beyond the encoding", n)
		}
		out := b[4 : 4+n]
		b = b[4+n:]
		return out
	}
	if len(b) < 4 {
		t.Fatalf("no pair count")
	}
	count := binary.BigEndian.Uint32(b)
	b = b[4:]
	m := map[string]string{}
	prev := ""
	for i := uint32(0); i < count; i++ {
		k := string(next())
		v := string(next())
		if i > 0 && k <= prev {
			t.Fatalf("keys not strictly sorted: %q after %q", k, prev)
		}
		prev = k
		m[k] = v
	}
	if len(b) != 0 {
		t.Fatalf("%d trailing bytes", len(b))
	}
	return m
}

// TestBlobAAD: Blob.AAD (one allocation) is exactly AAD(Header(), context),
// so blobs made before it existed keep authenticating.
func TestBlobAAD(t *testing.T) {
	b := sample()
	for _, cc := range [][]byte{nil, {0, 0, 0, 0}, []byte("\x00\x00\x00\x01\x00\x00\x00\x01a\x00\x00\x00\x01b")} {
		want := ciphertext.AAD(b.Header(), cc)
		if got := b.AAD(cc); !bytes.Equal(got, want) {
			t.Fatalf("Blob.AAD = %x, want %x", got, want)
		}
	}
	other := b
	other.KeyVersion++
	if bytes.Equal(other.AAD(nil), b.AAD(nil)) {
		t.Fatal("the version is not in the AAD")
	}
	cc := []byte("ctx")
	if n := testing.AllocsPerRun(10, func() { _ = b.AAD(cc) }); n != 1 {
		t.Errorf("Blob.AAD makes %v allocations, want 1", n)
	}
}
