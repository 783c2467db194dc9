package awsapi_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	kmscore "github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// TestRetiredVersion: decryptions through the AWS protocol count as uses
// of the version (so they hold off its retirement), and once the version
// is disabled AWS Decrypt and ReEncrypt of data under it fail with
// DisabledException until it is enabled again.
func TestRetiredVersion(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	core := kmsdinternal.Of(srv.App).KMS
	k := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata
	id := aws.ToString(k.KeyId)
	enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("old")}))
	if _, err := core.RotateKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))
	}
	vs, err := core.ListKeyVersions(ctx, id)
	if err != nil || vs[0].DecryptCount != 2 || vs[0].LastUsedAt == nil {
		t.Fatalf("versions after AWS decrypts: %+v %v", vs, err)
	}
	if _, err := core.DisableKeyVersion(ctx, kmscore.DisableKeyVersionInput{KeyID: id, Version: 1}); !errors.Is(err, kmscore.ErrVersionInUse) {
		t.Fatalf("disable after AWS decrypts: %v", err)
	}
	if _, err := core.DisableKeyVersion(ctx, kmscore.DisableKeyVersionInput{KeyID: id, Version: 1, Force: true}); err != nil {
		t.Fatal(err)
	}

	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if e := wantExc[*types.DisabledException](t, err, http.StatusConflict); !strings.Contains(e.ErrorMessage(), "version 1") {
		t.Fatalf("decrypt message %q", e.ErrorMessage())
	}
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: k.KeyId})
	wantExc[*types.DisabledException](t, err, http.StatusConflict)

	if _, err := core.EnableKeyVersion(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))
	if string(dec.Plaintext) != "old" {
		t.Fatalf("decrypt after enable: %q", dec.Plaintext)
	}
}
