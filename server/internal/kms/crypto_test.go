package kms_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/internal/ciphertext"
	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// TestBitFlips flips one bit in every byte of a ciphertext, and truncates it
// at every length: each variant must fail with the one opaque error.
func TestBitFlips(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		md := e.createKey(kms.CreateKeyInput{})
		ec := map[string]string{"purpose": "test"}
		blob := e.encrypt(md.KeyID, []byte("attack at dawn"), ec).CiphertextBlob
		reasons := map[string]int{}
		check := func(what string, b []byte) {
			t.Helper()
			_, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: b, EncryptionContext: ec})
			if !isErr(err, kms.ErrInvalidCiphertext) || err.Error() != kms.ErrInvalidCiphertext.Error() {
				t.Fatalf("%s: err = %v, want the opaque ErrInvalidCiphertext", what, err)
			}
			if kms.ReasonCode(err) == "" {
				t.Fatalf("%s: no reason code", what)
			}
			reasons[kms.ReasonCode(err)]++
		}
		for i := range blob {
			b := bytes.Clone(blob)
			b[i] ^= 1 << (i % 8)
			check("flip byte", b)
		}
		for n := 0; n < len(blob); n++ {
			check("truncate", blob[:n])
		}
		check("extend", append(bytes.Clone(blob), 0))
		for _, r := range []string{kms.ReasonAuthFailed, kms.ReasonMalformed, kms.ReasonUnknownFormat} {
			if reasons[r] == 0 {
				t.Errorf("no failure with reason %s: %v", r, reasons)
			}
		}
		e.mustDecrypt(blob, ec, []byte("attack at dawn"))
	})
}

func TestEncryptionContext(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		md := e.createKey(kms.CreateKeyInput{})
		ec := map[string]string{"tenant": "acme", "table": "orders", "col": "card"}
		blob := e.encrypt(md.KeyID, []byte("4111"), ec).CiphertextBlob
		fail := map[string]map[string]string{
			"value":        {"tenant": "acme2", "table": "orders", "col": "card"},
			"value case":   {"tenant": "ACME", "table": "orders", "col": "card"},
			"key case":     {"Tenant": "acme", "table": "orders", "col": "card"},
			"missing pair": {"tenant": "acme", "table": "orders"},
			"extra pair":   {"tenant": "acme", "table": "orders", "col": "card", "x": "y"},
			"empty":        nil,
		}
		for name, c := range fail {
			_, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: c})
			if !isErr(err, kms.ErrInvalidCiphertext) || kms.ReasonCode(err) != kms.ReasonAuthFailed {
				t.Errorf("%s: err = %v (%s)", name, err, kms.ReasonCode(err))
			}
		}
		e.mustDecrypt(blob, map[string]string{"col": "card", "table": "orders", "tenant": "acme"}, []byte("4111"))
		// No context at encrypt: nil and empty map are the same.
		b2 := e.encrypt(md.KeyID, []byte("x"), nil).CiphertextBlob
		e.mustDecrypt(b2, map[string]string{}, []byte("x"))
		if _, err := e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: md.KeyID, Plaintext: []byte("x"), EncryptionContext: map[string]string{"": "v"}}); !isErr(err, kms.ErrValidation) {
			t.Errorf("empty context key: err = %v", err)
		}
	})
}

// TestSoftwareBlobIsStandardAESGCM decrypts a SOFTWARE ciphertext of an
// imported key outside the service, proving the blob layout and AAD.
func TestSoftwareBlobIsStandardAESGCM(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		if e.pl != kms.ProtectionSoftware {
			return
		}
		material := bytes.Repeat([]byte{7}, 32)
		md := e.createKey(kms.CreateKeyInput{Origin: kms.OriginExternal})
		p, err := e.svc.GetParametersForImport(e.ctx, kms.GetParametersForImportInput{KeyID: md.KeyID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ImportKeyMaterial(e.ctx, kms.ImportKeyMaterialInput{KeyID: md.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapForImport(t, p, material)}); err != nil {
			t.Fatal(err)
		}
		ec := map[string]string{"k": "v"}
		raw := e.encrypt(md.KeyID, []byte("hello"), ec).CiphertextBlob
		b, err := ciphertext.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		cc, _ := ciphertext.CanonicalContext(ec)
		blk, _ := aes.NewCipher(material)
		gcm, _ := cipher.NewGCM(blk)
		pt, err := gcm.Open(nil, b.IV, b.Sealed, ciphertext.AAD(b.Header(), cc))
		if err != nil || string(pt) != "hello" {
			t.Fatalf("open outside the service: %q, %v", pt, err)
		}
	})
}

func TestGenerateDataKey(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		md := e.createKey(kms.CreateKeyInput{})
		ec := map[string]string{"table": "users"}
		for _, c := range []struct {
			in   kms.GenerateDataKeyInput
			size int
		}{
			{kms.GenerateDataKeyInput{}, 32},
			{kms.GenerateDataKeyInput{KeySpec: kms.KeySpecAES256}, 32},
			{kms.GenerateDataKeyInput{KeySpec: kms.KeySpecAES128}, 16},
			{kms.GenerateDataKeyInput{NumberOfBytes: 64}, 64},
		} {
			c.in.KeyID, c.in.EncryptionContext = md.KeyID, ec
			out, err := e.svc.GenerateDataKey(e.ctx, c.in)
			if err != nil || len(out.Plaintext) != c.size || out.KeyID != md.KeyID || out.KeyVersion != 1 {
				t.Fatalf("%+v: %+v, %v", c.in, out, err)
			}
			e.mustDecrypt(out.CiphertextBlob, ec, out.Plaintext)
			np, err := e.svc.GenerateDataKeyWithoutPlaintext(e.ctx, c.in)
			if err != nil || np.Plaintext != nil {
				t.Fatalf("without plaintext: %+v, %v", np, err)
			}
			dec, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: np.CiphertextBlob, EncryptionContext: ec})
			if err != nil || len(dec.Plaintext) != c.size {
				t.Fatalf("decrypt data key: %v", err)
			}
		}
		for _, bad := range []kms.GenerateDataKeyInput{
			{KeySpec: kms.KeySpecAES256, NumberOfBytes: 32},
			{KeySpec: "RSA_2048"},
			{NumberOfBytes: -1},
			{NumberOfBytes: kms.MaxDataKeyBytes + 1},
		} {
			bad.KeyID = md.KeyID
			if _, err := e.svc.GenerateDataKey(e.ctx, bad); !isErr(err, kms.ErrValidation) {
				t.Errorf("%+v: err = %v", bad, err)
			}
		}
	})
}

func TestReEncrypt(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		a := e.createKey(kms.CreateKeyInput{})
		b := e.createKey(kms.CreateKeyInput{Alias: "alias/b"})
		src := map[string]string{"v": "1"}
		blob := e.encrypt(a.KeyID, []byte("pt"), src).CiphertextBlob
		if _, err := e.svc.RotateKey(e.ctx, a.KeyID); err != nil {
			t.Fatal(err)
		}
		// To the newest version of the same key.
		out, err := e.svc.ReEncrypt(e.ctx, kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: src, DestinationEncryptionContext: src})
		if err != nil || out.SourceKeyVersion != 1 || out.KeyVersion != 2 || out.KeyID != a.KeyID || out.SourceKeyID != a.KeyID {
			t.Fatalf("re-encrypt to newest: %+v, %v", out, err)
		}
		e.mustDecrypt(out.CiphertextBlob, src, []byte("pt"))
		// To another key with another context.
		dst := map[string]string{"v": "2"}
		out, err = e.svc.ReEncrypt(e.ctx, kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: src, DestinationKeyID: "alias/b", DestinationEncryptionContext: dst})
		if err != nil || out.KeyID != b.KeyID || out.KeyVersion != 1 {
			t.Fatalf("re-encrypt to b: %+v, %v", out, err)
		}
		e.mustDecrypt(out.CiphertextBlob, dst, []byte("pt"))
		// Wrong source context, wrong source key.
		if _, err := e.svc.ReEncrypt(e.ctx, kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyID: b.KeyID}); !isErr(err, kms.ErrInvalidCiphertext) {
			t.Fatalf("wrong source context: %v", err)
		}
		if _, err := e.svc.ReEncrypt(e.ctx, kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: src, SourceKeyID: b.KeyID}); !isErr(err, kms.ErrInvalidCiphertext) || kms.ReasonCode(err) != kms.ReasonKeyMismatch {
			t.Fatalf("wrong source key: %v", err)
		}
	})
}

func TestDecryptErrors(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		a := e.createKey(kms.CreateKeyInput{Alias: "alias/a"})
		b := e.createKey(kms.CreateKeyInput{Alias: "alias/b"})
		blob := e.encrypt(a.KeyID, []byte("pt"), nil).CiphertextBlob
		parsed, _ := ciphertext.Parse(blob)
		// Same bytes, but naming key b: authentication fails (header is AAD).
		moved := parsed
		moved.KeyID = b.KeyID
		movedRaw, _ := moved.Encode()
		// Naming a key that does not exist.
		ghost := parsed
		ghost.KeyID = "00000000-0000-4000-8000-000000000000"
		ghostRaw, _ := ghost.Encode()
		// Naming a version that does not exist.
		v9 := parsed
		v9.KeyVersion = 9
		v9Raw, _ := v9.Encode()
		cases := []struct {
			name   string
			in     kms.DecryptInput
			reason string
		}{
			{"other key named", kms.DecryptInput{CiphertextBlob: blob, KeyID: "alias/b"}, kms.ReasonKeyMismatch},
			{"moved to other key", kms.DecryptInput{CiphertextBlob: movedRaw}, kms.ReasonAuthFailed},
			{"unknown key", kms.DecryptInput{CiphertextBlob: ghostRaw}, kms.ReasonKeyNotFound},
			{"unknown version", kms.DecryptInput{CiphertextBlob: v9Raw}, kms.ReasonVersionNotFound},
			{"empty", kms.DecryptInput{}, kms.ReasonMalformed},
			{"garbage", kms.DecryptInput{CiphertextBlob: []byte("ENC(abc)")}, kms.ReasonUnknownFormat},
		}
		for _, c := range cases {
			_, err := e.svc.Decrypt(e.ctx, c.in)
			if !isErr(err, kms.ErrInvalidCiphertext) || kms.ReasonCode(err) != c.reason || err.Error() != kms.ErrInvalidCiphertext.Error() {
				t.Errorf("%s: err = %v, reason %q, want %q", c.name, err, kms.ReasonCode(err), c.reason)
			}
		}
		if _, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: blob, KeyID: "alias/nope"}); !isErr(err, kms.ErrInvalidCiphertext) || kms.ReasonCode(err) != kms.ReasonKeyMismatch {
			t.Errorf("unknown named alias: %v", err)
		}
		if kms.ReasonCode(kms.ErrNotFound) != "" {
			t.Error("ReasonCode of a non-decrypt error")
		}
	})
}

func TestDecryptBatch(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		md := e.createKey(kms.CreateKeyInput{})
		var items []kms.DecryptInput
		for i := 0; i < 10; i++ {
			ec := map[string]string{"i": strings.Repeat("x", i)}
			items = append(items, kms.DecryptInput{CiphertextBlob: e.encrypt(md.KeyID, []byte{byte(i)}, ec).CiphertextBlob, EncryptionContext: ec})
		}
		items[3].EncryptionContext = nil
		res, err := e.svc.DecryptBatch(e.ctx, items)
		if err != nil || len(res) != len(items) {
			t.Fatal(err)
		}
		for i, r := range res {
			if i == 3 {
				if !isErr(r.Err, kms.ErrInvalidCiphertext) || r.Output != nil {
					t.Fatalf("item 3: %+v", r)
				}
				continue
			}
			if r.Err != nil || !bytes.Equal(r.Output.Plaintext, []byte{byte(i)}) {
				t.Fatalf("item %d: %+v", i, r)
			}
		}
		for _, n := range []int{0, kms.MaxBatchDecrypt + 1} {
			if _, err := e.svc.DecryptBatch(e.ctx, make([]kms.DecryptInput, n)); !isErr(err, kms.ErrValidation) {
				t.Errorf("batch of %d: %v", n, err)
			}
		}
	})
}

func TestCryptoValidation(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		md := e.createKey(kms.CreateKeyInput{})
		cases := []struct {
			name string
			err  error
			want error
		}{}
		add := func(name string, err, want error) {
			cases = append(cases, struct {
				name      string
				err, want error
			}{name, err, want})
		}
		_, err := e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: md.KeyID})
		add("empty plaintext", err, kms.ErrValidation)
		_, err = e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: md.KeyID, Plaintext: make([]byte, kms.MaxPlaintextSize+1)})
		add("plaintext too large", err, kms.ErrValidation)
		_, err = e.svc.Encrypt(e.ctx, kms.EncryptInput{Plaintext: []byte("x")})
		add("no key", err, kms.ErrValidation)
		_, err = e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: "00000000-0000-4000-8000-000000000000", Plaintext: []byte("x")})
		add("unknown key", err, kms.ErrNotFound)
		_, err = e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: "alias/none", Plaintext: []byte("x")})
		add("unknown alias", err, kms.ErrNotFound)
		_, err = e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: "not-a-key", Plaintext: []byte("x")})
		add("malformed id", err, kms.ErrNotFound)
		_, err = e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: md.KeyID, Plaintext: []byte("x"), EncryptionContext: map[string]string{"k": "\xff"}})
		add("bad context", err, kms.ErrValidation)
		for _, n := range []int{0, kms.MaxRandomBytes + 1} {
			_, err = e.svc.GenerateRandom(e.ctx, n)
			add("random size", err, kms.ErrValidation)
		}
		for _, c := range cases {
			if !isErr(c.err, c.want) {
				t.Errorf("%s: err = %v, want %v", c.name, c.err, c.want)
			}
		}
		r1, err := e.svc.GenerateRandom(e.ctx, 32)
		r2, err2 := e.svc.GenerateRandom(e.ctx, 32)
		if err != nil || err2 != nil || len(r1) != 32 || bytes.Equal(r1, r2) {
			t.Fatalf("random: %v %v", err, err2)
		}
	})
}

// TestHSMUnavailablePassesThrough checks that an HSM outage is reported as
// hsm.ErrUnavailable (503), never as an invalid ciphertext.
func TestHSMUnavailablePassesThrough(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		md := e.createKey(kms.CreateKeyInput{})
		blob := e.encrypt(md.KeyID, []byte("x"), nil).CiphertextBlob
		cold := e.service(e.db) // empty material cache: SOFTWARE keys must unwrap
		e.hsm.failCrypto.Store(true)
		defer e.hsm.failCrypto.Store(false)
		_, err := cold.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: blob})
		if !isErr(err, hsm.ErrUnavailable) || isErr(err, kms.ErrInvalidCiphertext) {
			t.Fatalf("decrypt with HSM down: %v", err)
		}
		_, err = cold.Encrypt(e.ctx, kms.EncryptInput{KeyID: md.KeyID, Plaintext: []byte("x")})
		if !isErr(err, hsm.ErrUnavailable) {
			t.Fatalf("encrypt with HSM down: %v", err)
		}
		if e.pl == kms.ProtectionSoftware {
			// The replica that already holds the material keeps serving.
			e.mustDecrypt(blob, nil, []byte("x"))
		}
	})
}

// FuzzDecrypt feeds arbitrary blobs to Decrypt: the only outcomes are the
// opaque error or, for the one genuine blob, its plaintext.
func FuzzDecrypt(f *testing.F) {
	e := fuzzEnv(f)
	md, err := e.svc.CreateKey(e.ctx, kms.CreateKeyInput{})
	if err != nil {
		f.Fatal(err)
	}
	out, err := e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: md.KeyID, Plaintext: []byte("fuzz"), EncryptionContext: map[string]string{"a": "b"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(out.CiphertextBlob)
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: raw, EncryptionContext: map[string]string{"a": "b"}})
		if err == nil {
			if !bytes.Equal(raw, out.CiphertextBlob) || string(got.Plaintext) != "fuzz" {
				t.Fatalf("forged blob decrypted: % x", raw)
			}
			return
		}
		if !isErr(err, kms.ErrInvalidCiphertext) || err.Error() != kms.ErrInvalidCiphertext.Error() {
			t.Fatalf("err = %v", err)
		}
	})
}
