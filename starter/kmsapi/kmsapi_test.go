package kmsapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

func TestCodeStatus(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range kmsapi.Codes {
		st, ok := kmsapi.CodeStatus(c)
		if !ok || st < 400 || st > 599 {
			t.Errorf("code %s: status %d, %v", c, st, ok)
		}
		if seen[c] {
			t.Errorf("code %s listed twice", c)
		}
		seen[c] = true
	}
	if _, ok := kmsapi.CodeStatus("NoSuchCode"); ok {
		t.Error("unknown code has a status")
	}
	for code, want := range map[string]int{
		kmsapi.CodeInvalidCiphertext: http.StatusBadRequest, // opaque decrypt failure is a 4xx, never retried
		kmsapi.CodeHSMUnavailable:    http.StatusServiceUnavailable,
		kmsapi.CodeInvalidKeyState:   http.StatusConflict,
	} {
		if st, _ := kmsapi.CodeStatus(code); st != want {
			t.Errorf("%s: %d, want %d", code, st, want)
		}
	}
}

func TestKeySpecBits(t *testing.T) {
	for spec, want := range map[kmsapi.KeySpec]int{kmsapi.KeySpecAES256: 256, kmsapi.KeySpecAES128: 128, "RSA_2048": 0} {
		if got := spec.Bits(); got != want {
			t.Errorf("%s: %d bits, want %d", spec, got, want)
		}
	}
}

// TestWireNames freezes the JSON names of the most used types: renaming a
// field breaks every deployed client.
func TestWireNames(t *testing.T) {
	b, _ := json.Marshal(kmsapi.KeyMetadata{})
	want := `{"key_id":"","description":"","key_spec":"","protection_level":"","origin":"","key_state":"","creation_date":"0001-01-01T00:00:00Z","deletion_date":null,"primary_version":0,"aliases":null,"tags":null,"rotation":{"enabled":false,"period_days":0,"next_rotation_at":null}}`
	if string(b) != want {
		t.Fatalf("KeyMetadata JSON\n got %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(kmsapi.ErrorResponse{Error: kmsapi.Error{Code: kmsapi.CodeNotFound, Message: "m"}})
	if string(b) != `{"error":{"code":"NotFound","message":"m"}}` {
		t.Fatalf("error JSON %s", b)
	}
}

func ExampleCodeStatus() {
	st, _ := kmsapi.CodeStatus(kmsapi.CodeInvalidCiphertext)
	fmt.Println(st)
	// Output: 400
}

func TestJSONErrorMessage(t *testing.T) {
	var in struct {
		N int `json:"n"`
	}
	decode := func(s string) error { return json.Unmarshal([]byte(s), &in) }
	other := errors.New(`json: unknown field "x"`)
	for _, tc := range []struct {
		err      error
		fallback string
		want     string
	}{
		{decode(`{"n":"secret-value"}`), "", "field n: expected int"},
		{decode(`[1]`), "", "expected a JSON object"},
		{decode(`{"n":1,}`), "", "malformed JSON at offset 8"},
		{io.ErrUnexpectedEOF, "", "truncated JSON"},
		{other, "", other.Error()},
		{other, "malformed request body", "malformed request body"},
	} {
		got := kmsapi.JSONErrorMessage(tc.err, tc.fallback)
		if got != tc.want {
			t.Errorf("JSONErrorMessage(%v, %q) = %q, want %q", tc.err, tc.fallback, got, tc.want)
		}
		if strings.Contains(got, "secret-value") {
			t.Errorf("message %q repeats the body", got)
		}
	}
}

func ExampleValidIdempotencyToken() {
	for _, t := range []string{"deploy-42:orders", "", "has space", strings.Repeat("a", 65)} {
		fmt.Println(kmsapi.ValidIdempotencyToken(t))
	}
	// Output:
	// true
	// false
	// false
	// false
}
