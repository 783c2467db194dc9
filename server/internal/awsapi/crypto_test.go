package awsapi_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

func TestEncryptDecrypt(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	k1 := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata
	k2 := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata
	must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/one"), TargetKeyId: k1.KeyId}))
	ec := map[string]string{"tenant": "acme", "table": "orders"}

	enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/one"), Plaintext: []byte("secret"), EncryptionContext: ec}))
	if aws.ToString(enc.KeyId) != aws.ToString(k1.Arn) || enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
		t.Fatalf("encrypt answer key %s alg %s", aws.ToString(enc.KeyId), enc.EncryptionAlgorithm)
	}
	for _, keyID := range []*string{nil, k1.KeyId, k1.Arn, aws.String("alias/one")} {
		dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"table": "orders", "tenant": "acme"}, KeyId: keyID}))
		if string(dec.Plaintext) != "secret" || aws.ToString(dec.KeyId) != aws.ToString(k1.Arn) {
			t.Fatalf("decrypt with KeyId %v: %q %s", aws.ToString(keyID), dec.Plaintext, aws.ToString(dec.KeyId))
		}
	}

	// Encryption context must match exactly (AWS: case-sensitive, all pairs).
	for name, wrong := range map[string]map[string]string{
		"missing":    nil,
		"subset":     {"tenant": "acme"},
		"superset":   {"tenant": "acme", "table": "orders", "x": "y"},
		"value case": {"tenant": "ACME", "table": "orders"},
	} {
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: wrong})
		if e := wantExc[*types.InvalidCiphertextException](t, err, http.StatusBadRequest); strings.Contains(e.ErrorMessage(), "context") {
			t.Fatalf("%s: message %q reveals the reason", name, e.ErrorMessage())
		}
	}
	_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: k2.KeyId})
	wantExc[*types.IncorrectKeyException](t, err, http.StatusBadRequest)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: aws.String("alias/missing")})
	wantExc[*types.NotFoundException](t, err, http.StatusNotFound)
	tampered := bytes.Clone(enc.CiphertextBlob)
	tampered[len(tampered)-1] ^= 1
	for _, blob := range [][]byte{[]byte("garbage"), tampered, enc.CiphertextBlob[:10]} {
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
		wantExc[*types.InvalidCiphertextException](t, err, http.StatusBadRequest)
	}

	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: make([]byte, 4097)})
	wantCode(t, err, "ValidationException", http.StatusBadRequest)
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: []byte("x"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	wantExc[*types.InvalidKeyUsageException](t, err, http.StatusBadRequest)
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: []byte("x"), GrantTokens: []string{"t"}})
	wantExc[*types.UnsupportedOperationException](t, err, http.StatusBadRequest)
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: []byte("x"), DryRun: aws.Bool(true)})
	wantExc[*types.DryRunOperationException](t, err, http.StatusPreconditionFailed)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, DryRun: aws.Bool(true)})
	wantExc[*types.DryRunOperationException](t, err, http.StatusPreconditionFailed)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec,
		Recipient: &types.RecipientInfo{KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256, AttestationDocument: []byte("doc")}})
	wantExc[*types.UnsupportedOperationException](t, err, http.StatusBadRequest)

	// Decrypt is gated on the state of the key inside the ciphertext.
	must[*kms.DisableKeyOutput](t)(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: k1.KeyId}))
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	wantExc[*types.DisabledException](t, err, http.StatusConflict)
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: []byte("x"), DryRun: aws.Bool(true)})
	wantExc[*types.DisabledException](t, err, http.StatusConflict)
	must[*kms.EnableKeyOutput](t)(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: k1.KeyId}))

	// ReEncrypt moves the ciphertext to k2 and a new context without showing plaintext.
	re := must[*kms.ReEncryptOutput](t)(c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec,
		DestinationKeyId: k2.Arn, DestinationEncryptionContext: map[string]string{"v": "2"}}))
	if aws.ToString(re.SourceKeyId) != aws.ToString(k1.Arn) || aws.ToString(re.KeyId) != aws.ToString(k2.Arn) {
		t.Fatalf("re-encrypt %s -> %s", aws.ToString(re.SourceKeyId), aws.ToString(re.KeyId))
	}
	dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: map[string]string{"v": "2"}}))
	if string(dec.Plaintext) != "secret" || aws.ToString(dec.KeyId) != aws.ToString(k2.Arn) {
		t.Fatalf("re-encrypted decrypts to %q under %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec, SourceKeyId: k2.KeyId, DestinationKeyId: k2.KeyId})
	wantExc[*types.IncorrectKeyException](t, err, http.StatusBadRequest)
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: k2.KeyId})
	wantExc[*types.InvalidCiphertextException](t, err, http.StatusBadRequest)
	must[*kms.DisableKeyOutput](t)(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: k2.KeyId}))
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ec, DestinationKeyId: k2.KeyId})
	wantExc[*types.DisabledException](t, err, http.StatusConflict)

	// The precise reason of an opaque decryption failure is in the audit
	// log only, never in the answer.
	reasons := map[string]bool{}
	for _, r := range auditRecords(t, srv) {
		if r.Action == "kms:Decrypt" && r.Details["aws_error"] == "InvalidCiphertextException" {
			if r.ReasonCode != "InvalidCiphertext" {
				t.Fatalf("reason code %q", r.ReasonCode)
			}
			reasons[r.Details["reason"]] = true
		}
	}
	if !reasons["auth_failed"] || !reasons["malformed"] {
		t.Fatalf("audit reasons %v, want auth_failed and malformed", reasons)
	}
}

func TestDataKeysAndRandom(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	k := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata
	ec := map[string]string{"purpose": "test"}

	for _, tc := range []struct {
		in   kms.GenerateDataKeyInput
		size int
	}{
		{kms.GenerateDataKeyInput{KeySpec: types.DataKeySpecAes256}, 32},
		{kms.GenerateDataKeyInput{KeySpec: types.DataKeySpecAes128}, 16},
		{kms.GenerateDataKeyInput{NumberOfBytes: aws.Int32(64)}, 64},
	} {
		in := tc.in
		in.KeyId, in.EncryptionContext = k.KeyId, ec
		dk := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &in))
		if len(dk.Plaintext) != tc.size || aws.ToString(dk.KeyId) != aws.ToString(k.Arn) {
			t.Fatalf("data key of %d bytes under %s, want %d", len(dk.Plaintext), aws.ToString(dk.KeyId), tc.size)
		}
		dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec}))
		if !bytes.Equal(dec.Plaintext, dk.Plaintext) {
			t.Fatal("data key ciphertext does not decrypt to the data key")
		}
	}
	wp := must[*kms.GenerateDataKeyWithoutPlaintextOutput](t)(c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256}))
	if aws.ToString(wp.KeyId) != aws.ToString(k.Arn) {
		t.Fatalf("without plaintext: key %s", aws.ToString(wp.KeyId))
	}
	if dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wp.CiphertextBlob})); len(dec.Plaintext) != 32 {
		t.Fatalf("without-plaintext data key decrypts to %d bytes", len(dec.Plaintext))
	}
	_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: k.KeyId})
	wantCode(t, err, "ValidationException", http.StatusBadRequest)
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
	wantCode(t, err, "ValidationException", http.StatusBadRequest)
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: k.KeyId, NumberOfBytes: aws.Int32(1025)})
	wantCode(t, err, "ValidationException", http.StatusBadRequest)
	_, err = c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/none"), KeySpec: types.DataKeySpecAes256})
	wantExc[*types.NotFoundException](t, err, http.StatusNotFound)
	_, err = c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: k.KeyId, KeySpec: types.DataKeySpecAes256, DryRun: aws.Bool(true)})
	wantExc[*types.DryRunOperationException](t, err, http.StatusPreconditionFailed)

	r1 := must[*kms.GenerateRandomOutput](t)(c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)}))
	r2 := must[*kms.GenerateRandomOutput](t)(c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)}))
	if len(r1.Plaintext) != 32 || bytes.Equal(r1.Plaintext, r2.Plaintext) {
		t.Fatalf("random: %d bytes, repeated %v", len(r1.Plaintext), bytes.Equal(r1.Plaintext, r2.Plaintext))
	}
	for _, n := range []*int32{nil, aws.Int32(0), aws.Int32(1025)} {
		_, err = c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: n})
		wantCode(t, err, "ValidationException", http.StatusBadRequest)
	}
}

// TestCiphertextInterchange: a blob made through /v1 decrypts through the
// AWS protocol and the reverse, with the same encryption context.
func TestCiphertextInterchange(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	st, body := srv.Do(t, http.MethodPost, "/v1/keys", map[string]any{"alias": "alias/both"})
	if st != http.StatusCreated {
		t.Fatalf("create key: %d %s", st, body)
	}
	ec := map[string]string{"app": "billing"}
	st, body = srv.Do(t, http.MethodPost, "/v1/encrypt", map[string]any{"key_id": "alias/both", "plaintext": []byte("from v1"), "encryption_context": ec})
	if st != http.StatusOK {
		t.Fatalf("v1 encrypt: %d %s", st, body)
	}
	var v1 struct {
		KeyID          string `json:"key_id"`
		CiphertextBlob []byte `json:"ciphertext_blob"`
		Plaintext      []byte `json:"plaintext"`
	}
	if err := json.Unmarshal(body, &v1); err != nil {
		t.Fatal(err)
	}
	dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: v1.CiphertextBlob, EncryptionContext: ec}))
	if string(dec.Plaintext) != "from v1" || !strings.HasSuffix(aws.ToString(dec.KeyId), ":key/"+v1.KeyID) {
		t.Fatalf("AWS decrypt of a /v1 blob: %q %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}

	enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/both"), Plaintext: []byte("from aws"), EncryptionContext: ec}))
	st, body = srv.Do(t, http.MethodPost, "/v1/decrypt", map[string]any{"ciphertext_blob": enc.CiphertextBlob, "encryption_context": ec})
	if st != http.StatusOK {
		t.Fatalf("v1 decrypt of an AWS blob: %d %s", st, body)
	}
	if err := json.Unmarshal(body, &v1); err != nil || string(v1.Plaintext) != "from aws" {
		t.Fatalf("v1 decrypt: %s %v", body, err)
	}
	dk := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/both"), KeySpec: types.DataKeySpecAes256}))
	st, body = srv.Do(t, http.MethodPost, "/v1/decrypt", map[string]any{"ciphertext_blob": dk.CiphertextBlob})
	if err := json.Unmarshal(body, &v1); st != http.StatusOK || err != nil || !bytes.Equal(v1.Plaintext, dk.Plaintext) {
		t.Fatalf("v1 decrypt of an AWS data key: %d %v", st, err)
	}
}

func TestImportKeyMaterial(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	ext := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})).KeyMetadata
	if ext.KeyState != types.KeyStatePendingImport || ext.Origin != types.OriginTypeExternal || ext.Enabled {
		t.Fatalf("external key: %s %s", ext.KeyState, ext.Origin)
	}
	native := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata

	params := func(key *string) *kms.GetParametersForImportOutput {
		return must[*kms.GetParametersForImportOutput](t)(c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
			KeyId: key, WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048}))
	}
	wrap := func(p *kms.GetParametersForImportOutput, material []byte) []byte {
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
	_, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: native.KeyId, WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	wantExc[*types.UnsupportedOperationException](t, err, http.StatusBadRequest)
	_, err = c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: ext.KeyId, WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha1, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	wantExc[*types.UnsupportedOperationException](t, err, http.StatusBadRequest)
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: ext.KeyId, Plaintext: []byte("x")})
	wantExc[*types.KMSInvalidStateException](t, err, http.StatusConflict)

	p := params(ext.KeyId)
	if aws.ToString(p.KeyId) != aws.ToString(ext.Arn) || len(p.ImportToken) == 0 || p.ParametersValidTo == nil {
		t.Fatalf("parameters %+v", p)
	}
	material := make([]byte, 32)
	if _, err := rand.Read(material); err != nil {
		t.Fatal(err)
	}
	other := params(ext.KeyId) // a second token; its key cannot unwrap material wrapped for p
	imp := func(token, wrapped []byte, model types.ExpirationModelType) error {
		_, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: ext.KeyId, ImportToken: token, EncryptedKeyMaterial: wrapped, ExpirationModel: model})
		return err
	}
	wantExc[*types.InvalidImportTokenException](t, imp(make([]byte, 32), wrap(p, material), ""), http.StatusBadRequest)
	wantExc[*types.InvalidCiphertextException](t, imp(other.ImportToken, wrap(p, material), ""), http.StatusBadRequest)
	wantExc[*types.IncorrectKeyMaterialException](t, imp(p.ImportToken, wrap(p, material[:16]), ""), http.StatusBadRequest)
	wantExc[*types.UnsupportedOperationException](t, imp(p.ImportToken, wrap(p, material), types.ExpirationModelTypeKeyMaterialExpires), http.StatusBadRequest)
	if err := imp(p.ImportToken, wrap(p, material), types.ExpirationModelTypeKeyMaterialDoesNotExpire); err != nil {
		t.Fatal(err)
	}
	d := must[*kms.DescribeKeyOutput](t)(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: ext.KeyId}))
	if d.KeyMetadata.KeyState != types.KeyStateEnabled || d.KeyMetadata.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire {
		t.Fatalf("after import: %s %s", d.KeyMetadata.KeyState, d.KeyMetadata.ExpirationModel)
	}
	enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: ext.KeyId, Plaintext: []byte("byok")}))
	if dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})); string(dec.Plaintext) != "byok" {
		t.Fatalf("decrypt under imported key: %q", dec.Plaintext)
	}
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: ext.KeyId})
	wantExc[*types.UnsupportedOperationException](t, err, http.StatusBadRequest)
	_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: ext.KeyId})
	wantExc[*types.UnsupportedOperationException](t, err, http.StatusBadRequest)
}
