package awsapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

// TestEveryKeyOperationNotFound: every operation that names a key answers
// NotFoundException (404) for a key that does not exist.
func TestEveryKeyOperationNotFound(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	missing := aws.String("11111111-2222-4333-8444-555555555555")
	ops := map[string]func() error{
		"DescribeKey": func() error { _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: missing}); return err },
		"UpdateKeyDescription": func() error {
			_, err := c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: missing, Description: aws.String("d")})
			return err
		},
		"EnableKey":  func() error { _, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: missing}); return err },
		"DisableKey": func() error { _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: missing}); return err },
		"ScheduleKeyDeletion": func() error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: missing})
			return err
		},
		"CancelKeyDeletion": func() error {
			_, err := c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: missing})
			return err
		},
		"EnableKeyRotation": func() error {
			_, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: missing})
			return err
		},
		"DisableKeyRotation": func() error {
			_, err := c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: missing})
			return err
		},
		"GetKeyRotationStatus": func() error {
			_, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: missing})
			return err
		},
		"RotateKeyOnDemand": func() error {
			_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: missing})
			return err
		},
		"ListKeyRotations": func() error {
			_, err := c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: missing})
			return err
		},
		"CreateAlias": func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/a"), TargetKeyId: missing})
			return err
		},
		"ListAliases": func() error { _, err := c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: missing}); return err },
		"TagResource": func() error {
			_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: missing, Tags: []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}}})
			return err
		},
		"UntagResource": func() error {
			_, err := c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: missing, TagKeys: []string{"k"}})
			return err
		},
		"ListResourceTags": func() error {
			_, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: missing})
			return err
		},
		"Encrypt": func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: missing, Plaintext: []byte("x")})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: missing, KeySpec: types.DataKeySpecAes256})
			return err
		},
		"GenerateDataKeyWithoutPlaintext": func() error {
			_, err := c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: missing, NumberOfBytes: aws.Int32(16)})
			return err
		},
		"GetParametersForImport": func() error {
			_, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: missing,
				WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
			return err
		},
		"ImportKeyMaterial": func() error {
			_, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: missing, ImportToken: make([]byte, 32), EncryptedKeyMaterial: []byte("m")})
			return err
		},
	}
	for name, call := range ops {
		t.Run(name, func(t *testing.T) {
			err := call()
			if e := wantExc[*types.NotFoundException](t, err, http.StatusNotFound); !strings.Contains(e.ErrorMessage(), aws.ToString(missing)) {
				t.Fatalf("message %q does not name the key", e.ErrorMessage())
			}
		})
	}
}

// TestPendingDeletionRefusesChanges: a key pending deletion refuses
// changes with KMSInvalidStateException and still describes and lists tags.
func TestPendingDeletionRefusesChanges(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	key := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	must[*kms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: key}))
	for name, call := range map[string]func() error{
		"UpdateKeyDescription": func() error {
			_, err := c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: key, Description: aws.String("d")})
			return err
		},
		"TagResource": func() error {
			_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: key, Tags: []types.Tag{{TagKey: aws.String("k"), TagValue: aws.String("v")}}})
			return err
		},
		"CreateAlias": func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/late"), TargetKeyId: key})
			return err
		},
		"EnableKeyRotation": func() error { _, err := c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: key}); return err },
		"ScheduleKeyDeletion": func() error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: key})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: key, KeySpec: types.DataKeySpecAes256})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := wantExc[*types.KMSInvalidStateException](t, call(), http.StatusConflict)
			if !strings.Contains(e.ErrorMessage(), "pending deletion") {
				t.Fatalf("message %q", e.ErrorMessage())
			}
		})
	}
	if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: key}); err != nil {
		t.Fatal(err)
	}
	_, err := c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: key, Description: aws.String(strings.Repeat("d", 8193))})
	wantCode(t, err, "ValidationException", http.StatusBadRequest)
}
