package kms_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// TestResolveKey: ids and aliases resolve to the key and every alias of
// it; unknown or empty references fail; an alias change made through the
// service shows at once.
func TestResolveKey(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		k := e.createKey(kms.CreateKeyInput{Alias: "alias/one"})
		for _, ref := range []string{k.KeyID, "alias/one"} {
			r, err := e.svc.ResolveKey(e.ctx, ref)
			if err != nil || r.KeyID != k.KeyID || !slices.Equal(r.Aliases, []string{"alias/one"}) {
				t.Fatalf("ResolveKey(%q) = %+v, %v", ref, r, err)
			}
			if res := r.Resources(); !slices.Equal(res, []string{"key/" + k.KeyID, "alias/one"}) {
				t.Fatalf("resources %v", res)
			}
		}
		for _, tc := range []struct {
			ref  string
			want error
		}{
			{"", kms.ErrValidation},
			{"alias/none", kms.ErrNotFound},
			{"00000000-0000-4000-8000-000000000000", kms.ErrNotFound},
			{"not-a-key", kms.ErrNotFound},
		} {
			if _, err := e.svc.ResolveKey(e.ctx, tc.ref); !isErr(err, tc.want) {
				t.Errorf("ResolveKey(%q): %v, want %v", tc.ref, err, tc.want)
			}
		}
		if _, err := e.svc.CreateAlias(e.ctx, kms.CreateAliasInput{AliasName: "alias/two", KeyID: k.KeyID}); err != nil {
			t.Fatal(err)
		}
		r, err := e.svc.ResolveKey(e.ctx, k.KeyID)
		if err != nil || !slices.Equal(r.Aliases, []string{"alias/one", "alias/two"}) {
			t.Fatalf("after CreateAlias: %+v, %v", r, err)
		}
	})
}

// TestDecryptParsedCiphertext: a blob parsed once names its key, decrypts
// through DecryptCiphertext and ReEncryptCiphertext, and an unparsable one
// is the opaque invalid-ciphertext error everywhere.
func TestDecryptParsedCiphertext(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		k := e.createKey(kms.CreateKeyInput{Alias: "alias/p"})
		blob := e.encrypt(k.KeyID, []byte("pt"), map[string]string{"a": "b"}).CiphertextBlob
		c := kms.ParseCiphertext(blob)
		if c.Err() != nil || c.KeyID() != k.KeyID {
			t.Fatalf("parsed: key %q err %v", c.KeyID(), c.Err())
		}
		r, err := e.svc.ResolveCiphertext(e.ctx, c)
		if err != nil || r.KeyID != k.KeyID {
			t.Fatalf("ResolveCiphertext: %+v %v", r, err)
		}
		out, err := e.svc.DecryptCiphertext(e.ctx, c, map[string]string{"a": "b"}, "alias/p")
		if err != nil || !bytes.Equal(out.Plaintext, []byte("pt")) {
			t.Fatalf("DecryptCiphertext: %v", err)
		}
		re, err := e.svc.ReEncryptCiphertext(e.ctx, c, kms.ReEncryptInput{SourceEncryptionContext: map[string]string{"a": "b"}})
		if err != nil || re.KeyID != k.KeyID {
			t.Fatalf("ReEncryptCiphertext: %+v %v", re, err)
		}
		bad := kms.ParseCiphertext([]byte("garbage"))
		if bad.KeyID() != "" || !isErr(bad.Err(), kms.ErrInvalidCiphertext) {
			t.Fatalf("garbage parsed: %q %v", bad.KeyID(), bad.Err())
		}
		if _, err := e.svc.ResolveCiphertext(e.ctx, bad); !isErr(err, kms.ErrInvalidCiphertext) {
			t.Fatalf("ResolveCiphertext(garbage): %v", err)
		}
		if _, err := e.svc.DecryptCiphertext(e.ctx, bad, nil, ""); !isErr(err, kms.ErrInvalidCiphertext) || kms.ReasonCode(err) != kms.ReasonUnknownFormat && kms.ReasonCode(err) != kms.ReasonMalformed {
			t.Fatalf("DecryptCiphertext(garbage): %v (%s)", err, kms.ReasonCode(err))
		}
	})
}
