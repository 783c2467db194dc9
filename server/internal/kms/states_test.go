package kms_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/ciphertext"
	"github.com/kmsgo/kmsgo/server/internal/kms"
)

var allStates = []kms.KeyState{kms.KeyStateEnabled, kms.KeyStateDisabled, kms.KeyStatePendingDeletion, kms.KeyStatePendingImport, kms.KeyStateDestroyed}

// keyIn creates a key and brings it into state st. It returns the key id and
// a ciphertext under it (a crafted, undecryptable one for keys that never
// had material).
func (e *env) keyIn(st kms.KeyState) (string, []byte) {
	e.t.Helper()
	if st == kms.KeyStatePendingImport {
		md := e.createKey(kms.CreateKeyInput{Origin: kms.OriginExternal})
		raw, err := ciphertext.Blob{KeyID: md.KeyID, KeyVersion: 1, IV: make([]byte, 12), Sealed: make([]byte, 32)}.Encode()
		if err != nil {
			e.t.Fatal(err)
		}
		return md.KeyID, raw
	}
	md := e.createKey(kms.CreateKeyInput{})
	blob := e.encrypt(md.KeyID, []byte("secret"), nil).CiphertextBlob
	var err error
	switch st {
	case kms.KeyStateDisabled:
		_, err = e.svc.DisableKey(e.ctx, md.KeyID)
	case kms.KeyStatePendingDeletion:
		_, err = e.svc.ScheduleKeyDeletion(e.ctx, kms.ScheduleKeyDeletionInput{KeyID: md.KeyID, PendingWindowDays: 7})
	case kms.KeyStateDestroyed:
		if _, err = e.svc.ScheduleKeyDeletion(e.ctx, kms.ScheduleKeyDeletionInput{KeyID: md.KeyID, PendingWindowDays: 7}); err == nil {
			e.clock.Advance(8 * 24 * time.Hour)
			_, err = e.svc.DestroyDueKeys(e.ctx)
		}
	}
	if err != nil {
		e.t.Fatal(err)
	}
	got, err := e.svc.DescribeKey(e.ctx, md.KeyID)
	if err != nil || got.KeyState != st {
		e.t.Fatalf("key state = %v, %v; want %s", got, err, st)
	}
	return md.KeyID, blob
}

func wrapForImport(t *testing.T, p *kms.ImportParameters, material []byte) []byte {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(p.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	w, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestStateTable runs every operation on a key in every state and checks
// the outcome against the table of the package documentation, written out
// here independently of the implementation.
func TestStateTable(t *testing.T) {
	const Y, N = true, false
	// Enabled, Disabled, PendingDeletion, PendingImport, Destroyed.
	want := map[string][5]bool{
		"DescribeKey":                     {Y, Y, Y, Y, Y},
		"ListKeyVersions":                 {Y, Y, Y, Y, Y},
		"GetRotationPolicy":               {Y, Y, Y, Y, Y},
		"ListTags":                        {Y, Y, Y, Y, Y},
		"UpdateKey":                       {Y, Y, N, Y, N},
		"EnableKey":                       {Y, Y, N, N, N},
		"DisableKey":                      {Y, Y, N, N, N},
		"ScheduleKeyDeletion":             {Y, Y, N, Y, N},
		"CancelKeyDeletion":               {N, N, Y, N, N},
		"RotateKey":                       {Y, N, N, N, N},
		"SetRotationPolicy":               {Y, Y, N, N, N},
		"CreateAlias":                     {Y, Y, N, Y, N},
		"UpdateAlias":                     {Y, Y, N, Y, N},
		"TagKey":                          {Y, Y, N, Y, N},
		"UntagKey":                        {Y, Y, N, Y, N},
		"GetParametersForImport":          {N, N, N, Y, N},
		"ImportKeyMaterial":               {N, N, N, Y, N},
		"Encrypt":                         {Y, N, N, N, N},
		"Decrypt":                         {Y, N, N, N, N},
		"GenerateDataKey":                 {Y, N, N, N, N},
		"GenerateDataKeyWithoutPlaintext": {Y, N, N, N, N},
		"ReEncryptFrom":                   {Y, N, N, N, N},
		"ReEncryptTo":                     {Y, N, N, N, N},
	}
	type opFunc func(e *env, id string, blob []byte) error
	ops := map[string]opFunc{
		"DescribeKey":     func(e *env, id string, _ []byte) error { _, err := e.svc.DescribeKey(e.ctx, id); return err },
		"ListKeyVersions": func(e *env, id string, _ []byte) error { _, err := e.svc.ListKeyVersions(e.ctx, id); return err },
		"GetRotationPolicy": func(e *env, id string, _ []byte) error {
			_, err := e.svc.GetRotationPolicy(e.ctx, id)
			return err
		},
		"ListTags": func(e *env, id string, _ []byte) error { _, err := e.svc.ListTags(e.ctx, id); return err },
		"UpdateKey": func(e *env, id string, _ []byte) error {
			_, err := e.svc.UpdateKey(e.ctx, kms.UpdateKeyInput{KeyID: id, Description: "d"})
			return err
		},
		"EnableKey":  func(e *env, id string, _ []byte) error { _, err := e.svc.EnableKey(e.ctx, id); return err },
		"DisableKey": func(e *env, id string, _ []byte) error { _, err := e.svc.DisableKey(e.ctx, id); return err },
		"ScheduleKeyDeletion": func(e *env, id string, _ []byte) error {
			_, err := e.svc.ScheduleKeyDeletion(e.ctx, kms.ScheduleKeyDeletionInput{KeyID: id})
			return err
		},
		"CancelKeyDeletion": func(e *env, id string, _ []byte) error { _, err := e.svc.CancelKeyDeletion(e.ctx, id); return err },
		"RotateKey":         func(e *env, id string, _ []byte) error { _, err := e.svc.RotateKey(e.ctx, id); return err },
		"SetRotationPolicy": func(e *env, id string, _ []byte) error {
			_, err := e.svc.SetRotationPolicy(e.ctx, kms.SetRotationPolicyInput{KeyID: id, Enabled: false})
			return err
		},
		"CreateAlias": func(e *env, id string, _ []byte) error {
			_, err := e.svc.CreateAlias(e.ctx, kms.CreateAliasInput{AliasName: "alias/t-" + id, KeyID: id})
			return err
		},
		"UpdateAlias": func(e *env, id string, _ []byte) error {
			other := e.createKey(kms.CreateKeyInput{})
			name := "alias/u-" + id
			if _, err := e.svc.CreateAlias(e.ctx, kms.CreateAliasInput{AliasName: name, KeyID: other.KeyID}); err != nil {
				e.t.Fatal(err)
			}
			_, err := e.svc.UpdateAlias(e.ctx, kms.UpdateAliasInput{AliasName: name, KeyID: id})
			return err
		},
		"TagKey": func(e *env, id string, _ []byte) error {
			_, err := e.svc.TagKey(e.ctx, kms.TagKeyInput{KeyID: id, Tags: map[string]string{"a": "b"}})
			return err
		},
		"UntagKey": func(e *env, id string, _ []byte) error {
			_, err := e.svc.UntagKey(e.ctx, kms.UntagKeyInput{KeyID: id, TagKeys: []string{"a"}})
			return err
		},
		"GetParametersForImport": func(e *env, id string, _ []byte) error {
			_, err := e.svc.GetParametersForImport(e.ctx, kms.GetParametersForImportInput{KeyID: id})
			return err
		},
		"ImportKeyMaterial": func(e *env, id string, _ []byte) error {
			md, err := e.svc.DescribeKey(e.ctx, id)
			if err != nil {
				return err
			}
			token, wrapped := make([]byte, 32), make([]byte, 256)
			if md.KeyState == kms.KeyStatePendingImport {
				p, err := e.svc.GetParametersForImport(e.ctx, kms.GetParametersForImportInput{KeyID: id})
				if err != nil {
					return err
				}
				token, wrapped = p.ImportToken, wrapForImport(e.t, p, make([]byte, 32))
			}
			_, err = e.svc.ImportKeyMaterial(e.ctx, kms.ImportKeyMaterialInput{KeyID: id, ImportToken: token, EncryptedKeyMaterial: wrapped})
			return err
		},
		"Encrypt": func(e *env, id string, _ []byte) error {
			_, err := e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: id, Plaintext: []byte("x")})
			return err
		},
		"Decrypt": func(e *env, _ string, blob []byte) error {
			_, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: blob})
			return err
		},
		"GenerateDataKey": func(e *env, id string, _ []byte) error {
			_, err := e.svc.GenerateDataKey(e.ctx, kms.GenerateDataKeyInput{KeyID: id})
			return err
		},
		"GenerateDataKeyWithoutPlaintext": func(e *env, id string, _ []byte) error {
			_, err := e.svc.GenerateDataKeyWithoutPlaintext(e.ctx, kms.GenerateDataKeyInput{KeyID: id})
			return err
		},
		"ReEncryptFrom": func(e *env, _ string, blob []byte) error {
			dst := e.createKey(kms.CreateKeyInput{})
			_, err := e.svc.ReEncrypt(e.ctx, kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyID: dst.KeyID})
			return err
		},
		"ReEncryptTo": func(e *env, id string, _ []byte) error {
			src := e.createKey(kms.CreateKeyInput{})
			blob := e.encrypt(src.KeyID, []byte("x"), nil).CiphertextBlob
			_, err := e.svc.ReEncrypt(e.ctx, kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyID: id})
			return err
		},
	}
	if len(ops) != len(want) {
		t.Fatalf("%d ops, %d table rows", len(ops), len(want))
	}
	forEach(t, func(t *testing.T, e *env) {
		for name, row := range want {
			for i, st := range allStates {
				id, blob := e.keyIn(st)
				err := ops[name](e, id, blob)
				if row[i] && err != nil {
					t.Errorf("%s on %s: unexpected error %v", name, st, err)
				}
				if !row[i] && !isErr(err, kms.ErrInvalidKeyState) {
					t.Errorf("%s on %s: err = %v, want ErrInvalidKeyState", name, st, err)
				}
				if ops, ok := opOf[name]; ok && kms.Allowed(ops, st) != row[i] {
					t.Errorf("kms.Allowed(%s, %s) disagrees with the table", ops, st)
				}
			}
		}
	})
}

var opOf = map[string]kms.Operation{
	"DescribeKey": kms.OpDescribeKey, "UpdateKey": kms.OpUpdateKey, "EnableKey": kms.OpEnableKey,
	"DisableKey": kms.OpDisableKey, "ScheduleKeyDeletion": kms.OpScheduleKeyDeletion,
	"CancelKeyDeletion": kms.OpCancelKeyDeletion, "RotateKey": kms.OpRotateKey,
	"SetRotationPolicy": kms.OpSetRotationPolicy, "Encrypt": kms.OpEncrypt, "Decrypt": kms.OpDecrypt,
	"GetParametersForImport": kms.OpGetParametersForImport, "ImportKeyMaterial": kms.OpImportKeyMaterial,
}
